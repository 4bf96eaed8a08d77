//! The `linux.file` provider: regular files, directories and symlinks on a Linux target,
//! through the runner's file ops (and `exec` for `validate` and `chown`).
//!
//! `read` describes a batch of paths, `diff` ([`plan`]) compares them with the configs and
//! is pure, `apply` carries out the chosen payload. The crate is also an rlib so its unit
//! tests run on the host target.

pub mod apply;
pub mod block;
pub mod config;
pub mod line;
pub mod plan;
pub mod read;
pub mod state;

use froyo_provider_sdk::{Actual, ApplyResult, Description, Operation, Provider, Resource, Result};

pub struct LinuxFile;

impl Provider for LinuxFile {
    fn describe() -> Description {
        Description {
            name: "linux.file".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            types: vec![
                config::FILE.into(),
                config::DIRECTORY.into(),
                config::SYMLINK.into(),
                config::LINE.into(),
                config::BLOCK.into(),
            ],
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

froyo_provider_sdk::export_provider!(LinuxFile);
