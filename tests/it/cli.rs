//! CLI behaviour: exit codes, `--json`, `froyo doc`.

use crate::{froyo, repo};

#[test]
fn doc_lists_types_and_shows_fields_from_the_schema() {
    let run = froyo(&repo(), &["doc"]);
    assert_eq!(run.code, 0);
    for t in [
        "linux.file::file",
        "linux.pkg::package",
        "linux.net::download",
        "probe.tcp::check",
    ] {
        assert!(run.stdout.contains(t), "{t} missing:\n{}", run.stdout);
    }
    let run = froyo(&repo(), &["doc", "linux.file::file"]);
    assert_eq!(run.code, 0);
    insta::assert_snapshot!("doc_linux_file_file", run.stdout);
    let run = froyo(&repo(), &["doc", "--json", "linux.service::service"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let state = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "state")
        .unwrap();
    assert_eq!(state["default"], "\"running\"");
    assert!(!state["doc"].as_str().unwrap().is_empty());
}

#[test]
fn doc_of_a_builtin_and_of_a_typo() {
    let run = froyo(&repo(), &["doc", "require"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("def require"), "{}", run.stdout);
    let run = froyo(&repo(), &["doc", "linux.file::fil"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("did you mean") && run.stderr.contains("`linux.file::file`"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_of_a_missing_file_is_a_clear_error() {
    let run = froyo(&repo(), &["check", "does/not/exist.star"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("E-PATH") && run.stderr.contains("does/not/exist.star"),
        "{}",
        run.stderr
    );
}

#[test]
fn graph_draws_svg_and_png_through_graphviz() {
    // Graphviz comes from Debian (tests/run.sh installs it); a missing `dot` is a failure.
    let run = froyo(
        &repo(),
        &["graph", "--format", "svg", "examples/hello.star"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("<svg"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(">linux.file::file[/tmp/froyo&#45;hello/hello.txt]</text>"),
        "{}",
        run.stdout
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_froyo"))
        .args(["graph", "--format", "png", "examples/hello.star"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
}

#[test]
fn graph_without_graphviz_names_the_package() {
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_froyo"))
        .args(["graph", "--format", "svg", "examples/hello.star"])
        .current_dir(repo())
        .env("PATH", empty.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    for part in ["E-GRAPHVIZ", "`dot`", "graphviz", "--format dot"] {
        assert!(stderr.contains(part), "{part} missing:\n{stderr}");
    }
}
