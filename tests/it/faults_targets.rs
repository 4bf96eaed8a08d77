//! Faults injected into the targets of a running apply (issue 22): a runner killed, sshd
//! killed, the network to one host dropped (inside a network namespace the test creates),
//! and malicious "runners" that answer garbage, a huge frame or nothing. Three hosts each
//! time: a host lost mid-apply fails with `E-TARGET`, the others finish, the state stays
//! sound, and once the fault is gone the next apply converges; a host that cannot be
//! planned is an error before anything is applied.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use froyo::state::SqliteStore;

use crate::Run;
use crate::engine::wait_for;
use crate::fault_log::Recorded;
use crate::netns::Netns;
use crate::sshd::{Options, Project, Sshd, whoami};

const NAMES: [&str; 3] = ["t1", "t2", "t3"];

/// Three loopback sshd targets (`t1`…`t3`) of one project, whose playbook runs `steps`
/// marked steps of `secs` seconds on each host, one at a time.
struct Fleet {
    _dir: tempfile::TempDir,
    p: Project,
    servers: Vec<Sshd>,
    out: PathBuf,
    steps: usize,
    netns: Option<Netns>,
}

impl Fleet {
    /// `transport` goes into `froyo.toml`'s `[transport]`; `opts(i)` configures server i.
    fn new(
        steps: usize,
        secs: &str,
        transport: &str,
        netns: Option<Netns>,
        extra_config: impl Fn(usize) -> String,
    ) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let p = Project::new(&dir.path().join("project"));
        let servers: Vec<Sshd> = (0..3)
            .map(|i| {
                let extra = extra_config(i);
                Sshd::start_opts(
                    &dir.path().join(format!("sshd{i}")),
                    &p.public_key(),
                    &Options {
                        extra_config: &extra,
                        netns: netns.as_ref(),
                    },
                )
            })
            .collect();
        let named: Vec<(&str, &Sshd)> = NAMES.iter().copied().zip(servers.iter()).collect();
        p.inventory(&named, &whoami());
        p.trust(&servers.iter().collect::<Vec<_>>());
        std::fs::write(
            p.root.join("froyo.toml"),
            format!("[project]\nname = \"faults\"\n\n[transport]\n{transport}\n"),
        )
        .unwrap();
        let out = dir.path().join("out");
        std::fs::write(
            p.root.join("site.star"),
            format!(
                r#"
load("@stdlib//linux.star", "directory", "command")
def main(host):
    base = "{out}/" + host.name
    d = directory(base, mode = "0755")
    for i in range({steps}):
        require(command("step %d" % i, shell = "touch %s/started-%d && sleep {secs} && touch %s/done-%d" % (base, i, base, i), creates = "%s/done-%d" % (base, i)), d)
"#,
                out = out.display()
            ),
        )
        .unwrap();
        Fleet {
            _dir: dir,
            p,
            servers,
            out,
            steps,
            netns,
        }
    }

    fn command(&self) -> Command {
        let bin = env!("CARGO_BIN_EXE_froyo");
        let mut c = match &self.netns {
            Some(ns) => ns.command(bin),
            None => Command::new(bin),
        };
        c.current_dir(&self.p.root)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG");
        c
    }

    fn spawn_apply(&self) -> Child {
        self.command()
            .args([
                "apply",
                "--yes",
                "--per-host",
                "1",
                "--on",
                "role=test",
                "site.star",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn run(&self, args: &[&str]) -> Run {
        let out = self.command().args(args).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn count(&self, host: &str, prefix: &str) -> usize {
        count(&self.out.join(host), prefix)
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open_project(&self.p.root).unwrap()
    }

    /// After a fault on `t2` is gone: the next apply converges on every host, and a plan
    /// then finds nothing to do.
    fn rerun_converges(&self) {
        let next = self.run(&["apply", "--yes", "--on", "role=test", "site.star"]);
        assert_eq!(next.code, 0, "{}\n{}", next.stdout, next.stderr);
        for h in NAMES {
            assert_eq!(self.count(h, "done-"), self.steps, "{h}: {}", next.stdout);
        }
        let plan = self.run(&[
            "plan",
            "--detailed-exitcode",
            "--on",
            "role=test",
            "site.star",
        ]);
        assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
        assert_eq!(self.store().integrity_check().unwrap(), "ok");
        for s in &self.servers {
            for pid in s.runner_processes() {
                // Runners of the broken sessions may still be winding down.
                wait_for("the old runners to exit", Duration::from_secs(30), || {
                    !Path::new(&format!("/proc/{pid}")).exists()
                });
            }
        }
    }
}

fn count(dir: &Path, prefix: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

/// The apply's exit code, stdout and stderr, and how long it ran after `since`.
fn wait_exit(child: Child, since: Instant, limit: Duration) -> (Run, Duration) {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(limit) else {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("froyo apply did not end within {limit:?}");
    };
    let out = out.unwrap();
    (
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        since.elapsed(),
    )
}

/// The outcome every target fault must have: `t2` failed with `E-TARGET`, `t1` and `t3`
/// finished every step, and the state is sound.
fn only_t2_failed(f: &Fleet, run: &Run) {
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("E-TARGET") && run.stderr.contains("t2"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    for h in ["t1", "t3"] {
        assert_eq!(f.count(h, "done-"), f.steps, "{h}: {}", run.stdout);
    }
    assert!(f.count("t2", "done-") < f.steps, "the fault came too late");
    assert_eq!(f.store().integrity_check().unwrap(), "ok");
}

fn wait_steps(f: &Fleet, n: usize) {
    wait_for("two steps on every host", Duration::from_secs(60), || {
        NAMES.iter().all(|h| f.count(h, "done-") >= n)
    });
}

/// The runner on `t2` is killed (SIGKILL) mid-apply.
#[test]
fn a_runner_killed_mid_apply_fails_its_host_only_and_a_rerun_converges() {
    let f = Fleet::new(12, "0.3", "", None, |_| String::new());
    let child = f.spawn_apply();
    wait_steps(&f, 2);
    let before = Recorded::of(&f.store());
    let pids = f.servers[1].runner_processes();
    assert!(!pids.is_empty(), "no runner on t2");
    for pid in &pids {
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
    }
    let (run, took) = wait_exit(child, Instant::now(), Duration::from_secs(60));
    only_t2_failed(&f, &run);
    eprintln!("runner killed: apply ended {took:?} later\n{}", run.stderr);
    before.survived(
        &f.store(),
        "faults_targets::a_runner_killed_mid_apply_…",
        "the runner on 1 of 3 hosts killed (SIGKILL)",
        &format!(
            "E-TARGET on that host {:.1} s later, the others finished, a rerun converged",
            took.as_secs_f64()
        ),
    );
    f.rerun_converges();
}

/// sshd on `t2` dies mid-apply (the listener and its per-connection processes).
#[test]
fn sshd_killed_mid_apply_fails_its_host_only_and_a_rerun_converges() {
    let mut f = Fleet::new(12, "0.3", "", None, |_| String::new());
    let child = f.spawn_apply();
    wait_steps(&f, 2);
    let before = Recorded::of(&f.store());
    f.servers[1].kill();
    let (run, took) = wait_exit(child, Instant::now(), Duration::from_secs(60));
    only_t2_failed(&f, &run);
    eprintln!("sshd killed: apply ended {took:?} later\n{}", run.stderr);
    before.survived(
        &f.store(),
        "faults_targets::sshd_killed_mid_apply_…",
        "sshd on 1 of 3 hosts killed, then restarted",
        &format!(
            "E-TARGET on that host {:.1} s later, the others finished, a rerun converged",
            took.as_secs_f64()
        ),
    );
    f.servers[1].restart();
    f.rerun_converges();
}

/// The network to `t2` drops for 30 s mid-apply (nftables drops its port inside the
/// test's namespace): with `keepalive_interval = 1` and `keepalive_max = 2`, t2 fails
/// within seconds, not after the op timeout or the drop.
#[test]
fn a_network_drop_to_one_host_fails_it_within_the_keepalive_limit() {
    let ns = Netns::new("faults-net");
    let f = Fleet::new(
        16,
        "0.3",
        "keepalive_interval = 1\nkeepalive_max = 2\nconnect_timeout = 3\n",
        Some(ns),
        |_| String::new(),
    );
    let ns = f.netns.as_ref().unwrap();
    let child = f.spawn_apply();
    wait_steps(&f, 2);
    let before = Recorded::of(&f.store());
    let port = f.servers[1].port.to_string();
    ns.exec(&["nft", "add", "table", "inet", "fault"]);
    ns.exec(&[
        "nft",
        "add chain inet fault input { type filter hook input priority 0 ; }",
    ]);
    ns.exec(&[
        "nft", "add", "rule", "inet", "fault", "input", "tcp", "dport", &port, "drop",
    ]);
    ns.exec(&[
        "nft", "add", "rule", "inet", "fault", "input", "tcp", "sport", &port, "drop",
    ]);
    let dropped = Instant::now();
    let (run, took) = wait_exit(child, dropped, Duration::from_secs(60));
    only_t2_failed(&f, &run);
    assert!(
        took < Duration::from_secs(20),
        "t2 failed {took:?} after the drop: the keepalive limit did not hold"
    );
    eprintln!(
        "network dropped: apply ended {took:?} later\n{}",
        run.stderr
    );
    before.survived(
        &f.store(),
        "faults_targets::a_network_drop_to_one_host_…",
        "the network to 1 of 3 hosts dropped for 30 s (nftables)",
        &format!(
            "E-TARGET on that host {:.1} s after the drop (keepalive 1 s × 2), a rerun converged",
            took.as_secs_f64()
        ),
    );
    // The drop lasts 30 s; then the network is back and the next apply converges.
    std::thread::sleep(Duration::from_secs(30).saturating_sub(dropped.elapsed()));
    ns.exec(&["nft", "delete", "table", "inet", "fault"]);
    f.rerun_converges();
}

/// A compromised `t2` whose sshd runs `script` instead of the bootstrap. The plan needs
/// every host's state, so `t2` fails at plan time (`E-TARGET` when the session cannot
/// start, `E-PROVIDER` per resource when it breaks during the reads) with `expect` in its
/// message, and (as for any host that cannot be planned) nothing is applied anywhere: no
/// step starts on `t1` or `t3` either. The controller's memory stays bounded (GNU time's
/// peak RSS, in KiB, is returned) and the state stays sound.
fn malicious(test: &str, fault: &str, script: &str, transport: &str, expect: &str) -> (Run, u64) {
    let evil = tempfile::tempdir().unwrap();
    let path = evil.path().join("evil.sh");
    // It swallows the upload (as a shell would) so that only its answers matter.
    std::fs::write(
        &path,
        format!("#!/bin/bash\ncat <&0 > /dev/null &\n{script}\n"),
    )
    .unwrap();
    Command::new("chmod")
        .args(["755"])
        .arg(&path)
        .status()
        .unwrap();
    let force = format!("ForceCommand {}\n", path.display());
    let f = Fleet::new(4, "0.1", transport, None, |i| {
        if i == 1 { force.clone() } else { String::new() }
    });
    // A fresh state: the plan fails before anything is recorded but the run itself.
    let before = Recorded::of(&f.store());
    let out = Command::new("/usr/bin/time")
        .args(["-f", "FROYO-MAXRSS %M"])
        .arg(env!("CARGO_BIN_EXE_froyo"))
        .args(["apply", "--yes", "--on", "role=test", "site.star"])
        .current_dir(&f.p.root)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let rss: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("FROYO-MAXRSS "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from GNU time: {stderr}"));
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    };
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        (run.stderr.contains("E-TARGET") || run.stderr.contains("E-PROVIDER"))
            && run.stderr.contains(expect),
        "wanted `{expect}`:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    for h in NAMES {
        assert_eq!(f.count(h, "started-"), 0, "{h}: {}", run.stdout);
    }
    assert_eq!(f.store().integrity_check().unwrap(), "ok");
    before.survived(
        &f.store(),
        test,
        fault,
        &format!(
            "{expect:?} on that host, nothing applied anywhere, controller peak RSS {} MiB",
            rss / 1024
        ),
    );
    (run, rss)
}

/// A ready frame as the real runner sends it, for scripts that pass the first check.
const READY: &str = r#"echo '{"type":"ready","version":"0.1.0","pid":1,"arch":"x86_64","os":"linux","caps":["exec","file.read","file.write","file.stat","dir.ensure","facts"]}'"#;

#[test]
fn a_target_answering_garbage_fails_that_host_at_once() {
    let (run, _) = malicious(
        "faults_targets::a_target_answering_garbage_…",
        "a target answering garbage",
        "echo 'HTTP/1.1 200 OK'; wait",
        "",
        "unexpected first line",
    );
    eprintln!("{}", run.stderr);
    let (run, _) = malicious(
        "faults_targets::a_target_answering_garbage_…",
        "a target sending a line that is not a frame",
        &format!("{READY}; sleep 0.5; echo 'not a frame'; wait"),
        "",
        "not a frame",
    );
    eprintln!("{}", run.stderr);
}

#[test]
fn a_target_sending_a_huge_frame_cannot_grow_the_controller() {
    // 256 MiB without a newline, after a valid `ready`.
    let (run, rss_kib) = malicious(
        "faults_targets::a_target_sending_a_huge_frame_…",
        "a target sending a 256 MiB frame",
        &format!("{READY}; head -c 268435456 /dev/zero | tr '\\0' x; sleep 60"),
        "",
        "longer than",
    );
    eprintln!(
        "huge frame: controller peak RSS {} MiB\n{}",
        rss_kib / 1024,
        run.stderr
    );
    assert!(
        rss_kib < 200 * 1024,
        "the controller held {} MiB of a 256 MiB frame",
        rss_kib / 1024
    );
}

#[test]
fn a_target_that_never_answers_fails_after_its_time_limits() {
    // Silent before `ready`: the start timeout.
    let started = Instant::now();
    let (run, _) = malicious(
        "faults_targets::a_target_that_never_answers_…",
        "a target silent before ready",
        "wait",
        "start_timeout = 3\n",
        "did not start within 3s",
    );
    let took = started.elapsed();
    eprintln!("silent target: apply took {took:?}\n{}", run.stderr);
    assert!(took < Duration::from_secs(40), "{took:?}");
    // Ready, then silent: the op timeout.
    let started = Instant::now();
    let (run, _) = malicious(
        "faults_targets::a_target_that_never_answers_…",
        "a target silent after ready",
        &format!("{READY}; wait"),
        "op_timeout = 3\n",
        "timed out",
    );
    let took = started.elapsed();
    eprintln!("silent runner: apply took {took:?}\n{}", run.stderr);
    assert!(took < Duration::from_secs(40), "{took:?}");
}
