//! `froyo agent`, end to end: the real agent binary (extracted from `froyo` and exec'd)
//! applies Keystone-format plans whose components are real processes (`svc.py` in
//! `tests/fixtures/agent/`), downloading their artifacts from a loopback HTTP server
//! with fault injection. Start order is proven by the components' own timestamps.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::agent_harness::{
    AgentProc, ArtifactServer, Fault, RecipeSpec, alive, free_port, http, pgrp, sha256, stamps,
    wait_for,
};
use crate::repo;

fn svc() -> Vec<u8> {
    std::fs::read(repo().join("tests/fixtures/agent/svc.py")).unwrap()
}

/// Writes recipes `db` (file probe), `cache` (tcp probe, needs db) and `api` (http
/// probe, needs cache) with api at `api_version` (its artifact at `/svc-<version>.py`),
/// and the plan `plan` naming them.
fn three_tier(
    dir: &Path,
    server: &ArtifactServer,
    plan: &str,
    api_version: &str,
    api_env: &[(&str, &str)],
    api_port: u16,
    cache_port: u16,
) {
    let body = svc();
    let sha = sha256(&body);
    std::fs::create_dir_all(dir.join("recipes")).unwrap();
    let url = server.url("/svc.py");
    let db = RecipeSpec {
        name: "com.test.db",
        version: "1.0.0",
        deps: &[],
        artifact_url: &url,
        artifact_path: "/svc.py",
        sha256: &sha,
        mode: "file",
        port: 0,
        delay: "0.3",
        health: Some("cmd:test -f ready".into()),
        restart: "always",
        env: &[],
    };
    let cache_health = format!("tcp://127.0.0.1:{cache_port}");
    let cache = RecipeSpec {
        name: "com.test.cache",
        deps: &[("com.test.db", "1.0.0")],
        mode: "tcp",
        port: cache_port,
        health: Some(cache_health),
        ..db_like(&db)
    };
    let api_url = format!("/svc-{api_version}.py");
    server.put(&api_url, &body);
    let api_full = server.url(&api_url);
    let api = RecipeSpec {
        name: "com.test.api",
        version: api_version,
        deps: &[("com.test.cache", ">=1.0.0, <2")],
        artifact_url: &api_full,
        artifact_path: &api_url,
        mode: "http",
        port: api_port,
        health: Some(format!("http://127.0.0.1:{api_port}/healthz")),
        env: api_env,
        ..db_like(&db)
    };
    std::fs::write(dir.join("recipes/db.toml"), db.toml()).unwrap();
    std::fs::write(dir.join("recipes/cache.toml"), cache.toml()).unwrap();
    std::fs::write(
        dir.join(format!("recipes/api-{api_version}.toml")),
        api.toml(),
    )
    .unwrap();
    std::fs::write(
        dir.join(plan),
        format!(
            "[[components]]\nname = \"api\"\nrecipe = \"recipes/api-{api_version}.toml\"\n\n[[components]]\nname = \"cache\"\nrecipe = \"recipes/cache.toml\"\n\n[[components]]\nname = \"db\"\nrecipe = \"recipes/db.toml\"\n"
        ),
    )
    .unwrap();
}

fn db_like<'a>(r: &RecipeSpec<'a>) -> RecipeSpec<'a> {
    RecipeSpec {
        name: r.name,
        version: r.version,
        deps: r.deps,
        artifact_url: r.artifact_url,
        artifact_path: r.artifact_path,
        sha256: r.sha256,
        mode: r.mode,
        port: r.port,
        delay: r.delay,
        health: r.health.clone(),
        restart: r.restart,
        env: r.env,
    }
}

fn stamp(st: &[(String, String, u128, u64)], name: &str, what: &str) -> u128 {
    st.iter()
        .rev()
        .find(|(n, w, _, _)| n == name && w == what)
        .unwrap_or_else(|| panic!("no `{name} {what}` stamp in {st:?}"))
        .2
}

#[test]
fn agent_starts_a_dag_in_dependency_order_and_stops_it_in_reverse() {
    let dir = tempfile::tempdir().unwrap();
    let server = ArtifactServer::start();
    server.put("/svc.py", &svc());
    let (api_port, cache_port) = (free_port(), free_port());
    three_tier(
        dir.path(),
        &server,
        "plan.toml",
        "1.0.0",
        &[],
        api_port,
        cache_port,
    );
    let agent = AgentProc::start(dir.path(), &dir.path().join("data"));

    // `froyo agent serve` exec'd the embedded agent: the process is the agent itself.
    let exe = std::fs::read_link(format!("/proc/{}/exe", agent.pid())).unwrap();
    let exe_name = exe.file_name().unwrap().to_string_lossy().into_owned();
    assert!(exe_name.starts_with("froyo-agent-"), "{exe:?}");
    assert!(exe.starts_with(dir.path().join("data/bin")), "{exe:?}");

    let run = agent.cli(&["apply", "plan.toml"]);
    assert_eq!(
        run.code,
        0,
        "{}\n{}\n{}",
        run.stdout,
        run.stderr,
        agent.stderr()
    );
    assert!(run.stdout.contains(": running"), "{}", run.stdout);

    // Each layer started only once the one before it was healthy.
    let st = stamps(dir.path());
    assert!(
        stamp(&st, "db", "ready") <= stamp(&st, "cache", "start"),
        "{st:?}"
    );
    assert!(
        stamp(&st, "cache", "ready") <= stamp(&st, "api", "start"),
        "{st:?}"
    );

    let comps = agent.components();
    assert_eq!(comps.len(), 3);
    for name in ["db", "cache", "api"] {
        let c = &comps[name];
        assert_eq!(c["state"], "running", "{c}");
        assert_eq!(c["ready"], true, "{c}");
        assert_eq!(c["lastHealth"], "healthy", "{c}");
        let pid = c["pid"].as_u64().unwrap();
        // Its own process group, led by the component.
        assert_eq!(pgrp(pid), Some(pid), "{name}");
    }
    let graph = agent.get_json("/v1/plan/graph");
    assert_eq!(
        graph["layers"],
        serde_json::json!([["db"], ["cache"], ["api"]]),
        "{graph}"
    );
    let run = agent.cli(&["graph"]);
    assert!(
        run.stdout
            .contains("layer 1: db\nlayer 2: cache\nlayer 3: api\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("db -> cache (hard)"), "{}", run.stdout);

    // Keystone's layout: the install script copied from ../../../artifacts/….
    let data = dir.path().join("data");
    assert!(data.join("artifacts/com.test.db/1.0.0/svc.py").is_file());
    assert!(data.join("components/com.test.db/1.0.0/svc.py").is_file());
    assert!(
        data.join("components/com.test.db/1.0.0/.installed")
            .is_file()
    );

    let pids: Vec<u64> = ["db", "cache", "api"]
        .iter()
        .map(|n| comps[*n]["pid"].as_u64().unwrap())
        .collect();
    let run = agent.cli(&["stop-plan"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("stop: api, cache, db"),
        "{}",
        run.stdout
    );
    for pid in pids {
        assert!(!alive(pid), "{pid} still runs after stop-plan");
    }
    let status = agent.get_json("/v1/plan/status");
    assert_eq!(status["status"], "stopped", "{status}");
    agent.terminate();
}

#[test]
fn agent_refuses_an_unknown_recipe_key_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = ArtifactServer::start();
    server.put("/svc.py", &svc());
    three_tier(
        dir.path(),
        &server,
        "plan.toml",
        "1.0.0",
        &[],
        free_port(),
        free_port(),
    );
    let db = std::fs::read_to_string(dir.path().join("recipes/db.toml")).unwrap();
    let line = db
        .lines()
        .position(|l| l.starts_with("restart_policy"))
        .unwrap()
        + 1;
    std::fs::write(
        dir.path().join("recipes/db.toml"),
        db.replace("restart_policy", "restart_polciy"),
    )
    .unwrap();
    let agent = AgentProc::start(dir.path(), &dir.path().join("data"));
    let run = agent.cli(&["apply", "plan.toml"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("E-AGENT-FORMAT"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "recipes/db.toml:{line}:1: unknown field `restart_polciy`"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `restart_policy`?"),
        "{}",
        run.stderr
    );
    // Nothing was fetched or started.
    assert!(server.hits("/svc.py").is_empty());
    assert!(agent.components().is_empty());
}

#[test]
fn agent_backs_off_a_crash_looping_component_and_keeps_retrying() {
    let dir = tempfile::tempdir().unwrap();
    let server = ArtifactServer::start();
    let body = svc();
    server.put("/svc.py", &body);
    let sha = sha256(&body);
    let url = server.url("/svc.py");
    let r = RecipeSpec {
        name: "com.test.crasher",
        version: "1.0.0",
        deps: &[],
        artifact_url: &url,
        artifact_path: "/svc.py",
        sha256: &sha,
        mode: "crash",
        port: 0,
        delay: "0",
        health: None,
        restart: "always",
        env: &[],
    };
    std::fs::write(dir.path().join("crasher.toml"), r.toml()).unwrap();
    std::fs::write(
        dir.path().join("plan.toml"),
        "[[components]]\nname = \"crasher\"\nrecipe = \"crasher.toml\"\n",
    )
    .unwrap();
    let agent = AgentProc::start(dir.path(), &dir.path().join("data"));
    let run = agent.cli(&["apply", "plan.toml"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    wait_for(20, "five starts", || stamps(dir.path()).len() >= 5);
    let starts: Vec<u128> = stamps(dir.path()).iter().map(|s| s.2).collect();
    let gaps: Vec<f64> = starts
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 1e6)
        .collect();
    // 250 ms doubling (±20 % jitter), plus the interpreter's start-up in each gap, which
    // on a loaded machine is as large as the first delays and varies: neighbouring gaps
    // need not grow, but the fourth delay (≥ 1.6 s) outgrows the first two with any
    // start-up up to ~0.6 s.
    assert!(gaps[0] >= 200.0, "{gaps:?}");
    assert!(
        gaps[3] > gaps[0] * 1.5 && gaps[3] > gaps[1],
        "delays do not grow: {gaps:?}"
    );
    wait_for(30, "the crash-loop flag", || {
        agent.components()["crasher"]["crashLoop"] == true
    });
    let c = &agent.components()["crasher"];
    assert!(c["restarts"].as_u64().unwrap() >= 4, "{c}");
    assert_eq!(c["lastExitCode"], 1, "{c}");
    assert_eq!(c["crashLoop"], true, "{c}");
    assert_ne!(c["state"], "failed", "`always` never gives up: {c}");
}

#[test]
fn agent_upgrades_v1_to_v2_and_rolls_back_an_unhealthy_v3_without_downloading_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = ArtifactServer::start();
    server.put("/svc.py", &svc());
    let (api_port, cache_port) = (free_port(), free_port());
    three_tier(
        dir.path(),
        &server,
        "plan-v1.toml",
        "1.0.0",
        &[],
        api_port,
        cache_port,
    );
    three_tier(
        dir.path(),
        &server,
        "plan-v2.toml",
        "1.1.0",
        &[],
        api_port,
        cache_port,
    );
    three_tier(
        dir.path(),
        &server,
        "plan-v3.toml",
        "1.2.0",
        &[("HEALTH_STATUS", "500")],
        api_port,
        cache_port,
    );
    // The first download of v2 is cut at half its size: the agent resumes it.
    let half = svc().len() / 2;
    server.fault(
        "/svc-1.1.0.py",
        Fault {
            drop_after: Some(half),
            ..Fault::default()
        },
    );
    let agent = AgentProc::start(dir.path(), &dir.path().join("data"));

    let run = agent.cli(&["apply", "plan-v1.toml"]);
    assert_eq!(
        run.code,
        0,
        "{}{}{}",
        run.stdout,
        run.stderr,
        agent.stderr()
    );
    let v1 = agent.components();

    let run = agent.cli(&["apply", "plan-v2.toml"]);
    assert_eq!(
        run.code,
        0,
        "{}{}{}",
        run.stdout,
        run.stderr,
        agent.stderr()
    );
    let v2 = agent.components();
    assert_eq!(v2["api"]["version"], "1.1.0");
    assert_eq!(v2["api"]["ready"], true);
    assert_ne!(v2["api"]["pid"], v1["api"]["pid"]);
    // What did not change kept running, untouched.
    assert_eq!(v2["db"]["pid"], v1["db"]["pid"]);
    assert_eq!(v2["cache"]["pid"], v1["cache"]["pid"]);
    let hits = server.hits("/svc-1.1.0.py");
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(
        hits[1].range.as_deref(),
        Some(format!("bytes={half}-").as_str()),
        "{hits:?}"
    );
    assert_eq!(hits[1].status, 206);
    assert!(!alive(v1["api"]["pid"].as_u64().unwrap()), "v1 still runs");

    // v3 never becomes healthy (its probe answers 500): rolled back to v2.
    let t0 = Instant::now();
    let run = agent.cli(&["apply", "plan-v3.toml"]);
    let took = t0.elapsed();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("rolled_back"), "{}", run.stdout);
    assert!(run.stdout.contains("HTTP 500"), "{}", run.stdout);
    // Its deadline is interval 1 s × threshold 2 + timeout 1 s = 3 s; plus 2 s.
    assert!(took < Duration::from_secs(3 + 2 + 2), "{took:?}");
    let after = agent.components();
    assert_eq!(after["api"]["version"], "1.1.0", "{}", after["api"]);
    assert_eq!(after["api"]["ready"], true, "{}", after["api"]);
    assert_eq!(after["db"]["pid"], v1["db"]["pid"]);
    // No new download for the version rolled back to.
    assert_eq!(server.hits("/svc-1.1.0.py").len(), 2);
    let status = agent.get_json("/v1/plan/status");
    assert_eq!(status["status"], "rolled_back", "{status}");
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("api 1.2.0 not healthy"),
        "{status}"
    );
    let (code, _) = http("GET", &format!("http://127.0.0.1:{api_port}/"), "");
    assert_eq!(code, 200, "v2 serves again");
}

#[test]
fn agent_refuses_a_tampered_artifact_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = ArtifactServer::start();
    server.put("/svc.py", &svc());
    let (api_port, cache_port) = (free_port(), free_port());
    three_tier(
        dir.path(),
        &server,
        "plan-v1.toml",
        "1.0.0",
        &[],
        api_port,
        cache_port,
    );
    three_tier(
        dir.path(),
        &server,
        "plan-v2.toml",
        "1.1.0",
        &[],
        api_port,
        cache_port,
    );
    // One byte changed on the server after the recipe was written; and a 500 first.
    let mut bad = svc();
    bad[10] ^= 1;
    server.put("/svc-1.1.0.py", &bad);
    server.fault(
        "/svc-1.1.0.py",
        Fault {
            fail_500: 1,
            ..Fault::default()
        },
    );
    let agent = AgentProc::start(dir.path(), &dir.path().join("data"));
    assert_eq!(agent.cli(&["apply", "plan-v1.toml"]).code, 0);
    let before = agent.components();
    let run = agent.cli(&["apply", "plan-v2.toml"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("E-AGENT-ARTIFACT"), "{}", run.stderr);
    assert!(run.stderr.contains("sha256 mismatch"), "{}", run.stderr);
    let hits = server.hits("/svc-1.1.0.py");
    assert_eq!(hits.first().map(|h| h.status), Some(500), "{hits:?}");
    let after = agent.components();
    for n in ["db", "cache", "api"] {
        assert_eq!(after[n]["pid"], before[n]["pid"], "{n} was touched");
        assert_eq!(after[n]["version"], before[n]["version"]);
    }
    let data = dir.path().join("data");
    assert!(
        !data
            .join("artifacts/com.test.api/1.1.0/svc-1.1.0.py")
            .exists()
    );
    assert!(!data.join("components/com.test.api/1.1.0").exists());
    let status = agent.get_json("/v1/plan/status");
    assert_eq!(status["status"], "running", "{status}");
    let (code, metrics) = http("GET", &format!("{}/metrics", agent.url), "");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("froyo_artifact_verify_failures_total 1\n"),
        "{metrics}"
    );
}

#[test]
fn agent_api_verbs_dry_runs_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = ArtifactServer::start();
    server.put("/svc.py", &svc());
    let (api_port, cache_port) = (free_port(), free_port());
    three_tier(
        dir.path(),
        &server,
        "plan-v1.toml",
        "1.0.0",
        &[],
        api_port,
        cache_port,
    );
    three_tier(
        dir.path(),
        &server,
        "plan-v2.toml",
        "1.1.0",
        &[],
        api_port,
        cache_port,
    );
    let agent = AgentProc::start(dir.path(), &dir.path().join("data"));
    assert_eq!(agent.cli(&["apply", "plan-v1.toml"]).code, 0);
    let before = agent.components();

    // A dry run says what would happen and changes nothing (not even a download).
    let run = agent.cli(&["apply", "plan-v2.toml", "--dry"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("would stop: api\n"), "{}", run.stdout);
    assert!(run.stdout.contains("would start: api\n"), "{}", run.stdout);
    assert!(
        run.stdout.contains("unchanged: db, cache\n"),
        "{}",
        run.stdout
    );
    assert!(server.hits("/svc-1.1.0.py").is_empty());
    let same = agent.components();
    for n in ["db", "cache", "api"] {
        assert_eq!(same[n]["pid"], before[n]["pid"]);
    }

    // restart cascades to hard dependents: cache and api restart, db does not.
    let run = agent.cli(&["restart", "cache", "--dry"]);
    assert!(
        run.stdout
            .contains("would stop: api, cache\nwould start: cache, api\n"),
        "{}",
        run.stdout
    );
    assert_eq!(agent.components()["cache"]["pid"], before["cache"]["pid"]);
    let run = agent.cli(&["restart", "cache"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let after = agent.components();
    assert_eq!(after["db"]["pid"], before["db"]["pid"]);
    assert_ne!(after["cache"]["pid"], before["cache"]["pid"]);
    assert_ne!(after["api"]["pid"], before["api"]["pid"]);
    assert_eq!(after["cache"]["restarts"], 1);
    assert_eq!(after["api"]["ready"], true);

    let run = agent.cli(&["stop", "api"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let api = &agent.components()["api"];
    assert_eq!(api["state"], "stopped", "{api}");
    assert!(!alive(after["api"]["pid"].as_u64().unwrap()));

    let run = agent.cli(&["components"]);
    assert!(run.stdout.starts_with("NAME "), "{}", run.stdout);
    assert!(run.stdout.contains("cache"), "{}", run.stdout);
    let run = agent.cli(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["status"], "running");

    let (code, body) = http("GET", &format!("{}/healthz", agent.url), "");
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["status"],
        "ok"
    );
    let (code, body) = http(
        "POST",
        &format!("{}/v1/components/nope:restart", agent.url),
        "",
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("E-AGENT-NOT-FOUND"), "{body}");

    // /metrics is Prometheus text: HELP/TYPE comments and `name{labels} value` samples.
    let (code, metrics) = http("GET", &format!("{}/metrics", agent.url), "");
    assert_eq!(code, 200);
    let mut samples = std::collections::HashMap::new();
    for line in metrics.lines() {
        if let Some(c) = line.strip_prefix("# ") {
            assert!(c.starts_with("HELP ") || c.starts_with("TYPE "), "{line}");
            continue;
        }
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample `{line}`"));
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value in `{line}`"));
        let name = key.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        if let Some(labels) = key.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line}"
            );
        }
        samples.insert(key.to_owned(), value.to_owned());
    }
    assert_eq!(
        samples["froyo_component_restarts_total{name=\"cache\"}"],
        "1"
    );
    assert_eq!(samples["froyo_component_ready{name=\"db\"}"], "1");
    assert_eq!(
        samples["froyo_component_state{name=\"api\",version=\"1.0.0\",state=\"stopped\"}"],
        "1"
    );
    assert_eq!(samples["froyo_deploys_total{result=\"ok\"}"], "1");
    assert!(samples.contains_key("froyo_component_memory_rss_bytes{name=\"db\"}"));
    assert!(samples.contains_key("process_resident_memory_bytes"));
}

#[test]
fn agent_killed_at_a_journal_step_converges_after_restart_without_orphans() {
    for step in ["install", "start:ok", "ready:ok"] {
        let dir = tempfile::tempdir().unwrap();
        let server = ArtifactServer::start();
        server.put("/svc.py", &svc());
        three_tier(
            dir.path(),
            &server,
            "plan.toml",
            "1.0.0",
            &[],
            free_port(),
            free_port(),
        );
        let data = dir.path().join("data");
        let mut agent =
            AgentProc::start_with(dir.path(), &data, &[], &[("FROYO_AGENT_FAILPOINT", step)]);
        let run = agent.cli(&["apply", "plan.toml"]);
        assert_ne!(run.code, 0, "{step}: {}", run.stdout);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(agent.wait_exit(30).signal(), Some(9), "{step}");

        let agent = AgentProc::start(dir.path(), &data);
        wait_for(60, "convergence", || {
            agent.get_json("/v1/plan/status")["status"] == "running"
        });
        let c = agent.components();
        assert!(
            c.len() == 3 && c.values().all(|c| c["ready"] == true),
            "{step}: {c:?}"
        );
        // Every component process ever started that still runs is one of the current three.
        let current: Vec<u64> = agent
            .components()
            .values()
            .map(|c| c["pid"].as_u64().unwrap())
            .collect();
        for (name, _, _, pid) in stamps(dir.path()) {
            assert!(
                !alive(pid) || current.contains(&pid),
                "{step}: orphan {name} {pid}"
            );
        }
        let conn = rusqlite::Connection::open(data.join("state.db")).unwrap();
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok", "{step}");
        let interrupted: i64 = conn
            .query_row(
                "SELECT count(*) FROM deploys WHERE status = 'interrupted'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(interrupted, 1, "{step}");
        agent.terminate();
    }
}

/// `minisign -G -W` in `dir`: `(public key file, secret key file)`.
fn minisign_keypair(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (p, s) = (
        dir.join(format!("{name}.pub")),
        dir.join(format!("{name}.key")),
    );
    let out = std::process::Command::new("minisign")
        .args(["-G", "-W", "-f", "-p"])
        .arg(&p)
        .arg("-s")
        .arg(&s)
        .output()
        .expect("minisign (apt install minisign)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (p, s)
}

/// `minisign -S`: the detached signature of `bytes` by `key`.
fn minisign_sign(dir: &Path, key: &Path, bytes: &[u8]) -> Vec<u8> {
    let f = dir.join("to-sign");
    std::fs::write(&f, bytes).unwrap();
    let out = std::process::Command::new("minisign")
        .args(["-S", "-s"])
        .arg(key)
        .arg("-m")
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.join("to-sign.minisig")).unwrap()
}

/// Adds `sig_uri = URL` to the artifact of a recipe file (and swaps its sha256).
fn sign_recipe(path: &Path, sig_url: &str, sha: Option<(&str, &str)>) {
    let mut t = std::fs::read_to_string(path).unwrap();
    if let Some((from, to)) = sha {
        t = t.replace(from, to);
    }
    let t = t.replacen(
        "[[artifacts]]\n",
        &format!("[[artifacts]]\nsig_uri = \"{sig_url}\"\n"),
        1,
    );
    std::fs::write(path, t).unwrap();
}

#[test]
fn agent_verifies_minisign_signatures_and_refuses_a_wrong_one_a_tampered_artifact_and_an_unsigned_one()
 {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (trusted_pub, trusted_key) = minisign_keypair(&keys, "ops");
    let (_, other_key) = minisign_keypair(&keys, "intruder");
    let server = ArtifactServer::start();
    let good = svc();
    server.put("/svc.py", &good);
    server.put(
        "/svc.py.minisig",
        &minisign_sign(&keys, &trusted_key, &good),
    );
    server.put("/wrong.minisig", &minisign_sign(&keys, &other_key, &good));
    let (api_port, cache_port) = (free_port(), free_port());
    let recipes = dir.path().join("recipes");
    let sig = server.url("/svc.py.minisig");
    let mk = |plan: &str, version: &str| {
        three_tier(
            dir.path(),
            &server,
            plan,
            version,
            &[],
            api_port,
            cache_port,
        );
        for r in ["db.toml", "cache.toml"] {
            sign_recipe(&recipes.join(r), &sig, None);
        }
    };
    // v1: everything signed by the trusted key.
    mk("plan-v1.toml", "1.0.0");
    sign_recipe(&recipes.join("api-1.0.0.toml"), &sig, None);
    let trust = trusted_pub.display().to_string();
    let agent = AgentProc::start_with(
        dir.path(),
        &dir.path().join("data"),
        &["--trust", &trust],
        &[],
    );
    let run = agent.cli(&["apply", "plan-v1.toml"]);
    assert_eq!(
        run.code,
        0,
        "{}{}{}",
        run.stdout,
        run.stderr,
        agent.stderr()
    );
    assert!(!server.hits("/svc.py.minisig").is_empty());
    let before = agent.components();
    let data = dir.path().join("data");
    let unchanged = |what: &str, version: &str| {
        let after = agent.components();
        for n in ["db", "cache", "api"] {
            assert_eq!(after[n]["pid"], before[n]["pid"], "{what}: {n} was touched");
            assert_eq!(after[n]["version"], before[n]["version"], "{what}");
        }
        assert!(
            !data
                .join(format!("artifacts/com.test.api/{version}/svc-{version}.py"))
                .exists(),
            "{what}: the refused artifact is in place"
        );
        assert!(
            !data
                .join(format!("components/com.test.api/{version}"))
                .exists(),
            "{what}: a work dir was made"
        );
        assert_eq!(
            agent.get_json("/v1/plan/status")["status"],
            "running",
            "{what}"
        );
    };

    // v2: the right bytes, signed by a key the agent does not trust.
    mk("plan-v2.toml", "1.1.0");
    sign_recipe(
        &recipes.join("api-1.1.0.toml"),
        &server.url("/wrong.minisig"),
        None,
    );
    let run = agent.cli(&["apply", "plan-v2.toml"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("E-AGENT-ARTIFACT"), "{}", run.stderr);
    assert!(
        run.stderr.contains("signed by none of the 1 trusted key"),
        "{}",
        run.stderr
    );
    unchanged("wrong key", "1.1.0");

    // v3: a tampered artifact whose recipe digest was changed to match it: only the
    // publisher's signature (of the real bytes) tells.
    mk("plan-v3.toml", "1.2.0");
    let mut bad = good.clone();
    bad[10] ^= 1;
    server.put("/svc-1.2.0.py", &bad);
    sign_recipe(
        &recipes.join("api-1.2.0.toml"),
        &sig,
        Some((&sha256(&good), &sha256(&bad))),
    );
    let run = agent.cli(&["apply", "plan-v3.toml"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("bad signature"), "{}", run.stderr);
    unchanged("tampered", "1.2.0");

    // v4: an unsigned artifact under `--trust`: refused before it is downloaded.
    mk("plan-v4.toml", "1.3.0");
    let run = agent.cli(&["apply", "plan-v4.toml"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("requires a signature"),
        "{}",
        run.stderr
    );
    assert!(server.hits("/svc-1.3.0.py").is_empty());
    unchanged("unsigned", "1.3.0");

    let (code, metrics) = http("GET", &format!("{}/metrics", agent.url), "");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("froyo_artifact_verify_failures_total 3\n"),
        "{metrics}"
    );
    agent.terminate();
}

#[test]
fn agent_pulls_a_signed_document_applies_a_newer_one_refuses_a_replay_and_a_forgery_and_takes_a_pushed_one()
 {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (ops_pub, ops_key) = minisign_keypair(&keys, "ops");
    let (_, intruder_key) = minisign_keypair(&keys, "intruder");
    let server = ArtifactServer::start();
    server.put("/svc.py", &svc());
    let (api_port, cache_port) = (free_port(), free_port());
    for (plan, version) in [("plan-v1.toml", "1.0.0"), ("plan-v2.toml", "1.1.0")] {
        three_tier(
            dir.path(),
            &server,
            plan,
            version,
            &[],
            api_port,
            cache_port,
        );
    }
    // The controller side: `froyo agent publish`, then the document goes on the server
    // (signature first, so a poll never sees a new document with an old signature).
    let publish = |plan: &str, key: &Path, seq: &str| -> (Vec<u8>, Vec<u8>) {
        let out = dir.path().join(format!("out/{seq}.json"));
        let run = crate::froyo(
            dir.path(),
            &[
                "agent",
                "publish",
                plan,
                "--key",
                &key.display().to_string(),
                "--out",
                &out.display().to_string(),
                "--sequence",
                seq,
            ],
        );
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains(&format!("sequence {seq}")),
            "{}",
            run.stdout
        );
        let doc = std::fs::read(&out).unwrap();
        let sig = std::fs::read(format!("{}.minisig", out.display())).unwrap();
        (doc, sig)
    };
    let serve = |(doc, sig): &(Vec<u8>, Vec<u8>)| {
        server.put("/desired.json.minisig", sig);
        server.put("/desired.json", doc);
    };
    let d10 = publish("plan-v1.toml", &ops_key, "10");
    let v: serde_json::Value = serde_json::from_slice(&d10.0).unwrap();
    assert_eq!(v["format"], "froyo-agent/desired-state/1");
    let api = v["plan"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "api")
        .unwrap()
        .clone();
    assert_eq!(api["artifacts"][0]["size"], svc().len(), "{api}");
    serve(&d10);

    // A device whose clock says 1970 (FROYO_AGENT_NOW, the test hook): the signature
    // and the sequence do not need the time, and expiry uses the signed issue time.
    let url = server.url("/desired.json");
    let trust = ops_pub.display().to_string();
    let agent = AgentProc::start_with(
        dir.path(),
        &dir.path().join("data"),
        &[
            "--trust",
            &trust,
            "--pull",
            &url,
            "--pull-interval",
            "300ms",
        ],
        &[("FROYO_AGENT_NOW", "1")],
    );
    let ready_at = |version: &str| {
        let c = agent.components();
        c.len() == 3 && c.values().all(|c| c["ready"] == true) && c["api"]["version"] == version
    };
    wait_for(90, "the pulled v1 running", || ready_at("1.0.0"));
    wait_for(10, "a poll answered 304 Not Modified", || {
        server
            .hits("/desired.json")
            .iter()
            .any(|h| h.status == 304 && h.if_none_match.is_some())
    });
    let v1 = agent.components();

    // A newer document: only what changed restarts.
    serve(&publish("plan-v2.toml", &ops_key, "11"));
    let pull = |field: &str| agent.get_json("/v1/plan/status")["pull"][field].clone();
    // The component is ready a moment before the status records the document's sequence.
    wait_for(90, "the pulled v2 running", || {
        ready_at("1.1.0") && pull("sequence") == 11
    });
    let v2 = agent.components();
    for n in ["db", "cache"] {
        assert_eq!(v2[n]["pid"], v1[n]["pid"], "{n} restarted");
    }
    assert_ne!(v2["api"]["pid"], v1["api"]["pid"]);

    // The old document, validly signed, replayed: refused, nothing changes.
    serve(&d10);
    wait_for(20, "the replay refused", || {
        pull("lastResult") == "refused"
            && pull("lastError").as_str().unwrap_or("").contains("replay")
    });
    // A newer sequence signed by a key the device does not trust: refused.
    serve(&publish("plan-v1.toml", &intruder_key, "12"));
    wait_for(20, "the forgery refused", || {
        pull("lastError")
            .as_str()
            .unwrap_or("")
            .contains("signed by none of the 1 trusted key")
    });
    let after = agent.components();
    for n in ["db", "cache", "api"] {
        assert_eq!(after[n]["pid"], v2[n]["pid"], "{n} was touched");
        assert_eq!(after[n]["version"], v2[n]["version"]);
    }
    assert_eq!(pull("sequence"), 11);

    // Push mode: the next document dropped into the data dir's inbox (what a push over
    // SSH does: signature first, each renamed into place) takes the same path.
    let (doc, sig) = publish("plan-v1.toml", &ops_key, "13");
    let inbox = dir.path().join("data/inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    for (name, bytes) in [("desired.json.minisig", &sig), ("desired.json", &doc)] {
        std::fs::write(inbox.join(".tmp"), bytes).unwrap();
        std::fs::rename(inbox.join(".tmp"), inbox.join(name)).unwrap();
    }
    wait_for(90, "the pushed v1 running", || {
        pull("sequence") == 13 && ready_at("1.0.0")
    });
    assert_eq!(pull("sequence"), 13);
    let (code, metrics) = http("GET", &format!("{}/metrics", agent.url), "");
    assert_eq!(code, 200);
    for line in [
        "froyo_documents_applied_total 3\n",
        "froyo_documents_refused_total{reason=\"replay\"} 1\n",
        "froyo_documents_refused_total{reason=\"signature\"} 1\n",
        "froyo_document_sequence 13\n",
    ] {
        assert!(metrics.contains(line), "no `{}` in\n{metrics}", line.trim());
    }
    agent.terminate();
}
