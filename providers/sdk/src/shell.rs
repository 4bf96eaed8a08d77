//! Shell words and checked commands: most providers drive the target's own tools
//! (`apt-get`, `systemctl`, `nft`, …) through `exec`, and all need the same quoting and
//! the same "a non-zero exit is an error with the tool's output" rule.

use crate::runner::{self, ExecArgs, ExecResult};
use crate::{ProviderError, Result};

/// `word` as one POSIX shell word: left bare when it only has characters no shell treats
/// specially, else single-quoted.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `argv` as one shell command line.
pub fn join<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last `max` characters of a tool's output, for error messages.
pub fn tail(output: &str, max: usize) -> &str {
    let output = output.trim_end();
    match output.char_indices().rev().nth(max.saturating_sub(1)) {
        Some((i, _)) if i > 0 => &output[i..],
        _ => output,
    }
}

/// Turns a finished program into an error unless it exited 0: the error is permanent and
/// carries `what`, the exit status and the end of stderr (else stdout).
pub fn check(result: ExecResult, what: &str) -> Result<ExecResult> {
    if result.success() {
        return Ok(result);
    }
    let status = match (result.rc, result.signal) {
        (Some(rc), _) => format!("exit status {rc}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => "failed".to_owned(),
    };
    let out = if result.stderr.trim().is_empty() {
        &result.stdout
    } else {
        &result.stderr
    };
    let out = tail(out, 2000);
    Err(ProviderError::permanent(if out.is_empty() {
        format!("{what}: {status}")
    } else {
        format!("{what}: {status}: {out}")
    }))
}

/// Runs `args` on the target and fails unless it exits 0 (see [`check`]).
pub fn run(args: &ExecArgs, what: &str) -> Result<ExecResult> {
    check(runner::exec(args)?, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("nginx=1.2-3"), "nginx=1.2-3");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("/x/it's"), r"'/x/it'\''s'");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(join(&["echo", "a;b"]), "echo 'a;b'");
    }

    #[test]
    fn failures_carry_status_and_output() {
        let r = |rc, stderr: &str| ExecResult {
            rc,
            signal: None,
            stdout: "out".into(),
            stderr: stderr.into(),
            truncated: false,
            duration_ms: 1,
        };
        assert!(check(r(Some(0), ""), "x").is_ok());
        let e = check(
            r(Some(100), "E: Unable to locate package nope\n"),
            "apt-get install",
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "apt-get install: exit status 100: E: Unable to locate package nope"
        );
        let e = check(r(Some(1), ""), "x").unwrap_err();
        assert_eq!(e.message, "x: exit status 1: out");
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 3), "ab");
    }
}
