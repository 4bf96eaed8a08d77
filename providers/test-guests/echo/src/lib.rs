//! Test guest `test.echo`: proves that a declared capability (`runner:file`) reaches the
//! runner end to end. `read` describes each thing's path with one `file.stat` and returns
//! the runner's entries as the actual states; `diff` plans one `run` op that carries that
//! state, and `apply` hands it back as its output.

use froyo_provider_sdk::{
    Actual, ApplyResult, Description, Operation, Provider, Resource, Result, runner,
};
use serde::Deserialize;

const TYPE: &str = "test.echo::thing";

#[derive(Deserialize)]
struct Thing {
    name: String,
    path: Option<String>,
}

pub struct Echo;

impl Provider for Echo {
    fn describe() -> Description {
        Description {
            name: "test.echo".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            types: vec![TYPE.into()],
        }
    }

    fn read(resources: Vec<Resource>) -> Result<Vec<Actual>> {
        let paths = resources
            .iter()
            .map(|r| r.config::<Thing>().map(|t| t.path.unwrap_or(t.name)))
            .collect::<Result<Vec<String>>>()?;
        let entries = runner::stat(&paths)?;
        resources
            .into_iter()
            .zip(entries)
            .map(|(r, entry)| {
                Ok(Actual {
                    id: r.id,
                    state: serde_json::to_string(&entry)?,
                })
            })
            .collect()
    }

    fn diff(desired: Resource, actual: Actual) -> Result<Vec<Operation>> {
        Ok(vec![Operation {
            id: desired.id,
            type_name: desired.type_name,
            kind: "run".into(),
            summary: "echo the actual state".into(),
            diff: None,
            payload: actual.state,
        }])
    }

    fn apply(op: Operation) -> Result<ApplyResult> {
        Ok(ApplyResult {
            changed: false,
            output: op.payload,
        })
    }

    fn destroy(_resource: Resource) -> Result<ApplyResult> {
        Ok(ApplyResult {
            changed: false,
            output: "null".into(),
        })
    }
}

froyo_provider_sdk::export_provider!(Echo);
