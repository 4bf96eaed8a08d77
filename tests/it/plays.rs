//! Plays, `def main(host)`, the default play, inventory vars, selectors, templates with
//! handles, secrets and deferred values: the graph each produces.

use serde_json::Value;

use crate::{fixtures, froyo};

fn graph(args: &[&str]) -> Value {
    let dir = fixtures().join("plays");
    let mut all = vec!["graph"];
    all.extend_from_slice(args);
    let run = froyo(&dir, &all);
    assert_eq!(run.code, 0, "{args:?}:\n{}", run.stderr);
    serde_json::from_str(&run.stdout).expect("graph JSON")
}

fn node<'a>(g: &'a Value, host: &str, id: &str) -> &'a Value {
    g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["host"] == host && n["id"] == id)
        .unwrap_or_else(|| panic!("no {host}/{id}"))
}

#[test]
fn plays_run_per_selected_host() {
    let g = graph(&["site.star"]);
    let plays: Vec<(&str, Vec<&str>)> = g["plays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["hosts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h.as_str().unwrap())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        plays,
        [
            ("default", vec!["local"]),
            ("web", vec!["web-01", "web-02"]),
            ("db", vec!["db-01"])
        ]
    );
    assert_eq!(g["plays"][1]["serial"], 1);

    // Host vars: target > label vars > defaults.
    let site1 = node(&g, "web-01", "linux.file::file[/etc/nginx/site.conf]");
    let text1 = site1["config"]["content"]["$content"]["text"]
        .as_str()
        .unwrap();
    assert_eq!(
        text1,
        "server_name shop.example.com; listen 8080; root /var/www/web-01;\n"
    );
    let site2 = node(&g, "web-02", "linux.file::file[/etc/nginx/site.conf]");
    let text2 = site2["config"]["content"]["$content"]["text"]
        .as_str()
        .unwrap();
    assert_eq!(
        text2,
        "server_name web-02; listen 80; root /var/www/web-02;\n"
    );
    // Play meta is inherited.
    assert_eq!(site1["meta"]["tags"], serde_json::json!(["web"]));
    assert_eq!(
        node(&g, "db-01", "linux.file::file[/etc/db-peers]")["meta"]["become"],
        true
    );
    assert_eq!(
        node(&g, "db-01", "linux.file::file[/etc/db-peers]")["config"]["content"],
        "db-01\n"
    );
}

#[test]
fn handles_in_template_vars_and_when_add_implicit_edges() {
    let g = graph(&["site.star"]);
    let edges: Vec<String> = g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["host"] == "web-01")
        .map(|e| {
            format!(
                "{} -> {} ({}, {})",
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap(),
                e["kind"].as_str().unwrap(),
                e["detail"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        edges,
        [
            "linux.file::directory[/var/www/web-01] -> linux.file::file[/etc/nginx/site.conf] (implicit, content)",
            "linux.file::file[/etc/nginx/site.conf] -> linux.service::service[nginx:restart] (notify, on=change)",
            "linux.file::file[/etc/nginx/site.conf] -> linux.service::service[nginx] (implicit, when)",
        ]
    );
    let svc = node(&g, "web-01", "linux.service::service[nginx]");
    assert_eq!(
        svc["meta"]["when"]["$ref"]["changed"],
        "changed(linux.file::file[/etc/nginx/site.conf])"
    );
}

#[test]
fn secrets_are_markers_never_values() {
    // SAFETY of the assertion: the env var is set for the child so a leak would show.
    let dir = fixtures().join("plays");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_froyo"))
        .args(["graph", "site.star"])
        .current_dir(&dir)
        .env("PG_PASSWORD", "hunter2-very-secret")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        !stdout.contains("hunter2"),
        "secret value leaked into the graph"
    );
    let g: Value = serde_json::from_str(&stdout).unwrap();
    let cmd = node(&g, "db-01", "linux.exec::command[createdb]");
    assert_eq!(cmd["sensitive"], true);
    assert_eq!(
        cmd["config"]["env"]["PGPASSWORD"]["$secret"],
        "env://PG_PASSWORD"
    );
    assert_eq!(cmd["config"]["unless"], "psql -lqt | grep -q shop");
    let env = node(&g, "db-01", "linux.file::file[/etc/db.env]");
    assert_eq!(env["sensitive"], true);
    assert_eq!(
        env["config"]["content"]["$secret"]["fmt"],
        serde_json::json!([{"lit": "PASSWORD="}, {"secret": "env://PG_PASSWORD"}, {"lit": "\n"}])
    );
}

#[test]
fn on_selects_the_default_play_hosts() {
    let g = graph(&["site.star", "--on", "role=web"]);
    let srv: Vec<&str> = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["id"] == "linux.file::directory[/srv]")
        .map(|n| n["host"].as_str().unwrap())
        .collect();
    assert_eq!(srv, ["web-01", "web-02"]);
}

#[test]
fn main_convention_and_cli_vars() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.star"),
        "def main(host):\n    resource(\"linux.file::file\", \"/etc/motd\", content = host.vars[\"motd\"])\n",
    )
    .unwrap();
    let run = froyo(dir.path(), &["graph", "m.star", "--var", "motd=from-cli"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let g: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(g["plays"][0]["name"], "main");
    assert_eq!(g["nodes"][0]["config"]["content"], "from-cli");
}
