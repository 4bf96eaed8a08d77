//! The `probe.tcp` provider: a TCP connection that must succeed, for waiting on ports. It
//! never changes anything.
//!
//! Like `probe.http`, `read` does not touch the network and `diff` always plans one
//! `check` op; `apply` connects from the target (the runner's `net.connect`) or from the
//! controller (the host's `net` import). A failed connection is `transient`, so the
//! engine's `retry`/`timeout` keywords can wait for a port that is still opening.

use froyo_provider_sdk::runner::{self, ConnectArgs};
use froyo_provider_sdk::{
    Actual, ApplyResult, Description, Operation, Provider, ProviderError, Resource, Result, net,
};
use serde::Deserialize;

pub const CHECK: &str = "probe.tcp::check";

/// Milliseconds one connection attempt may take.
const CONNECT_TIMEOUT_MS: u32 = 5000;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunFrom {
    Target,
    Controller,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Check {
    pub host: String,
    pub port: u16,
    pub run_from: RunFrom,
}

impl Check {
    pub fn from_json(id: &str, json: &str) -> Result<Check> {
        serde_json::from_str(json)
            .map_err(|e| ProviderError::permanent(format!("invalid config for `{id}`: {e}")))
    }

    /// One line for the plan.
    pub fn summary(&self) -> String {
        let from = match self.run_from {
            RunFrom::Target => "target",
            RunFrom::Controller => "controller",
        };
        format!("connect to {}:{} (from the {from})", self.host, self.port)
    }

    /// Connects; the milliseconds it took.
    fn connect(&self) -> Result<u64> {
        match self.run_from {
            RunFrom::Controller => {
                net::tcp_connect(&self.host, self.port, CONNECT_TIMEOUT_MS).map(u64::from)
            }
            RunFrom::Target => {
                let r = runner::net_connect(&ConnectArgs {
                    host: self.host.clone(),
                    port: self.port,
                    timeout_ms: Some(u64::from(CONNECT_TIMEOUT_MS)),
                })?;
                verdict(&self.host, self.port, &r).map(|()| r.duration_ms)
            }
        }
    }
}

/// A connection that did not succeed is a transient failure with the target's reason.
pub fn verdict(host: &str, port: u16, r: &runner::ConnectResult) -> Result<()> {
    if r.connected {
        return Ok(());
    }
    Err(ProviderError::transient(format!(
        "connect {host}:{port} from the target: {}",
        r.error.as_deref().unwrap_or("failed")
    )))
}

pub struct ProbeTcp;

impl Provider for ProbeTcp {
    fn describe() -> Description {
        Description {
            name: "probe.tcp".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            types: vec![CHECK.into()],
        }
    }

    fn read(resources: Vec<Resource>) -> Result<Vec<Actual>> {
        resources
            .into_iter()
            .map(|r| {
                Check::from_json(&r.id, &r.config)?;
                Ok(Actual {
                    id: r.id,
                    state: "null".into(),
                })
            })
            .collect()
    }

    fn diff(desired: Resource, _actual: Actual) -> Result<Vec<Operation>> {
        let check = Check::from_json(&desired.id, &desired.config)?;
        Ok(vec![Operation {
            id: desired.id,
            type_name: desired.type_name,
            kind: "check".into(),
            summary: check.summary(),
            diff: None,
            payload: desired.config,
        }])
    }

    fn apply(op: Operation) -> Result<ApplyResult> {
        let check = Check::from_json(&op.id, &op.payload)?;
        let ms = check.connect().map_err(|e| e.context(&op.id))?;
        Ok(ApplyResult {
            changed: false,
            output: serde_json::json!({"duration_ms": ms}).to_string(),
        })
    }

    fn destroy(_resource: Resource) -> Result<ApplyResult> {
        Ok(ApplyResult {
            changed: false,
            output: "{}".into(),
        })
    }
}

froyo_provider_sdk::export_provider!(ProbeTcp);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_summary_and_verdict() {
        let c = Check::from_json(
            "db",
            r#"{"name":"db","host":"10.0.1.11","port":5432,"run_from":"controller"}"#,
        )
        .unwrap();
        assert_eq!(
            c.summary(),
            "connect to 10.0.1.11:5432 (from the controller)"
        );
        let refused = runner::ConnectResult {
            connected: false,
            address: None,
            error: Some("127.0.0.1:1: Connection refused (os error 111)".into()),
            duration_ms: 0,
        };
        let e = verdict("localhost", 1, &refused).unwrap_err();
        assert_eq!(e.class, froyo_provider_sdk::ErrorClass::Transient);
        assert!(e.message.contains("Connection refused"), "{}", e.message);
        assert!(
            verdict(
                "x",
                1,
                &runner::ConnectResult {
                    connected: true,
                    ..refused
                }
            )
            .is_ok()
        );
        assert!(Check::from_json("x", r#"{"host":"h"}"#).is_err());
    }
}
