//! The examples evaluate to exactly the expected graph: ids, edges and their kinds.

use serde_json::Value;

use crate::{froyo, repo};

fn graph(file: &str) -> Value {
    let run = froyo(&repo(), &["graph", "--format", "json", file]);
    assert_eq!(run.code, 0, "{file}:\n{}", run.stderr);
    serde_json::from_str(&run.stdout).expect("graph JSON")
}

fn ids(g: &Value) -> Vec<String> {
    g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            format!(
                "{}/{}",
                n["host"].as_str().unwrap(),
                n["id"].as_str().unwrap()
            )
        })
        .collect()
}

fn edges(g: &Value) -> Vec<String> {
    g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} -> {} ({})",
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap(),
                e["kind"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn hello_graph() {
    let g = graph("examples/hello.star");
    assert_eq!(
        ids(&g),
        [
            "local/linux.file::directory[/tmp/froyo-hello]",
            "local/linux.file::file[/tmp/froyo-hello/hello.txt]"
        ]
    );
    assert_eq!(
        edges(&g),
        [
            "linux.file::directory[/tmp/froyo-hello] -> linux.file::file[/tmp/froyo-hello/hello.txt] (auto)"
        ]
    );
    // The file's `path` caused it, at the file's declaration.
    assert_eq!(g["edges"][0]["detail"], "path");
    assert_eq!(
        g["edges"][0]["by"],
        "linux.file::file[/tmp/froyo-hello/hello.txt]"
    );
    assert_eq!(g["edges"][0]["location"], "examples/hello.star:11");
    // Defaults come from CUE.
    assert_eq!(g["nodes"][1]["config"]["state"], "file");
    assert_eq!(g["nodes"][1]["config"]["backup"], false);
    assert_eq!(g["nodes"][0]["config"]["state"], "directory");
    assert_eq!(g["nodes"][1]["location"], "examples/hello.star:11");
}

#[test]
fn webserver_graph() {
    let g = graph("examples/webserver.star");
    assert_eq!(
        ids(&g),
        [
            "local/linux.pkg::package[nginx]",
            "local/linux.file::file[/etc/nginx/conf.d/site.conf]",
            "local/linux.service::service[nginx:reload]",
            "local/linux.service::service[nginx]",
        ]
    );
    assert_eq!(
        edges(&g),
        [
            "linux.pkg::package[nginx] -> linux.file::file[/etc/nginx/conf.d/site.conf] (explicit)",
            "linux.file::file[/etc/nginx/conf.d/site.conf] -> linux.service::service[nginx:reload] (notify)",
            "linux.pkg::package[nginx] -> linux.service::service[nginx] (explicit)",
            "linux.file::file[/etc/nginx/conf.d/site.conf] -> linux.service::service[nginx] (explicit)",
        ]
    );
    let reload = &g["nodes"][2];
    assert_eq!(reload["handler"], true);
    assert_eq!(reload["config"]["action"], "reload");
    let content = &g["nodes"][1]["config"]["content"]["$content"];
    assert_eq!(content["source"], "template");
    assert!(
        content["text"]
            .as_str()
            .unwrap()
            .contains("server_name localhost;"),
        "{content}"
    );
    assert_eq!(content["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(g["plays"][0]["name"], "main");
}

#[test]
fn users_graph() {
    let g = graph("examples/users.star");
    assert_eq!(
        ids(&g),
        [
            "local/linux.user::group[admins]",
            "local/linux.user::user[alice]",
            "local/linux.user::authorized_keys[alice]",
            "local/linux.user::user[bob]",
            "local/linux.user::authorized_keys[bob]",
        ]
    );
    assert_eq!(
        edges(&g),
        [
            "linux.user::group[admins] -> linux.user::user[alice] (implicit)",
            "linux.user::user[alice] -> linux.user::authorized_keys[alice] (implicit)",
            "linux.user::group[admins] -> linux.user::user[bob] (implicit)",
            "linux.user::user[bob] -> linux.user::authorized_keys[bob] (implicit)",
        ]
    );
    // A handle becomes its natural value: the group's name, the user's name.
    assert_eq!(g["nodes"][1]["config"]["group"], "admins");
    assert_eq!(g["nodes"][2]["config"]["user"], "alice");
    assert_eq!(g["edges"][0]["detail"], "group");
}

#[test]
fn examples_pass_check() {
    for f in [
        "examples/hello.star",
        "examples/webserver.star",
        "examples/users.star",
    ] {
        let run = froyo(&repo(), &["check", f]);
        assert_eq!(run.code, 0, "{f}:\n{}", run.stderr);
        assert!(run.stderr.contains('✓'), "{}", run.stderr);
    }
}

#[test]
fn graph_is_deterministic_and_dot_has_edge_kinds() {
    let a = froyo(&repo(), &["graph", "examples/webserver.star"]).stdout;
    let b = froyo(&repo(), &["graph", "examples/webserver.star"]).stdout;
    assert_eq!(a, b);
    let dot = froyo(
        &repo(),
        &["graph", "--format", "dot", "examples/webserver.star"],
    )
    .stdout;
    assert!(dot.starts_with("digraph froyo {"), "{dot}");
    assert!(dot.contains("label=\"notify\", style=dashed"), "{dot}");
    assert!(dot.contains("label=\"explicit\", style=solid"), "{dot}");
}

/// The README's main job: `froyo apply examples/hello.star --yes` on the local machine,
/// run from a copy so the repository's `examples/` gets no `.froyo/`.
#[test]
fn the_readme_main_job_applies_hello_and_then_has_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("examples/hello.star"),
        dir.path().join("hello.star"),
    )
    .unwrap();
    let _owned = crate::hello_dir();
    let _ = std::fs::remove_dir_all("/tmp/froyo-hello");
    let first = froyo(dir.path(), &["apply", "hello.star", "--yes"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert_eq!(
        std::fs::read_to_string("/tmp/froyo-hello/hello.txt").unwrap(),
        "Hello from OpenFroyo!\n"
    );
    let second = froyo(dir.path(), &["apply", "hello.star", "--yes"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stdout.contains("= 2 unchanged"), "{}", second.stdout);
    assert!(dir.path().join(".froyo/state.db").is_file());
}
