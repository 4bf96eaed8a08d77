//! Test guest `test.memory-bomb`: its `read` allocates 1 MiB chunks without end and
//! writes to every page of each, so the host's memory limit must stop it. Every other
//! export answers at once.

use froyo_provider_sdk::{Actual, ApplyResult, Description, Operation, Provider, Resource, Result};

const CHUNK: usize = 1 << 20;
const PAGE: usize = 4096;

pub struct MemoryBomb;

impl Provider for MemoryBomb {
    fn describe() -> Description {
        Description {
            name: "test.memory-bomb".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            types: vec!["test.memory-bomb::thing".into()],
        }
    }

    fn read(_resources: Vec<Resource>) -> Result<Vec<Actual>> {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut chunk = vec![0u8; CHUNK];
            for (i, byte) in chunk.iter_mut().enumerate().step_by(PAGE) {
                *byte = (i / PAGE) as u8 | 1;
            }
            chunks.push(core::hint::black_box(chunk));
            core::hint::black_box(&mut chunks);
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

froyo_provider_sdk::export_provider!(MemoryBomb);
