//! Test guest `test.spin`: its `read` never returns, so the host's fuel or epoch deadline
//! must stop it. Every other export answers at once.

use froyo_provider_sdk::{Actual, ApplyResult, Description, Operation, Provider, Resource, Result};

pub struct Spin;

impl Provider for Spin {
    fn describe() -> Description {
        Description {
            name: "test.spin".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            types: vec!["test.spin::thing".into()],
        }
    }

    fn read(_resources: Vec<Resource>) -> Result<Vec<Actual>> {
        // black_box keeps the optimizer from proving anything about the loop.
        let mut n: u64 = 0;
        loop {
            n = core::hint::black_box(n.wrapping_add(1));
        }
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

froyo_provider_sdk::export_provider!(Spin);
