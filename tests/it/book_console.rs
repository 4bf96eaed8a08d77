//! The book's shell sessions are replayed: a ```` ```console ```` block is a transcript, each
//! `$ COMMAND` line run with `sh -c` in the page's scratch project (the real `froyo` first on
//! `PATH`), its stdout and stderr together compared with the lines the book shows under it,
//! so a tutorial cannot show output the product no longer prints.
//!
//! What is compared, after both sides are normalised:
//! - trailing spaces are dropped, and so are blank lines at the end of a command's output;
//! - a duration (`12 ms`, `0.0s`, `3.25 s`) reads `<T>`, since it differs from run to run;
//! - a line `…` in the book stands for any number of lines (also none), and `…` within a
//!   line for any text on that line;
//! - a last line `[exit N]` says the command exits N; without it, it must exit 0.

use std::path::Path;
use std::process::Command;

/// One command of a transcript, what it prints, and its exit code.
struct Step {
    command: String,
    shown: Vec<String>,
    exit: i32,
}

fn steps(text: &str) -> Result<Vec<Step>, String> {
    let mut out: Vec<Step> = Vec::new();
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("$ ") {
            out.push(Step {
                command: cmd.to_owned(),
                shown: Vec::new(),
                exit: 0,
            });
        } else if let Some(step) = out.last_mut() {
            step.shown.push(line.to_owned());
        } else if !line.trim().is_empty() {
            return Err(format!("a console block must start with `$ `: {line:?}"));
        }
    }
    for step in &mut out {
        while step.shown.last().is_some_and(|l| l.trim().is_empty()) {
            step.shown.pop();
        }
        if let Some(last) = step.shown.last()
            && let Some(n) = last
                .strip_prefix("[exit ")
                .and_then(|r| r.strip_suffix(']'))
        {
            step.exit = n.parse().map_err(|_| format!("a bad `{last}`"))?;
            step.shown.pop();
        }
        while step.shown.last().is_some_and(|l| l.trim().is_empty()) {
            step.shown.pop();
        }
    }
    if out.is_empty() {
        return Err("an empty console block".into());
    }
    Ok(out)
}

/// `12 ms`, `0.0s`, `3.25 s` as `<T>`: digits, an optional fraction, an optional space,
/// then `ms` or `s` that ends the word.
fn without_durations(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < b.len() {
        let starts_number = b[i].is_ascii_digit()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'));
        if starts_number {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
                j += 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
            }
            let mut k = j;
            if k < b.len() && b[k] == b' ' {
                k += 1;
            }
            let unit = if line[k..].starts_with("ms") {
                2
            } else if line[k..].starts_with('s') {
                1
            } else {
                0
            };
            let end = k + unit;
            if unit > 0 && (end == b.len() || !b[end].is_ascii_alphanumeric()) {
                out.push_str("<T>");
                i = end;
                continue;
            }
            out.push_str(&line[i..j]);
            i = j;
            continue;
        }
        let c = line[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn normal(line: &str) -> String {
    without_durations(line.trim_end())
}

/// Does `line` match `pattern`, where `…` in the pattern stands for any text?
fn line_matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split('…');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (n, part) in parts.iter().enumerate() {
        if n + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Do the printed `lines` match the book's `shown` ones (a line `…` matching any number)?
fn matches(shown: &[String], lines: &[String]) -> bool {
    match shown.split_first() {
        None => lines.is_empty(),
        Some((first, rest)) if first.trim() == "…" => {
            (0..=lines.len()).any(|skip| matches(rest, &lines[skip..]))
        }
        Some((first, rest)) => lines
            .split_first()
            .is_some_and(|(l, more)| line_matches(first, l) && matches(rest, more)),
    }
}

/// Runs the transcript `text` in `dir`; the first difference, shown as both sides.
pub fn replay(dir: &Path, text: &str) -> Result<usize, String> {
    let bin = Path::new(env!("CARGO_BIN_EXE_froyo"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let steps = steps(text)?;
    for step in &steps {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("exec 2>&1; {}", step.command))
            .current_dir(dir)
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env_remove("RUST_LOG")
            .output()
            .map_err(|e| format!("sh: {e}"))?;
        let printed = String::from_utf8_lossy(&out.stdout);
        let mut lines: Vec<String> = printed.lines().map(normal).collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let shown: Vec<String> = step.shown.iter().map(|l| normal(l)).collect();
        let code = out.status.code().unwrap_or(-1);
        if code != step.exit || !matches(&shown, &lines) {
            return Err(format!(
                "`$ {}` exited {code} (the book says {}) and printed:\n{}\n--- the book shows:\n{}",
                step.command,
                step.exit,
                printed.trim_end(),
                step.shown.join("\n")
            ));
        }
    }
    Ok(steps.len())
}

#[test]
fn the_transcript_matcher_accepts_what_it_should_and_nothing_else() {
    assert_eq!(
        without_durations("changed (9 ms) in 0.0s, 22 bytes, 3s"),
        "changed (<T>) in <T>, 22 bytes, <T>"
    );
    assert_eq!(
        without_durations("sha256 ab12s9 v1.5s"),
        "sha256 ab12s9 v1.5s"
    );
    let lines = |s: &str| s.lines().map(normal).collect::<Vec<_>>();
    assert!(matches(&lines("a\n…\nd"), &lines("a\nb\nc\nd")));
    assert!(matches(&lines("a\n…\nd"), &lines("a\nd")));
    assert!(!matches(&lines("a\n…\nd"), &lines("a\nb")));
    assert!(matches(&lines("run #… done"), &lines("run #12 done")));
    assert!(!matches(&lines("run #… done"), &lines("run #12 failed")));
    assert!(
        !matches(&lines("a\nb"), &lines("a\nb\nc")),
        "an extra line fails"
    );
    let s = steps("$ froyo drift\nlocal\n  = 1 unchanged\n\n[exit 2]\n$ true\n").unwrap();
    assert_eq!(
        (s.len(), s[0].exit, s[0].shown.len(), s[1].exit),
        (2, 2, 2, 0)
    );
}
