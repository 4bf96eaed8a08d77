//! `apply` and `destroy`: run the manager's commands for a planned payload, one `exec`
//! each, stopping at the first failure (classified by [`manager::failure`]). `destroy`
//! reads the resource again and removes whatever of it is installed.

use froyo_provider_sdk::runner::{self, ExecArgs};
use froyo_provider_sdk::{ApplyResult, Operation, ProviderError, Resource, Result};
use serde_json::json;

use crate::config::{Config, Want};
use crate::manager::{self, Command};
use crate::plan::{Payload, plan_config};
use crate::read::{Live, read_with};
use crate::state::State;

/// Installing can download and configure a lot; past this the runner kills the command.
const TIMEOUT_MS: u64 = 30 * 60 * 1000;

pub fn apply(op: &Operation) -> Result<ApplyResult> {
    let payload: Payload = serde_json::from_str(&op.payload)
        .map_err(|e| ProviderError::permanent(format!("{}: malformed payload: {e}", op.id)))?;
    run(&payload).map_err(|e| e.context(&op.id))
}

pub fn destroy(resource: &Resource) -> Result<ApplyResult> {
    let mut config = Config::parse(resource).map_err(|e| e.context(&resource.id))?;
    config.state = Want::Absent;
    config.version = None;
    let actual = read_with(&mut Live, vec![resource.clone()])?;
    let state = State::parse(actual.first().map_or("null", |a| a.state.as_str()))
        .map_err(|e| e.context(&resource.id))?;
    match plan_config(&config, &state).map_err(|e| e.context(&resource.id))? {
        Some(step) => run(&step.payload).map_err(|e| e.context(&resource.id)),
        None => Ok(ApplyResult {
            changed: false,
            output: "{}".into(),
        }),
    }
}

pub fn exec_args(cmd: &Command) -> ExecArgs {
    let mut args = ExecArgs::argv(cmd.argv.clone());
    args.env = cmd.env.clone();
    args.timeout_ms = Some(TIMEOUT_MS);
    args
}

fn run(payload: &Payload) -> Result<ApplyResult> {
    let commands = manager::commands(payload);
    for cmd in &commands {
        let result = runner::exec(&exec_args(cmd))?;
        if !result.success() {
            return Err(manager::failure(payload.manager, cmd, &result));
        }
    }
    let ran: Vec<&Vec<String>> = commands.iter().map(|c| &c.argv).collect();
    Ok(ApplyResult {
        changed: true,
        output: json!({ "commands": ran, "changes": payload.changes }).to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Manager;
    use crate::plan::{Action, Change};

    #[test]
    fn apt_commands_run_noninteractive_with_a_long_timeout() {
        let payload = Payload {
            manager: Manager::Apt,
            refresh: false,
            changes: vec![Change {
                action: Action::Install,
                name: "nginx".into(),
                version: None,
                from: None,
                to: None,
            }],
        };
        let cmds = manager::commands(&payload);
        let args = serde_json::to_value(exec_args(&cmds[0])).unwrap();
        assert_eq!(args["env"], json!({"DEBIAN_FRONTEND": "noninteractive"}));
        assert_eq!(args["timeout_ms"], 1_800_000);
        assert_eq!(args["argv"][0], "apt-get");
        assert_eq!(args["argv"].as_array().unwrap().last().unwrap(), "nginx");
    }
}
