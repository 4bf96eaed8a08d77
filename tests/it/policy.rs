//! Golden tests of the bundled Rego policies (`policies/*.rego`): each rule denies its
//! `<rule>_deny.star` fixture with exactly one `E-POLICY` at the offending declaration
//! and lets its `<rule>_ok.star` fixture pass; the Rego unit tests pass under
//! `froyo policy test`; project policies are added to the bundled ones; `[policy]` in
//! `froyo.toml` disables and configures rules.

use serde_json::Value;

use crate::{check_json, fixtures, froyo, repo};

/// `(directory under tests/fixtures/policy, rule)`: the fixtures are `<rule>_deny.star`
/// and `<rule>_ok.star` in that directory.
const RULES: &[(&str, &str)] = &[
    ("", "world_writable"),
    ("", "download_sha256"),
    ("", "plain_secret"),
    ("", "sshd_password_login"),
    // Needs an inventory with an env=prod target.
    ("prod", "latest_in_prod"),
    ("", "firewall_open_world"),
];

/// The line of each deny fixture that holds the violation.
fn deny_line(rule: &str) -> u64 {
    match rule {
        "world_writable" => 3,
        "download_sha256" => 3,
        "plain_secret" => 4,
        "sshd_password_login" => 3,
        "latest_in_prod" => 4,
        "firewall_open_world" => 4,
        other => panic!("no deny fixture for {other}"),
    }
}

fn dir_of(sub: &str) -> std::path::PathBuf {
    let dir = fixtures().join("policy");
    if sub.is_empty() { dir } else { dir.join(sub) }
}

/// The diagnostics of `json` with `code`.
fn with_code<'a>(json: &'a Value, code: &str) -> Vec<&'a Value> {
    json["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["code"] == code)
        .collect()
}

#[test]
fn every_rule_denies_its_fixture_at_the_declaration() {
    for (sub, rule) in RULES {
        let file = format!("{rule}_deny.star");
        let (code, json) = check_json(&dir_of(sub), &file);
        assert_eq!(code, 1, "{file}: exit code\n{json:#}");
        assert_eq!(json["ok"], false, "{file}: ok flag");
        let denied = with_code(&json, "E-POLICY");
        assert_eq!(denied.len(), 1, "{file}: exactly one E-POLICY\n{json:#}");
        let d = denied[0];
        let msg = d["message"].as_str().unwrap();
        assert!(msg.contains(rule), "{file}: rule name missing from {msg:?}");
        assert_eq!(
            d["location"]["file"],
            file.as_str(),
            "{file}: location file"
        );
        assert_eq!(
            d["location"]["line"],
            deny_line(rule),
            "{file}: location line"
        );
        assert!(
            d["help"].as_str().is_some_and(|h| h.contains(rule)),
            "{file}: hint should name the rule: {d:#}"
        );
        // The policy is the only error: the fixture is otherwise valid.
        let others: Vec<_> = json["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["severity"] == "error" && d["code"] != "E-POLICY")
            .collect();
        assert!(others.is_empty(), "{file}: unexpected errors {others:#?}");
    }
}

#[test]
fn every_rule_passes_its_compliant_fixture() {
    for (sub, rule) in RULES {
        let file = format!("{rule}_ok.star");
        let (code, json) = check_json(&dir_of(sub), &file);
        assert_eq!(code, 0, "{file}: exit code\n{json:#}");
        assert_eq!(json["ok"], true, "{file}: ok flag");
        assert!(
            with_code(&json, "E-POLICY").is_empty(),
            "{file}: denied\n{json:#}"
        );
    }
}

/// A sticky world-writable directory (like /tmp) is a warning, not an error.
#[test]
fn sticky_shared_directory_is_only_a_warning() {
    let (code, json) = check_json(&dir_of(""), "world_writable_ok.star");
    assert_eq!(code, 0, "{json:#}");
    let warned = with_code(&json, "W-POLICY");
    assert_eq!(warned.len(), 1, "{json:#}");
    let w = warned[0];
    assert_eq!(w["severity"], "warning");
    assert_eq!(w["location"]["line"], 7);
    let msg = w["message"].as_str().unwrap();
    assert!(
        msg.contains("world_writable") && msg.contains("/srv/drop"),
        "{msg}"
    );
}

/// The message of plain_secret says where the value is, never what it is.
#[test]
fn plain_secret_names_the_path_not_the_value() {
    let (_, json) = check_json(&dir_of(""), "plain_secret_deny.star");
    let text = json.to_string();
    assert!(
        !text.contains("AKIAIOSFODNN7EXAMPLE"),
        "value leaked: {json:#}"
    );
    let denied = with_code(&json, "E-POLICY");
    let msg = denied[0]["message"].as_str().unwrap();
    assert!(msg.contains("config content "), "{msg}");
    assert!(msg.contains("AWS access key id"), "{msg}");
}

#[test]
fn bundled_policy_unit_tests_pass() {
    let run = froyo(&repo(), &["policy", "test", "policies/"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("FAIL"), "{}", run.stdout);
    // "PASS: n/n", with at least one test per bundled rule.
    let summary = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("PASS: "))
        .unwrap_or_else(|| panic!("no summary in\n{}", run.stdout));
    let (passed, total) = summary.trim().split_once('/').expect("n/n");
    assert_eq!(passed, total, "{}", run.stdout);
    let total: usize = total.parse().expect("a count");
    assert!(total >= RULES.len() * 5, "only {total} tests ran");
    // Every rule has its unit tests next to it.
    for (_, rule) in RULES {
        let test = repo().join("policies").join(format!("{rule}_test.rego"));
        assert!(test.is_file(), "{} missing", test.display());
    }
}

/// `froyo policy input` prints the document the rules see (what `opa eval -i` is given in
/// `bench/policy.sh`): the checked graph with schema defaults, and no input on errors.
#[test]
fn policy_input_prints_the_document_the_rules_see() {
    let run = froyo(
        &dir_of(""),
        &["policy", "input", "world_writable_deny.star"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["phase"], "check");
    let resources = doc["resources"].as_array().expect("resources");
    let open = resources
        .iter()
        .find(|r| r["config"]["mode"] == "0666")
        .unwrap_or_else(|| panic!("no 0666 resource in {doc:#}"));
    assert_eq!(open["type"], "linux.file::file");
    assert_eq!(
        open["config"]["state"], "file",
        "schema defaults are filled in"
    );
    assert_eq!(open["location"], "world_writable_deny.star:3");
    let dir = project(
        "[project]\nname = \"p\"\n",
        &[(
            "bad.star",
            "resource(\"linux.file::file\", \"/x\", mdoe = \"0644\")\n",
        )],
    );
    let run = froyo(dir.path(), &["policy", "input", "bad.star"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.contains("E-SCHEMA"), "{}", run.stderr);
}

/// A temporary project with `froyo.toml` and the given files.
fn project(toml: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("froyo.toml"), toml).unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

const NO_MOTD: &str = r#"package froyo

# The message of the day is managed by another team.
deny contains {"rule": "no_motd", "id": r.id, "msg": "/etc/motd is managed by the platform team"} if {
	some r in input.resources
	r.type == "linux.file::file"
	r.config.path == "/etc/motd"
}
"#;

const NO_MOTD_TEST: &str = r#"package froyo.no_motd_test

test_motd_denied if {
	some m in data.froyo.deny with input as {"resources": [{"id": "x", "type": "linux.file::file", "config": {"path": "/etc/motd"}}]}
	m.rule == "no_motd"
}

test_issue_passes if {
	count({m | some m in data.froyo.deny; m.rule == "no_motd"}) == 0 with input as {"resources": [{"id": "y", "type": "linux.file::file", "config": {"path": "/etc/issue"}}]}
}
"#;

const SITE: &str = r#"load("@stdlib//linux.star", "file")

file("/etc/motd", content = "hi\n", mode = "0644")
file("/etc/issue", content = "welcome\n", mode = "0666")
"#;

/// `(rule, line)` of each E-POLICY, sorted.
fn denials(json: &Value) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = with_code(json, "E-POLICY")
        .iter()
        .map(|d| {
            let msg = d["message"].as_str().unwrap();
            let rule = msg
                .strip_prefix('[')
                .and_then(|m| m.split_once(']'))
                .map(|(r, _)| r.to_owned())
                .unwrap_or_else(|| panic!("no [rule] in {msg:?}"));
            (rule, d["location"]["line"].as_u64().unwrap())
        })
        .collect();
    out.sort();
    out
}

/// A project's `policies/*.rego` are enforced along with the bundled rules, and its
/// tests run with `froyo policy test`.
#[test]
fn project_policy_is_enforced_with_the_bundled_ones() {
    let dir = project(
        "[project]\nname = \"policy-test\"\n",
        &[
            ("site.star", SITE),
            ("policies/no_motd.rego", NO_MOTD),
            ("policies/no_motd_test.rego", NO_MOTD_TEST),
        ],
    );
    let (code, json) = check_json(dir.path(), "site.star");
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(
        denials(&json),
        [("no_motd".into(), 3), ("world_writable".into(), 4)],
        "{json:#}"
    );

    let run = froyo(dir.path(), &["policy", "test"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("PASS: 2/2"), "{}", run.stdout);
}

/// `[policy] disable` drops a rule's messages; the other rules still apply.
#[test]
fn disabled_rule_is_silenced() {
    let files = [("site.star", SITE), ("policies/no_motd.rego", NO_MOTD)];
    let dir = project(
        "[project]\nname = \"policy-test\"\n\n[policy]\ndisable = [\"world_writable\"]\n",
        &files,
    );
    let (code, json) = check_json(dir.path(), "site.star");
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(denials(&json), [("no_motd".into(), 3)], "{json:#}");

    let dir = project(
        "[project]\nname = \"policy-test\"\n\n[policy]\ndisable = [\"world_writable\", \"no_motd\"]\n",
        &files,
    );
    let (code, json) = check_json(dir.path(), "site.star");
    assert_eq!(code, 0, "{json:#}");
    assert!(denials(&json).is_empty(), "{json:#}");
    assert!(
        !json.to_string().contains("world_writable"),
        "disabled rule still reported: {json:#}"
    );
}

/// `[policy.config.<rule>]` reaches the rule as `data.froyo.config.<rule>`, and a rule
/// keeps its other defaults.
#[test]
fn rule_config_comes_from_froyo_toml() {
    let fixture =
        std::fs::read_to_string(dir_of("").join("firewall_open_world_deny.star")).expect("fixture");
    let files = [("site.star", fixture.as_str())];

    let dir = project(
        "[project]\nname = \"policy-test\"\n\n[policy.config.firewall_open_world]\nallowed_ports = [22, 443]\n",
        &files,
    );
    let (code, json) = check_json(dir.path(), "site.star");
    assert_eq!(code, 0, "{json:#}");
    assert!(denials(&json).is_empty(), "{json:#}");

    // Configuring one rule does not change another's defaults.
    let dir = project(
        "[project]\nname = \"policy-test\"\n\n[policy.config.world_writable]\nallowed_paths = [\"/srv/x\"]\n",
        &files,
    );
    let (code, json) = check_json(dir.path(), "site.star");
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(denials(&json), [("firewall_open_world".into(), 4)]);
}

/// `[policy] bundled = false`: only the project's policies.
#[test]
fn bundled_rules_can_be_turned_off() {
    let dir = project(
        "[project]\nname = \"policy-test\"\n\n[policy]\nbundled = false\n",
        &[("site.star", SITE), ("policies/no_motd.rego", NO_MOTD)],
    );
    let (code, json) = check_json(dir.path(), "site.star");
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(denials(&json), [("no_motd".into(), 3)], "{json:#}");
}

/// The human rendering of a denial: code, rule name, the `.star` line, the hint that
/// says how to turn the rule off.
#[test]
fn denial_renders_at_the_star_line_with_the_rule_name() {
    let run = froyo(&dir_of(""), &["check", "world_writable_deny.star"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    insta::assert_snapshot!("policy_world_writable_check", run.stderr);
}

/// `plan` reports a denial against a live target (local), exits 1 and saves no plan
/// file (`apply --plan` does not evaluate policies again); `apply` refuses and changes
/// nothing.
#[test]
fn plan_and_apply_refuse_a_denied_playbook() {
    let dir = project("[project]\nname = \"policy-gate\"\n", &[]);
    let target = dir.path().join("out");
    let site = format!(
        "load(\"@stdlib//linux.star\", \"file\")\n\nfile(\"{0}/ok.txt\", content = \"ok\\n\", mode = \"0644\")\nfile(\"{0}/open.txt\", content = \"x\\n\", mode = \"0666\")\n",
        target.display()
    );
    std::fs::write(dir.path().join("site.star"), site).unwrap();

    let plan = froyo(dir.path(), &["plan", "site.star", "--out", "plan.json"]);
    assert_eq!(plan.code, 1, "{}\n{}", plan.stdout, plan.stderr);
    assert!(plan.stderr.contains("E-POLICY"), "{}", plan.stderr);
    assert!(plan.stderr.contains("[world_writable]"), "{}", plan.stderr);
    assert!(plan.stderr.contains("site.star:4"), "{}", plan.stderr);
    assert!(plan.stderr.contains("plan not saved"), "{}", plan.stderr);
    assert!(!dir.path().join("plan.json").exists());

    let apply = froyo(dir.path(), &["apply", "site.star", "--yes"]);
    assert_ne!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert!(
        apply.stderr.contains("[world_writable]"),
        "{}",
        apply.stderr
    );
    assert!(
        !target.exists(),
        "apply changed the target despite the denial"
    );
}
