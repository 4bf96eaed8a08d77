//! `froyo import ansible` on real public roles (`tests/fixtures/ansible/`, with their
//! licenses): the conversion is written, reads as a person would write it (golden files),
//! and `froyo check` passes except for the `E-IMPORT` placeholders, each naming its
//! Ansible source line; with `--allow-unconverted` the playbook evaluates on this machine.

use std::path::Path;

use super::{check_json, fixtures, froyo};

fn import(source: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "import",
        "ansible",
        source.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let run = froyo(&fixtures(), &args);
    assert_eq!(
        run.code, 0,
        "import failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// The E-IMPORT diagnostics of a check, and every other error.
fn errors(check: &serde_json::Value) -> (Vec<String>, Vec<serde_json::Value>) {
    let mut placeholders = Vec::new();
    let mut others = Vec::new();
    for d in check["diagnostics"].as_array().unwrap() {
        if d["severity"] != "error" {
            continue;
        }
        if d["code"] == "E-IMPORT" {
            placeholders.push(d["message"].as_str().unwrap().to_owned());
        } else {
            others.push(d.clone());
        }
    }
    (placeholders, others)
}

#[test]
fn users_role_converts_whole_and_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let report = import(&fixtures().join("ansible/roles/users"), out, &[]);
    let unit = &report["units"][0];
    assert_eq!(unit["name"], "users");
    assert_eq!(
        (unit["tasks"].as_u64(), unit["converted"].as_u64()),
        (Some(7), Some(7)),
        "{unit:#}"
    );
    for f in [
        "users.star",
        "roles/users/main.star",
        "IMPORT.md",
        "import-report.json",
        "froyo.toml",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let module = std::fs::read_to_string(out.join("roles/users/main.star")).unwrap();
    insta::assert_snapshot!("import_users_role", module);
    let (code, check) = check_json(out, "users.star");
    assert_eq!(code, 0, "{check:#}");
}

/// Every task that did not convert is an E-IMPORT at `froyo check`, naming its source
/// line (placeholders run when the module loads, before anything reads facts).
#[test]
fn security_role_placeholders_fail_check_with_their_source_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let report = import(&fixtures().join("ansible/roles/security"), out, &[]);
    let unit = &report["units"][0];
    let unconverted = unit["unconverted"].as_array().unwrap();
    assert_eq!(unconverted.len(), 1, "{unconverted:#?}");
    assert!(unit["coverage"].as_f64().unwrap() >= 0.9, "{unit:#}");
    let (code, check) = check_json(out, "security.star");
    assert_eq!(code, 1, "{check:#}");
    let (placeholders, others) = errors(&check);
    assert_eq!(placeholders.len(), 1, "{placeholders:#?}");
    assert!(
        placeholders[0].contains("roles/security/tasks/fail2ban.yml:2: ansible.builtin.package (Install fail2ban (RedHat).): `package` argument `enablerepo` not converted"),
        "{placeholders:#?}"
    );
    // The role branches on facts, which an offline check cannot read.
    assert!(
        others.iter().all(|d| d["code"] == "E-FACT-UNAVAILABLE"),
        "{others:#?}"
    );

    // With --allow-unconverted the placeholder is a warning.
    import(
        &fixtures().join("ansible/roles/security"),
        out,
        &["--allow-unconverted"],
    );
    let (_, check) = check_json(out, "security.star");
    let (placeholders, _) = errors(&check);
    assert!(placeholders.is_empty(), "{check:#}");
    assert!(
        check["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["code"] == "W-IMPORT"),
        "{check:#}"
    );
}

/// A site playbook with both roles and role parameters: the users role's loops run over
/// the play's `users`, and every resource Ansible would manage is in the graph.
#[test]
fn site_playbook_graph_has_what_ansible_would_manage() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let report = import(
        &fixtures().join("ansible/site.yml"),
        out,
        &["--allow-unconverted"],
    );
    let units = report["units"].as_array().unwrap();
    let names: Vec<&str> = units.iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["users", "security", "site.yml"]);
    let security = std::fs::read_to_string(out.join("roles/security/main.star")).unwrap();
    insta::assert_snapshot!("import_security_role", security);
    let site = std::fs::read_to_string(out.join("site.star")).unwrap();
    insta::assert_snapshot!("import_site_playbook", site);

    // `froyo graph` reads this machine's facts (the security role branches on them).
    let run = froyo(out, &["graph", "site.star", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let graph: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let ids: Vec<&str> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    for want in [
        "linux.user::group[alice]",
        "linux.user::user[alice]",
        "linux.user::authorized_keys[alice]",
        "linux.user::user[bob]",
        "linux.pkg::package[curl htop]",
        "linux.file::file[/etc/motd]",
        "linux.service::service[ssh]",
        "linux.file::line[/etc/ssh/sshd_config: ^PasswordAuthentication]",
        "linux.file::block[/home/alice/.profile: managed block]",
    ] {
        assert!(
            ids.iter().any(|i| i.ends_with(want)),
            "{want} not in {ids:#?}"
        );
    }
}

#[test]
fn import_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yml"), "- hosts: all\n  tasks: [\n").unwrap();
    let run = froyo(
        dir.path(),
        &["import", "ansible", "bad.yml", "--out", "out"],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("E-IMPORT-INPUT"), "{}", run.stderr);
    assert!(run.stderr.contains("bad.yml:"), "{}", run.stderr);
}
