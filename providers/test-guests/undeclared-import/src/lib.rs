//! Test guest `test.undeclared-import`: declares no capability, yet its `read` calls the
//! runner's `exec`. The host must refuse the import with a clear error; the guest only
//! passes on whatever it gets back.

use froyo_provider_sdk::runner::{self, ExecArgs};
use froyo_provider_sdk::{Actual, ApplyResult, Description, Operation, Provider, Resource, Result};

pub struct UndeclaredImport;

impl Provider for UndeclaredImport {
    fn describe() -> Description {
        Description {
            name: "test.undeclared-import".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            types: vec!["test.undeclared-import::thing".into()],
        }
    }

    fn read(resources: Vec<Resource>) -> Result<Vec<Actual>> {
        let result = runner::exec(&ExecArgs::argv(["id", "-u"]))?;
        let state = serde_json::to_string(&result.stdout)?;
        Ok(resources
            .into_iter()
            .map(|r| Actual {
                id: r.id,
                state: state.clone(),
            })
            .collect())
    }

    fn diff(_desired: Resource, _actual: Actual) -> Result<Vec<Operation>> {
        Ok(Vec::new())
    }

    fn apply(_op: Operation) -> Result<ApplyResult> {
        Ok(ApplyResult {
            changed: false,
            output: "null".into(),
        })
    }

    fn destroy(_resource: Resource) -> Result<ApplyResult> {
        Ok(ApplyResult {
            changed: false,
            output: "null".into(),
        })
    }
}

froyo_provider_sdk::export_provider!(UndeclaredImport);
