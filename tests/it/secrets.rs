//! The project's age secret store end to end: `froyo init` makes the identity, `froyo
//! secret set/get/list/rm` manage `secrets.age`, and a playbook reading
//! `secret("file://secrets.age#NAME")` in a file's content and a command's environment
//! applies it, while the value appears nowhere else: not in the store file, the state
//! database, a plan file, or any output (with `-vv` tracing on).

use std::path::Path;

use crate::{froyo, froyo_stdin};

/// Every file under `dir` that holds `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p)
                && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

#[test]
fn age_store_secrets_apply_and_leak_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&root).unwrap();
    let value = "Zq9-age-stored-p4ssw0rd-77";

    let run = froyo(&root, &["init"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = froyo_stdin(
        &root,
        &["secret", "set", "db_password"],
        &format!("{value}\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("Added `db_password`"), "{}", run.stderr);
    let run = froyo_stdin(&root, &["secret", "set", "api_token"], "tok-123456789\n");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = froyo(&root, &["secret", "list"]);
    assert_eq!(run.stdout, "api_token\ndb_password\n");
    let run = froyo(&root, &["secret", "get", "db_password"]);
    assert_eq!(
        run.stdout,
        format!("{value}\n"),
        "get prints exactly the value"
    );
    assert!(
        files_containing(&root, value).is_empty(),
        "the store is encrypted"
    );

    std::fs::write(
        root.join("site.star"),
        format!(
            r#"load("@stdlib//linux.star", "command", "directory", "file")
d = directory("{out}", mode = "0755")
pw = secret("file://secrets.age#db_password")
require(file("{out}/db.conf", content = fmt("password={{}}\n", pw), mode = "0600"), d)
require(command("use it", shell = "printf %s \"$DB_PASSWORD\" > {out}/from-env", env = {{"DB_PASSWORD": pw}}, creates = "{out}/from-env"), d)
"#,
            out = out.display()
        ),
    )
    .unwrap();
    let mut outputs = Vec::new();
    for args in [
        &["-vv", "plan", "--diff", "--out", "plan.json", "site.star"][..],
        &["-vv", "apply", "--yes", "--diff", "site.star"][..],
        &["-vv", "apply", "--yes", "--json", "site.star"][..],
        &["-vv", "drift", "--json"][..],
    ] {
        let run = froyo(&root, args);
        assert_eq!(run.code, 0, "{args:?}: {}\n{}", run.stdout, run.stderr);
        outputs.push(format!("{}{}", run.stdout, run.stderr));
    }
    // It did reach the target, through the file's content and the command's environment.
    assert_eq!(
        std::fs::read_to_string(out.join("db.conf")).unwrap(),
        format!("password={value}\n")
    );
    assert_eq!(
        std::fs::read_to_string(out.join("from-env")).unwrap(),
        value
    );
    // -vv really logged the runs (so the check below looks at real logs).
    assert!(
        outputs[1].contains("DEBUG") || outputs[1].contains("TRACE"),
        "{}",
        outputs[1]
    );
    for o in &outputs {
        assert!(!o.contains(value), "the secret in output:\n{o}");
    }
    assert_eq!(
        files_containing(&root, value),
        Vec::<String>::new(),
        "the secret in a project file (state, plan, store)"
    );

    // A removed secret is a clear error at apply time, and nothing is half applied.
    let run = froyo(&root, &["secret", "rm", "db_password"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::remove_file(out.join("db.conf")).unwrap();
    let run = froyo(&root, &["plan", "site.star"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("has no secret `db_password`")
            || run.stdout.contains("has no secret `db_password`"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    // A store outside the project is refused when the playbook is evaluated.
    std::fs::write(
        root.join("bad.star"),
        "x = secret(\"file://../elsewhere.age#k\")\n",
    )
    .unwrap();
    let run = froyo(&root, &["check", "bad.star"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("is not a secret URI"), "{}", run.stderr);
}
