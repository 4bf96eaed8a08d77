//! The `linux.pkg` provider: system packages through the target's package manager (apt,
//! dnf, yum, zypper, apk).
//!
//! `read` runs ONE shell script per batch that detects the manager for `auto` and asks
//! it what is installed and what it could install ([`read`]), `diff` ([`plan`]) is pure
//! and plans one transaction per resource, and `apply` runs the manager's commands
//! ([`manager::commands`]). apt/dpkg is exercised end to end by the integration tests;
//! the other managers' queries and commands are unit-tested on recorded outputs. The
//! crate is also an rlib so its unit tests run on the host target.

pub mod apk;
pub mod apply;
pub mod apt;
pub mod config;
pub mod manager;
pub mod plan;
pub mod read;
pub mod rpm;
pub mod state;
pub mod version;

use froyo_provider_sdk::{Actual, ApplyResult, Description, Operation, Provider, Resource, Result};

/// What one manager query found, by the names a user may write (`name`, and `name:arch`
/// for apt or `name.arch` for rpm).
pub type Found = std::collections::BTreeMap<String, state::Info>;

pub struct LinuxPkg;

impl Provider for LinuxPkg {
    fn describe() -> Description {
        Description {
            name: "linux.pkg".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            types: vec![config::PACKAGE.into()],
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

froyo_provider_sdk::export_provider!(LinuxPkg);
