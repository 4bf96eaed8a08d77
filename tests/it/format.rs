//! Python-style formatting end to end: a playbook naming resources with `%`,
//! `str.format`, `fmt()` and the padding methods, through `froyo check` and
//! `froyo graph`; and unsupported specs as diagnostics (snapshots) whose hint shows the
//! supported form. The table against CPython is a unit test (`eval/format.rs`).

use crate::{check_json, fixtures, froyo};

#[test]
fn zero_padded_names_through_check_and_graph() {
    let dir = fixtures().join("format");
    let run = froyo(&dir, &["check", "names.star"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let run = froyo(&dir, &["graph", "names.star"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let graph: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let nodes: Vec<(&str, &str)> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap(),
                n["config"]["content"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        nodes,
        [
            ("/srv/fmt/web-01.conf", "web   |   1|0.25"),
            ("/srv/fmt/web-02.conf", "web   |   2|0.50"),
            ("/srv/fmt/web-03.conf", "web   |   3|0.75"),
            ("/srv/fmt/file007.txt", "db      : 5432\n"),
            ("/srv/fmt/009.txt", "**ab**  xy  |"),
        ]
    );
}

/// `(fixture, line, a word of the hint)`.
const UNSUPPORTED: &[(&str, u64, &str)] = &[
    (
        "bad_percent.star",
        4,
        "`%[(name)][flags][width][.precision]type`",
    ),
    (
        "bad_format.star",
        4,
        "an `int` takes type `d` `b` `o` `x` `X` `c` `n`",
    ),
    (
        "bad_spec.star",
        5,
        "`[[fill]align][sign][#][0][width][,|_][.precision][type]`",
    ),
    ("bad_fmt.star", 5, "put specs on the other arguments"),
];

#[test]
fn unsupported_specs_are_e_arg_with_the_supported_form() {
    let dir = fixtures().join("format");
    for (file, line, hint) in UNSUPPORTED {
        let run = froyo(&dir, &["check", file]);
        assert_eq!(run.code, 1, "{file}\n{}", run.stderr);
        insta::assert_snapshot!(file.replace('.', "_"), run.stderr);

        let (_, json) = check_json(&dir, file);
        let d = &json["diagnostics"][0];
        assert_eq!(d["code"], "E-ARG", "{file}: {json:#}");
        assert_eq!(d["location"]["file"], *file, "{file}");
        assert_eq!(d["location"]["line"], *line, "{file}");
        assert!(
            d["help"].as_str().is_some_and(|h| h.contains(hint)),
            "{file}: hint {:?}",
            d["help"]
        );
    }
}
