//! Supervision of one component: a thread per component spawns its process in a
//! process group of its own, waits for it (a waiter thread blocks in `waitpid`, so an
//! exit is seen at once and from the kernel, not from bookkeeping), runs its health
//! probe, and restarts it per `restart_policy` with exponential backoff and jitter. On
//! `always` it never gives up: a crash loop is flagged, and retried every 30 s at most.
//! Stopping is SIGTERM to the whole group, a grace period, then SIGKILL to the group.

use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::layout::Layout;
use crate::recipe::RestartPolicy;
use crate::resolve::ComponentSpec;

/// First restart delay; doubles per consecutive failure up to [`BACKOFF_CAP`].
pub const BACKOFF_START: Duration = Duration::from_millis(250);
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// Up this long, a process's backoff starts over.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// This many exits within [`STABLE_AFTER`] flag a crash loop.
const CRASH_LOOP_EXITS: usize = 5;
/// Before its first healthy probe a component is probed at least this often, so a
/// layer starts as soon as the previous one is ready.
const READY_POLL: Duration = Duration::from_millis(200);

/// What a component is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Starting,
    Running,
    Backoff,
    Stopping,
    Stopped,
    /// Exited and not restarted (its policy says so, or retries ran out).
    Exited,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Backoff => "backoff",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Exited => "exited",
            State::Failed => "failed",
        }
    }
}

/// The live status of a component, read by the API.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub state: State,
    pub pid: Option<u32>,
    /// Healthy at least once since this process started (or spawned, without a probe).
    pub ready: bool,
    /// `unknown`, `healthy` or `unhealthy` (the last probe).
    pub last_health: &'static str,
    pub health_message: Option<String>,
    pub restarts: u64,
    pub last_exit: Option<String>,
    pub last_exit_code: Option<i32>,
    pub crash_loop: bool,
    pub started_at: Option<u64>,
    pub probe_failures_total: u64,
    pub error: Option<String>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            state: State::Starting,
            pid: None,
            ready: false,
            last_health: "unknown",
            health_message: None,
            restarts: 0,
            last_exit: None,
            last_exit_code: None,
            crash_loop: false,
            started_at: None,
            probe_failures_total: 0,
            error: None,
        }
    }
}

enum Msg {
    Exited(u32, std::io::Result<ExitStatus>),
    Stop(Duration, Sender<()>),
    Restart(Duration, Sender<()>),
}

/// A supervised component.
pub struct Supervised {
    pub spec: Arc<ComponentSpec>,
    pub status: Arc<Mutex<Status>>,
    pub log_bytes: Arc<AtomicU64>,
    tx: Sender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Supervised {
    /// Starts supervising `spec` (its process starts right away).
    pub fn start(spec: ComponentSpec, layout: &Layout) -> Self {
        let spec = Arc::new(spec);
        let status = Arc::new(Mutex::new(Status::default()));
        let log_bytes = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel();
        let ctx = Ctx {
            spec: spec.clone(),
            status: status.clone(),
            log_bytes: log_bytes.clone(),
            layout: layout.clone(),
            tx: tx.clone(),
            rx,
        };
        let thread = std::thread::Builder::new()
            .name(format!("sup-{}", spec.name))
            .stack_size(256 * 1024)
            .spawn(move || ctx.run())
            .expect("spawn a supervisor thread");
        Supervised {
            spec,
            status,
            log_bytes,
            tx,
            thread: Mutex::new(Some(thread)),
        }
    }

    pub fn snapshot(&self) -> Status {
        self.status.lock().unwrap().clone()
    }

    /// Stops the process group (SIGTERM, `grace`, SIGKILL) and ends supervision.
    pub fn stop(&self, grace: Duration) {
        let (done_tx, done_rx) = mpsc::channel();
        if self.tx.send(Msg::Stop(grace, done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
        if let Some(t) = self.thread.lock().unwrap().take() {
            let _ = t.join();
        }
    }

    /// Stops the process and starts it again at once (the backoff starts over).
    pub fn restart(&self, grace: Duration) {
        let (done_tx, done_rx) = mpsc::channel();
        if self.tx.send(Msg::Restart(grace, done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }

    /// The pid of the first process, once spawned (`None` if it could not be within
    /// `timeout`).
    pub fn wait_pid(&self, timeout: Duration) -> Option<u32> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.snapshot();
            if s.pid.is_some() || s.error.is_some() || Instant::now() >= deadline {
                return s.pid;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until the component is ready, or `deadline`. `Err` says why not.
    pub fn wait_ready(&self, deadline: Instant) -> Result<(), String> {
        loop {
            let s = self.snapshot();
            if s.ready {
                return Ok(());
            }
            if matches!(s.state, State::Exited | State::Failed | State::Stopped) {
                return Err(s
                    .error
                    .or(s.last_exit.map(|e| format!("the process ended ({e})")))
                    .unwrap_or_else(|| "the process ended".into()));
            }
            if Instant::now() >= deadline {
                let why = match (&s.health_message, &s.last_exit) {
                    (Some(h), _) => format!("last probe: {h}"),
                    (None, Some(e)) => format!("the process keeps exiting ({e})"),
                    (None, None) => "no healthy probe yet".into(),
                };
                return Err(why);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How long a start may take before the component counts as failed: the probe's
    /// `interval × failure_threshold + timeout` (at least 1 s), 2 s without a probe.
    pub fn ready_timeout(spec: &ComponentSpec) -> Duration {
        match spec.probe {
            None => Duration::from_secs(2),
            Some(_) => {
                let t = spec.timing;
                (t.interval * t.failure_threshold + t.timeout).max(Duration::from_secs(1))
            }
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        // A dropped handle must not leave a process behind unsupervised.
        if self.thread.lock().map(|t| t.is_some()).unwrap_or(false) {
            self.stop(Duration::from_secs(5));
        }
    }
}

struct Ctx {
    spec: Arc<ComponentSpec>,
    status: Arc<Mutex<Status>>,
    log_bytes: Arc<AtomicU64>,
    layout: Layout,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
}

/// How a running process's supervision loop ended.
enum Ended {
    Exited(Option<i32>, String),
    Stopped(Sender<()>),
    Restart(Sender<()>),
}

impl Ctx {
    fn set(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap());
    }

    fn run(self) {
        let mut rng = Jitter::new();
        let mut failures: u32 = 0;
        let mut exits: Vec<Instant> = Vec::new();
        let http = crate::fetch::http_agent(Some(Duration::from_secs(30)));
        loop {
            let started = Instant::now();
            let ended = match self.spawn() {
                Ok(pid) => self.supervise(pid, &http),
                Err(e) => {
                    tracing::warn!(component = %self.spec.name, "cannot start: {e}");
                    self.set(|s| {
                        s.error = Some(format!("cannot start `{}`: {e}", self.spec.command));
                        s.pid = None;
                    });
                    Ended::Exited(None, "spawn failed".into())
                }
            };
            let (code, how) = match ended {
                Ended::Stopped(done) => {
                    self.set(|s| {
                        s.state = State::Stopped;
                        s.pid = None;
                        s.ready = false;
                    });
                    let _ = done.send(());
                    return;
                }
                Ended::Restart(done) => {
                    self.set(|s| {
                        s.restarts += 1;
                        s.ready = false;
                    });
                    failures = 0;
                    let _ = done.send(());
                    continue;
                }
                Ended::Exited(code, how) => (code, how),
            };
            let now = Instant::now();
            if now.duration_since(started) >= STABLE_AFTER {
                failures = 0;
            }
            exits.retain(|t| now.duration_since(*t) < STABLE_AFTER);
            exits.push(now);
            let restart = match self.spec.restart {
                RestartPolicy::Never => false,
                RestartPolicy::OnFailure => code != Some(0) && failures < self.spec.max_retries,
                RestartPolicy::Always => true,
            };
            tracing::info!(component = %self.spec.name, "process ended ({how}); restart: {restart}");
            self.set(|s| {
                s.pid = None;
                s.ready = false;
                s.last_exit = Some(how.clone());
                s.last_exit_code = code;
                s.crash_loop = exits.len() >= CRASH_LOOP_EXITS;
            });
            if !restart {
                let failed = code != Some(0);
                self.set(|s| s.state = if failed { State::Failed } else { State::Exited });
                // Stay until told to stop, so the API still shows why.
                loop {
                    match self.rx.recv() {
                        Ok(Msg::Stop(_, done)) => {
                            self.set(|s| s.state = State::Stopped);
                            let _ = done.send(());
                            return;
                        }
                        Ok(Msg::Restart(_, done)) => {
                            failures = 0;
                            exits.clear();
                            self.set(|s| s.restarts += 1);
                            let _ = done.send(());
                            break;
                        }
                        Ok(Msg::Exited(..)) => {}
                        Err(_) => return,
                    }
                }
                continue;
            }
            let delay = rng.spread(backoff(failures));
            failures = failures.saturating_add(1);
            self.set(|s| {
                s.state = State::Backoff;
                s.restarts += 1;
            });
            let until = Instant::now() + delay;
            loop {
                match self
                    .rx
                    .recv_timeout(until.saturating_duration_since(Instant::now()))
                {
                    Ok(Msg::Stop(_, done)) => {
                        self.set(|s| s.state = State::Stopped);
                        let _ = done.send(());
                        return;
                    }
                    Ok(Msg::Restart(_, done)) => {
                        failures = 0;
                        let _ = done.send(());
                        break;
                    }
                    Ok(Msg::Exited(..)) => {}
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        }
    }

    /// The environment of the component's processes: the agent's, the FROYO_* paths,
    /// then the recipe's (and plan's) `env` with `${VAR}` substituted.
    fn env(&self) -> BTreeMap<String, String> {
        child_env(&self.spec, &self.layout)
    }

    fn cwd(&self) -> PathBuf {
        let work = self.layout.work_dir(&self.spec.recipe, &self.spec.version);
        match &self.spec.working_dir {
            Some(d) => {
                let d = substitute(d, &self.env());
                if d.starts_with('/') {
                    PathBuf::from(d)
                } else {
                    work.join(d)
                }
            }
            None => work,
        }
    }

    fn spawn(&self) -> std::io::Result<u32> {
        let env = self.env();
        let program = substitute(&self.spec.command, &env);
        let args: Vec<String> = self.spec.args.iter().map(|a| substitute(a, &env)).collect();
        let (reader, writer) = std::io::pipe()?;
        let mut cmd = Command::new(&program);
        cmd.args(&args)
            .current_dir(self.cwd())
            .env_clear()
            .envs(&env)
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .process_group(0);
        if let Some(n) = self.spec.open_files {
            // SAFETY: runs between fork and exec; setrlimit is async-signal-safe and
            // nothing is allocated.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n as libc::rlim_t,
                        rlim_max: n as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn()?;
        drop(cmd);
        let pid = child.id();
        crate::logs::spawn_reader(
            reader,
            self.layout.log(&self.spec.name),
            self.log_bytes.clone(),
        );
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name("wait".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let r = child.wait();
                let _ = tx.send(Msg::Exited(pid, r));
            })?;
        let no_probe = self.spec.probe.is_none();
        self.set(|s| {
            s.state = State::Running;
            s.pid = Some(pid);
            s.ready = no_probe;
            s.error = None;
            s.last_health = "unknown";
            s.health_message = None;
            s.started_at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs());
        });
        tracing::info!(component = %self.spec.name, pid, "started `{program}`");
        Ok(pid)
    }

    /// Watches a running process until it exits or is stopped.
    fn supervise(&self, pid: u32, http: &ureq::Agent) -> Ended {
        let env = self.env();
        let cwd = self.cwd();
        let mut fails: u32 = 0;
        let mut ready = self.spec.probe.is_none();
        let mut next_probe = Instant::now();
        loop {
            let msg = match &self.spec.probe {
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(_) => self
                    .rx
                    .recv_timeout(next_probe.saturating_duration_since(Instant::now())),
            };
            match msg {
                Ok(Msg::Exited(p, r)) if p == pid => {
                    kill_group(pid, libc::SIGKILL);
                    return exited(r);
                }
                Ok(Msg::Exited(..)) => {}
                Ok(Msg::Stop(grace, done)) => {
                    self.terminate(pid, grace, &env, &cwd);
                    return Ended::Stopped(done);
                }
                Ok(Msg::Restart(grace, done)) => {
                    self.terminate(pid, grace, &env, &cwd);
                    return Ended::Restart(done);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.terminate(pid, Duration::from_secs(5), &env, &cwd);
                    return Ended::Exited(None, "agent shut down".into());
                }
                Err(RecvTimeoutError::Timeout) => {
                    let (probe, timing) =
                        (self.spec.probe.as_ref().expect("probe"), self.spec.timing);
                    let result = crate::health::probe(probe, timing.timeout, &cwd, &env, http);
                    match result {
                        Ok(()) => {
                            fails = 0;
                            if !ready {
                                tracing::info!(component = %self.spec.name, "ready");
                            }
                            ready = true;
                            self.set(|s| {
                                s.ready = true;
                                s.last_health = "healthy";
                                s.health_message = None;
                            });
                        }
                        Err(why) => {
                            fails += 1;
                            self.set(|s| {
                                s.last_health = "unhealthy";
                                s.health_message = Some(why.clone());
                                s.probe_failures_total += 1;
                            });
                            if ready
                                && fails >= timing.failure_threshold
                                && self.spec.restart == RestartPolicy::Always
                            {
                                tracing::warn!(component = %self.spec.name, "unhealthy {fails} times ({why}); restarting");
                                self.terminate(pid, Duration::from_secs(5), &env, &cwd);
                                return Ended::Exited(None, format!("unhealthy: {why}"));
                            }
                        }
                    }
                    let every = if ready {
                        timing.interval
                    } else {
                        timing.interval.min(READY_POLL)
                    };
                    next_probe = Instant::now() + every;
                }
            }
        }
    }

    /// Shutdown hook, SIGTERM to the group, `grace`, SIGKILL to the group; returns once
    /// the process has been reaped.
    fn terminate(
        &self,
        pid: u32,
        grace: Duration,
        env: &BTreeMap<String, String>,
        cwd: &std::path::Path,
    ) {
        self.set(|s| s.state = State::Stopping);
        if let Some(script) = &self.spec.shutdown {
            let spec = froyo_runner::ops::exec::Spec {
                argv: vec!["/bin/sh".into(), "-c".into(), script.clone()],
                env: env.clone(),
                cwd: cwd.to_path_buf(),
                stdin: None,
                timeout: grace,
                max_output: 4096,
            };
            if let Err(e) = froyo_runner::ops::exec::run(
                &spec,
                &std::sync::atomic::AtomicBool::new(false),
                None,
            ) {
                tracing::warn!(component = %self.spec.name, "shutdown script: {e}");
            }
        }
        kill_group(pid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        let mut killed = false;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let wait = if killed {
                Duration::from_secs(10)
            } else {
                wait
            };
            match self.rx.recv_timeout(wait) {
                Ok(Msg::Exited(p, _)) if p == pid => break,
                Ok(Msg::Stop(_, done)) | Ok(Msg::Restart(_, done)) => {
                    // Already stopping; the caller waits for this stop instead.
                    let _ = done.send(());
                }
                Ok(Msg::Exited(..)) => {}
                Err(RecvTimeoutError::Timeout) if !killed => {
                    tracing::warn!(component = %self.spec.name, pid, "still running after {:?}; SIGKILL", grace);
                    kill_group(pid, libc::SIGKILL);
                    killed = true;
                }
                Err(_) => break,
            }
        }
        // Stragglers of the group that ignored SIGTERM.
        kill_group(pid, libc::SIGKILL);
    }
}

fn exited(r: std::io::Result<ExitStatus>) -> Ended {
    match r {
        Ok(st) => match (st.code(), st.signal()) {
            (Some(c), _) => Ended::Exited(Some(c), format!("exit {c}")),
            (None, Some(s)) => Ended::Exited(None, format!("signal {s}")),
            _ => Ended::Exited(None, "ended".into()),
        },
        Err(e) => Ended::Exited(None, format!("wait failed: {e}")),
    }
}

/// Signals a whole process group (the component and everything it started).
pub fn kill_group(pgid: u32, sig: i32) {
    if let Ok(p) = i32::try_from(pgid)
        && p > 1
    {
        // SAFETY: plain syscall on a negative pid (a process group).
        unsafe {
            libc::kill(-p, sig);
        }
    }
}

/// The delay before restart number `failures + 1`: 250 ms doubling to 30 s.
pub fn backoff(failures: u32) -> Duration {
    BACKOFF_START
        .saturating_mul(1u32.checked_shl(failures.min(16)).unwrap_or(u32::MAX))
        .min(BACKOFF_CAP)
}

/// ±20 % jitter from a small xorshift generator (no crate needed for this).
pub struct Jitter(u64);

impl Default for Jitter {
    fn default() -> Self {
        Self::new()
    }
}

impl Jitter {
    pub fn new() -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ (u64::from(std::process::id()) << 32);
        Jitter(seed | 1)
    }

    pub fn spread(&mut self, d: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let unit = (self.0 % 10_000) as f64 / 10_000.0; // [0, 1)
        d.mul_f64(0.8 + 0.4 * unit)
    }
}

/// The environment a component's processes get.
pub fn child_env(spec: &ComponentSpec, layout: &Layout) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    let work = layout.work_dir(&spec.recipe, &spec.version);
    let arts = layout.artifact_dir(&spec.recipe, &spec.version);
    env.insert("FROYO_COMPONENT".into(), spec.name.clone());
    env.insert("FROYO_COMPONENT_VERSION".into(), spec.version.clone());
    env.insert("FROYO_WORK_DIR".into(), work.display().to_string());
    env.insert("FROYO_ARTIFACTS_DIR".into(), arts.display().to_string());
    env.insert("FROYO_DATA_DIR".into(), layout.root.display().to_string());
    let base = env.clone();
    for (k, v) in &spec.env {
        env.insert(k.clone(), substitute(v, &base));
    }
    env
}

/// `${VAR}` → its value in `env` (empty when unset), as Keystone's `os.ExpandEnv`.
pub fn substitute(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) => {
                let name = &after[..j];
                if let Some(v) = env.get(name) {
                    out.push_str(v);
                }
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        assert_eq!(backoff(0), Duration::from_millis(250));
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_millis(1000));
        assert_eq!(backoff(7), Duration::from_secs(30));
        assert_eq!(backoff(40), Duration::from_secs(30));
        let mut j = Jitter::new();
        for _ in 0..100 {
            let d = j.spread(Duration::from_secs(10));
            assert!(
                d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
                "{d:?}"
            );
        }
    }

    #[test]
    fn substitution() {
        let env: BTreeMap<String, String> =
            [("A".to_string(), "1".to_string())].into_iter().collect();
        assert_eq!(substitute("x${A}y${B}z", &env), "x1yz");
        assert_eq!(substitute("${A", &env), "${A");
        assert_eq!(substitute("$A", &env), "$A");
    }
}
