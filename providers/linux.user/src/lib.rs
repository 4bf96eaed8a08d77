//! The `linux.user` provider: local users, groups and SSH authorized keys on a Linux
//! target.
//!
//! `read` reads `/etc/passwd` and `/etc/group` once for the whole batch (plus
//! `/etc/shadow` once when a password hash is managed, and one `file.stat` and a
//! `file.read` per existing file for authorized keys), `diff` ([`plan`]) is pure, and
//! `apply` runs `useradd`/`usermod`/`userdel`, `groupadd`/`groupmod`/`groupdel` and
//! `chpasswd -e`, or writes `~/.ssh/authorized_keys` with file ops. The crate is also an
//! rlib so its unit tests run on the host target.

pub mod apply;
pub mod config;
pub mod plan;
pub mod read;
pub mod state;

use froyo_provider_sdk::{Actual, ApplyResult, Description, Operation, Provider, Resource, Result};

pub struct LinuxUser;

impl Provider for LinuxUser {
    fn describe() -> Description {
        Description {
            name: "linux.user".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            types: vec![
                config::USER.into(),
                config::GROUP.into(),
                config::AUTHORIZED_KEYS.into(),
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

froyo_provider_sdk::export_provider!(LinuxUser);
