//! `apply`: runs a planned command. An exit code outside `ok_rc` (or a signal) is a
//! permanent error with the tail of stderr; the output is `{"rc", "stdout", "stderr"}`.
//! `destroy` has nothing to undo: a command that ran stays run.

use froyo_provider_sdk::runner::{self, ExecArgs, ExecResult};
use froyo_provider_sdk::{ApplyResult, Operation, ProviderError, Resource, Result};
use serde_json::json;

use crate::plan::Payload;

/// Lines of stderr kept in an error message.
const TAIL_LINES: usize = 20;
/// Characters of stderr kept in an error message.
const TAIL_CHARS: usize = 2000;

pub fn apply(op: &Operation) -> Result<ApplyResult> {
    let payload: Payload = serde_json::from_str(&op.payload)
        .map_err(|e| ProviderError::permanent(format!("{}: malformed payload: {e}", op.id)))?;
    let args = exec_args(&payload);
    let result = runner::exec(&args).map_err(|e| e.context(&op.id))?;
    outcome(&payload, &result).map_err(|e| e.context(&op.id))
}

pub fn destroy(_resource: &Resource) -> Result<ApplyResult> {
    Ok(ApplyResult {
        changed: false,
        output: "{}".into(),
    })
}

pub fn exec_args(payload: &Payload) -> ExecArgs {
    let mut args = payload.program.exec_args();
    args.env = payload.env.clone();
    args.cwd = payload.cwd.clone();
    args.stdin = payload.stdin.clone();
    args
}

/// The result of a run: an error unless its exit code is in `ok_rc`.
pub fn outcome(payload: &Payload, result: &ExecResult) -> Result<ApplyResult> {
    let shown = payload.program.display();
    match result.rc {
        Some(rc) if payload.ok_rc.contains(&rc) => Ok(ApplyResult {
            changed: true,
            output: json!({"rc": rc, "stdout": result.stdout, "stderr": result.stderr}).to_string(),
        }),
        Some(rc) => Err(ProviderError::permanent(format!(
            "`{shown}` exited {rc}{}",
            tail(&result.stderr)
        ))),
        None => Err(ProviderError::permanent(format!(
            "`{shown}` was killed by signal {}{}",
            result.signal.unwrap_or_default(),
            tail(&result.stderr)
        ))),
    }
}

/// The last lines of stderr, for an error message (empty when there is none).
fn tail(stderr: &str) -> String {
    let trimmed = stderr.trim_end();
    if trimmed.is_empty() {
        return String::new();
    }
    let lines: Vec<&str> = trimmed.lines().collect();
    let mut text = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    if text.chars().count() > TAIL_CHARS {
        let skip = text.chars().count() - TAIL_CHARS;
        text = format!("…{}", text.chars().skip(skip).collect::<String>());
    }
    format!(": {text}")
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::config::Program;

    fn payload(ok_rc: Vec<i32>) -> Payload {
        Payload {
            program: Program::Argv(vec!["/bin/migrate".into(), "--yes".into()]),
            env: [("A".to_owned(), "1".to_owned())].into(),
            cwd: Some("/srv".into()),
            stdin: Some("in".into()),
            ok_rc,
        }
    }

    fn result(rc: Option<i32>, stderr: &str) -> ExecResult {
        ExecResult {
            rc,
            signal: if rc.is_none() { Some(9) } else { None },
            stdout: "out\n".into(),
            stderr: stderr.into(),
            truncated: false,
            duration_ms: 3,
        }
    }

    #[test]
    fn exec_arguments_carry_env_cwd_and_stdin() {
        let args = serde_json::to_value(exec_args(&payload(vec![0]))).unwrap();
        assert_eq!(
            args,
            json!({"argv": ["/bin/migrate", "--yes"], "env": {"A": "1"}, "cwd": "/srv", "stdin": "in"})
        );
    }

    #[test]
    fn accepted_exit_codes_are_a_change_with_output() {
        let r = outcome(&payload(vec![0, 3]), &result(Some(3), "warn\n")).unwrap();
        assert!(r.changed);
        let out: Value = serde_json::from_str(&r.output).unwrap();
        assert_eq!(out, json!({"rc": 3, "stdout": "out\n", "stderr": "warn\n"}));
    }

    #[test]
    fn other_exit_codes_fail_with_the_tail_of_stderr() {
        let stderr: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let e = outcome(&payload(vec![0]), &result(Some(1), &stderr)).unwrap_err();
        assert_eq!(e.class, froyo_provider_sdk::ErrorClass::Permanent);
        assert!(
            e.message
                .starts_with("`/bin/migrate --yes` exited 1: line 11\n"),
            "{}",
            e.message
        );
        assert!(e.message.ends_with("line 30"), "{}", e.message);
        let e = outcome(&payload(vec![0]), &result(None, "")).unwrap_err();
        assert_eq!(e.message, "`/bin/migrate --yes` was killed by signal 9");
    }
}
