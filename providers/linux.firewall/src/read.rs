//! `read`: ONE `exec` for the whole batch (backend detection and `nft -j list table inet
//! froyo`), then each resource's rules picked out by their `froyo:NAME` comment. The
//! runner sits behind [`Exec`] so the choices are testable with recorded results.

use std::collections::HashMap;

use froyo_provider_sdk::runner::{self, ExecArgs, ExecResult};
use froyo_provider_sdk::{Actual, Resource, Result};

use crate::backend;
use crate::config::RuleConfig;
use crate::nft::Found;
use crate::state::State;

/// The one runner op this provider uses.
pub trait Exec {
    fn exec(&mut self, args: &ExecArgs) -> Result<ExecResult>;
}

pub struct Live;

impl Exec for Live {
    fn exec(&mut self, args: &ExecArgs) -> Result<ExecResult> {
        runner::exec(args)
    }
}

pub fn read(resources: Vec<Resource>) -> Result<Vec<Actual>> {
    read_with(&mut Live, resources)
}

pub fn read_with(ops: &mut impl Exec, resources: Vec<Resource>) -> Result<Vec<Actual>> {
    let configs = resources
        .iter()
        .map(|r| RuleConfig::parse(r).map_err(|e| e.context(&r.id)))
        .collect::<Result<Vec<_>>>()?;
    if configs.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_name = group(list(ops)?);
    Ok(resources
        .iter()
        .zip(&configs)
        .map(|(r, c)| Actual {
            id: r.id.clone(),
            state: State::to_json(by_name.remove(c.name.as_str()).unwrap_or_default()),
        })
        .collect())
}

/// Every froyo rule on the target (one `exec`).
pub fn list(ops: &mut impl Exec) -> Result<Vec<Found>> {
    let result = ops.exec(&backend::detect_and_list_args())?;
    backend::parse_detect_and_list(&result)
}

/// Rules by name, each name's rules in chain order (a map keeps a big batch linear).
fn group(found: Vec<Found>) -> HashMap<String, Vec<Found>> {
    let mut by_name: HashMap<String, Vec<Found>> = HashMap::new();
    for f in found {
        by_name.entry(f.name.clone()).or_default().push(f);
    }
    by_name
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::config::RULE;

    /// Answers every `exec` with the next recorded result and records what was run.
    #[derive(Default)]
    pub(crate) struct Recorded {
        pub results: Vec<ExecResult>,
        pub calls: Vec<ExecArgs>,
    }

    impl Exec for Recorded {
        fn exec(&mut self, args: &ExecArgs) -> Result<ExecResult> {
            self.calls.push(args.clone());
            Ok(self.results.remove(0))
        }
    }

    pub(crate) fn ok(stdout: &str) -> ExecResult {
        ExecResult {
            rc: Some(0),
            signal: None,
            stdout: stdout.into(),
            stderr: String::new(),
            truncated: false,
            duration_ms: 1,
        }
    }

    pub(crate) fn resource(name: &str, config: Value) -> Resource {
        let mut config = config;
        config["name"] = json!(name);
        Resource {
            id: name.into(),
            type_name: RULE.into(),
            config: config.to_string(),
        }
    }

    #[test]
    fn one_exec_for_the_batch_and_rules_by_comment() {
        let mut fake = Recorded {
            results: vec![ok(&format!(
                "froyo-backend nftables\n{}",
                crate::nft::tests::LISTING
            ))],
            ..Default::default()
        };
        let actuals = read_with(
            &mut fake,
            vec![
                resource("ssh", json!({"port": 22})),
                resource("new", json!({"port": 80})),
                resource("counted", json!({"port": 22})),
            ],
        )
        .unwrap();
        assert_eq!(fake.calls.len(), 1);
        assert_eq!(
            fake.calls[0].shell.as_deref(),
            Some(backend::DETECT_AND_LIST)
        );
        let state = |i: usize| -> Value { serde_json::from_str(&actuals[i].state).unwrap() };
        assert_eq!(
            state(0),
            json!({"rules": [{"name": "ssh", "chain": "input", "handle": 3, "spec": {
                "direction": "in", "proto": "tcp", "port": {"lo": 22, "hi": 22},
                "source": {"addr": "10.0.0.0", "len": 8}, "action": "allow"}}]})
        );
        assert_eq!(state(1), Value::Null);
        assert_eq!(state(2)["rules"][0]["spec"], Value::Null);
        assert!(
            state(2)["rules"][0]["unrecognized"]
                .as_str()
                .unwrap()
                .contains("counter")
        );
    }

    #[test]
    fn an_empty_batch_runs_nothing_and_bad_configs_fail_first() {
        let mut fake = Recorded::default();
        assert!(read_with(&mut fake, Vec::new()).unwrap().is_empty());
        let e = read_with(&mut fake, vec![resource("x", json!({"proto": "sctp"}))]).unwrap_err();
        assert!(e.message.starts_with("x: invalid config"), "{}", e.message);
        assert!(fake.calls.is_empty());
    }
}
