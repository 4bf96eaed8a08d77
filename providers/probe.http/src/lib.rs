//! The `probe.http` provider: an HTTP check that passes or fails, for smoke tests after a
//! change. It never changes anything.
//!
//! `read` does not touch the network (the service may only come up during the apply), so
//! `diff` always plans one `check` op and `apply` makes the request: from the target
//! with `curl` (or `wget`), or from the controller through the host's `http` import. A
//! failed check is a `transient` error, so the engine's `retry`/`timeout` keywords can
//! wait for a service that is still starting.

pub mod check;

use froyo_provider_sdk::{Actual, ApplyResult, Description, Operation, Provider, Resource, Result};

use check::Check;

pub struct ProbeHttp;

pub const CHECK: &str = "probe.http::check";

impl Provider for ProbeHttp {
    fn describe() -> Description {
        Description {
            name: "probe.http".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            types: vec![CHECK.into()],
        }
    }

    fn read(resources: Vec<Resource>) -> Result<Vec<Actual>> {
        // Configs are parsed here so a bad one (e.g. an invalid regex) fails the plan.
        resources
            .into_iter()
            .map(|r| {
                Check::parse(&r)?;
                Ok(Actual {
                    id: r.id,
                    state: "null".into(),
                })
            })
            .collect()
    }

    fn diff(desired: Resource, _actual: Actual) -> Result<Vec<Operation>> {
        let check = Check::parse(&desired)?;
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
        let response = check.request()?;
        check.verify(&response).map_err(|e| e.context(&op.id))?;
        Ok(ApplyResult {
            changed: false,
            output: serde_json::json!({"status": response.status}).to_string(),
        })
    }

    fn destroy(_resource: Resource) -> Result<ApplyResult> {
        Ok(ApplyResult {
            changed: false,
            output: "{}".into(),
        })
    }
}

froyo_provider_sdk::export_provider!(ProbeHttp);
