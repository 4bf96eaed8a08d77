//! `diff`: pure. A command whose guard says it is done plans nothing; otherwise one `run`
//! operation whose payload is everything `apply` needs to run it.

use std::collections::BTreeMap;

use froyo_provider_sdk::{Actual, Operation, Resource, Result};
use serde::{Deserialize, Serialize};

use crate::config::{CommandConfig, Program};
use crate::state::State;

/// What `apply` runs: `{"program": {"argv": [...]} | {"shell": "..."}, "env": {...},
/// "cwd": "/..."?, "stdin": "..."?, "ok_rc": [0]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub program: Program,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    pub ok_rc: Vec<i32>,
}

impl Payload {
    pub fn from_config(c: &CommandConfig) -> Result<Payload> {
        Ok(Payload {
            program: c.program()?,
            env: c.env.clone(),
            cwd: c.chdir.clone(),
            stdin: c.stdin.clone(),
            ok_rc: c.ok_rc.clone(),
        })
    }
}

pub fn plan(desired: &Resource, actual: &Actual) -> Result<Vec<Operation>> {
    let config = CommandConfig::parse(desired)?;
    let state = State::parse(&actual.state).map_err(|e| e.context(&desired.id))?;
    if state.done {
        return Ok(Vec::new());
    }
    let payload = Payload::from_config(&config).map_err(|e| e.context(&desired.id))?;
    let mut summary = format!("run {}", payload.program.display());
    if config.guarded() {
        summary.push_str(&format!(" ({})", state.reason));
    } else {
        summary.push_str(" (unguarded: runs on every apply)");
    }
    Ok(vec![Operation {
        id: desired.id.clone(),
        type_name: desired.type_name.clone(),
        kind: "run".into(),
        summary,
        diff: None,
        // Plain strings and numbers: serializing cannot fail.
        payload: serde_json::to_string(&payload).unwrap_or_default(),
    }])
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::config::COMMAND;

    fn diff(config: Value, state: Value) -> Result<Vec<Operation>> {
        plan(
            &Resource {
                id: "c".into(),
                type_name: COMMAND.into(),
                config: config.to_string(),
            },
            &Actual {
                id: "c".into(),
                state: state.to_string(),
            },
        )
    }

    #[test]
    fn done_plans_nothing() {
        let ops = diff(
            json!({"name": "m", "argv": ["/srv/app/bin/migrate", "--yes"], "creates": "/x", "ok_rc": [0]}),
            json!({"done": true, "guarded": true, "reason": "/x exists"}),
        )
        .unwrap();
        assert!(ops.is_empty());
    }

    #[test]
    fn a_guarded_command_runs_with_its_reason() {
        let ops = diff(
            json!({"name": "m", "argv": ["/srv/app/bin/migrate", "--yes"], "creates": "/x",
                   "chdir": "/srv/app", "env": {"RAILS_ENV": "production"}, "stdin": "y\n", "ok_rc": [0, 2]}),
            json!({"done": false, "guarded": true, "reason": "/x does not exist"}),
        )
        .unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].kind, "run");
        assert_eq!(
            ops[0].summary,
            "run /srv/app/bin/migrate --yes (/x does not exist)"
        );
        let payload: Value = serde_json::from_str(&ops[0].payload).unwrap();
        assert_eq!(
            payload,
            json!({"program": {"argv": ["/srv/app/bin/migrate", "--yes"]}, "env": {"RAILS_ENV": "production"},
                   "cwd": "/srv/app", "stdin": "y\n", "ok_rc": [0, 2]})
        );
    }

    #[test]
    fn an_unguarded_command_says_so() {
        let ops = diff(
            json!({"name": "m", "shell": "systemctl daemon-reload && echo 'ok'", "ok_rc": [0]}),
            json!({"done": false, "guarded": false, "reason": "no guard"}),
        )
        .unwrap();
        assert_eq!(
            ops[0].summary,
            "run systemctl daemon-reload && echo 'ok' (unguarded: runs on every apply)"
        );
        let ops = diff(
            json!({"name": "m", "argv": ["echo", "two words"], "ok_rc": [0]}),
            json!({"done": false, "guarded": false, "reason": "no guard"}),
        )
        .unwrap();
        assert_eq!(
            ops[0].summary,
            "run echo 'two words' (unguarded: runs on every apply)"
        );
    }

    #[test]
    fn malformed_inputs_are_permanent_errors() {
        let e = diff(
            json!({"name": "m", "ok_rc": [0]}),
            json!({"done": false, "guarded": false, "reason": ""}),
        )
        .unwrap_err();
        assert!(e.message.contains("argv"), "{}", e.message);
        let e = diff(json!({"name": "m", "argv": ["x"]}), json!(null)).unwrap_err();
        assert!(
            e.message.contains("malformed actual state"),
            "{}",
            e.message
        );
    }
}
