//! The `linux.net` provider: files downloaded over HTTP(S) onto a Linux target and
//! checked against their sha256 (`linux.net::download`), and archives on the target
//! unpacked into a directory (`linux.archive::extract`).
//!
//! The runner has no HTTP client, so downloads run the target's curl (or wget) through
//! `exec`; archives are unpacked with tar or unzip. `read` looks at a whole batch with
//! one hashed `file.stat`, `diff` ([`plan`]) is pure, `apply` carries out the payload.
//! The crate is also an rlib so its unit tests run on the host target.

pub mod apply;
pub mod config;
pub mod fetch;
pub mod marker;
pub mod plan;
pub mod read;
pub mod state;
pub mod unpack;

use froyo_provider_sdk::{Actual, ApplyResult, Description, Operation, Provider, Resource, Result};

pub struct LinuxNet;

impl Provider for LinuxNet {
    fn describe() -> Description {
        Description {
            name: "linux.net".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            types: vec![config::DOWNLOAD.into(), config::EXTRACT.into()],
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

froyo_provider_sdk::export_provider!(LinuxNet);
