//! Benchmark (run by hand): `bench/facts.sh`, or `cargo bench -p froyo --bench transport`.
//!
//! 1. `froyo facts` on 10 loopback sshd targets (cold: new connection, runner upload,
//!    one `facts.collect` each), 3 runs.
//! 2. 500 `file.stat` of small files through one SSH runner session: one batched command,
//!    500 sequential commands, and 500 concurrent commands.
//!
//! Reports wall time, round trips and CPU. Target CPU is measured as the peers' baseline
//! measured it (`../shared/research/peers.md` §3.3): the growth of `cutime+cstime` of the
//! sshd listener processes, i.e. all reaped target-side work.

// A benchmark report is its output.
#![allow(clippy::print_stdout)]

#[path = "../tests/it/netns.rs"]
#[allow(dead_code)]
mod netns;
#[path = "../tests/it/sshd.rs"]
#[allow(dead_code)]
mod sshd;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use froyo::inventory::Inventory;
use froyo::transport::Connector;
use serde_json::json;

const TICKS: f64 = 100.0; // USER_HZ on Linux

/// utime, stime, cutime, cstime of a process, in seconds.
fn cpu(pid: u32) -> [f64; 4] {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields after the command: state=0 … utime=11 stime=12 cutime=13 cstime=14.
    [f[11] / TICKS, f[12] / TICKS, f[13] / TICKS, f[14] / TICKS]
}

fn target_cpu(pids: &[u32]) -> f64 {
    pids.iter().map(|&p| cpu(p)[2] + cpu(p)[3]).sum()
}

fn own_children_cpu() -> f64 {
    let c = cpu(std::process::id());
    c[2] + c[3]
}

fn main() {
    let whoami = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let project = sshd::Project::new(&dir.path().join("project"));
    let servers: Vec<sshd::Sshd> = (0..10)
        .map(|i| sshd::Sshd::start(&dir.path().join(format!("s{i}")), &project.public_key()))
        .collect();
    let names: Vec<String> = (1..=10).map(|i| format!("t{i:02}")).collect();
    let named: Vec<(&str, &sshd::Sshd)> = names
        .iter()
        .map(String::as_str)
        .zip(servers.iter())
        .collect();
    project.inventory(&named, &whoami);
    project.trust(&servers.iter().collect::<Vec<_>>());
    let pids: Vec<u32> = servers.iter().map(|s| s.pid()).collect();

    println!("== froyo facts on 10 loopback sshd targets (cold runs) ==");
    for run in 1..=3 {
        let (t0, c0, ctl0) = (Instant::now(), target_cpu(&pids), own_children_cpu());
        let out = Command::new(env!("CARGO_BIN_EXE_froyo"))
            .args(["facts", "--on", "name~t*", "--json"])
            .current_dir(&project.root)
            .output()
            .unwrap();
        let wall = t0.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300)); // let sshd reap its sessions
        println!(
            "run {run}: wall {:.3}s, controller CPU {:.2}s, target CPU {:.2}s, round trips per host: 1 exec (bootstrap) + 1 facts.collect + 1 exit",
            wall.as_secs_f64(),
            own_children_cpu() - ctl0,
            target_cpu(&pids) - c0
        );
    }

    println!("\n== 500 file.stat of small files through one SSH session ==");
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let paths: Vec<String> = (0..500)
        .map(|i| {
            let p = files.join(format!("f{i:03}.txt"));
            std::fs::write(&p, format!("small file {i}\n")).unwrap();
            p.display().to_string()
        })
        .collect();
    let inv = Inventory::load(&project.root, &Default::default()).unwrap();
    let target = inv
        .targets
        .iter()
        .find(|t| t.name == "t01")
        .unwrap()
        .clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let timeout = Duration::from_secs(120);
    for mode in [
        "1 batched command (500 paths)",
        "500 sequential commands",
        "500 concurrent commands",
    ] {
        let c0 = target_cpu(&pids[..1]);
        let (wall, trips) = rt.block_on(async {
            let session = Arc::new(
                Connector::at_root(&project.root)
                    .open(&target, false)
                    .await
                    .unwrap(),
            );
            let t0 = Instant::now();
            match mode.chars().next() {
                Some('1') => {
                    let r = session
                        .call("file.stat", json!({"paths": paths}), timeout)
                        .await
                        .unwrap();
                    assert_eq!(r["stats"].as_array().unwrap().len(), 500);
                }
                _ if mode.contains("sequential") => {
                    for p in &paths {
                        session
                            .call("file.stat", json!({"paths": [p]}), timeout)
                            .await
                            .unwrap();
                    }
                }
                _ => {
                    let mut set = tokio::task::JoinSet::new();
                    for p in paths.clone() {
                        let s = session.clone();
                        set.spawn(async move {
                            s.call("file.stat", json!({"paths": [p]}), timeout)
                                .await
                                .map(|_| ())
                        });
                    }
                    while let Some(r) = set.join_next().await {
                        r.unwrap().unwrap();
                    }
                }
            }
            let wall = t0.elapsed();
            let trips = session.round_trips();
            if let Ok(s) = Arc::try_unwrap(session) {
                s.close().await;
            }
            (wall, trips)
        });
        std::thread::sleep(Duration::from_millis(300));
        println!(
            "{mode}: wall {:.1} ms, {trips} round trips, target CPU of the whole session (incl. connect + upload) {:.2}s",
            wall.as_secs_f64() * 1000.0,
            target_cpu(&pids[..1]) - c0
        );
    }
}
