//! `linux.service` end to end on this host's init scripts: the test container has no
//! systemd as PID 1 and no OpenRC, so the provider takes its sysvinit path, which drives a
//! real daemon here (systemd and OpenRC are covered by the provider's unit tests on
//! recorded outputs). The daemon is a shell loop started by start-stop-daemon with a pid
//! file; it logs every SIGHUP, so a reload is observable.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use froyo::provider_host::{Limits, ProviderHost};
use serde_json::json;

use crate::providers::{converge, local_session, validated};

const NAME: &str = "froyo-it-svc";
const SCRIPT: &str = "/etc/init.d/froyo-it-svc";
const DIR: &str = "/run/froyo-it-svc";
const PIDFILE: &str = "/run/froyo-it-svc/pid";
const LOG: &str = "/run/froyo-it-svc/log";

const DAEMON: &str = r#"#!/bin/sh
# The froyo-it-svc test daemon: logs its start and every SIGHUP, exits on SIGTERM.
log="$1"
trap 'echo "reload $$" >> "$log"' HUP
trap 'echo "stop $$" >> "$log"; exit 0' TERM
echo "start $$" >> "$log"
while :; do sleep 1 & wait $!; done
"#;

const INIT_SCRIPT: &str = r#"#!/bin/sh
### BEGIN INIT INFO
# Provides:          froyo-it-svc
# Required-Start:    $remote_fs
# Required-Stop:     $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: OpenFroyo integration test daemon
### END INIT INFO
DAEMON=/run/froyo-it-svc/daemon
PIDFILE=/run/froyo-it-svc/pid
LOG=/run/froyo-it-svc/log
case "$1" in
  start)
    start-stop-daemon --start --quiet --oknodo --background --make-pidfile --pidfile "$PIDFILE" --startas "$DAEMON" -- "$LOG"
    ;;
  stop)
    start-stop-daemon --stop --quiet --oknodo --retry TERM/5/KILL/2 --pidfile "$PIDFILE"
    rc=$?
    rm -f "$PIDFILE"
    exit $rc
    ;;
  restart|force-reload)
    "$0" stop && "$0" start
    ;;
  reload)
    start-stop-daemon --stop --quiet --signal HUP --pidfile "$PIDFILE"
    ;;
  status)
    start-stop-daemon --status --pidfile "$PIDFILE"
    ;;
  *)
    echo "Usage: $0 {start|stop|restart|reload|force-reload|status}" >&2
    exit 2
    ;;
esac
"#;

/// Removes everything the test installs, before it starts (a previous run may have been
/// killed half-way) and when it ends, passing or not.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        cleanup();
    }
}

fn cleanup() {
    if let Some(pid) = daemon_pid() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        if !wait_for(|| !alive(pid)) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
    if Path::new(SCRIPT).exists() {
        let _ = Command::new("update-rc.d")
            .args(["-f", NAME, "remove"])
            .output();
    }
    // Links left behind when the script was already gone.
    for l in rc_links() {
        let _ = std::fs::remove_file(l);
    }
    let _ = std::fs::remove_file(SCRIPT);
    let _ = std::fs::remove_dir_all(DIR);
}

/// `/etc/rc?.d/[SK]NNfroyo-it-svc`.
fn rc_links() -> Vec<String> {
    let mut links = Vec::new();
    for level in ["0", "1", "2", "3", "4", "5", "6", "S"] {
        let dir = format!("/etc/rc{level}.d");
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() == NAME.len() + 3 && name.ends_with(NAME) {
                links.push(format!("{dir}/{name}"));
            }
        }
    }
    links
}

fn start_links() -> Vec<String> {
    rc_links()
        .into_iter()
        .filter(|l| {
            let name = l.rsplit('/').next().unwrap_or_default();
            name.starts_with('S')
                && ["2", "3", "4", "5"]
                    .iter()
                    .any(|n| l.contains(&format!("rc{n}.d")))
        })
        .collect()
}

fn daemon_pid() -> Option<i32> {
    std::fs::read_to_string(PIDFILE).ok()?.trim().parse().ok()
}

/// The process runs and is our daemon. PID 1 here reaps orphans only now and then, so a
/// zombie counts as gone.
fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit(')').next().unwrap_or_default().trim_start();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    !state.starts_with('Z')
        && String::from_utf8_lossy(&cmdline).contains("/run/froyo-it-svc/daemon")
}

fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

fn log_lines(prefix: &str) -> usize {
    std::fs::read_to_string(LOG)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(prefix))
        .count()
}

fn install() {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(DIR).unwrap();
    let daemon = format!("{DIR}/daemon");
    std::fs::write(&daemon, DAEMON).unwrap();
    std::fs::set_permissions(&daemon, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(SCRIPT, INIT_SCRIPT).unwrap();
    std::fs::set_permissions(SCRIPT, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn linux_service_drives_a_real_sysvinit_daemon() {
    if Path::new("/run/systemd/system").exists() || Path::new("/run/openrc").exists() {
        panic!("this test expects a host without systemd or OpenRC (the provider would use them)");
    }
    cleanup();
    let _cleanup = Cleanup;
    install();

    let (rt, session) = local_session();
    let mut host = ProviderHost::builtin(Limits::default(), None).unwrap();
    host.runtime = Some(rt.handle().clone());
    let service =
        |config: serde_json::Value| vec![validated("linux.service::service", NAME, config)];
    let handler = |action: &str| {
        vec![validated(
            "linux.service::service",
            &format!("{NAME}:{action}"),
            json!({"unit": NAME, "action": action}),
        )]
    };
    let p = "linux.service";

    // stopped → running: the daemon really runs.
    let running = service(json!({"unit": NAME}));
    assert_eq!(
        converge(&host, p, &session, &running),
        ["update froyo-it-svc: start froyo-it-svc"]
    );
    let pid = daemon_pid().expect("pid file after start");
    assert!(wait_for(|| alive(pid)), "daemon {pid} does not run");
    assert!(converge(&host, p, &session, &running).is_empty());
    // `nginx.service` names the same script.
    let with_suffix = service(json!({"unit": format!("{NAME}.service")}));
    assert!(converge(&host, p, &session, &with_suffix).is_empty());

    // Enabled at boot: S links in rc2-5.d; then disabled: none left.
    assert!(start_links().is_empty(), "{:?}", rc_links());
    let enabled = service(json!({"unit": NAME, "enabled": true}));
    assert_eq!(
        converge(&host, p, &session, &enabled),
        ["update froyo-it-svc: enable froyo-it-svc at boot"]
    );
    assert_eq!(start_links().len(), 4, "{:?}", rc_links());
    assert!(converge(&host, p, &session, &enabled).is_empty());
    let disabled = service(json!({"unit": NAME, "enabled": false}));
    assert_eq!(
        converge(&host, p, &session, &disabled),
        ["update froyo-it-svc: disable froyo-it-svc at boot"]
    );
    assert!(start_links().is_empty(), "{:?}", rc_links());
    assert!(converge(&host, p, &session, &disabled).is_empty());
    assert!(
        alive(pid),
        "enable/disable must not touch the running daemon"
    );

    // A restart handler: a new process.
    assert_eq!(
        converge(&host, p, &session, &handler("restart")),
        ["run froyo-it-svc:restart: restart froyo-it-svc"]
    );
    let new_pid = daemon_pid().expect("pid file after restart");
    assert_ne!(new_pid, pid);
    assert!(wait_for(|| alive(new_pid)), "daemon {new_pid} does not run");
    assert!(wait_for(|| !alive(pid)), "old daemon {pid} still runs");

    // A reload handler: SIGHUP to the same process, which logs it. The daemon logs
    // `start` after setting its traps: a SIGHUP before that would end it.
    assert!(
        wait_for(|| log_lines(&format!("start {new_pid}")) == 1),
        "daemon {new_pid} never logged its start"
    );
    let reloads = log_lines(&format!("reload {new_pid}"));
    assert_eq!(
        converge(&host, p, &session, &handler("reload")),
        ["run froyo-it-svc:reload: reload froyo-it-svc"]
    );
    assert!(
        wait_for(|| log_lines(&format!("reload {new_pid}")) == reloads + 1),
        "no reload in the log: {}",
        std::fs::read_to_string(LOG).unwrap_or_default()
    );
    assert_eq!(daemon_pid(), Some(new_pid));

    // stopped: the daemon is gone.
    let stopped = service(json!({"unit": NAME, "state": "stopped"}));
    assert_eq!(
        converge(&host, p, &session, &stopped),
        ["update froyo-it-svc: stop froyo-it-svc"]
    );
    assert!(wait_for(|| !alive(new_pid)), "daemon {new_pid} still runs");
    assert!(converge(&host, p, &session, &stopped).is_empty());

    // A reload handler on a stopped service has nothing to reload and starts nothing.
    let reload = handler("reload");
    let actual = host.read(p, Some(session.clone()), &reload).unwrap();
    let ops = host.diff(p, &reload[0], &actual[0]).unwrap();
    assert_eq!(ops.len(), 1);
    let out = host.apply(p, Some(session.clone()), &ops[0]).unwrap();
    assert!(!out.changed, "{}", out.output);
    assert_eq!(daemon_pid(), None);

    // A unit that does not exist: refused at diff time, naming it; the read of the
    // batch it is in still answers for the others.
    let batch = vec![
        validated(
            "linux.service::service",
            "missing",
            json!({"unit": "froyo-it-no-such-svc"}),
        ),
        stopped[0].clone(),
    ];
    let actual = host.read(p, Some(session.clone()), &batch).unwrap();
    let err = host.diff(p, &batch[0], &actual[0]).unwrap_err();
    assert_eq!(
        err.class,
        Some(froyo::provider_host::ErrorClass::Permanent),
        "{err}"
    );
    assert!(
        err.message
            .contains("service `froyo-it-no-such-svc` does not exist on the target: there is no executable /etc/init.d/froyo-it-no-such-svc"),
        "{err}"
    );
    assert!(host.diff(p, &batch[1], &actual[1]).unwrap().is_empty());
}
