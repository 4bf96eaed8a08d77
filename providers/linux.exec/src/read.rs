//! `read`: evaluates each command's guard without changing anything. All `creates` and
//! `removes` paths of the batch go into ONE `file.stat`; an `unless` check runs (through
//! `exec`) only for a command that no path guard already marks as done.

use froyo_provider_sdk::runner::{self, ExecArgs, ExecResult, StatEntry};
use froyo_provider_sdk::{Actual, ProviderError, Resource, Result};

use crate::config::{CommandConfig, Program};
use crate::state::State;

/// The runner ops `read` uses, so its choices can be tested with a fake runner.
pub trait Ops {
    fn stat(&mut self, paths: &[String]) -> Result<Vec<StatEntry>>;
    fn exec(&mut self, args: &ExecArgs) -> Result<ExecResult>;
}

struct Live;

impl Ops for Live {
    fn stat(&mut self, paths: &[String]) -> Result<Vec<StatEntry>> {
        runner::stat_with(&runner::StatArgs {
            paths: paths.to_vec(),
            sha256: false,
            max_hash_bytes: None,
        })
    }

    fn exec(&mut self, args: &ExecArgs) -> Result<ExecResult> {
        runner::exec(args)
    }
}

pub fn read(resources: Vec<Resource>) -> Result<Vec<Actual>> {
    read_with(&mut Live, resources)
}

pub fn read_with(ops: &mut impl Ops, resources: Vec<Resource>) -> Result<Vec<Actual>> {
    let configs = resources
        .iter()
        .map(|r| CommandConfig::parse(r).map_err(|e| e.context(&r.id)))
        .collect::<Result<Vec<_>>>()?;
    // One stat for every guard path of the batch, each path once (sets and maps keep a
    // batch of thousands of commands linear).
    let mut seen = std::collections::HashSet::new();
    let mut paths: Vec<String> = Vec::new();
    for c in &configs {
        for p in [&c.creates, &c.removes].into_iter().flatten() {
            if seen.insert(p.as_str()) {
                paths.push(p.clone());
            }
        }
    }
    let stats = if paths.is_empty() {
        Vec::new()
    } else {
        ops.stat(&paths)?
    };
    let by_path: std::collections::HashMap<&str, _> =
        stats.iter().map(|e| (e.path.as_str(), e)).collect();
    let exists = |path: &str| -> Result<bool> {
        let entry = by_path
            .get(path)
            .copied()
            .ok_or_else(|| ProviderError::permanent(format!("file.stat said nothing of {path}")))?;
        if let Some(error) = &entry.error {
            return Err(ProviderError::permanent(format!(
                "cannot stat {path}: {error}"
            )));
        }
        Ok(entry.exists)
    };
    let mut actuals = Vec::with_capacity(configs.len());
    for (resource, c) in resources.iter().zip(&configs) {
        let state = guard(ops, c, &exists).map_err(|e| e.context(&resource.id))?;
        actuals.push(Actual {
            id: resource.id.clone(),
            state: state.to_json(),
        });
    }
    Ok(actuals)
}

fn guard(
    ops: &mut impl Ops,
    c: &CommandConfig,
    exists: &impl Fn(&str) -> Result<bool>,
) -> Result<State> {
    let state = |done: bool, reason: String| State {
        done,
        guarded: c.guarded(),
        reason,
    };
    let mut pending = Vec::new();
    if let Some(path) = &c.creates {
        if exists(path)? {
            return Ok(state(true, format!("{path} exists")));
        }
        pending.push(format!("{path} does not exist"));
    }
    if let Some(path) = &c.removes {
        if !exists(path)? {
            return Ok(state(true, format!("{path} does not exist")));
        }
        pending.push(format!("{path} exists"));
    }
    if let Some(check) = &c.unless {
        let program = Program::from(check);
        let mut args = program.exec_args();
        args.env = c.env.clone();
        args.cwd = c.chdir.clone();
        let result = ops
            .exec(&args)
            .map_err(|e| e.context(format!("unless check `{}`", program.display())))?;
        if result.success() {
            return Ok(state(true, "the unless check exited 0".into()));
        }
        pending.push(match result.rc {
            Some(rc) => format!("the unless check exited {rc}"),
            None => "the unless check was killed".into(),
        });
    }
    if pending.is_empty() {
        return Ok(state(false, "no guard".into()));
    }
    Ok(state(false, pending.join(", ")))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::config::COMMAND;

    #[derive(Default)]
    struct Fake {
        existing: Vec<String>,
        calls: Vec<String>,
        check_rc: i32,
    }

    impl Ops for Fake {
        fn stat(&mut self, paths: &[String]) -> Result<Vec<StatEntry>> {
            self.calls.push(format!("file.stat {}", paths.join(" ")));
            Ok(paths
                .iter()
                .map(|p| StatEntry {
                    path: p.clone(),
                    exists: self.existing.contains(p),
                    ..Default::default()
                })
                .collect())
        }

        fn exec(&mut self, args: &ExecArgs) -> Result<ExecResult> {
            let what = match (&args.argv, &args.shell) {
                (Some(argv), _) => argv.join(" "),
                (_, Some(shell)) => format!("sh -c {shell}"),
                _ => String::new(),
            };
            self.calls.push(format!(
                "exec {what} cwd={}",
                args.cwd.as_deref().unwrap_or("-")
            ));
            Ok(ExecResult {
                rc: Some(self.check_rc),
                signal: None,
                stdout: String::new(),
                stderr: String::new(),
                truncated: false,
                duration_ms: 1,
            })
        }
    }

    fn resource(id: &str, config: Value) -> Resource {
        Resource {
            id: id.into(),
            type_name: COMMAND.into(),
            config: config.to_string(),
        }
    }

    fn state(a: &Actual) -> Value {
        serde_json::from_str(&a.state).unwrap()
    }

    #[test]
    fn one_stat_for_all_guard_paths_and_checks_only_when_needed() {
        let mut fake = Fake {
            existing: vec!["/srv/app/.migrated".into(), "/tmp/lock".into()],
            check_rc: 1,
            ..Default::default()
        };
        let actuals = read_with(
            &mut fake,
            vec![
                resource(
                    "migrate",
                    json!({"name": "migrate", "argv": ["/srv/app/bin/migrate"], "creates": "/srv/app/.migrated", "unless": "never run"}),
                ),
                resource(
                    "cleanup",
                    json!({"name": "cleanup", "shell": "rm -f /tmp/lock", "removes": "/tmp/lock"}),
                ),
                resource(
                    "gone",
                    json!({"name": "gone", "shell": "rm -f /tmp/x", "removes": "/tmp/x"}),
                ),
                resource(
                    "check",
                    json!({"name": "check", "argv": ["touch", "/y"], "unless": ["test", "-e", "/y"], "chdir": "/srv"}),
                ),
                resource("bare", json!({"name": "bare", "argv": ["date"]})),
            ],
        )
        .unwrap();
        assert_eq!(
            fake.calls,
            [
                "file.stat /srv/app/.migrated /tmp/lock /tmp/x",
                "exec test -e /y cwd=/srv"
            ]
        );
        assert_eq!(
            state(&actuals[0]),
            json!({"done": true, "guarded": true, "reason": "/srv/app/.migrated exists"})
        );
        assert_eq!(
            state(&actuals[1]),
            json!({"done": false, "guarded": true, "reason": "/tmp/lock exists"})
        );
        assert_eq!(state(&actuals[2])["done"], true);
        assert_eq!(
            state(&actuals[3]),
            json!({"done": false, "guarded": true, "reason": "the unless check exited 1"})
        );
        assert_eq!(
            state(&actuals[4]),
            json!({"done": false, "guarded": false, "reason": "no guard"})
        );
    }

    #[test]
    fn a_passing_unless_check_means_done_and_no_stat_without_paths() {
        let mut fake = Fake::default();
        let actuals = read_with(
            &mut fake,
            vec![resource(
                "c",
                json!({"name": "c", "shell": "make install", "unless": "test -x /usr/local/bin/x"}),
            )],
        )
        .unwrap();
        assert_eq!(fake.calls, ["exec sh -c test -x /usr/local/bin/x cwd=-"]);
        assert_eq!(state(&actuals[0])["done"], true);
    }

    #[test]
    fn secrets_are_refused() {
        let e = read_with(
            &mut Fake::default(),
            vec![resource(
                "s",
                json!({"name": "s", "argv": ["x"], "env": {"TOKEN": {"$secret": "vault:t"}}}),
            )],
        )
        .unwrap_err();
        assert!(
            e.message.contains("secrets are resolved by the engine"),
            "{}",
            e.message
        );
    }
}
