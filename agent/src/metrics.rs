//! `GET /metrics`: Prometheus text exposition, computed on scrape (idle costs nothing):
//! plan and component state, readiness, restarts, rollbacks, deploys and their last
//! duration, artifact downloads and verify failures, per-process CPU and RSS of each
//! component (from `/proc`), and the agent's own.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::agent::Agent;

/// `(cpu seconds, rss bytes)` of a process, from `/proc/<pid>/stat`.
pub fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit(')').next()?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command, 0-based: 11 utime, 12 stime, 21 rss (pages).
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let rss: u64 = f.get(21)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let (tck, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    Some((
        (utime + stime) / tck.max(1) as f64,
        rss * page.max(1) as u64,
    ))
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

pub fn render(agent: &Agent) -> String {
    let mut o = String::with_capacity(4096);
    let c = &agent.counters;
    family(&mut o, "froyo_agent_info", "gauge", "The agent's version.");
    let _ = writeln!(
        o,
        "froyo_agent_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    family(
        &mut o,
        "froyo_agent_uptime_seconds",
        "gauge",
        "Seconds since the agent started.",
    );
    let _ = writeln!(
        o,
        "froyo_agent_uptime_seconds {:.3}",
        agent.started.elapsed().as_secs_f64()
    );
    family(
        &mut o,
        "froyo_plan_status",
        "gauge",
        "1 for the plan's current status.",
    );
    let _ = writeln!(
        o,
        "froyo_plan_status{{status=\"{}\"}} 1",
        agent.status_str()
    );
    let comps = agent.components();
    family(
        &mut o,
        "froyo_component_state",
        "gauge",
        "1 for each component's current state.",
    );
    for x in &comps {
        let _ = writeln!(
            o,
            "froyo_component_state{{name=\"{}\",version=\"{}\",state=\"{}\"}} 1",
            x.name, x.version, x.state
        );
    }
    family(
        &mut o,
        "froyo_component_ready",
        "gauge",
        "1 when the component passed its health check since it started.",
    );
    for x in &comps {
        let _ = writeln!(
            o,
            "froyo_component_ready{{name=\"{}\"}} {}",
            x.name,
            u8::from(x.ready)
        );
    }
    family(
        &mut o,
        "froyo_component_restarts_total",
        "counter",
        "Restarts of the component's process.",
    );
    for x in &comps {
        let _ = writeln!(
            o,
            "froyo_component_restarts_total{{name=\"{}\"}} {}",
            x.name, x.restarts
        );
    }
    family(
        &mut o,
        "froyo_component_crash_loop",
        "gauge",
        "1 while the component exits repeatedly (5 times in 60 s).",
    );
    for x in &comps {
        let _ = writeln!(
            o,
            "froyo_component_crash_loop{{name=\"{}\"}} {}",
            x.name,
            u8::from(x.crash_loop)
        );
    }
    family(
        &mut o,
        "froyo_component_probe_failures_total",
        "counter",
        "Failed health probes.",
    );
    for x in &comps {
        let _ = writeln!(
            o,
            "froyo_component_probe_failures_total{{name=\"{}\"}} {}",
            x.name, x.probe_failures_total
        );
    }
    family(
        &mut o,
        "froyo_component_log_bytes_total",
        "counter",
        "Bytes the component wrote to stdout and stderr.",
    );
    for x in &comps {
        let _ = writeln!(
            o,
            "froyo_component_log_bytes_total{{name=\"{}\"}} {}",
            x.name, x.log_bytes_total
        );
    }
    let usage: Vec<_> = comps
        .iter()
        .filter_map(|x| x.pid.and_then(proc_usage).map(|u| (x.name.as_str(), u)))
        .collect();
    family(
        &mut o,
        "froyo_component_cpu_seconds_total",
        "counter",
        "CPU time of the component's main process.",
    );
    for (n, (cpu, _)) in &usage {
        let _ = writeln!(
            o,
            "froyo_component_cpu_seconds_total{{name=\"{n}\"}} {cpu:.2}"
        );
    }
    family(
        &mut o,
        "froyo_component_memory_rss_bytes",
        "gauge",
        "Resident memory of the component's main process.",
    );
    for (n, (_, rss)) in &usage {
        let _ = writeln!(o, "froyo_component_memory_rss_bytes{{name=\"{n}\"}} {rss}");
    }
    family(
        &mut o,
        "froyo_rollbacks_total",
        "counter",
        "Applies rolled back because a component did not become healthy.",
    );
    let _ = writeln!(
        o,
        "froyo_rollbacks_total {}",
        c.rollbacks.load(Ordering::Relaxed)
    );
    family(
        &mut o,
        "froyo_deploys_total",
        "counter",
        "Applies by result.",
    );
    let _ = writeln!(
        o,
        "froyo_deploys_total{{result=\"ok\"}} {}",
        c.deploys_ok.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        o,
        "froyo_deploys_total{{result=\"failed\"}} {}",
        c.deploys_failed.load(Ordering::Relaxed)
    );
    family(
        &mut o,
        "froyo_deploy_duration_seconds",
        "gauge",
        "Duration of the last successful apply.",
    );
    let _ = writeln!(
        o,
        "froyo_deploy_duration_seconds {:.3}",
        c.last_deploy_ms.load(Ordering::Relaxed) as f64 / 1000.0
    );
    family(
        &mut o,
        "froyo_artifact_verify_failures_total",
        "counter",
        "Artifacts refused: sha256, size or signature mismatch, or no signature where one is required.",
    );
    let _ = writeln!(
        o,
        "froyo_artifact_verify_failures_total {}",
        c.verify_failures.load(Ordering::Relaxed)
    );
    family(
        &mut o,
        "froyo_artifact_downloads_total",
        "counter",
        "Artifacts downloaded (not served from the verified cache).",
    );
    let _ = writeln!(
        o,
        "froyo_artifact_downloads_total {}",
        c.downloads.load(Ordering::Relaxed)
    );
    family(
        &mut o,
        "froyo_artifact_download_bytes_total",
        "counter",
        "Bytes of artifacts downloaded.",
    );
    let _ = writeln!(
        o,
        "froyo_artifact_download_bytes_total {}",
        c.download_bytes.load(Ordering::Relaxed)
    );
    family(
        &mut o,
        "froyo_documents_applied_total",
        "counter",
        "Desired-state documents accepted and applied (pull mode).",
    );
    let _ = writeln!(
        o,
        "froyo_documents_applied_total {}",
        c.documents_applied.load(Ordering::Relaxed)
    );
    family(
        &mut o,
        "froyo_documents_refused_total",
        "counter",
        "Desired-state documents refused, by reason (signature, format, replay, expired).",
    );
    {
        let refused = c.documents_refused.lock().unwrap();
        for reason in ["signature", "format", "replay", "expired"] {
            let _ = writeln!(
                o,
                "froyo_documents_refused_total{{reason=\"{reason}\"}} {}",
                refused.get(reason).copied().unwrap_or(0)
            );
        }
    }
    if let Some(seq) = agent.pull.lock().unwrap().sequence {
        family(
            &mut o,
            "froyo_document_sequence",
            "gauge",
            "Sequence of the desired-state document in effect.",
        );
        let _ = writeln!(o, "froyo_document_sequence {seq}");
    }
    if let Some((cpu, rss)) = proc_usage(std::process::id()) {
        family(
            &mut o,
            "process_cpu_seconds_total",
            "counter",
            "CPU time of the agent.",
        );
        let _ = writeln!(o, "process_cpu_seconds_total {cpu:.2}");
        family(
            &mut o,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory of the agent.",
        );
        let _ = writeln!(o, "process_resident_memory_bytes {rss}");
    }
    o
}
