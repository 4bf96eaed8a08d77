//! `diff`: pure. No rule named after the resource → `create`; exactly one that matches
//! the desired rule by meaning → nothing; anything else (other port, action, address or
//! direction, a statement froyo never writes, duplicates) → `update`, which replaces the
//! rule in place in one `nft -f` transaction. The payload is the finished script.

use froyo_provider_sdk::{Actual, Operation, ProviderError, Resource, Result};
use serde::{Deserialize, Serialize};

use crate::config::{RuleConfig, Spec};
use crate::nft::{self, Found};
use crate::state::State;

/// What `apply` runs: `{"script": "..."}` for `nft -f -`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub script: String,
}

pub fn plan(desired: &Resource, actual: &Actual) -> Result<Vec<Operation>> {
    let config = RuleConfig::parse(desired)?;
    let spec = config.spec().map_err(|e| e.context(&desired.id))?;
    let existing = State::parse(&actual.state)
        .map_err(|e| e.context(&desired.id))?
        .map(|s| s.rules)
        .unwrap_or_default();
    let (kind, summary, script) = match existing.as_slice() {
        [] => (
            "create",
            spec.to_string(),
            nft::create_script(&config.name, &spec),
        ),
        [one] if one.spec.as_ref() == Some(&spec) => return Ok(Vec::new()),
        _ => (
            "update",
            update_summary(&spec, &existing),
            nft::update_script(&config.name, &spec, &existing),
        ),
    };
    let payload = Payload { script };
    Ok(vec![Operation {
        id: desired.id.clone(),
        type_name: desired.type_name.clone(),
        kind: kind.into(),
        summary,
        diff: None,
        payload: serde_json::to_string(&payload)
            .map_err(|e| ProviderError::permanent(format!("cannot encode payload: {e}")))?,
    }])
}

/// `allow tcp/22 from any (in), was allow tcp/2222 from any (in)`, naming the rule that
/// is replaced (the first in the right chain, as [`nft::update_script`] picks it).
fn update_summary(spec: &Spec, existing: &[Found]) -> String {
    let want = nft::chain(spec.direction);
    let old = existing
        .iter()
        .find(|f| f.chain == want)
        .unwrap_or(&existing[0]);
    let was = match (&old.spec, &old.unrecognized) {
        (Some(s), _) => s.to_string(),
        (None, Some(why)) => format!("a hand-edited rule ({why})"),
        (None, None) => "a rule froyo cannot read".to_owned(),
    };
    let mut summary = format!("{spec}, was {was}");
    match existing.len() {
        1 => {}
        2 => summary.push_str(", and 1 duplicate removed"),
        n => summary.push_str(&format!(", and {} duplicates removed", n - 1)),
    }
    summary
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::read::tests::resource;

    fn diff(config: Value, state: Value) -> Result<Vec<Operation>> {
        plan(
            &resource("ssh", config),
            &Actual {
                id: "ssh".into(),
                state: state.to_string(),
            },
        )
    }

    fn script(op: &Operation) -> String {
        serde_json::from_str::<Payload>(&op.payload).unwrap().script
    }

    fn found(chain: &str, handle: u64, spec: Value) -> Value {
        json!({"name": "ssh", "chain": chain, "handle": handle, "spec": spec})
    }

    fn ssh_spec(port: u16) -> Value {
        json!({"direction": "in", "proto": "tcp", "port": {"lo": port, "hi": port},
               "source": {"addr": "10.0.0.0", "len": 8}, "action": "allow"})
    }

    #[test]
    fn a_missing_rule_is_created() {
        let ops = diff(json!({"port": 22, "source": "10.0.0.0/8"}), Value::Null).unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].kind, "create");
        assert_eq!(ops[0].summary, "allow tcp/22 from 10.0.0.0/8 (in)");
        assert!(
            script(&ops[0]).ends_with(
                "add rule inet froyo input ip saddr 10.0.0.0/8 tcp dport 22 accept comment \"froyo:ssh\"\n"
            ),
            "{}",
            script(&ops[0])
        );
    }

    #[test]
    fn a_matching_rule_plans_nothing_even_when_spelled_differently() {
        let state = json!({"rules": [found("input", 3, ssh_spec(22))]});
        assert!(
            diff(
                json!({"port": "22-22", "source": "10.9.9.9/8"}),
                state.clone()
            )
            .unwrap()
            .is_empty()
        );
        assert!(
            diff(json!({"port": 22, "source": "10.0.0.0/8"}), state)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_hand_edit_is_replaced_in_place() {
        let state = json!({"rules": [found("input", 3, ssh_spec(2222))]});
        let ops = diff(json!({"port": 22, "source": "10.0.0.0/8"}), state).unwrap();
        assert_eq!(ops[0].kind, "update");
        assert_eq!(
            ops[0].summary,
            "allow tcp/22 from 10.0.0.0/8 (in), was allow tcp/2222 from 10.0.0.0/8 (in)"
        );
        assert_eq!(
            script(&ops[0]),
            "replace rule inet froyo input handle 3 ip saddr 10.0.0.0/8 tcp dport 22 accept comment \"froyo:ssh\"\n"
        );
        // Same match, other action.
        let state = json!({"rules": [found("input", 3, ssh_spec(22))]});
        let ops = diff(
            json!({"port": 22, "source": "10.0.0.0/8", "action": "reject"}),
            state,
        )
        .unwrap();
        assert_eq!(
            ops[0].summary,
            "reject tcp/22 from 10.0.0.0/8 (in), was allow tcp/22 from 10.0.0.0/8 (in)"
        );
        assert!(script(&ops[0]).contains("reject with tcp reset"));
    }

    #[test]
    fn unrecognized_rules_duplicates_and_moves_are_updates() {
        let state = json!({"rules": [
            {"name": "ssh", "chain": "input", "handle": 3, "spec": null, "unrecognized": "froyo does not write the statement {\"counter\":null}"},
            found("input", 9, ssh_spec(22)),
        ]});
        let ops = diff(json!({"port": 22, "source": "10.0.0.0/8"}), state).unwrap();
        assert_eq!(
            ops[0].summary,
            "allow tcp/22 from 10.0.0.0/8 (in), was a hand-edited rule (froyo does not write the statement {\"counter\":null}), and 1 duplicate removed"
        );
        assert_eq!(
            script(&ops[0]),
            "replace rule inet froyo input handle 3 ip saddr 10.0.0.0/8 tcp dport 22 accept comment \"froyo:ssh\"\n\
             delete rule inet froyo input handle 9\n"
        );
        // Direction in → out: the rule moves to the output chain.
        let state = json!({"rules": [found("input", 3, ssh_spec(22))]});
        let ops = diff(
            json!({"port": 22, "source": "10.0.0.0/8", "direction": "out"}),
            state,
        )
        .unwrap();
        assert_eq!(
            ops[0].summary,
            "allow tcp/22 to 10.0.0.0/8 (out), was allow tcp/22 from 10.0.0.0/8 (in)"
        );
        let s = script(&ops[0]);
        assert!(
            s.starts_with("delete rule inet froyo input handle 3\n"),
            "{s}"
        );
        assert!(s.ends_with("add rule inet froyo output ip daddr 10.0.0.0/8 tcp dport 22 accept comment \"froyo:ssh\"\n"), "{s}");
    }

    #[test]
    fn malformed_inputs_are_permanent_errors() {
        let e = diff(json!({"port": "9-1"}), Value::Null).unwrap_err();
        assert!(
            e.message.starts_with("ssh: invalid port range"),
            "{}",
            e.message
        );
        let e = diff(json!({"port": 1}), json!({"rules": 3})).unwrap_err();
        assert!(
            e.message.contains("malformed actual state"),
            "{}",
            e.message
        );
    }
}
