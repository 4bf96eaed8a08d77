//! The local transport: the runner as a child process of `froyo` (no SSH, no shell).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;

use super::{Session, TargetError, runner};

/// Writes the runner to a fresh private file, checks it, and spawns it.
pub async fn start(name: &str, r#become: bool, timeout: Duration) -> Result<Session, TargetError> {
    let (bytes, sha) = runner();
    let path = write_private(bytes)
        .map_err(|e| TargetError::new(name, format!("cannot write the runner: {e}")))?;
    let written = std::fs::read(&path).map_err(|e| TargetError::new(name, e.to_string()))?;
    if crate::util::sha256_hex(&written) != sha {
        let _ = std::fs::remove_file(&path);
        return Err(TargetError::new(
            name,
            "the runner's sha256 does not match after writing it",
        ));
    }
    let mut cmd = if r#become && !is_root() {
        let mut c = tokio::process::Command::new("sudo");
        c.arg("-n").arg("--").arg(&path);
        c
    } else {
        tokio::process::Command::new(&path)
    };
    cmd.arg("--unlink")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .kill_on_drop(true);
    // A freshly written executable can be briefly "busy" if another thread forked while
    // the file was open for writing; retry a few times.
    let mut child = None;
    for attempt in 0..5 {
        match cmd.spawn() {
            Ok(c) => {
                child = Some(c);
                break;
            }
            Err(e) if e.raw_os_error() == Some(26) && attempt < 4 => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(TargetError::new(
                    name,
                    format!("cannot start the runner: {e}"),
                ));
            }
        }
    }
    let Some(mut child) = child else {
        let _ = std::fs::remove_file(&path);
        return Err(TargetError::new(name, "cannot start the runner"));
    };
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| TargetError::new(name, "no stdin"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| TargetError::new(name, "no stdout"))?;
    if let Some(stderr) = child.stderr.take() {
        let target = name.to_owned();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                if l.starts_with("sudo:") {
                    tracing::warn!(target = %target, "{l}");
                } else {
                    tracing::debug!(target = %target, "runner: {l}");
                }
            }
        });
    }
    let session = Session::start(
        name,
        Box::new(stdout),
        Box::new(stdin),
        Box::new(ChildGuard(std::sync::Mutex::new(child))),
        timeout,
    )
    .await;
    if session.is_err() {
        let _ = std::fs::remove_file(&path);
        if r#become {
            return session.map_err(|e| {
                e.help("`become` runs the runner with `sudo -n`, which must not need a password")
            });
        }
    }
    session
}

/// Kills the runner if the session is dropped without `close()`.
struct ChildGuard(std::sync::Mutex<tokio::process::Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(mut c) = self.0.lock()
            && matches!(c.try_wait(), Ok(None))
        {
            let _ = c.start_kill();
        }
    }
}

fn is_root() -> bool {
    crate::util::proc_status("Uid").is_some_and(|u| u.split_whitespace().next() == Some("0"))
}

fn write_private(bytes: &[u8]) -> std::io::Result<PathBuf> {
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = dir.join(format!(
            ".froyo-runner.{}.{n}.{nanos:x}",
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(bytes)?;
                f.sync_all()?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary file name"))
}
