//! Benchmark (run by hand): `cargo bench -p froyo --bench providers`.
//!
//! Provider call overhead for 10,000 `linux.file::file` resources through the local
//! runner: one batched `read` (one fresh instance, one `file.stat` round trip for all),
//! then one `diff` per resource (a fresh instance each), and a bare instantiate+describe
//! for comparison.

// A benchmark report is its output.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use froyo::inventory::Inventory;
use froyo::provider_host::{Limits, ProviderHost, Resource};
use froyo::transport::Connector;
use serde_json::json;

const N: usize = 10_000;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let resources: Vec<Resource> = (0..N)
        .map(|i| {
            let path = dir.path().join(format!("f{i:05}"));
            std::fs::write(&path, format!("content {i}\n")).unwrap();
            Resource {
                id: format!("linux.file::file[{}]", path.display()),
                type_name: "linux.file::file".into(),
                config: json!({"path": path.display().to_string(), "content": format!("content {i}\n"), "state": "file", "backup": false}).to_string(),
            }
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let inv = Inventory::local_only(&Default::default());
    let session = Arc::new(
        rt.block_on(Connector::at_root(Path::new("/tmp")).open(&inv.targets[0], false))
            .unwrap(),
    );
    let t = Instant::now();
    let mut host = ProviderHost::builtin(Limits::default(), None).unwrap();
    println!(
        "load built-in providers (compile, no cache): {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    host.runtime = Some(rt.handle().clone());

    for round in 1..=3 {
        let t = Instant::now();
        for _ in 0..1000 {
            host.describe("linux.file").unwrap();
        }
        let inst = t.elapsed().as_secs_f64() / 1000.0;
        let t = Instant::now();
        let actual = host
            .read("linux.file", Some(session.clone()), &resources)
            .unwrap();
        let read = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut ops = 0;
        for (r, a) in resources.iter().zip(&actual) {
            ops += host.diff("linux.file", r, a).unwrap().len();
        }
        let diff = t.elapsed().as_secs_f64();
        assert_eq!(ops, 0, "files are in sync");
        println!(
            "round {round}: instantiate+describe {:.1} µs; read of {N} in one call {:.0} ms ({:.1} µs/resource, {} runner round trips so far); \
             {N} diffs {:.0} ms ({:.1} µs/resource); instantiate+read+diff {:.1} µs/resource",
            inst * 1e6,
            read * 1e3,
            read * 1e6 / N as f64,
            session.round_trips(),
            diff * 1e3,
            diff * 1e6 / N as f64,
            (read + diff) * 1e6 / N as f64
        );
    }
}
