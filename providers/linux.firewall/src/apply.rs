//! `apply` runs a planned `nft -f` script (one transaction: the table, chains and rule
//! appear together or not at all). `destroy` lists froyo's rules again (it gets no actual
//! state) and deletes every rule named after the resource in one transaction.

use froyo_provider_sdk::runner::ExecResult;
use froyo_provider_sdk::{ApplyResult, Operation, ProviderError, Resource, Result};
use serde_json::json;

use crate::backend;
use crate::config::RuleConfig;
use crate::nft;
use crate::plan::Payload;
use crate::read::{self, Exec, Live};

pub fn apply(op: &Operation) -> Result<ApplyResult> {
    apply_with(&mut Live, op)
}

pub fn destroy(resource: &Resource) -> Result<ApplyResult> {
    destroy_with(&mut Live, resource)
}

pub fn apply_with(ops: &mut impl Exec, op: &Operation) -> Result<ApplyResult> {
    let payload: Payload = serde_json::from_str(&op.payload)
        .map_err(|e| ProviderError::permanent(format!("{}: malformed payload: {e}", op.id)))?;
    run_script(ops, &payload.script).map_err(|e| e.context(&op.id))?;
    Ok(ApplyResult {
        changed: true,
        output: json!({"script": payload.script}).to_string(),
    })
}

pub fn destroy_with(ops: &mut impl Exec, resource: &Resource) -> Result<ApplyResult> {
    let config = RuleConfig::parse(resource)?;
    let mine: Vec<_> = read::list(ops)
        .map_err(|e| e.context(&resource.id))?
        .into_iter()
        .filter(|f| f.name == config.name)
        .collect();
    if mine.is_empty() {
        return Ok(ApplyResult {
            changed: false,
            output: "{}".into(),
        });
    }
    let script = nft::delete_script(&mine);
    run_script(ops, &script).map_err(|e| e.context(&resource.id))?;
    Ok(ApplyResult {
        changed: true,
        output: json!({"script": script}).to_string(),
    })
}

fn run_script(ops: &mut impl Exec, script: &str) -> Result<ExecResult> {
    let result = ops.exec(&backend::script_args(script))?;
    if result.success() {
        return Ok(result);
    }
    // A handle from `read` that is gone: someone changed the ruleset since; a fresh read
    // and plan will see the new state.
    if result.stderr.contains("No such file or directory") && script.contains(" handle ") {
        return Err(ProviderError::conflict(format!(
            "the rule changed on the target since it was read (nft: {})",
            froyo_provider_sdk::shell::tail(&result.stderr, 300)
        )));
    }
    Err(backend::nft_error(&result, "nft -f"))
}

#[cfg(test)]
mod tests {
    use froyo_provider_sdk::ErrorClass;
    use serde_json::{Value, json};

    use super::*;
    use crate::read::tests::{Recorded, ok, resource};

    fn op(script: &str) -> Operation {
        Operation {
            id: "ssh".into(),
            type_name: crate::config::RULE.into(),
            kind: "update".into(),
            summary: String::new(),
            diff: None,
            payload: json!({"script": script}).to_string(),
        }
    }

    fn failed(stderr: &str) -> ExecResult {
        ExecResult {
            rc: Some(1),
            stderr: stderr.into(),
            ..ok("")
        }
    }

    #[test]
    fn apply_pipes_the_script_to_nft() {
        let mut fake = Recorded {
            results: vec![ok("")],
            ..Default::default()
        };
        let script =
            "replace rule inet froyo input handle 3 tcp dport 22 accept comment \"froyo:ssh\"\n";
        let r = apply_with(&mut fake, &op(script)).unwrap();
        assert!(r.changed);
        assert_eq!(fake.calls[0].argv.as_deref().unwrap(), ["nft", "-f", "-"]);
        assert_eq!(fake.calls[0].stdin.as_deref(), Some(script));
        let out: Value = serde_json::from_str(&r.output).unwrap();
        assert_eq!(out["script"], script);
    }

    #[test]
    fn a_vanished_handle_is_a_conflict_and_other_failures_permanent() {
        let mut fake = Recorded {
            results: vec![
                failed(
                    "/dev/stdin:1:38-40: Error: Could not process rule: No such file or directory\n",
                ),
                failed("/dev/stdin:1:1-3: Error: syntax error\n"),
            ],
            ..Default::default()
        };
        let e = apply_with(
            &mut fake,
            &op("replace rule inet froyo input handle 999 accept\n"),
        )
        .unwrap_err();
        assert_eq!(e.class, ErrorClass::Conflict);
        assert!(
            e.message.starts_with("ssh: the rule changed on the target"),
            "{}",
            e.message
        );
        let e = apply_with(&mut fake, &op("add rule inet froyo input bogus\n")).unwrap_err();
        assert_eq!(e.class, ErrorClass::Permanent);
        assert_eq!(
            e.message,
            "ssh: nft -f: exit status 1: /dev/stdin:1:1-3: Error: syntax error"
        );
    }

    #[test]
    fn destroy_deletes_every_rule_of_the_name_and_nothing_when_absent() {
        let listing = format!("froyo-backend nftables\n{}", crate::nft::tests::LISTING);
        let mut fake = Recorded {
            results: vec![ok(&listing), ok("")],
            ..Default::default()
        };
        let r = destroy_with(&mut fake, &resource("out", json!({}))).unwrap();
        assert!(r.changed);
        assert_eq!(fake.calls.len(), 2);
        assert_eq!(
            fake.calls[1].stdin.as_deref(),
            Some("delete rule inet froyo output handle 7\n")
        );
        let mut fake = Recorded {
            results: vec![ok(&listing)],
            ..Default::default()
        };
        let r = destroy_with(&mut fake, &resource("nope", json!({}))).unwrap();
        assert!(!r.changed);
        assert_eq!(fake.calls.len(), 1);
    }
}
