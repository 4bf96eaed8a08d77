//! The SSH transport (`russh`): key authentication, strict host-key checking against the
//! project's `known_hosts`, `TCP_NODELAY` (russh leaves it off, which costs ~40 ms per
//! round trip), and one exec channel per target that becomes the runner's stdio.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use tokio::io::AsyncWriteExt;

use super::{Session, TargetError, Timeouts, bootstrap_script, runner};

pub struct SshTarget {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub key: PathBuf,
}

/// Why a host key was refused.
#[derive(Debug, Clone)]
enum KeyProblem {
    Unknown { fingerprint: String },
    Changed { fingerprint: String, line: usize },
    Unreadable(String),
}

struct Verifier {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    problem: Arc<Mutex<Option<KeyProblem>>>,
    /// Trust on first use (onboarding only): an unknown key is accepted; a changed one
    /// is still refused.
    tofu: bool,
    /// The key the server presented.
    seen: Arc<Mutex<Option<russh::keys::PublicKey>>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            // Host certificates would need a CA in known_hosts (`@cert-authority`): not
            // supported, so such a host is refused like an unknown key.
            PublicKeyOrCertificate::Certificate(c) => {
                *self.problem.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(KeyProblem::Unreadable(format!(
                        "the host presented a certificate ({}), which is not supported",
                        c.key_id()
                    )));
                return Ok(false);
            }
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(key.clone());
        let verdict = if self.known_hosts.exists() {
            russh::keys::check_known_hosts_path(&self.host, self.port, key, &self.known_hosts)
        } else {
            Ok(false)
        };
        let problem = match verdict {
            Ok(true) => return Ok(true),
            Ok(false) if self.tofu => return Ok(true),
            Ok(false) => KeyProblem::Unknown { fingerprint },
            Err(russh::keys::Error::KeyChanged { line }) => {
                KeyProblem::Changed { fingerprint, line }
            }
            Err(e) => {
                KeyProblem::Unreadable(format!("cannot read `{}`: {e}", self.known_hosts.display()))
            }
        };
        *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = Some(problem);
        Ok(false)
    }
}

/// Keeps the SSH connection open for the life of the session.
struct ConnectionGuard(#[allow(dead_code)] Mutex<client::Handle<Verifier>>);

/// How to log in.
pub enum Auth {
    Key(PathBuf),
    Password(String),
}

/// The host key a server presented.
#[derive(Debug, Clone)]
pub struct HostKey {
    pub key: russh::keys::PublicKey,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

pub async fn start(
    t: &SshTarget,
    known_hosts: &Path,
    r#become: bool,
    timeouts: &Timeouts,
) -> Result<Session, TargetError> {
    let (handle, _) = connect(t, known_hosts, false, timeouts).await?;
    let handle = authenticate(handle, t, &Auth::Key(t.key.clone())).await?;
    start_runner(handle, t, r#become, timeouts.start).await
}

/// Onboarding's connection: trusts an unknown host key (and returns it, so the caller
/// records it once the host is set up), logs in with a password or a key.
pub async fn start_onboarding(
    t: &SshTarget,
    auth: &Auth,
    known_hosts: &Path,
    r#become: bool,
    timeouts: &Timeouts,
) -> Result<(Session, HostKey), TargetError> {
    let (handle, key) = connect(t, known_hosts, true, timeouts).await?;
    let key = key.ok_or_else(|| TargetError::new(&t.name, "the server presented no host key"))?;
    let handle = authenticate(handle, t, auth).await?;
    let session = start_runner(handle, t, r#become, timeouts.start).await?;
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    Ok((session, HostKey { key, fingerprint }))
}

async fn connect(
    t: &SshTarget,
    known_hosts: &Path,
    tofu: bool,
    timeouts: &Timeouts,
) -> Result<(client::Handle<Verifier>, Option<russh::keys::PublicKey>), TargetError> {
    let connect_timeout = timeouts.connect;
    let err = |m: String| TargetError::new(&t.name, m);
    let where_ = format!("{}@{}:{}", t.user, t.host, t.port);
    let config = client::Config {
        nodelay: true,
        // A silent network (a cable pulled, packets dropped) ends the session after
        // `keepalive_max` unanswered keepalives instead of hanging until an op's timeout.
        keepalive_interval: Some(timeouts.keepalive_interval),
        keepalive_max: timeouts.keepalive_max,
        inactivity_timeout: None,
        ..Default::default()
    };
    let problem = Arc::new(Mutex::new(None));
    let seen = Arc::new(Mutex::new(None));
    let verifier = Verifier {
        host: t.host.clone(),
        port: t.port,
        known_hosts: known_hosts.to_owned(),
        problem: problem.clone(),
        tofu,
        seen: seen.clone(),
    };
    let connected = tokio::time::timeout(
        connect_timeout,
        client::connect(Arc::new(config), (t.host.as_str(), t.port), verifier),
    )
    .await;
    let handle = match connected {
        Err(_) => {
            return Err(err(format!(
                "no SSH connection to {where_} within {}s",
                connect_timeout.as_secs()
            )));
        }
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            let known = known_hosts.display();
            let host_spec = if t.port == 22 {
                t.host.clone()
            } else {
                format!("[{}]:{}", t.host, t.port)
            };
            return Err(match problem.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                Some(KeyProblem::Unknown { fingerprint }) => err(format!("unknown host key {fingerprint} at {}:{}", t.host, t.port)).help(format!(
                    "verify the fingerprint out of band, then record the key: `ssh-keyscan -p {} {} >> {known}` (or onboard the host with `froyo onboard ssh`)",
                    t.port, t.host
                )),
                Some(KeyProblem::Changed { fingerprint, line }) => err(format!(
                    "the host key of {}:{} CHANGED (now {fingerprint}; `{known}` line {line} has another key): refusing to connect",
                    t.host, t.port
                ))
                .help(format!("this may be a man-in-the-middle attack; if the host was really reinstalled, remove the `{host_spec}` line from `{known}` and record the new key")),
                Some(KeyProblem::Unreadable(e)) => err(e),
                None => err(format!("cannot connect to {where_}: {e}")),
            });
        }
    };
    let key = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok((handle, key))
}

async fn authenticate(
    mut handle: client::Handle<Verifier>,
    t: &SshTarget,
    auth: &Auth,
) -> Result<client::Handle<Verifier>, TargetError> {
    let err = |m: String| TargetError::new(&t.name, m);
    let where_ = format!("{}@{}:{}", t.user, t.host, t.port);
    let failed = |e: russh::Error| err(format!("authentication as `{}` failed: {e}", t.user));
    match auth {
        Auth::Key(path) => {
            let key = russh::keys::load_secret_key(path, None)
                .map_err(|e| err(format!("cannot load the SSH key `{}`: {e}", path.display())).help("set `key` for the target in inventory.toml, or create the project key with `froyo init`"))?;
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .ok()
                .flatten()
                .flatten();
            let auth = handle
                .authenticate_publickey(
                    t.user.clone(),
                    PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                )
                .await
                .map_err(failed)?;
            if !auth.success() {
                return Err(err(format!("the key `{}` was refused for {where_}", path.display()))
                    .help("add the project's public key to the user's authorized_keys (`froyo onboard ssh` does this)"));
            }
        }
        Auth::Password(password) => {
            let ok = handle
                .authenticate_password(t.user.clone(), password.clone())
                .await
                .map_err(failed)?
                .success()
                || keyboard_interactive(&mut handle, &t.user, password)
                    .await
                    .map_err(failed)?;
            if !ok {
                return Err(err(format!("the password was refused for {where_}"))
                    .help("check the user and password; the server must allow password or keyboard-interactive logins for onboarding"));
            }
        }
    }
    Ok(handle)
}

/// Keyboard-interactive login answering every prompt that does not echo with the password.
async fn keyboard_interactive(
    handle: &mut client::Handle<Verifier>,
    user: &str,
    password: &str,
) -> Result<bool, russh::Error> {
    use russh::client::KeyboardInteractiveAuthResponse as R;
    let mut reply = handle
        .authenticate_keyboard_interactive_start(user.to_owned(), None)
        .await?;
    // A server may ask several rounds (or send empty ones); a few are enough.
    for _ in 0..5 {
        match reply {
            R::Success => return Ok(true),
            R::Failure { .. } => return Ok(false),
            R::InfoRequest { prompts, .. } => {
                let answers = prompts
                    .iter()
                    .map(|p| {
                        if p.echo {
                            String::new()
                        } else {
                            password.to_owned()
                        }
                    })
                    .collect();
                reply = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await?;
            }
        }
    }
    Ok(false)
}

async fn start_runner(
    handle: client::Handle<Verifier>,
    t: &SshTarget,
    r#become: bool,
    start_timeout: Duration,
) -> Result<Session, TargetError> {
    let err = |m: String| TargetError::new(&t.name, m);
    let where_ = format!("{}@{}:{}", t.user, t.host, t.port);
    let channel = handle
        .channel_open_session()
        .await
        .map_err(|e| err(format!("cannot open a channel on {where_}: {e}")))?;
    let (bytes, sha) = runner();
    channel
        .exec(true, bootstrap_script(bytes.len(), sha, r#become))
        .await
        .map_err(|e| err(format!("cannot start a command on {where_}: {e}")))?;
    let stream = channel.into_stream();
    let (reader, mut writer) = tokio::io::split(stream);
    // A target that does not read (not a shell, a compromised sshd) must not hold the
    // upload forever: it counts against the start timeout.
    let upload = async {
        writer.write_all(bytes).await?;
        writer.flush().await
    };
    match tokio::time::timeout(start_timeout, upload).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(err(format!("uploading the runner failed: {e}"))),
        Err(_) => {
            return Err(err(format!(
                "the runner did not start within {}s (its upload was not read)",
                start_timeout.as_secs()
            )));
        }
    }
    Session::start(
        &t.name,
        Box::new(reader),
        Box::new(writer),
        Box::new(ConnectionGuard(Mutex::new(handle))),
        start_timeout,
    )
    .await
}
