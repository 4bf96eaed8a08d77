//! `.cue` inputs end to end (the real `froyo` binary, real CUE): the README's quick start
//! verbatim (installing a local `.deb` with the real apt), golden diagnostics at
//! `file.cue:line`, one graph from the `.star` and `.cue` webservers, a directory package
//! importing a schema package, `cue_values()`, and the original design's command names.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::{check_json, fixtures, froyo};

fn cue_fixtures() -> PathBuf {
    fixtures().join("cue")
}

/// The package the quick start installs. Nothing named so is installed on the test
/// machines; the test's own `.deb` has a version above any distribution's, so apt takes it
/// from the test's `file:` repository and never from the network.
const NGINX: &str = "nginx";
const VERSION: &str = "99.0+froyo1";
const REPO: &str = "/var/tmp/froyo-it-cue-repo";
const LIST: &str = "/etc/apt/sources.list.d/froyo-it-cue.list";

fn sh(argv: &[&str], cwd: &Path) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .current_dir(cwd)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed(name: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev} ${Version}", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .strip_prefix("ii  ")
        .map(str::to_owned)
}

/// Removes the test package (only the test's own version), its repository and apt's copy
/// of the repository's index. Errors are ignored: any of it may be gone already.
fn cleanup() {
    if installed(NGINX).as_deref() == Some(VERSION) {
        let _ = Command::new("dpkg").args(["--purge", NGINX]).output();
    }
    let _ = std::fs::remove_file(LIST);
    let _ = std::fs::remove_dir_all(REPO);
    if let Ok(entries) = std::fs::read_dir("/var/lib/apt/lists") {
        for e in entries.flatten() {
            if e.file_name()
                .to_string_lossy()
                .contains("froyo-it-cue-repo")
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        cleanup();
    }
}

/// A `nginx` package of our own (it ships only `/usr/share/doc/nginx-froyo-it`), in a
/// `file:` repository that apt knows after an update of that repository alone.
fn publish_nginx() {
    std::fs::create_dir_all(REPO).unwrap();
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {NGINX}\nVersion: {VERSION}\nArchitecture: all\nMaintainer: froyo tests <it@froyo.invalid>\n\
             Section: misc\nPriority: optional\nDescription: froyo quick-start test package\n"
        ),
    )
    .unwrap();
    let doc = root.join("usr/share/doc/nginx-froyo-it");
    std::fs::create_dir_all(&doc).unwrap();
    std::fs::write(doc.join("README"), "froyo quick start\n").unwrap();
    sh(
        &[
            "dpkg-deb",
            "--root-owner-group",
            "--build",
            &root.display().to_string(),
            &format!("{REPO}/{NGINX}_{VERSION}_all.deb"),
        ],
        Path::new("/"),
    );
    let packages = sh(&["dpkg-scanpackages", ".", "/dev/null"], Path::new(REPO));
    std::fs::write(Path::new(REPO).join("Packages"), packages).unwrap();
    std::fs::write(LIST, format!("deb [trusted=yes] file:{REPO} ./\n")).unwrap();
    sh(
        &[
            "apt-get",
            "update",
            "-q",
            "-o",
            &format!("Dir::Etc::sourcelist={LIST}"),
            "-o",
            "Dir::Etc::sourceparts=-",
            "-o",
            "APT::Get::List-Cleanup=0",
        ],
        Path::new("/"),
    );
}

/// The README's quick start, verbatim, on a fresh project whose inventory labels `local`
/// as `env=prod, role=web`: the package is really installed by apt, and planning again
/// shows nothing to do. Runs as root (apt), holding the dpkg lock of the package tests.
#[test]
fn the_quick_start_runs_verbatim() {
    let _dpkg = crate::prov_pkg::DPKG
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    assert!(
        installed(NGINX).is_none_or(|v| v == VERSION),
        "a real nginx is installed here; this test would change it"
    );
    cleanup();
    let _guard = Guard;
    publish_nginx();

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::copy(
        cue_fixtures().join("quickstart/webserver.cue"),
        dir.join("webserver.cue"),
    )
    .unwrap();
    let init = froyo(dir, &["init", "--solo"]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    std::fs::write(
        dir.join("inventory.toml"),
        "[[targets]]\nname = \"local\"\nlabels = { env = \"prod\", role = \"web\" }\n",
    )
    .unwrap();

    let validate = froyo(dir, &["validate", "webserver.cue"]);
    assert_eq!(validate.code, 0, "{}", validate.stderr);
    assert!(
        validate
            .stderr
            .contains("✓ webserver.cue: 1 resource on 1 host"),
        "{}",
        validate.stderr
    );

    let plan = froyo(dir, &["plan", "--out", "plan.json", "webserver.cue"]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("linux.pkg::package[nginx]"),
        "{}",
        plan.stdout
    );
    assert!(dir.join("plan.json").is_file());

    // No `--yes` and no terminal: a saved plan is applied without asking.
    let apply = froyo(dir, &["apply", "--plan", "plan.json"]);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert_eq!(installed(NGINX).as_deref(), Some(VERSION));

    let again = froyo(dir, &["plan", "webserver.cue"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("= 1 unchanged"), "{}", again.stdout);

    // The original design's names for `drift` and `facts`.
    let drift = froyo(dir, &["drift", "detect"]);
    assert_eq!(drift.code, 0, "{}\n{}", drift.stdout, drift.stderr);
    let facts = froyo(
        dir,
        &[
            "facts",
            "collect",
            "--selector",
            "role=web",
            "--json",
            "os.basic",
        ],
    );
    assert_eq!(facts.code, 0, "{}", facts.stderr);
    let v: Value = serde_json::from_str(&facts.stdout).unwrap();
    assert!(v["local"]["os.basic"].is_object(), "{v:#}");
}

/// `(fixture, code, line)`: one golden rendering per code, at the `.cue` line.
const CASES: &[(&str, &str, u64)] = &[
    ("e_schema.cue", "E-SCHEMA", 6),
    ("e_schema_import.cue", "E-SCHEMA", 8),
    ("e_unknown_type.cue", "E-UNKNOWN-TYPE", 3),
    ("e_cycle.cue", "E-CYCLE", 2),
    ("e_dup_id.cue", "E-DUP-ID", 7),
    ("e_provider_version.cue", "E-PROVIDER-VERSION", 5),
    ("e_cue.cue", "E-CUE", 5),
];

#[test]
fn cue_diagnostics_point_at_the_cue_line() {
    let dir = cue_fixtures().join("diagnostics");
    for (file, code, line) in CASES {
        let run = froyo(&dir, &["validate", file]);
        assert_eq!(run.code, 1, "{file}: exit code\n{}", run.stderr);
        let name = format!("cue_{}", file.replace('.', "_"));
        insta::assert_snapshot!(name, run.stderr);
        let (_, json) = check_json(&dir, file);
        let d = json["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["code"] == *code)
            .unwrap_or_else(|| panic!("{file}: no {code} in {json:#}"));
        assert_eq!(d["location"]["file"], *file, "{file}: {d:#}");
        assert_eq!(d["location"]["line"], *line, "{file}: {d:#}");
        assert!(d["help"].as_str().is_some_and(|h| !h.is_empty()), "{file}");
    }
}

fn graph(dir: &Path, input: &str) -> Value {
    let run = froyo(dir, &["graph", "--format", "json", input]);
    assert_eq!(run.code, 0, "{input}: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

/// The graph without source locations, which differ between the two files by nature.
fn without_locations(mut g: Value) -> Value {
    for list in ["nodes", "edges"] {
        for item in g[list].as_array_mut().unwrap() {
            item.as_object_mut().unwrap().remove("location");
        }
    }
    g
}

#[test]
fn the_star_and_cue_webservers_give_one_graph() {
    let dir = cue_fixtures().join("webserver");
    let star = graph(&dir, "webserver.star");
    let cue = graph(&dir, "webserver.cue");
    assert_eq!(star["nodes"].as_array().unwrap().len(), 4, "{star:#}");
    assert_eq!(star["edges"].as_array().unwrap().len(), 4, "{star:#}");
    assert_eq!(without_locations(cue.clone()), without_locations(star));
    // Locations point into the `.cue` file: the entry of each resource.
    let site = cue["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "/etc/nginx/conf.d/site.conf")
        .unwrap();
    assert_eq!(site["location"], "webserver.cue:13");
}

#[test]
fn a_directory_is_one_package_and_imports_schemas() {
    let dir = cue_fixtures().join("package");
    let (code, json) = check_json(&dir, ".");
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["resources"], 2, "{json:#}");
    let g = graph(&dir, ".");
    let nodes = g["nodes"].as_array().unwrap();
    // The schema's defaults came through the import, `strings` through CUE's builtins,
    // `#Conf` from the package's other file.
    assert_eq!(nodes[0]["id"], "linux.pkg::package[nginx]", "{g:#}");
    assert_eq!(nodes[0]["config"]["manager"], "auto");
    assert_eq!(nodes[1]["config"]["owner"], "root");
    assert_eq!(nodes[1]["config"]["mode"], "0644");
    assert_eq!(nodes[1]["location"], "web.cue:13");
    assert_eq!(g["edges"][0]["kind"], "explicit");

    // What CUE-aware tools need to agree: the same schemas as a CUE module.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().display().to_string();
    let run = froyo(&dir, &["doc", "--cue-module", &out]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let schema = std::fs::read_to_string(
        tmp.path()
            .join("cue.mod/pkg/froyo.dev/linux/pkg/schema.cue"),
    )
    .unwrap();
    assert!(schema.contains("package pkg\n") && schema.contains("#Package: {"));
    assert!(tmp.path().join("cue.mod/module.cue").is_file());
}

#[test]
fn several_cue_files_are_one_package() {
    let dir = cue_fixtures().join("package");
    // The package's files named one by one are the directory.
    assert_eq!(graph(&dir, "."), {
        let run = froyo(&dir, &["graph", "--format", "json", "main.cue", "web.cue"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        serde_json::from_str::<Value>(&run.stdout).unwrap()
    });
    let run = froyo(&dir, &["check", "main.cue", "web.cue", "main.cue"]);
    assert_eq!(
        run.code, 0,
        "a file named twice counts once: {}",
        run.stderr
    );
    // Alone, `web.cue` lacks the `#Conf` the other file defines: CUE says so.
    let run = froyo(&dir, &["check", "web.cue"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("E-CUE"), "{}", run.stderr);

    // More files only for `.cue` inputs, and never beside a directory.
    let web = cue_fixtures().join("webserver");
    let run = froyo(&web, &["check", "webserver.star", "webserver.cue"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("E-ARG") && run.stderr.contains("only `.cue` inputs take more files"),
        "{}",
        run.stderr
    );
    let run = froyo(&dir, &["plan", ".", "main.cue"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("E-ARG") && run.stderr.contains("it takes no more files"),
        "{}",
        run.stderr
    );
    let run = froyo(&dir, &["check", "main.cue", "../webserver/webserver.star"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("is not a `.cue` file"),
        "{}",
        run.stderr
    );
}

/// The real `cue` command (the Go implementation froyo links, same version), installed
/// by `tests/run.sh` in `$FROYO_CUE` (default `/var/tmp/froyo-cue`); missing is a failure.
fn cue_bin() -> PathBuf {
    let dir = std::env::var_os("FROYO_CUE")
        .map_or_else(|| PathBuf::from("/var/tmp/froyo-cue"), PathBuf::from);
    let bin = dir.join("cue");
    assert!(
        bin.is_file(),
        "cue is needed at {} (tests/run.sh installs it: GOBIN=DIR go install cuelang.org/go/cmd/cue@v0.15.3)",
        bin.display()
    );
    bin
}

#[test]
fn cue_vet_agrees_with_froyo() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for f in ["main.cue", "web.cue"] {
        std::fs::copy(cue_fixtures().join("package").join(f), dir.join(f)).unwrap();
    }
    let run = froyo(dir, &["doc", "--cue-module", "."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let cue = |args: &[&str]| {
        let out = Command::new(cue_bin())
            .args(args)
            .current_dir(dir)
            .env("CUE_REGISTRY", "none")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Both accept the package, and the schema's default reaches both alike.
    let (ok, _, err) = cue(&["vet", "."]);
    assert!(ok, "cue vet: {err}");
    assert_eq!(check_json(dir, ".").0, 0);
    let (ok, manager, err) = cue(&["export", "-e", "resources.nginx.config.manager", "."]);
    assert!(ok, "cue export: {err}");
    let g = graph(dir, ".");
    assert_eq!(
        manager.trim(),
        g["nodes"][0]["config"]["manager"].to_string(),
        "{g:#}"
    );

    // A value the schema forbids: both refuse it, froyo at the line.
    let web = std::fs::read_to_string(dir.join("web.cue")).unwrap();
    let bad = web.replace(
        r#"{name: strings.ToLower("NGINX")}"#,
        r#"{name: strings.ToLower("NGINX"), state: "presnt"}"#,
    );
    assert_ne!(bad, web);
    std::fs::write(dir.join("web.cue"), bad).unwrap();
    let (ok, _, err) = cue(&["vet", "."]);
    assert!(!ok, "cue vet accepted state: \"presnt\"");
    assert!(err.contains("state"), "{err}");
    let run = froyo(dir, &["check", "."]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("web.cue:11"), "{}", run.stderr);
}

#[test]
fn cue_values_gives_starlark_typed_data() {
    let dir = cue_fixtures().join("values");
    let g = graph(&dir, "site.star");
    let ids: Vec<&str> = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "linux.file::file[/etc/motd]",
            "linux.user::user[alice]",
            "linux.user::user[bob]"
        ]
    );
    assert_eq!(g["nodes"][0]["config"]["content"], "hello from CUE\n");
    assert_eq!(g["nodes"][2]["config"]["uid"], 1002);

    // A CUE error is reported at its `.cue` line, the call as a note.
    let (code, json) = check_json(&dir, "bad.star");
    assert_eq!(code, 1);
    let d = &json["diagnostics"][0];
    assert_eq!(d["code"], "E-CUE", "{json:#}");
    assert_eq!(d["location"]["file"], "bad.cue", "{json:#}");
    assert_eq!(d["location"]["line"], 6, "{json:#}");

    // Confined to the project root, like template().
    let (code, json) = check_json(&dir, "outside.star");
    assert_eq!(code, 1);
    assert_eq!(json["diagnostics"][0]["code"], "E-PATH", "{json:#}");
}

#[test]
fn the_original_command_names_are_aliases() {
    let help = froyo(Path::new("."), &["--help"]);
    assert!(
        help.stdout.contains("check") && help.stdout.contains("[alias: validate]"),
        "{}",
        help.stdout
    );
    let facts = froyo(Path::new("."), &["facts", "--help"]);
    assert!(facts.stdout.contains("collect"), "{}", facts.stdout);
    assert!(
        facts.stdout.contains("[alias: --selector]"),
        "{}",
        facts.stdout
    );
    let drift = froyo(Path::new("."), &["drift", "--help"]);
    assert!(drift.stdout.contains("detect"), "{}", drift.stdout);
    // `linux.pkg::package` documents the original design's `package` field.
    let doc = froyo(Path::new("."), &["doc", "linux.pkg::package"]);
    assert!(doc.stdout.contains("package"), "{}", doc.stdout);
    assert!(
        doc.stdout.contains("Another name for name"),
        "{}",
        doc.stdout
    );
}

/// The language server's checker takes a `.cue` buffer as it does a `.star` one.
#[test]
fn the_language_server_checks_an_unsaved_cue_buffer() {
    use froyo_lsp::Analyzer;
    let path = cue_fixtures().join("quickstart/webserver.cue");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"present\"", "\"presnt\"");
    let findings = froyo::lsp_bridge::Bridge.check(&path, &text);
    let f = findings
        .iter()
        .find(|f| f.code == "E-SCHEMA")
        .unwrap_or_else(|| panic!("{findings:#?}"));
    let spot = f.primary.as_ref().unwrap();
    assert_eq!(spot.span.resolve_span().begin.line + 1, 13, "{findings:#?}");
    // Half-typed buffers give diagnostics, never a panic or a hang.
    for (i, _) in text.char_indices().step_by(5) {
        let findings = froyo::lsp_bridge::Bridge.check(&path, &text[..i]);
        assert!(
            findings.iter().all(|f| !f.code.is_empty()),
            "{i}: {findings:#?}"
        );
    }
}

/// The example in `examples/` checks, and CUE's own failures are diagnostics at their
/// line: an unknown schema package (with a suggestion) and a syntax error.
#[test]
fn the_example_checks_and_cue_failures_are_located() {
    let (code, json) = check_json(&crate::repo(), "examples/webserver.cue");
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["resources"], 4, "{json:#}");

    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("import.cue"),
        "import \"froyo.dev/linux/pkgg\"\n\nresources: {}\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("syntax.cue"),
        "resources: {\n\tnginx: {type: \"linux.pkg::package\"\n",
    )
    .unwrap();
    let (code, json) = check_json(tmp.path(), "import.cue");
    assert_eq!(code, 1);
    let d = &json["diagnostics"][0];
    assert_eq!(d["code"], "E-CUE", "{json:#}");
    assert_eq!(d["location"]["line"], 1, "{json:#}");
    assert!(
        d["help"].as_str().unwrap().contains("froyo.dev/linux/pkg`"),
        "{json:#}"
    );
    let (code, json) = check_json(tmp.path(), "syntax.cue");
    assert_eq!(code, 1);
    assert_eq!(json["diagnostics"][0]["code"], "E-PARSE", "{json:#}");
    assert_eq!(json["diagnostics"][0]["location"]["file"], "syntax.cue");
}
