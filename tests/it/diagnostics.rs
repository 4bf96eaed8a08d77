//! Golden tests: one small fixture per diagnostic code; the rendered diagnostic is a
//! snapshot, and the JSON form is checked for the code, the `file:line` and the hint.

use crate::{check_json, fixtures, froyo};

/// `(fixture, code, file of the primary location, line)`.
const CASES: &[(&str, &str, &str, u64)] = &[
    ("e_parse.star", "E-PARSE", "e_parse.star", 4),
    (
        "e_unknown_type.star",
        "E-UNKNOWN-TYPE",
        "e_unknown_type.star",
        1,
    ),
    ("e_schema.star", "E-SCHEMA", "e_schema.star", 3),
    ("e_dup_id.star", "E-DUP-ID", "e_dup_id.star", 4),
    ("e_cycle.star", "E-CYCLE", "e_cycle.star", 3),
    (
        "e_not_handler.star",
        "E-NOT-HANDLER",
        "e_not_handler.star",
        5,
    ),
    ("e_deferred.star", "E-DEFERRED", "e_deferred.star", 4),
    ("e_deferred_if.star", "E-DEFERRED", "e_deferred_if.star", 4),
    ("e_secret_str.star", "E-SECRET-STR", "e_secret_str.star", 4),
    (
        "e_fact_unknown.star",
        "E-FACT-UNKNOWN",
        "e_fact_unknown.star",
        4,
    ),
    (
        "e_fact_unavailable.star",
        "E-FACT-UNAVAILABLE",
        "e_fact_unavailable.star",
        4,
    ),
    ("e_load_missing.star", "E-LOAD", "e_load_missing.star", 2),
    ("e_load_cycle.star", "E-LOAD", "cycle_b.star", 1),
    ("e_path.star", "E-PATH", "e_path.star", 3),
    ("e_template.star", "E-TEMPLATE", "e_template.star", 3),
    ("e_eval.star", "E-EVAL", "e_eval.star", 5),
    ("e_arg.star", "E-ARG", "e_arg.star", 3),
    ("e_selector.star", "E-SELECTOR", "e_selector.star", 1),
    ("w_lint.star", "W-LINT", "w_lint.star", 3),
    (
        "w_unguarded_cmd.star",
        "W-UNGUARDED-CMD",
        "w_unguarded_cmd.star",
        3,
    ),
    ("no_hosts/site.star", "W-NO-HOSTS", "no_hosts/site.star", 6),
    ("e_import.star", "E-IMPORT", "e_import.star", 3),
    ("w_import.star", "W-IMPORT", "w_import.star", 3),
    (
        "bad_inventory/site.star",
        "E-INVENTORY",
        "bad_inventory/inventory.toml",
        3,
    ),
];

#[test]
fn every_code_has_a_golden_rendering() {
    let dir = fixtures().join("diagnostics");
    for (file, code, loc_file, line) in CASES {
        let run = froyo(&dir, &["check", file]);
        let warning_only = code.starts_with("W-");
        assert_eq!(
            run.code,
            if warning_only { 0 } else { 1 },
            "{file}: exit code\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(code),
            "{file}: {code} missing from\n{}",
            run.stderr
        );
        let name = file.replace(['/', '.'], "_");
        insta::assert_snapshot!(name, run.stderr);

        let (_, json) = check_json(&dir, file);
        let diags = json["diagnostics"].as_array().expect("diagnostics");
        let d = diags
            .iter()
            .find(|d| d["code"] == *code)
            .unwrap_or_else(|| panic!("{file}: no {code} in {json:#}"));
        assert_eq!(d["location"]["file"], *loc_file, "{file}: location file");
        assert_eq!(d["location"]["line"], *line, "{file}: location line");
        assert!(
            d["help"].as_str().is_some_and(|h| !h.is_empty()),
            "{file}: hint missing"
        );
        assert_eq!(json["ok"], warning_only, "{file}: ok flag");
    }
}

/// Several findings in one run, not just the first.
#[test]
fn all_schema_errors_are_reported_in_one_run() {
    let (code, json) = check_json(&fixtures().join("diagnostics"), "e_schema.star");
    assert_eq!(code, 1);
    let lines: Vec<(String, u64)> = json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_owned(),
                d["location"]["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("E-SCHEMA".into(), 3),
            ("E-SCHEMA".into(), 4),
            ("E-SCHEMA".into(), 5),
            ("E-SCHEMA".into(), 6),
            // Two bad fields of one resource: both reported.
            ("E-SCHEMA".into(), 7),
            ("E-SCHEMA".into(), 7),
        ]
    );
    let msgs: Vec<&str> = json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert!(
        msgs[0].contains("`mode`") && msgs[0].contains("\"999\""),
        "{msgs:?}"
    );
    assert!(msgs[1].contains("no field `onwer`"), "{msgs:?}");
    let hint = json["diagnostics"][1]["help"].as_str().unwrap();
    assert!(hint.contains("did you mean `owner`"), "{hint}");
    assert!(msgs[2].contains("\"sleeping\""), "{msgs:?}");
}

/// The label sits on the user's call, not inside the stdlib wrapper.
#[test]
fn schema_error_through_a_wrapper_points_at_the_user_line() {
    let (_, json) = check_json(&fixtures().join("diagnostics"), "e_schema.star");
    for d in json["diagnostics"].as_array().unwrap() {
        assert_eq!(d["location"]["file"], "e_schema.star");
        for n in d["notes"].as_array().unwrap() {
            assert!(
                !n["file"].as_str().unwrap().starts_with("@stdlib//"),
                "stdlib frame in notes: {d:#}"
            );
        }
    }
}
