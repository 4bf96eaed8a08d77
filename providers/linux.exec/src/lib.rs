//! The `linux.exec` provider: commands run on the target, made idempotent by guards
//! (`creates`, `removes`, `unless`).
//!
//! `read` evaluates every command's guard without changing anything (one `file.stat` for
//! all `creates`/`removes` paths of the batch, plus the `unless` checks), `diff`
//! ([`plan`]) is pure and plans a `run` unless the guard says the command is done, and
//! `apply` runs it. The crate is also an rlib so its unit tests run on the host target.

pub mod apply;
pub mod config;
pub mod plan;
pub mod read;
pub mod state;

use froyo_provider_sdk::{Actual, ApplyResult, Description, Operation, Provider, Resource, Result};

pub struct LinuxExec;

impl Provider for LinuxExec {
    fn describe() -> Description {
        Description {
            name: "linux.exec".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            types: vec![config::COMMAND.into()],
        }
    }

    fn read(resources: Vec<Resource>) -> Result<Vec<Actual>> {
        read::read(resources)
    }

    fn diff(desired: Resource, actual: Actual) -> Result<Vec<Operation>> {
        plan::plan(&desired, &actual)
    }

    fn apply(op: Operation) -> Result<ApplyResult> {
        apply::apply(&op)
    }

    fn destroy(resource: Resource) -> Result<ApplyResult> {
        apply::destroy(&resource)
    }
}

froyo_provider_sdk::export_provider!(LinuxExec);
