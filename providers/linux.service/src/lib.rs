//! The `linux.service` provider: system services under systemd when it runs on the
//! target, else OpenRC, else sysvinit init scripts.
//!
//! `read` finds the init system and every unit's state in ONE `exec` for the batch,
//! `diff` ([`plan`]) is pure and plans `start`/`stop`/`enable`/`disable` ops (or one
//! `run` op for a restart or reload handler), and `apply` runs each with the init
//! system's own tool. The crate is also an rlib so its unit tests run on the host target.

pub mod apply;
pub mod config;
pub mod plan;
pub mod read;
pub mod state;

use froyo_provider_sdk::{Actual, ApplyResult, Description, Operation, Provider, Resource, Result};

pub struct LinuxService;

impl Provider for LinuxService {
    fn describe() -> Description {
        Description {
            name: "linux.service".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            types: vec![config::SERVICE.into()],
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

froyo_provider_sdk::export_provider!(LinuxService);
