//! Reaching targets: one runner session per target, started locally (a child process) or
//! over SSH (`russh`, strict host-key checking against `.froyo/known_hosts`).
//!
//! Either way the embedded static runner is shipped to a fresh private path, its sha256
//! is checked on the target before it is executed, and it deletes its own file right
//! after start. After that every op is one frame on the one stream: no further shells.

mod local;
mod session;
mod ssh;

pub use ssh::{Auth, HostKey};

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use session::{CallError, FrameLine, MAX_FRAME, Routed, Session, read_frame, route};

use crate::diag::{Code, Diagnostic};
use crate::inventory::Target;

/// A target that could not be reached or whose runner could not start (`E-TARGET`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{target}: {message}")]
pub struct TargetError {
    pub target: String,
    pub message: String,
    pub help: Option<String>,
}

impl TargetError {
    pub fn new(target: &str, message: impl Into<String>) -> Self {
        TargetError {
            target: target.to_owned(),
            message: message.into(),
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn to_diagnostic(&self) -> Diagnostic {
        let d = Diagnostic::new(
            Code::Target,
            format!("target `{}`: {}", self.target, self.message),
        );
        match &self.help {
            Some(h) => d.help(h.clone()),
            None => d,
        }
    }
}

/// The runner binary shipped to targets (built for x86_64-unknown-linux-musl by
/// `build.rs`) and its sha256.
pub fn runner() -> (&'static [u8], &'static str) {
    (crate::bundled::RUNNER, crate::bundled::RUNNER_SHA256)
}

/// Time limits of target sessions (`[transport]` of `froyo.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the TCP connection to a logged-in session.
    pub connect: Duration,
    /// From connection to the runner's `ready` frame.
    pub start: Duration,
    /// One runner op.
    pub op: Duration,
    /// Between SSH keepalives.
    pub keepalive_interval: Duration,
    /// Unanswered keepalives before the connection counts as lost.
    pub keepalive_max: usize,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            start: Duration::from_secs(30),
            op: Duration::from_secs(900),
            keepalive_interval: Duration::from_secs(15),
            keepalive_max: 3,
        }
    }
}

impl Timeouts {
    /// The defaults, overridden by `[transport]` (each value at least 1).
    pub fn from_settings(t: &crate::project::TransportSection) -> Timeouts {
        let d = Timeouts::default();
        let secs = |v: Option<u64>, default: Duration| {
            v.map_or(default, |s| Duration::from_secs(s.max(1)))
        };
        Timeouts {
            connect: secs(t.connect_timeout, d.connect),
            start: secs(t.start_timeout, d.start),
            op: secs(t.op_timeout, d.op),
            keepalive_interval: secs(t.keepalive_interval, d.keepalive_interval),
            keepalive_max: t
                .keepalive_max
                .map_or(d.keepalive_max, |n| n.clamp(1, 1000) as usize),
        }
    }
}

/// How to reach targets: where keys and known hosts live, and time limits.
#[derive(Debug, Clone)]
pub struct Connector {
    /// `.froyo/known_hosts` of the project.
    pub known_hosts: PathBuf,
    /// The project's SSH key (`.froyo/keys/id_ed25519`), unless a target names its own.
    pub default_key: PathBuf,
    pub project_root: PathBuf,
    pub timeouts: Timeouts,
}

impl Connector {
    /// The project's keys, known hosts and `[transport]` limits.
    pub fn for_project(project: &crate::project::Project) -> Connector {
        Connector {
            timeouts: Timeouts::from_settings(&project.settings.transport),
            ..Connector::at_root(&project.root)
        }
    }

    /// The keys and known hosts under `root/.froyo`, with the default time limits.
    pub fn at_root(root: &Path) -> Connector {
        let dot = root.join(".froyo");
        Connector {
            known_hosts: dot.join("known_hosts"),
            default_key: dot.join("keys").join("id_ed25519"),
            project_root: root.to_owned(),
            timeouts: Timeouts::default(),
        }
    }

    /// Starts a runner on `target`. `become` runs it through `sudo -n` (as root).
    #[tracing::instrument(name = "session", skip_all, fields(host = %target.name, become_root = r#become))]
    pub async fn open(&self, target: &Target, r#become: bool) -> Result<Session, TargetError> {
        let mut session = self.open_runner(target, r#become).await?;
        session.op_timeout = self.timeouts.op;
        Ok(session)
    }

    async fn open_runner(&self, target: &Target, r#become: bool) -> Result<Session, TargetError> {
        if target.is_local() {
            return local::start(&target.name, r#become, self.timeouts.start).await;
        }
        let (host, port) = split_address(&target.address, target.port.unwrap_or(22))
            .map_err(|e| TargetError::new(&target.name, e))?;
        let key = match &target.key {
            Some(k) if Path::new(k).is_absolute() => PathBuf::from(k),
            Some(k) => self.project_root.join(k),
            None => self.default_key.clone(),
        };
        let user = target.user.clone().unwrap_or_else(|| "root".to_owned());
        ssh::start(
            &ssh::SshTarget {
                name: target.name.clone(),
                host,
                port,
                user,
                key,
            },
            &self.known_hosts,
            r#become,
            &self.timeouts,
        )
        .await
    }
}

impl Connector {
    /// Onboarding's first contact: logs in to `host:port` as `user` with `auth`, trusting
    /// an unknown host key (returned, for the caller to record once onboarding worked);
    /// a key that differs from the one recorded is still refused.
    pub async fn open_onboarding(
        &self,
        name: &str,
        host: &str,
        port: u16,
        user: &str,
        auth: &Auth,
        r#become: bool,
    ) -> Result<(Session, HostKey), TargetError> {
        ssh::start_onboarding(
            &ssh::SshTarget {
                name: name.to_owned(),
                host: host.to_owned(),
                port,
                user: user.to_owned(),
                key: self.default_key.clone(),
            },
            auth,
            &self.known_hosts,
            r#become,
            &self.timeouts,
        )
        .await
    }
}

/// `host`, `host:port` or `[v6]:port`.
pub fn split_address(address: &str, default_port: u16) -> Result<(String, u16), String> {
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("invalid port in address `{address}`"))
    };
    if let Some(rest) = address.strip_prefix('[') {
        let (host, tail) = rest
            .split_once(']')
            .ok_or_else(|| format!("invalid address `{address}`"))?;
        return match tail.strip_prefix(':') {
            Some(p) => Ok((host.to_owned(), parse_port(p)?)),
            None if tail.is_empty() => Ok((host.to_owned(), default_port)),
            None => Err(format!("invalid address `{address}`")),
        };
    }
    match address.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((h.to_owned(), parse_port(p)?)),
        _ => Ok((address.to_owned(), default_port)),
    }
}

/// The shell script that receives the runner on stdin, checks it and replaces itself with
/// it. The only shell started on a target per run; the runner itself never uses one.
pub(crate) fn bootstrap_script(size: usize, sha256: &str, r#become: bool) -> String {
    let exec = if r#become {
        "if [ \"$(id -u)\" != 0 ]; then sudo -n true 2>/dev/null || { rm -f \"$f\"; echo \"FROYO-ERROR become: sudo needs a password (or is not allowed) for user $(id -un)\"; exit 96; }; exec sudo -n -- \"$f\" --unlink; fi; exec \"$f\" --unlink"
    } else {
        "exec \"$f\" --unlink"
    };
    format!(
        "u=$(umask); umask 077; \
         case \"$(uname -sm)\" in 'Linux x86_64') ;; *) echo \"FROYO-ERROR unsupported platform $(uname -sm): the runner is built for Linux x86_64\"; exit 97;; esac; \
         f=$(mktemp \"${{TMPDIR:-/tmp}}/.froyo-runner.XXXXXXXX\") || {{ echo \"FROYO-ERROR cannot create a private file in ${{TMPDIR:-/tmp}}\"; exit 98; }}; \
         head -c {size} > \"$f\"; \
         if [ \"$(sha256sum \"$f\" 2>/dev/null | cut -d' ' -f1)\" != \"{sha256}\" ]; then rm -f \"$f\"; echo \"FROYO-ERROR the uploaded runner's sha256 does not match (or sha256sum is missing)\"; exit 99; fi; \
         chmod 700 \"$f\"; umask \"$u\"; {exec}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the real bootstrap script with `sh`, a fake `uname` first on `PATH`, and
    /// `payload` on stdin, under umask 027; returns its stdout.
    fn bootstrap(uname: &str, payload: &[u8], sha: &str) -> String {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let fake = bin.join("uname");
        std::fs::write(&fake, format!("#!/bin/sh\necho '{uname}'\n")).unwrap();
        std::process::Command::new("chmod")
            .arg("755")
            .arg(&fake)
            .status()
            .unwrap();
        let path = format!("{}:/usr/bin:/bin", bin.display());
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            // The login shell's umask, which the runner must get back.
            .arg(format!(
                "umask 027; {}",
                bootstrap_script(payload.len(), sha, false)
            ))
            .env("PATH", path)
            .env("TMPDIR", dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(payload).unwrap();
        let out = child.wait_with_output().unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "bin")
            .collect();
        assert!(left.is_empty(), "bootstrap left {left:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn bootstrap_refuses_other_platforms_and_bad_uploads() {
        let out = bootstrap("Linux aarch64", b"", "x");
        assert!(
            out.starts_with("FROYO-ERROR unsupported platform Linux aarch64"),
            "{out}"
        );
        // Stands in for the runner: deletes itself like `--unlink` does, then speaks.
        let payload = b"#!/bin/sh\nrm -f \"$0\"\necho \"ran $1 umask $(umask)\"\n";
        let out = bootstrap("Linux x86_64", payload, &"0".repeat(64));
        assert!(
            out.starts_with("FROYO-ERROR the uploaded runner's sha256 does not match"),
            "{out}"
        );
        // The right sha256: the payload runs (here a script standing in for the runner).
        let out = bootstrap("Linux x86_64", payload, &crate::util::sha256_hex(payload));
        // It runs with the login's umask, not the 077 used while uploading: files and
        // directories it creates get the modes the user's own shell would give them.
        assert_eq!(out, "ran --unlink umask 0027\n");
    }

    #[test]
    fn addresses() {
        assert_eq!(
            split_address("10.0.0.1", 22).unwrap(),
            ("10.0.0.1".into(), 22)
        );
        assert_eq!(
            split_address("127.0.0.1:2201", 22).unwrap(),
            ("127.0.0.1".into(), 2201)
        );
        assert_eq!(
            split_address("[::1]:2202", 22).unwrap(),
            ("::1".into(), 2202)
        );
        assert_eq!(split_address("::1", 22).unwrap(), ("::1".into(), 22));
        assert!(split_address("h:notaport", 22).is_err());
    }
}
