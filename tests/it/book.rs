//! The book (`docs/book`) cannot drift from the product: every Starlark, CUE and TOML
//! block in it is run through the real `froyo check`, the generated reference pages must
//! equal what `froyo doc --markdown` writes now, every relative link and anchor resolves,
//! every diagnostic code has its section, the pictures are drawings of what they claim,
//! and `mdbook build` (the pinned mdbook that tests/run.sh installs) builds it without a
//! warning.
//!
//! A code block's info string is `LANG[,ATTR…][ REASON]`, with these attributes:
//! - `file=PATH`: the block is written to PATH in the page's scratch project (any
//!   language: templates, policies and inventories are fixtures for later blocks);
//! - `fixture=DIR`: copy `tests/fixtures/book/DIR/` into the scratch project first;
//! - `expect=CODE`: `froyo check` must report CODE (and, for an `E-` code, fail);
//! - `project=NAME`: the block goes to the page's scratch project NAME instead of the
//!   page's default one (a broken `inventory.toml` must not break the next block);
//! - `data`: with `file=`, written but not checked on its own (a later block reads it,
//!   as `cue_values()` reads a `.cue` file);
//! - `ignore`: not checked; REASON (after a space) must say why;
//! - `clean=PATH`, on a `console` block: PATH (outside the project: `/tmp/froyo-hello`)
//!   is removed before the page's first block, and the page holds it from other tests
//!   until its last.
//!
//! A `console` block is a shell session, replayed command by command in the scratch
//! project and compared with what the book shows (`book_console.rs`).
//!
//! The generated reference pages are not scanned: their blocks are signatures, and their
//! examples come from the built-ins' doc comments, which `froyo doc` tests cover.
//!
//! `star` and `python` blocks are playbooks, `cue` blocks CUE inputs, `toml` blocks must
//! be `file=inventory.toml` or `file=froyo.toml` (checked by loading the project) or
//! `ignore`. Blocks of a page share one scratch project, in page order.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{froyo, repo};

fn src() -> PathBuf {
    repo().join("docs/book/src")
}

/// Every `.md` file under the book's `src/`.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&src(), &mut out);
    out.sort();
    out
}

fn rel(p: &Path) -> String {
    p.strip_prefix(repo()).unwrap_or(p).display().to_string()
}

/// A page's text with `{{#include PATH[:FROM[:TO]]}}` expanded as mdbook does (lines are
/// 1-based and inclusive; `PATH:3:` is from line 3 to the end).
fn expand(page: &Path) -> String {
    let text = std::fs::read_to_string(page).unwrap();
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("{{#include ") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("unclosed {{#include") + start;
        let spec = rest[start + "{{#include ".len()..end].trim();
        let mut parts = spec.split(':');
        let path = page.parent().unwrap().join(parts.next().unwrap());
        let included = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {{{{#include {spec}}}}}: {e}", rel(page)));
        let lines: Vec<&str> = included.lines().collect();
        let from = parts
            .next()
            .filter(|s| !s.is_empty())
            .map_or(1, |s| s.parse::<usize>().unwrap());
        let to = parts
            .next()
            .filter(|s| !s.is_empty())
            .map_or(lines.len(), |s| s.parse::<usize>().unwrap());
        out.push_str(&lines[from - 1..to].join("\n"));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

struct Block {
    lang: String,
    attrs: Vec<(String, String)>,
    reason: String,
    text: String,
    /// Line of the opening fence in the expanded page.
    line: usize,
}

impl Block {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The fenced code blocks of `md`.
fn blocks(md: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(String, Block)> = None;
    for (i, line) in md.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None if trimmed.starts_with("```") => {
                let fence = trimmed
                    .chars()
                    .take_while(|c| *c == '`')
                    .collect::<String>();
                let info = trimmed[fence.len()..].trim();
                let (head, reason) = info.split_once(' ').unwrap_or((info, ""));
                let mut parts = head.split(',');
                let lang = parts.next().unwrap_or("").to_owned();
                let attrs = parts
                    .map(|a| {
                        let (k, v) = a.split_once('=').unwrap_or((a, ""));
                        (k.to_owned(), v.to_owned())
                    })
                    .collect();
                open = Some((
                    fence,
                    Block {
                        lang,
                        attrs,
                        reason: reason.trim().to_owned(),
                        text: String::new(),
                        line: i + 1,
                    },
                ));
            }
            Some((fence, block)) => {
                if trimmed.starts_with(fence.as_str()) && trimmed.trim_matches('`').is_empty() {
                    out.push(open.take().unwrap().1);
                } else {
                    block.text.push_str(line);
                    block.text.push('\n');
                }
            }
            None => {}
        }
    }
    assert!(open.is_none(), "an unclosed code block");
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Runs one page's blocks; returns what went wrong, one line per block.
fn check_page(page: &Path) -> (usize, Vec<String>) {
    let md = expand(page);
    if md.starts_with("<!-- Generated by `froyo doc --markdown") {
        return (0, Vec::new());
    }
    let mut projects: std::collections::BTreeMap<String, tempfile::TempDir> =
        std::collections::BTreeMap::new();
    let (mut checked, mut failures) = (0, Vec::new());
    let blocks = blocks(&md);
    let _owned = blocks.iter().find_map(|b| b.attr("clean")).map(|owned| {
        assert_eq!(
            owned,
            "/tmp/froyo-hello",
            "{}: only the hello directory is shared",
            rel(page)
        );
        let guard = crate::hello_dir();
        let _ = std::fs::remove_dir_all(owned);
        guard
    });
    for (n, b) in blocks.iter().enumerate() {
        let dir = projects
            .entry(b.attr("project").unwrap_or("").to_owned())
            .or_insert_with(|| tempfile::tempdir().unwrap())
            .path()
            .to_path_buf();
        let dir = dir.as_path();
        let at = format!("{}:{} (```{})", rel(page), b.line, b.lang);
        let playbook = matches!(b.lang.as_str(), "star" | "python" | "cue");
        if b.attr("ignore").is_some() {
            if b.reason.is_empty() {
                failures.push(format!("{at}: `ignore` needs a reason after a space"));
            }
            continue;
        }
        if let Some(fixture) = b.attr("fixture") {
            copy_dir(&crate::fixtures().join("book").join(fixture), dir);
        }
        if b.lang == "console" {
            checked += 1;
            if let Err(e) = crate::book_console::replay(dir, &b.text) {
                failures.push(format!("{at}: {e}"));
            }
            continue;
        }
        let file = match (b.attr("file"), b.lang.as_str()) {
            (Some(f), _) => Some(f.to_owned()),
            (None, "star" | "python") => Some(format!("block{n}.star")),
            (None, "cue") => Some(format!("block{n}.cue")),
            _ => None,
        };
        if let Some(f) = &file {
            let path = dir.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &b.text).unwrap();
        }
        if b.attr("data").is_some() {
            continue;
        }
        let target = match b.lang.as_str() {
            _ if playbook => file.clone().unwrap(),
            "toml" => match b.attr("file") {
                Some("inventory.toml" | "froyo.toml") => {
                    std::fs::write(dir.join("empty.star"), "").unwrap();
                    "empty.star".to_owned()
                }
                _ => {
                    failures.push(format!(
                        "{at}: a TOML block needs `file=inventory.toml`, `file=froyo.toml` or `ignore REASON`"
                    ));
                    continue;
                }
            },
            _ => continue,
        };
        checked += 1;
        let run = froyo(dir, &["check", "--json", &target]);
        let report: serde_json::Value = match serde_json::from_str(&run.stdout) {
            Ok(v) => v,
            Err(_) => {
                // Errors before analysis (a bad froyo.toml) are not JSON reports.
                serde_json::json!({"diagnostics": [], "error": run.stderr})
            }
        };
        let codes: Vec<String> = report["diagnostics"]
            .as_array()
            .map(|ds| {
                ds.iter()
                    .filter_map(|d| d["code"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let shown = format!("exit {}, {codes:?}\n{}{}", run.code, run.stdout, run.stderr);
        match b.attr("expect") {
            Some(code) => {
                let fails = code.starts_with("E-");
                if !codes.iter().any(|c| c == code) || (fails && run.code != 1) {
                    failures.push(format!("{at}: expected {code}, got {shown}"));
                }
            }
            None => {
                if run.code != 0 || codes.iter().any(|c| c == "W-NO-HOSTS") {
                    failures.push(format!(
                        "{at}: `froyo check` must pass (and select a host; `fixture=` gives an inventory): {shown}"
                    ));
                }
            }
        }
    }
    (checked, failures)
}

#[test]
fn every_example_of_the_book_passes_froyo_check() {
    let (mut checked, mut failures) = (0, Vec::new());
    for page in pages() {
        let (n, f) = check_page(&page);
        checked += n;
        failures.extend(f);
    }
    assert!(
        failures.is_empty(),
        "{} of the book's blocks failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(checked >= 30, "only {checked} blocks were checked");
}

#[test]
fn a_block_that_does_what_the_book_does_not_say_fails_the_check() {
    // The checker itself: a wrong expectation and an unmarked fragment are both caught.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.md");
    std::fs::write(
        &page,
        "```star,expect=E-CYCLE\nload(\"@stdlib//linux.star\", \"file\")\nfile(\"/tmp/x\", content = \"\")\n```\n\n```star\nrequire(site, nginx)\n```\n\n```toml\n[x]\n```\n\n```star,ignore\nx\n```\n",
    )
    .unwrap();
    let (checked, failures) = check_page(&page);
    assert_eq!(checked, 2);
    assert_eq!(failures.len(), 4, "{failures:#?}");
    assert!(failures[0].contains("expected E-CYCLE"), "{}", failures[0]);
    assert!(failures[1].contains("must pass"), "{}", failures[1]);
    assert!(failures[2].contains("TOML block needs"), "{}", failures[2]);
    assert!(failures[3].contains("needs a reason"), "{}", failures[3]);
}

#[test]
fn a_session_that_prints_what_the_book_does_not_show_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.md");
    let ok = "```console\n$ printf 'hello\\nworld\\n'\nhello\nworld\n$ false\n[exit 1]\n```\n\n";
    let wrong_text = "```console\n$ echo hello\nhallo\n```\n\n";
    let wrong_exit = "```console\n$ froyo check missing.star\n…\n```\n";
    std::fs::write(&page, format!("{ok}{wrong_text}{wrong_exit}")).unwrap();
    let (checked, failures) = check_page(&page);
    assert_eq!(checked, 3);
    assert_eq!(failures.len(), 2, "{failures:#?}");
    assert!(
        failures[0].contains("`$ echo hello` exited 0"),
        "{}",
        failures[0]
    );
    assert!(
        failures[1].contains("exited 1 (the book says 0)"),
        "{}",
        failures[1]
    );
}

#[test]
fn the_reference_pages_are_generated_and_current() {
    let out = tempfile::tempdir().unwrap();
    let run = froyo(
        &repo(),
        &["doc", "--markdown", out.path().to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut stale = Vec::new();
    let mut names = Vec::new();
    for e in std::fs::read_dir(out.path()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let fresh = std::fs::read_to_string(&p).unwrap();
        let checked_in =
            std::fs::read_to_string(src().join("reference").join(&name)).unwrap_or_default();
        if fresh != checked_in {
            stale.push(name.clone());
        }
        names.push(name);
    }
    names.sort();
    assert_eq!(names, ["builtins.md", "cli.md", "stdlib.md", "types.md"]);
    assert!(
        stale.is_empty(),
        "the book's generated reference is stale ({}); regenerate it with\n\n    cargo run -- doc --markdown docs/book/src/reference\n",
        stale.join(", ")
    );
    // What the pages must hold, so a generator that wrote empty pages would not pass.
    let read = |n: &str| std::fs::read_to_string(out.path().join(n)).unwrap();
    let types = read("types.md");
    for t in [
        "## linux.file::file",
        "## linux.pkg::package",
        "## probe.tcp::check",
    ] {
        assert!(types.contains(t), "types.md misses {t}");
    }
    assert!(types.contains("| `mode` |"), "types.md has no field table");
    let builtins = read("builtins.md");
    for b in [
        "## resource",
        "## require",
        "## notify",
        "## play",
        "## secret",
    ] {
        assert!(builtins.contains(b), "builtins.md misses {b}");
    }
    let stdlib = read("stdlib.md");
    assert!(stdlib.contains("## `@stdlib//linux.star`") && stdlib.contains("### package"));
    assert!(
        !stdlib.contains("### \\_name"),
        "private helpers are not documented"
    );
    let cli = read("cli.md");
    for c in ["## `froyo`", "### `froyo plan`", "#### `froyo onboard ssh`"] {
        assert!(cli.contains(c), "cli.md misses {c}");
    }
    assert!(cli.contains("--detailed-exitcode"));
}

/// The anchor mdbook gives a heading: lowercase letters, digits, `-` and `_`, spaces as
/// `-`, the rest dropped (checked against mdbook's own output below).
fn anchor(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c.to_ascii_lowercase())
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// The anchors mdbook gives the headings of `md` (outside code blocks).
fn anchors(md: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && line.starts_with('#') {
            let text = line.trim_start_matches('#').trim().replace('`', "");
            out.insert(anchor(&text));
        }
    }
    out
}

/// `[text](target)` and `![alt](target)` links of `md`, outside code.
fn links(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop inline code spans, whose text is not a link.
        let mut plain = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                plain.push_str(part);
            }
        }
        let mut rest = plain.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_link_and_anchor_of_the_book_resolves() {
    let mut broken = Vec::new();
    let summary = std::fs::read_to_string(src().join("SUMMARY.md")).unwrap();
    for page in pages() {
        let md = expand(&page);
        let name = rel(&page);
        let here = page.strip_prefix(src()).unwrap().display().to_string();
        if here != "SUMMARY.md" && !summary.contains(&format!("]({here})")) {
            broken.push(format!(
                "{name}: not listed in SUMMARY.md, so mdbook would not build it"
            ));
        }
        for link in links(&md) {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            if !target.is_file() {
                broken.push(format!("{name}: `{link}`: no such file"));
                continue;
            }
            if !anchor.is_empty() && !anchors(&expand(&target)).contains(anchor) {
                broken.push(format!("{name}: `{link}`: no heading with that anchor"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_diagnostic_code_has_a_section_with_an_example_and_a_fix() {
    let diag = std::fs::read_to_string(repo().join("interpreter/src/diag.rs")).unwrap();
    let codes: Vec<&str> = diag
        .lines()
        .filter_map(|l| l.trim().strip_prefix("#[serde(rename = \""))
        .filter_map(|l| l.strip_suffix("\")]"))
        .filter(|c| c.starts_with("E-") || c.starts_with("W-"))
        .collect();
    assert!(codes.len() > 30, "{codes:?}");
    let page = std::fs::read_to_string(repo().join("docs/diagnostics.md")).unwrap();
    let mut missing = Vec::new();
    for code in &codes {
        let heading = format!("### `{code}`");
        let Some(start) = page.find(&heading) else {
            missing.push(format!("{code}: no `{heading}` section"));
            continue;
        };
        let body = &page[start + heading.len()..];
        let body = &body[..body.find("\n### ").unwrap_or(body.len())];
        if !body.contains("```") {
            missing.push(format!("{code}: no example"));
        }
        if !body.contains("**Fix**") {
            missing.push(format!("{code}: no **Fix**"));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/diagnostics.md:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_book_pictures_are_drawings_of_what_they_show() {
    // Each graph picture holds every node and edge of `froyo graph` of its example.
    for (picture, example) in [
        ("hello", "examples/hello.star"),
        ("webserver", "examples/webserver.star"),
    ] {
        let svg = std::fs::read_to_string(src().join(format!("images/{picture}.svg"))).unwrap();
        let run = froyo(&repo(), &["graph", "--format", "json", example]);
        let g: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let redraw = format!(
            "redraw it with\n  cargo run -- graph {example} --format svg > docs/book/src/images/{picture}.svg"
        );
        for n in g["nodes"].as_array().unwrap() {
            let id = n["id"].as_str().unwrap();
            let text = id.replace('-', "&#45;");
            assert!(
                svg.contains(&format!(">{text}</text>")),
                "{picture}.svg lacks {id}; {redraw}"
            );
        }
        let edges = g["edges"].as_array().unwrap().len();
        assert_eq!(
            svg.matches("class=\"edge\"").count(),
            edges,
            "{picture}.svg has another number of edges; {redraw}"
        );
    }
    // The architecture diagram: every node label of the DOT source is in the SVG.
    let dot = std::fs::read_to_string(src().join("images/architecture.dot")).unwrap();
    let svg = std::fs::read_to_string(src().join("images/architecture.svg")).unwrap();
    for label in dot.split("label = \"").skip(1) {
        let first = label.split(['"', '\\']).next().unwrap();
        if !first.contains("froyo (") {
            assert!(
                svg.contains(&first.replace('-', "&#45;")),
                "architecture.svg lacks `{first}`; redraw it with\n  dot -Tsvg docs/book/src/images/architecture.dot > docs/book/src/images/architecture.svg"
            );
        }
    }
}

#[test]
fn the_book_builds_with_mdbook_without_warnings() {
    let dir = std::env::var_os("FROYO_MDBOOK")
        .map_or_else(|| PathBuf::from("/var/tmp/froyo-mdbook"), PathBuf::from);
    let mdbook = dir.join("bin/mdbook");
    assert!(
        mdbook.is_file(),
        "mdbook is needed at {} (tests/run.sh installs it: cargo install mdbook --locked --version 0.5.4 --root DIR)",
        mdbook.display()
    );
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(&mdbook)
        .args(["build", "docs/book", "--dest-dir"])
        .arg(out.path())
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "mdbook build failed:\n{log}");
    let noisy: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    assert!(noisy.is_empty(), "mdbook warned:\n{}", noisy.join("\n"));
    let hello = std::fs::read_to_string(out.path().join("tutorial/hello.html")).unwrap();
    assert!(
        hello.contains("Hello from OpenFroyo"),
        "the include of examples/hello.star"
    );
    assert!(out.path().join("images/hello.svg").is_file());
    // mdbook's heading ids are the anchors the link check computes.
    let types = std::fs::read_to_string(out.path().join("reference/types.html")).unwrap();
    let md = std::fs::read_to_string(src().join("reference/types.md")).unwrap();
    for a in anchors(&md) {
        assert!(
            types.contains(&format!(" id=\"{a}\"")),
            "mdbook gave no id `{a}`"
        );
    }
}
