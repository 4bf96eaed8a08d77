//! The bundled Rego rules are written for speed (issue 19: resources indexed by type,
//! cheap screens before a regex); `tests/fixtures/policy/reference/` keeps them as first
//! written, a plain scan of every resource per rule. On an input that mixes every case
//! the rules look at, both must find exactly the same denials and warnings, so an
//! optimisation cannot change what a rule decides. A change to a rule's meaning is made
//! in both copies.

use serde_json::{Value, json};

use froyo::policy::{Finding, Policies};
use froyo::project::Project;

use crate::repo;

/// `[policy.config]` of both projects: the rules' settings are exercised too.
const CONFIG: &str = r#"
[policy.config.world_writable]
allowed_paths = ["/srv/allowed"]

[policy.config.firewall_open_world]
allowed_ports = [80, 443, 8080]

[policy.config.plain_secret]
ignore_ids = ["linux.file::file[/srv/x13]"]
"#;

/// A project whose policies are the bundled rules (`bundled`) or the reference copies.
fn policies(bundled: bool) -> (tempfile::TempDir, Policies) {
    let dir = tempfile::tempdir().unwrap();
    let toml = if bundled {
        format!("[project]\nname = \"p\"\n\n[policy]\n{CONFIG}")
    } else {
        format!("[project]\nname = \"p\"\n\n[policy]\nbundled = false\n{CONFIG}")
    };
    std::fs::write(dir.path().join("froyo.toml"), toml).unwrap();
    if !bundled {
        let to = dir.path().join("policies");
        std::fs::create_dir(&to).unwrap();
        let from = repo().join("tests/fixtures/policy/reference");
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    let project = Project::at(dir.path().to_owned()).unwrap();
    let policies = Policies::for_project(&project, bundled).unwrap();
    (dir, policies)
}

/// Pick `i`'s variant of `options` (different lengths give different combinations).
fn pick<T: Clone>(i: usize, options: &[T]) -> T {
    options[i % options.len()].clone()
}

/// `n` resources of every type the rules judge (and some they do not), with the modes,
/// states, paths, contents, checksums, firewall fields and hidden credentials that
/// decide them, combined differently for each resource.
fn varied_input(n: usize) -> Value {
    let types = [
        "linux.file::file",
        "linux.file::directory",
        "linux.net::download",
        "linux.pkg::package",
        "linux.firewall::rule",
        "linux.exec::command",
        "linux.service::service",
    ];
    let modes = [
        json!("0644"),
        json!("0666"),
        json!("1777"),
        json!("777"),
        json!("0602"),
        json!("2755"),
        json!("0755"),
        json!("3777"),
        json!(666),
        Value::Null,
        json!("0643"),
    ];
    let states = [
        Value::Null,
        json!("absent"),
        json!("present"),
        json!("latest"),
        json!("file"),
    ];
    let paths = [
        "/srv/x",
        "/tmp",
        "/etc/ssh/sshd_config",
        "/etc/ssh/sshd_config.d/10-x.conf",
        "/srv/allowed",
        "/var/tmp",
        "/srv/drop",
    ];
    let contents = [
        json!("hello\n"),
        json!("PermitRootLogin yes\n"),
        json!("# PasswordAuthentication yes\nPasswordAuthentication=yes\n"),
        json!({"$content": {"text": "  passwordauthentication \"yes\" # c\n"}}),
        json!({"$content": {"template": "PermitRootLogin yes\n"}}),
        json!({"$content": {"text": "PermitRootLogin no\n", "template": "PermitRootLogin yes"}}),
        json!("aws_key = AKIAIOSFODNN7EXAMPLE\n"),
        json!("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"),
        json!("token: xAKIAIOSFODNN7EXAMPLE (glued: no match)"),
        json!({"$secret": {"ref": "env://TOKEN", "value": "ghp_abcdefghijklmnopqrstuvwxyz0123456789"}}),
        json!("PermitRootLogin yes # PasswordAuthentication yes"),
        json!(""),
    ];
    let extras = [
        json!({}),
        json!({"headers": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig"}}),
        json!({"env": ["PATH=/bin", "SLACK=xoxb-1234567890-abcdef"]}),
        json!({"vars": {"a": {"b": [{"c": "glpat-abcdefghijklmnopqrst"}]}}}),
        json!({"note": "AIzaSyA-1234567890abcdefghijklmnopqrstu and more"}),
        json!({"key": "sk_live_abcdefghijklmnopqrstuvwx"}),
        json!({"key": "sk_live_short"}),
        json!({"token": "github_pat_abcdefghijklmnopqrstuv_more"}),
    ];
    let sums = [
        Value::Null,
        json!("abc"),
        json!("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
        json!("0000000000000000000000000000000000000000000000000000000000000000"),
        json!("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        json!("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"),
        json!("abababababababababababababababababababababababababababababababab"),
        json!(42),
    ];
    let sources = [
        Value::Null,
        json!("any"),
        json!("0.0.0.0/0"),
        json!("::/0"),
        json!("10.0.0.0/8"),
    ];
    let ports = [
        Value::Null,
        json!("absent"),
        json!(22),
        json!(80),
        json!("80-443"),
        json!("443-443"),
        json!("8080-8081"),
        json!("80-81"),
        json!("bad"),
    ];
    let envs = [json!({"env": "prod"}), json!({"env": "stage"}), json!({})];
    let mut resources = Vec::new();
    for i in 0..n {
        let rtype = types[i % types.len()];
        let name = format!("/srv/x{i}");
        let mut config = serde_json::Map::new();
        let mut set = |k: &str, v: Value| {
            if !v.is_null() {
                config.insert(k.to_owned(), v);
            }
        };
        set("mode", pick(i / 2, &modes));
        set("state", pick(i / 3, &states));
        let path = pick(i / 5, &paths);
        let path = if path == "/srv/x" {
            name.clone()
        } else {
            path.to_owned()
        };
        // Some resources leave the path to their name.
        if i % 13 != 0 {
            set(
                if rtype == "linux.net::download" {
                    "dest"
                } else {
                    "path"
                },
                json!(path),
            );
        }
        set("content", pick(i / 7, &contents));
        if i % 5 == 0
            && let Value::Object(m) = pick(i / 4, &extras)
        {
            for (k, v) in m {
                set(&k, v);
            }
        }
        match rtype {
            "linux.net::download" => {
                set("sha256", pick(i / 11, &sums));
                if i % 3 != 0 {
                    set("url", json!(format!("https://example.com/t{i}.tgz")));
                }
            }
            "linux.firewall::rule" => {
                set(
                    "action",
                    pick(i / 2, &[Value::Null, json!("allow"), json!("deny")]),
                );
                set(
                    "direction",
                    pick(i / 3, &[Value::Null, json!("in"), json!("out")]),
                );
                set("source", pick(i / 5, &sources));
                set(
                    "proto",
                    pick(
                        i / 11,
                        &[Value::Null, json!("tcp"), json!("udp"), json!("icmp")],
                    ),
                );
                match pick(i / 7, &ports) {
                    p if p == "absent" => {}
                    Value::Null => {
                        config.insert("port".into(), Value::Null);
                    }
                    p => {
                        config.insert("port".into(), p);
                    }
                }
            }
            "linux.pkg::package" => {
                let names = pick(i / 5, &[Value::Null, json!(["a", "b"]), json!([])]);
                if !names.is_null() {
                    config.insert("names".into(), names);
                }
            }
            _ => {}
        }
        let mut r = json!({
            "id": format!("{rtype}[{name}]"),
            "type": rtype,
            "name": name,
            "host": format!("h{}", i % 3),
            "play": "default",
            "handler": false,
            "sensitive": false,
            "config": config,
            "meta": {},
            "location": format!("gen.star:{i}"),
        });
        // Some resources have no labels at all.
        if i % 17 != 0 {
            r["labels"] = pick(i / 2, &envs);
        }
        resources.push(r);
    }
    json!({
        "version": 1,
        "phase": "check",
        "resources": resources,
        "targets": [],
        "operations": [],
    })
}

#[test]
fn restructured_rules_find_exactly_what_the_reference_rules_find() {
    let input = varied_input(3000);
    let (_a, fast) = policies(true);
    let (_b, reference) = policies(false);
    let found: Vec<Finding> = fast.evaluate(&input).unwrap();
    let expected: Vec<Finding> = reference.evaluate(&input).unwrap();
    for (f, e) in found.iter().zip(&expected) {
        assert_eq!(f, e, "first difference");
    }
    assert_eq!(found.len(), expected.len(), "as many findings");
    // Not a vacuous comparison: every rule denies something, some only warn, and most
    // resources pass.
    for rule in [
        "world_writable",
        "download_sha256",
        "plain_secret",
        "sshd_password_login",
        "latest_in_prod",
        "firewall_open_world",
    ] {
        let n = found.iter().filter(|f| f.rule == rule && f.deny).count();
        assert!(n >= 3, "{rule} denies only {n} resources");
    }
    assert!(found.iter().any(|f| !f.deny), "no warning");
    let flagged: std::collections::BTreeSet<_> = found.iter().map(|f| &f.id).collect();
    assert!(
        flagged.len() < 2000,
        "{} of 3000 resources flagged",
        flagged.len()
    );
}
