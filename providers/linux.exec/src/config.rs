//! The config of `linux.exec::command`, as `schema.cue` defines it (the engine has filled
//! the defaults and checked that exactly one of `argv` and `shell` is given).

use std::collections::BTreeMap;

use froyo_provider_sdk::runner::ExecArgs;
use froyo_provider_sdk::{ProviderError, Resource, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const COMMAND: &str = "linux.exec::command";

/// `#Command`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    pub name: String,
    pub argv: Option<Vec<String>>,
    pub shell: Option<String>,
    pub creates: Option<String>,
    pub removes: Option<String>,
    pub unless: Option<Check>,
    pub chdir: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub stdin: Option<String>,
    #[serde(default = "default_ok_rc")]
    pub ok_rc: Vec<i32>,
}

fn default_ok_rc() -> Vec<i32> {
    vec![0]
}

/// An `unless` check: a string runs through `/bin/sh -c`, a list is an argv.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Check {
    Shell(String),
    Argv(Vec<String>),
}

/// How a command is run: exactly one of `argv` and `shell`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Program {
    Argv(Vec<String>),
    Shell(String),
}

impl Program {
    /// The command as the plan shows it: argv words (quoted where needed) or the script.
    pub fn display(&self) -> String {
        match self {
            Program::Argv(argv) => froyo_provider_sdk::shell::join(argv),
            Program::Shell(script) => {
                let mut lines = script.trim().lines();
                let first = lines.next().unwrap_or_default().to_owned();
                if lines.next().is_some() {
                    format!("{first} …")
                } else {
                    first
                }
            }
        }
    }

    /// Exec arguments for this program, without env, cwd or stdin.
    pub fn exec_args(&self) -> ExecArgs {
        match self {
            Program::Argv(argv) => ExecArgs::argv(argv.clone()),
            Program::Shell(script) => ExecArgs::shell(script.clone()),
        }
    }
}

impl From<&Check> for Program {
    fn from(check: &Check) -> Self {
        match check {
            Check::Shell(s) => Program::Shell(s.clone()),
            Check::Argv(a) => Program::Argv(a.clone()),
        }
    }
}

impl CommandConfig {
    pub fn parse(resource: &Resource) -> Result<CommandConfig> {
        if resource.type_name != COMMAND {
            return Err(ProviderError::permanent(format!(
                "unknown resource type `{}` for linux.exec",
                resource.type_name
            )));
        }
        let value: Value = serde_json::from_str(&resource.config).map_err(|e| {
            ProviderError::permanent(format!("invalid config for `{}`: {e}", resource.id))
        })?;
        reject_secrets(&value)?;
        let config: CommandConfig = serde_json::from_value(value).map_err(|e| {
            ProviderError::permanent(format!("invalid config for `{}`: {e}", resource.id))
        })?;
        config.program()?;
        Ok(config)
    }

    pub fn program(&self) -> Result<Program> {
        match (&self.argv, &self.shell) {
            (Some(argv), None) if !argv.is_empty() => Ok(Program::Argv(argv.clone())),
            (None, Some(shell)) => Ok(Program::Shell(shell.clone())),
            _ => Err(ProviderError::permanent(
                "a command needs exactly one of argv (non-empty) and shell",
            )),
        }
    }

    /// Whether any guard makes the command idempotent.
    pub fn guarded(&self) -> bool {
        self.creates.is_some() || self.removes.is_some() || self.unless.is_some()
    }
}

/// `$secret` markers anywhere in a config are refused until the engine resolves them.
pub fn reject_secrets(value: &Value) -> Result<()> {
    match value {
        Value::Object(map) if map.contains_key("$secret") => Err(ProviderError::permanent(
            "a value comes from a secret: secrets are resolved by the engine, which does not pass them to linux.exec yet",
        )),
        Value::Object(map) => map.values().try_for_each(reject_secrets),
        Value::Array(items) => items.iter().try_for_each(reject_secrets),
        _ => Ok(()),
    }
}
