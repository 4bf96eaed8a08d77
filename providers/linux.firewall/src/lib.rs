//! The `linux.firewall` provider: host firewall rules, kept in nftables.
//!
//! froyo owns the table `inet froyo` (base chains `input` and `output`, policy accept)
//! and marks each rule with the comment `froyo:NAME`, so other rules on the host are
//! never touched. `read` makes ONE `exec` per batch: it detects the active firewall
//! manager (ufw and firewalld are reported as unsupported yet) and lists the table as
//! JSON, which [`nft`] parses back into rules by meaning. `diff` ([`plan`]) is pure:
//! create, nothing, or an in-place replace of a hand-edited rule. `apply` pipes a
//! finished script to `nft -f -` (one transaction); `destroy` deletes the rule by handle.
//! The crate is also an rlib so its unit tests run on the host target.

pub mod apply;
pub mod backend;
pub mod config;
pub mod nft;
pub mod plan;
pub mod read;
pub mod state;

use froyo_provider_sdk::{Actual, ApplyResult, Description, Operation, Provider, Resource, Result};

pub struct LinuxFirewall;

impl Provider for LinuxFirewall {
    fn describe() -> Description {
        Description {
            name: "linux.firewall".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            types: vec![config::RULE.into()],
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

froyo_provider_sdk::export_provider!(LinuxFirewall);
