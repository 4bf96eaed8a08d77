//! Observability end to end with the real `froyo` binary: JSON logs on stderr, the
//! versioned event stream (`--json`, `froyo events`, `--follow` from a second process).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use froyo::state::{RunStatus, SqliteStore, Store};
use serde_json::Value;

use crate::Run;

/// A project with `froyo.toml`, a playbook and an output directory.
struct Proj {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    out: PathBuf,
}

impl Proj {
    /// `OUT` in `playbook` becomes the output directory.
    fn new(file: &str, playbook: &str) -> Proj {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("proj");
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("froyo.toml"), "[project]\nname = \"obs\"\n").unwrap();
        std::fs::write(
            root.join(file),
            playbook.replace("OUT", &out.display().to_string()),
        )
        .unwrap();
        Proj {
            _tmp: tmp,
            root,
            out,
        }
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_froyo"));
        cmd.args(args)
            .current_dir(&self.root)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("FROYO_LOG")
            .env_remove("FROYO_LOG_FORMAT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = self.command(args, env).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const SECRET_SITE: &str = r#"
load("@stdlib//linux.star", "directory", "file", "command")
d = directory("OUT", mode = "0755")
token = secret("env://FROYO_OBS_TOKEN")
env = file("OUT/app.env", content = fmt("TOKEN={}\n", token), mode = "0600")
require(env, d)
use = command("use it", shell = "printf %s \"$T\" > OUT/from-env", env = {"T": token}, creates = "OUT/from-env")
require(use, d)
"#;

const TOKEN: &str = "s3cr3t-0bservability-t0ken";

#[test]
fn json_logs_at_vv_are_json_lines_with_span_fields_and_no_secret() {
    let p = Proj::new("site.star", SECRET_SITE);
    let env = [("FROYO_OBS_TOKEN", TOKEN), ("FROYO_LOG_FORMAT", "json")];
    let run = p.run(&["-vv", "apply", "--yes", "site.star"], &env);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // The secret reached the target (so its absence below means something).
    assert_eq!(
        std::fs::read_to_string(p.out.join("from-env")).unwrap(),
        TOKEN
    );
    let lines: Vec<Value> = run
        .stderr
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{}", run.stderr))
        })
        .collect();
    assert!(lines.len() > 5, "-vv logs debug records: {}", run.stderr);
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
        assert!(l["target"].is_string() && l["fields"].is_object(), "{l}");
    }
    assert!(
        lines.iter().any(|l| l["level"] == "DEBUG"),
        "-vv reaches debug"
    );
    // Records inside a host's session span carry the root's project and playbook and
    // the host.
    let in_session = lines
        .iter()
        .find(|l| l["span"]["name"] == "session")
        .unwrap_or_else(|| panic!("no record inside a session span:\n{}", run.stderr));
    let spans = in_session["spans"].as_array().unwrap();
    assert!(
        spans
            .iter()
            .any(|s| s["project"] == "obs" && s["playbook"] == "site.star"),
        "{in_session}"
    );
    assert!(spans.iter().any(|s| s["host"] == "local"), "{in_session}");
    // The closing summary is a JSON line too.
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Apply: "))),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(TOKEN) && !run.stdout.contains(TOKEN));

    // `--log-format json` does the same; a diagnostic becomes a JSON line with its code.
    std::fs::write(p.root.join("bad.star"), "x = undefined_name\n").unwrap();
    let bad = p.run(&["--log-format", "json", "check", "bad.star"], &[]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    let diag: Vec<Value> = bad
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        diag.iter()
            .any(|d| d["level"] == "ERROR" && d["fields"]["diagnostic"]["code"].is_string()),
        "{}",
        bad.stderr
    );
}

#[test]
fn froyo_log_takes_a_filter_and_a_bad_one_is_said() {
    let p = Proj::new(
        "site.star",
        "load(\"@stdlib//linux.star\", \"directory\")\ndirectory(\"OUT\", mode = \"0755\")\n",
    );
    let run = p.run(
        &["plan", "site.star"],
        &[("FROYO_LOG", "froyo::transport=debug")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("DEBUG"), "{}", run.stderr);
    assert!(
        run.stderr
            .lines()
            .filter(|l| l.contains("DEBUG"))
            .all(|l| l.contains("froyo::transport")),
        "only the transport modules at debug:\n{}",
        run.stderr
    );
    let run = p.run(&["plan", "site.star"], &[("FROYO_LOG", "froyo=notalevel")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("FROYO_LOG") && run.stderr.contains("not a valid filter"),
        "{}",
        run.stderr
    );
}

/// Timestamps, durations, the output directory and froyo's version made stable.
fn normalise(stream: &str, out: &Path) -> String {
    let mut text = String::new();
    for line in stream.lines() {
        let mut v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let obj = v.as_object_mut().unwrap();
        for (k, x) in obj.iter_mut() {
            match k.as_str() {
                "@timestamp" => {
                    let t = x.as_str().unwrap();
                    assert!(t.ends_with('Z') && t.len() == 24, "RFC 3339: {t}");
                    *x = "<timestamp>".into();
                }
                "duration_ms" | "elapsed_ms" => {
                    assert!(x.is_u64());
                    *x = 0.into();
                }
                "froyo" => *x = "<version>".into(),
                _ => {}
            }
        }
        text.push_str(&v.to_string().replace(&out.display().to_string(), "OUT"));
        text.push('\n');
    }
    text
}

#[test]
fn hello_event_stream_is_stable_and_froyo_events_replays_it() {
    let hello = std::fs::read_to_string(crate::repo().join("examples/hello.star")).unwrap();
    let p = Proj::new("hello.star", &hello.replace("/tmp/froyo-hello", "OUT"));
    let run = p.run(&["apply", "--yes", "--json", "hello.star"], &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    insta::assert_snapshot!("hello_apply_events", normalise(&run.stdout, &p.out));

    // The state holds the same stream, line for line, timestamps included.
    let replay = p.run(&["events"], &[]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    assert_eq!(replay.stdout, run.stdout);
    assert_eq!(p.run(&["events", "--run", "1"], &[]).stdout, run.stdout);

    // A second apply changes nothing: its summary says so, and it is run 2.
    let again = p.run(&["apply", "--yes", "--json", "hello.star"], &[]);
    let last: Value = serde_json::from_str(again.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(
        (
            last["run"].clone(),
            last["changed"].clone(),
            last["unchanged"].clone()
        ),
        (2.into(), 0.into(), 2.into())
    );
    assert_eq!(p.run(&["events"], &[]).stdout, again.stdout);

    // `plan --json` is the same stream without a run.
    let plan = p.run(&["plan", "--json", "hello.star"], &[]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    insta::assert_snapshot!("hello_plan_events", normalise(&plan.stdout, &p.out));

    let missing = p.run(&["events", "--run", "99"], &[]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("no run #99"), "{}", missing.stderr);
}

#[test]
fn events_follow_sees_a_running_apply_in_order() {
    let mut site = String::from(
        "load(\"@stdlib//linux.star\", \"directory\", \"command\")\nd = directory(\"OUT\", mode = \"0755\")\n",
    );
    for i in 0..8 {
        site.push_str(&format!(
            "require(command(\"step {i}\", shell = \"sleep 0.25 && touch OUT/{i}\", creates = \"OUT/{i}\"), d)\n"
        ));
    }
    let p = Proj::new("site.star", &site);
    let apply = p
        .command(
            &["apply", "--yes", "--json", "--per-host", "1", "site.star"],
            &[],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the apply to begin", Duration::from_secs(60), || {
        SqliteStore::open_project(&p.root)
            .and_then(|s| s.runs(1))
            .is_ok_and(|r| r.first().is_some_and(|r| r.status == RunStatus::Running))
    });
    let follow = p
        .command(&["events", "--follow"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let count = || std::fs::read_dir(&p.out).map(|d| d.count()).unwrap_or(0);
    // The follower joins mid-run: some resources are still to come.
    assert!(
        count() < 8,
        "the apply was over before `events --follow` began"
    );
    let applied = apply.wait_with_output().unwrap();
    assert!(applied.status.success());
    let followed = follow.wait_with_output().unwrap();
    assert!(
        followed.status.success(),
        "{}",
        String::from_utf8_lossy(&followed.stderr)
    );
    let (applied, followed) = (
        String::from_utf8(applied.stdout).unwrap(),
        String::from_utf8(followed.stdout).unwrap(),
    );
    assert_eq!(count(), 8);
    // It saw everything, in order: exactly the lines the apply printed.
    assert_eq!(followed, applied);
    let types: Vec<String> = followed
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("version"));
    assert_eq!(types.last().map(String::as_str), Some("summary"));
    assert_eq!(
        types.iter().filter(|t| *t == "resource_finished").count(),
        9
    );
}

/// A free port on 127.0.0.1 (bound, then released for a server to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    wait_for("a server on its port", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// `GET http://127.0.0.1:port/path`: the body.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// A process stopped (by its PID) when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value of the sample `name{labels…}` (labels given as a substring of the set).
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name) && labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_out_passes_promtool_and_a_real_pushgateway_receives_them() {
    let p = Proj::new("site.star", SECRET_SITE);
    let port = free_port();
    let gateway = Server(
        Command::new("prometheus-pushgateway")
            .args([&format!("--web.listen-address=127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-pushgateway (Debian package prometheus-pushgateway)"),
    );
    wait_port(port);
    let url = format!("http://127.0.0.1:{port}");
    let env = [
        ("FROYO_OBS_TOKEN", TOKEN),
        ("FROYO_PUSHGATEWAY", url.as_str()),
    ];
    let run = p.run(
        &[
            "apply",
            "--yes",
            "--metrics-out",
            "metrics/froyo.prom",
            "site.star",
        ],
        &env,
    );
    // The directory does not exist: the metrics are a warning, never the run's outcome.
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot write the metrics"),
        "{}",
        run.stderr
    );
    std::fs::create_dir(p.root.join("metrics")).unwrap();
    std::fs::remove_dir_all(&p.out).unwrap();
    let run = p.run(
        &[
            "apply",
            "--yes",
            "--metrics-out",
            "metrics/froyo.prom",
            "site.star",
        ],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    let file = p.root.join("metrics/froyo.prom");
    let text = std::fs::read_to_string(&file).unwrap();
    let names: Vec<_> = std::fs::read_dir(p.root.join("metrics"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");

    // promtool (Debian's prometheus package) parses and lints it.
    let check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("promtool (Debian package prometheus)");
    assert!(
        check.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let changed = sample(
        &text,
        "froyo_resources_total",
        &["outcome=\"changed\"", "linux.file::file"],
    );
    assert_eq!(changed, Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "froyo_resources_total",
            &["outcome=\"changed\"", "linux.exec::command"]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, "froyo_runner_round_trips_total", &["host=\"local\""])
            .is_some_and(|n| n > 0.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "froyo_provider_fuel_total",
            &["provider=\"linux.file\""]
        )
        .is_some_and(|n| n > 0.0),
        "{text}"
    );
    for phase in ["evaluate", "validate", "policy", "plan", "apply"] {
        let label = format!("phase=\"{phase}\"");
        assert_eq!(
            sample(&text, "froyo_phase_duration_seconds_count", &[&label]),
            Some(1.0),
            "{phase}: {text}"
        );
    }
    assert_eq!(
        sample(
            &text,
            "froyo_runs_total",
            &["command=\"apply\"", "status=\"succeeded\""]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, "froyo_last_success_timestamp_seconds", &[]).is_some_and(|t| t > 1.7e9),
        "{text}"
    );
    assert!(!text.contains(TOKEN));

    // The Pushgateway holds them under job, project and playbook — and no run id.
    let pushed = http_get(port, "/metrics");
    let line = pushed
        .lines()
        .find(|l| {
            l.starts_with("froyo_resources_total{")
                && l.contains("linux.file::file")
                && l.contains("changed")
        })
        .unwrap_or_else(|| panic!("nothing pushed:\n{pushed}"));
    assert!(
        line.contains("job=\"froyo\"")
            && line.contains("project=\"obs\"")
            && line.contains("playbook=\"site.star\""),
        "{line}"
    );
    assert!(!line.contains("run"), "{line}");
    assert!(!pushed.contains(TOKEN));
    drop(gateway);
}

/// A Python with grpcio and the official OpenTelemetry protobuf stubs: the virtualenv
/// `tests/run.sh` makes (`$FROYO_OTLP_PY`, default `/var/tmp/froyo-otlp`); a missing one
/// is a failure, as a missing sshd is.
fn otlp_python() -> PathBuf {
    let venv = std::env::var_os("FROYO_OTLP_PY")
        .map_or_else(|| PathBuf::from("/var/tmp/froyo-otlp"), PathBuf::from);
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args([
            "-c",
            "import grpc, opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc",
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ready,
        "no OTLP receiver Python in {}: run tests/run.sh (it installs grpcio and opentelemetry-proto there)",
        venv.display()
    );
    python
}

/// The OTLP/gRPC receiver of `tests/fixtures/otlp/receiver.py` on a free loopback port,
/// writing every span it gets to `spans` as a JSON line.
fn otlp_receiver(spans: &Path) -> (Server, u16) {
    start_receiver(spans, &[])
}

/// The same receiver speaking OTLP/HTTP with protobuf bodies.
fn otlp_http_receiver(spans: &Path) -> (Server, u16) {
    start_receiver(spans, &["--http"])
}

fn start_receiver(spans: &Path, args: &[&str]) -> (Server, u16) {
    use std::io::BufRead;
    let mut child = Command::new(otlp_python())
        .arg(crate::fixtures().join("otlp/receiver.py"))
        .arg(spans)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .strip_prefix("READY ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("the receiver did not start: {line}"));
    (Server(child), port)
}

/// The spans the receiver wrote so far (one JSON object per line).
fn received(spans_file: &Path) -> Vec<Value> {
    std::fs::read_to_string(spans_file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `TRACEPARENT` of a caller with this trace id (a CI job's span `00f067aa0ba902b7`).
fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-00f067aa0ba902b7-01")
}

const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[test]
fn traces_reach_a_real_otlp_receiver_in_the_callers_trace() {
    let p = Proj::new("site.star", SECRET_SITE);
    let spans_file = p.root.join("../spans.jsonl");
    let (receiver, port) = otlp_receiver(&spans_file);
    let endpoint = format!("http://127.0.0.1:{port}");
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = traceparent(trace_id);
    let env = [
        ("FROYO_OBS_TOKEN", TOKEN),
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000"),
        ("OTEL_SERVICE_NAME", "froyo-it"),
        ("TRACEPARENT", parent.as_str()),
    ];
    let t0 = Instant::now();
    let run = p.run(&["-v", "apply", "--yes", "site.star"], &env);
    let took_up = t0.elapsed();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains(&format!("telemetry: traces otlp (grpc) to {endpoint}")),
        "-v says which exporters are active:\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("cannot export"), "{}", run.stderr);
    let text = std::fs::read_to_string(&spans_file).expect("the receiver got no span");
    assert!(!text.contains(TOKEN), "a secret in a span");
    let spans = received(&spans_file);
    let by_id: std::collections::HashMap<&str, &Value> = spans
        .iter()
        .map(|s| (s["span_id"].as_str().unwrap(), s))
        .collect();
    for s in &spans {
        assert_eq!(
            s["trace_id"], trace_id,
            "every span is in the caller's trace: {s}"
        );
        assert_eq!(s["resource"]["service.name"], "froyo-it", "{s}");
        assert_eq!(s["scope"], "froyo", "{s}");
        let parent = s["parent_span_id"].as_str().unwrap();
        assert!(
            parent == CALLER_SPAN || by_id.contains_key(parent),
            "every parent was received too: {s}"
        );
    }
    let root = spans
        .iter()
        .find(|s| s["name"] == "froyo apply")
        .expect("the root span");
    assert_eq!(
        root["parent_span_id"], CALLER_SPAN,
        "TRACEPARENT is the root's parent"
    );
    assert_eq!(
        spans
            .iter()
            .filter(|s| s["parent_span_id"] == CALLER_SPAN)
            .count(),
        1,
        "one root"
    );
    assert_eq!(root["attributes"]["command"], "apply");
    assert_eq!(root["attributes"]["playbook"], "site.star");
    assert_eq!(root["attributes"]["project"], "obs");
    assert_eq!(root["attributes"]["run"], 1);
    for phase in ["evaluate", "validate", "policy", "plan", "apply"] {
        assert!(spans.iter().any(|s| s["name"] == phase), "no {phase} span");
    }
    // The host's runner session is a span of its own.
    assert!(
        spans
            .iter()
            .any(|s| s["name"] == "session" && s["attributes"]["host"] == "local"),
        "{text}"
    );
    // One span per resource × host, under its host, under the apply, under the root.
    let resources: Vec<&Value> = spans
        .iter()
        .filter(|s| {
            s["attributes"]["resource_type"].is_string() && s["attributes"]["outcome"].is_string()
        })
        .collect();
    assert_eq!(resources.len(), 3, "{text}");
    let mut types: Vec<&str> = resources
        .iter()
        .map(|r| r["attributes"]["resource_type"].as_str().unwrap())
        .collect();
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "linux.exec::command",
            "linux.file::directory",
            "linux.file::file"
        ]
    );
    let chain = |r: &Value| -> Vec<String> {
        std::iter::successors(Some(r), |s| {
            by_id.get(s["parent_span_id"].as_str().unwrap()).copied()
        })
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
    };
    for r in &resources {
        let a = &r["attributes"];
        assert_eq!(r["name"], a["resource"]);
        assert!(
            a["resource"]
                .as_str()
                .unwrap()
                .starts_with(a["resource_type"].as_str().unwrap()),
            "{r}"
        );
        assert_eq!(a["host"], "local");
        assert_eq!(a["outcome"], "changed");
        assert!(a["error_class"].is_null(), "{r}");
        assert!(
            a["location"].as_str().unwrap().starts_with("site.star:"),
            "{r}"
        );
        assert_eq!(chain(r)[1..], ["host local", "apply", "froyo apply"], "{r}");
    }
    // Provider calls and runner ops are spans too, inside the resource's.
    for name in ["provider.apply", "runner.call"] {
        let s = spans
            .iter()
            .find(|s| s["name"] == name && chain(s).iter().any(|n| n.starts_with("linux.")))
            .unwrap_or_else(|| panic!("no {name} span under a resource:\n{text}"));
        assert!(
            s["attributes"]["provider"].is_string() || s["attributes"]["op"].is_string(),
            "{s}"
        );
    }

    // A failing run: its spans are exported too, the failure marked on the resource (its
    // error class) and on the root.
    std::fs::write(
        p.root.join("fail.star"),
        "load(\"@stdlib//linux.star\", \"command\")\ncommand(\"boom\", shell = \"exit 3\")\n",
    )
    .unwrap();
    let failing_trace = "0af7651916cd43dd8448eb211c80319c";
    let failing_parent = traceparent(failing_trace);
    let mut fail_env = env;
    fail_env[5] = ("TRACEPARENT", failing_parent.as_str());
    let fail = p.run(&["apply", "--yes", "fail.star"], &fail_env);
    assert_eq!(fail.code, 1, "{}", fail.stderr);
    let spans = received(&spans_file);
    let failing: Vec<&Value> = spans
        .iter()
        .filter(|s| s["trace_id"] == failing_trace)
        .collect();
    let boom = failing
        .iter()
        .find(|s| s["attributes"]["outcome"] == "failed")
        .unwrap_or_else(|| panic!("no failed resource span: {failing:?}"));
    assert_eq!(boom["attributes"]["resource_type"], "linux.exec::command");
    assert!(boom["attributes"]["error_class"].is_string(), "{boom}");
    assert_eq!(boom["status"], 2, "STATUS_CODE_ERROR: {boom}");
    assert!(
        boom["attributes"]["location"]
            .as_str()
            .is_some_and(|l| l.starts_with("fail.star:2")),
        "{boom}"
    );
    let root = failing
        .iter()
        .find(|s| s["name"] == "froyo apply")
        .expect("the failing run's root span");
    assert_eq!(root["status"], 2, "{root}");

    // With the receiver gone, the run still succeeds, says so once, and waits at most
    // the exporter's timeout (3 s) for it. (A bound on what froyo waits for, with a wide
    // margin for a loaded machine; the speed itself is measured in bench/peers.sh.)
    drop(receiver);
    std::fs::remove_dir_all(&p.out).unwrap();
    let t0 = Instant::now();
    let down = p.run(&["apply", "--yes", "site.star"], &env);
    let took_down = t0.elapsed();
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert_eq!(
        down.stderr.matches("cannot export traces").count(),
        1,
        "{}",
        down.stderr
    );
    assert!(
        took_down < took_up + Duration::from_secs(3 + 10),
        "receiver down: {took_down:?}, up: {took_up:?}"
    );
}

/// `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`: the same spans reach a real OTLP/HTTP
/// receiver (`POST /v1/traces`, protobuf bodies), in the caller's trace.
#[test]
fn traces_reach_an_otlp_http_protobuf_receiver() {
    let p = Proj::new("site.star", SECRET_SITE);
    let spans_file = p.root.join("../spans.jsonl");
    let (_receiver, port) = otlp_http_receiver(&spans_file);
    let endpoint = format!("http://127.0.0.1:{port}");
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let parent = traceparent(trace_id);
    let env = [
        ("FROYO_OBS_TOKEN", TOKEN),
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000"),
        ("TRACEPARENT", parent.as_str()),
    ];
    let run = p.run(&["-v", "apply", "--yes", "site.star"], &env);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "telemetry: traces otlp (http/protobuf) to {endpoint}"
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("cannot export"), "{}", run.stderr);
    let text = std::fs::read_to_string(&spans_file).expect("the receiver got no span");
    assert!(!text.contains(TOKEN), "a secret in a span");
    let spans = received(&spans_file);
    assert!(spans.iter().all(|s| s["trace_id"] == trace_id), "{text}");
    let root = spans
        .iter()
        .find(|s| s["name"] == "froyo apply")
        .expect("the root span");
    assert_eq!(root["parent_span_id"], CALLER_SPAN);
    assert_eq!(root["resource"]["service.name"], "froyo");
    let resources = spans
        .iter()
        .filter(|s| s["attributes"]["outcome"] == "changed")
        .count();
    assert_eq!(resources, 3, "{text}");
}

#[test]
fn ctrl_c_exports_the_spans_of_what_was_done() {
    let mut site = String::from(
        "load(\"@stdlib//linux.star\", \"directory\", \"command\")\nd = directory(\"OUT\", mode = \"0755\")\n",
    );
    for i in 0..20 {
        site.push_str(&format!(
            "require(command(\"step {i}\", shell = \"sleep 0.3 && touch OUT/{i}\", creates = \"OUT/{i}\"), d)\n"
        ));
    }
    let p = Proj::new("site.star", &site);
    let spans_file = p.root.join("../spans.jsonl");
    let (_receiver, port) = otlp_receiver(&spans_file);
    let endpoint = format!("http://127.0.0.1:{port}");
    let trace_id = "5b8efff798038103d269b633813fc60c";
    let parent = traceparent(trace_id);
    let mut apply = p
        .command(
            &["apply", "--yes", "--per-host", "1", "site.star"],
            &[
                ("OTEL_TRACES_EXPORTER", "otlp"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
                ("TRACEPARENT", parent.as_str()),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let count = || std::fs::read_dir(&p.out).map(|d| d.count()).unwrap_or(0);
    // Long: a loaded machine compiles the providers first.
    wait_for("a few resources", Duration::from_secs(300), || count() >= 3);
    let sigint = Command::new("kill")
        .args(["-INT", &apply.id().to_string()])
        .status()
        .unwrap();
    assert!(sigint.success());
    let status = apply.wait().unwrap();
    assert_eq!(status.code(), Some(130), "ended as by SIGINT");
    let done = count();
    assert!(done < 20, "interrupted midway");
    let spans = received(&spans_file);
    let finished: Vec<&Value> = spans
        .iter()
        .filter(|s| s["trace_id"] == trace_id && s["attributes"]["outcome"] == "changed")
        .collect();
    // The directory and every command that finished before the interrupt (the last may
    // have touched its file and been interrupted before its span ended).
    assert!(
        (done..=done + 1).contains(&finished.len()),
        "{} resource spans for {done} files: {spans:?}",
        finished.len()
    );
    assert!(finished.len() >= 3, "{spans:?}");
}
