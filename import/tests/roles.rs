//! The converter on the real roles in `tests/fixtures/ansible/` (copied with their
//! licenses): what each task becomes, and the coverage the report gives. The end-to-end
//! checks with the `froyo` binary (`froyo check`, `froyo graph`) are in `tests/it/import.rs`.

use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ansible")
}

fn convert(source: &str, allow: bool) -> (tempfile::TempDir, froyo_import::Report) {
    let out = tempfile::tempdir().unwrap();
    let opts = froyo_import::Options {
        source: fixtures().join(source),
        roles_path: Vec::new(),
        out: out.path().to_path_buf(),
        allow_unconverted: allow,
    };
    let report = froyo_import::import_ansible(&opts).unwrap();
    (out, report)
}

fn read(dir: &Path, f: &str) -> String {
    std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"))
}

#[test]
fn users_role() {
    let (out, report) = convert("roles/users", false);
    let role = read(out.path(), "roles/users/main.star");
    if let Ok(d) = std::env::var("IMPORT_DUMP") {
        std::fs::write(format!("{d}/users.star"), &role).unwrap();
    }
    let u = &report.units[0];
    assert_eq!((u.tasks, u.converted), (7, 7), "{:#?}", u.unconverted);
    for want in [
        r#""users_create_per_user_group": True,  # roles/users/defaults/main.yml:3"#,
        r#"for item in v["groups_to_create"]:"#,
        r#"gid = item.get("gid"),"#,
        r#"if "group" not in item and v["users_create_per_user_group"]:"#,
        r#"gid = item.get("gid", item.get("uid"))"#,
        r#"for item in [(x, "\n".join(x.get("ssh_key", []))) for x in v["users"] if x.get("ssh_key", [])]:"#,
        r#"authorized_keys("#,
        "block = item[\"profile\"],",
        "# roles/users/tasks/main.yml:2: Creating groups",
    ] {
        assert!(role.contains(want), "missing {want:?} in\n{role}");
    }
    let md = read(out.path(), "IMPORT.md");
    assert!(md.contains("7 of 7 tasks"), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&read(out.path(), "import-report.json")).unwrap();
    assert_eq!(json["units"][0]["coverage"], 1.0);
}

#[test]
fn site_playbook_with_two_roles() {
    let (out, report) = convert("site.yml", true);
    let names: Vec<&str> = report.units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["users", "security", "site.yml"]);
    let security = read(out.path(), "roles/security/main.star");
    let site = read(out.path(), "site.star");
    if let Ok(d) = std::env::var("IMPORT_DUMP") {
        std::fs::write(format!("{d}/security.star"), &security).unwrap();
        std::fs::write(format!("{d}/site.star"), &site).unwrap();
        std::fs::write(format!("{d}/IMPORT.md"), read(out.path(), "IMPORT.md")).unwrap();
    }
    for want in [
        r#"if host.facts.os.basic.family == "debian":"#,
        r#"if ansible_bool(v["security_fail2ban_enabled"]):"#,
        r#"handlers["reload fail2ban"] = reload("fail2ban")"#,
        "reload_fail2ban(),",
        r#"service_state(v["security_sshd_state"])"#,
        "allow = True",
    ] {
        assert!(security.contains(want), "missing {want:?} in\n{security}");
    }
    for want in [
        r#"load("//roles/users/main.star", users = "role")"#,
        "users(host, v)",
        "security(host, v, security_fail2ban_enabled = False)",
        r#"names = ["curl", "htop"]"#,
        r#"play("Base setup", "*", base_setup, become = True)"#,
    ] {
        assert!(site.contains(want), "missing {want:?} in\n{site}");
    }
    assert!(
        out.path()
            .join("roles/security/templates/jail.local.j2")
            .is_file()
    );
}

/// A handler's plan-time `when` becomes its `when` keyword, and tasks notify it.
#[test]
fn handler_with_a_condition() {
    let role = tempfile::tempdir().unwrap();
    let r = role.path().join("web");
    for (f, text) in [
        (
            "tasks/main.yml",
            "- name: Site config\n  template: src=site.j2 dest=/etc/nginx/conf.d/site.conf\n  notify: reload nginx\n",
        ),
        (
            "handlers/main.yml",
            "- name: reload nginx\n  service: name=nginx state=reloaded\n  when: nginx_service_state == \"started\"\n",
        ),
        ("defaults/main.yml", "nginx_service_state: started\n"),
        ("templates/site.j2", "server {}\n"),
    ] {
        std::fs::create_dir_all(r.join(f).parent().unwrap()).unwrap();
        std::fs::write(r.join(f), text).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let opts = froyo_import::Options {
        source: r.clone(),
        roles_path: Vec::new(),
        out: out.path().to_path_buf(),
        allow_unconverted: false,
    };
    let report = froyo_import::import_ansible(&opts).unwrap();
    assert_eq!(
        (report.tasks, report.converted),
        (2, 2),
        "{:#?}",
        report.units
    );
    let module = read(out.path(), "roles/web/main.star");
    for want in [
        r#"handlers["reload nginx"] = reload("nginx", when = v["nginx_service_state"] == "started")"#,
        "reload_nginx(),",
        r#"template("templates/site.j2", vars = dict(v, ansible_managed = ANSIBLE_MANAGED))"#,
    ] {
        assert!(module.contains(want), "missing {want:?} in\n{module}");
    }
}
