//! `froyo onboard ssh` and `froyo onboard rollback`: the first contact with a machine (a
//! password or a key, usually root), after which everything is key-based and least
//! privilege: a user with the project's key, an optional sudoers rule, an optional sshd
//! lock-down, proven by a fresh key login before success is declared, and recorded (state
//! and audit) so rollback undoes exactly what was done.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::error::Error;
use crate::inventory::Target;
use crate::state::{OnboardedTarget, Store};
use crate::transport::{Auth, Connector, Session};

/// The sshd drop-in onboarding writes (`/etc/ssh/sshd_config.d/<name>.conf`).
pub const SSHD_DROPIN: &str = "50-froyo";

/// Reloads sshd so a drop-in takes effect: systemd, then the classic pid file, then the
/// init script.
pub const DEFAULT_RELOAD: &str = "if [ -d /run/systemd/system ]; then systemctl reload ssh 2>/dev/null || systemctl reload sshd; \
     elif [ -s /run/sshd.pid ]; then kill -HUP \"$(cat /run/sshd.pid)\"; \
     elif command -v service >/dev/null 2>&1; then service ssh reload; \
     else echo 'no way to reload sshd found' >&2; exit 1; fi";

/// What `--lock-down` can switch off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockDown {
    DisablePasswordAuth,
    DisableRootLogin,
}

impl LockDown {
    pub fn parse(s: &str) -> Result<LockDown, String> {
        match s.trim() {
            "disable_password_auth" => Ok(LockDown::DisablePasswordAuth),
            "disable_root_login" => Ok(LockDown::DisableRootLogin),
            other => Err(format!(
                "unknown lock-down `{other}` (known: disable_password_auth, disable_root_login)"
            )),
        }
    }
}

/// One host to onboard.
pub struct Request {
    /// The target's name in froyo (default: the host).
    pub name: String,
    pub host: String,
    pub port: u16,
    /// Who logs in for the first contact (root, or a user with passwordless sudo).
    pub user: String,
    pub auth: Auth,
    /// The user froyo uses from now on.
    pub create_user: String,
    /// A sudoers rule for `create_user`, e.g. `NOPASSWD: /usr/bin/systemctl`.
    pub sudo: Option<String>,
    pub lock_down: Vec<LockDown>,
    pub labels: BTreeMap<String, String>,
    /// Shell command that reloads sshd after a lock-down.
    pub reload: String,
}

const OP_TIMEOUT: Duration = Duration::from_secs(120);

fn fail(target: &str, message: impl Into<String>, help: impl Into<String>) -> Error {
    Error::Onboard {
        target: target.to_owned(),
        message: message.into(),
        help: help.into(),
    }
}

async fn op(session: &Session, target: &str, name: &str, args: Json) -> Result<Json, Error> {
    session.call(name, args, OP_TIMEOUT).await.map_err(|e| {
        fail(
            target,
            format!("`{name}` failed: {e}"),
            "nothing after this step was done; see the message for what the target said",
        )
    })
}

fn changed(v: &Json) -> bool {
    v.get("changed").and_then(Json::as_bool).unwrap_or(false)
}

/// Runs the reload command; an error says what the target answered.
async fn reload_sshd(session: &Session, target: &str, reload: &str) -> Result<(), String> {
    let r = session
        .call(
            "exec",
            json!({ "shell": reload, "timeout_ms": 60_000 }),
            OP_TIMEOUT,
        )
        .await
        .map_err(|e| e.to_string())?;
    if r.get("rc").and_then(Json::as_i64) == Some(0) {
        Ok(())
    } else {
        Err(format!(
            "reloading sshd on {target} failed: {}",
            r.get("stderr").and_then(Json::as_str).unwrap_or("").trim()
        ))
    }
}

/// Onboards one host. `say` reports progress (the fingerprint first of all).
pub async fn onboard(
    connector: &Connector,
    store: &(dyn Store + Sync),
    public_key: &str,
    req: &Request,
    say: &(dyn Fn(&str) + Sync),
) -> Result<OnboardedTarget, Error> {
    let name = req.name.as_str();
    let become_ = req.user != "root";
    let (session, host_key) = connector
        .open_onboarding(name, &req.host, req.port, &req.user, &req.auth, become_)
        .await
        .map_err(|e| {
            fail(
                name,
                e.message,
                e.help
                    .unwrap_or_else(|| "check the address, user and password".into()),
            )
        })?;
    say(&format!(
        "{name}: host key {} ({}:{}), trusted on first use",
        host_key.fingerprint, req.host, req.port
    ));
    let result = setup(connector, store, public_key, req, &session, &host_key, say).await;
    session.close().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn setup(
    connector: &Connector,
    store: &(dyn Store + Sync),
    public_key: &str,
    req: &Request,
    session: &Session,
    host_key: &crate::transport::HostKey,
    say: &(dyn Fn(&str) + Sync),
) -> Result<OnboardedTarget, Error> {
    let name = req.name.as_str();
    let user = req.create_user.as_str();
    let mut changes = serde_json::Map::new();

    let r = op(
        session,
        name,
        "user.ensure",
        json!({ "name": user, "shell": "/bin/bash", "create_home": true }),
    )
    .await?;
    changes.insert("user_created".into(), changed(&r).into());
    if changed(&r) {
        // useradd leaves the password locked (`!`), and sshd without PAM refuses even key
        // logins to locked accounts: `*` means "no password" without locking.
        let r = op(
            session,
            name,
            "exec",
            json!({ "argv": ["usermod", "-p", "*", user] }),
        )
        .await?;
        if r.get("rc").and_then(Json::as_i64) != Some(0) {
            return Err(fail(
                name,
                format!(
                    "usermod -p '*' {user} failed: {}",
                    r.get("stderr").and_then(Json::as_str).unwrap_or("").trim()
                ),
                "check the target's user tools",
            ));
        }
    }
    say(&format!(
        "{name}: user `{user}` {}",
        if changed(&r) { "created" } else { "exists" }
    ));

    let r = op(
        session,
        name,
        "authorized_keys.ensure",
        json!({ "user": user, "keys": [public_key.trim()], "exclusive": false }),
    )
    .await?;
    changes.insert("key_added".into(), changed(&r).into());

    if let Some(rule) = &req.sudo {
        let file = format!("froyo-{user}").replace('.', "-");
        let content = format!("{user} ALL=(ALL) {rule}");
        // The runner stages the file and installs it only if `visudo -cf` accepts it.
        let r = op(
            session,
            name,
            "sudoers.ensure",
            json!({ "name": file, "content": content }),
        )
        .await?;
        if changed(&r) {
            changes.insert("sudoers".into(), file.clone().into());
        }
        say(&format!(
            "{name}: sudoers rule /etc/sudoers.d/{file} checked by visudo"
        ));
    }

    // From here on the host key is trusted: the proof below checks it strictly.
    record_host_key(&connector.known_hosts, &req.host, req.port, &host_key.key)
        .map_err(|e| fail(name, e, "check that .froyo/ is writable"))?;

    let mut locked = false;
    if !req.lock_down.is_empty() {
        let mut settings = serde_json::Map::new();
        for l in &req.lock_down {
            match l {
                LockDown::DisablePasswordAuth => {
                    settings.insert("PasswordAuthentication".into(), false.into());
                    settings.insert("KbdInteractiveAuthentication".into(), false.into());
                }
                LockDown::DisableRootLogin => {
                    settings.insert("PermitRootLogin".into(), false.into());
                }
            }
        }
        // The runner validates with `sshd -t` and restores the previous file on failure.
        let r = session
            .call(
                "sshd.harden",
                json!({ "name": SSHD_DROPIN, "settings": settings }),
                OP_TIMEOUT,
            )
            .await
            .map_err(|e| {
                fail(
                    name,
                    format!("sshd rejected the lock-down, nothing was locked down: {e}"),
                    "fix the target's sshd configuration (`sshd -t` must pass), then onboard again",
                )
            })?;
        if r.get("included").and_then(Json::as_bool) == Some(false) {
            let _ = session
                .call("sshd.unharden", json!({ "name": SSHD_DROPIN }), OP_TIMEOUT)
                .await;
            return Err(fail(
                name,
                "/etc/ssh/sshd_config has no `Include /etc/ssh/sshd_config.d/*.conf`, so a lock-down would have no effect; nothing was locked down",
                "add the Include line to sshd_config, or onboard without --lock-down",
            ));
        }
        if changed(&r) {
            locked = true;
            changes.insert("sshd_dropin".into(), SSHD_DROPIN.into());
            if let Err(e) = reload_sshd(session, name, &req.reload).await {
                undo_lock_down(session, name, &req.reload).await;
                return Err(fail(
                    name,
                    format!("{e}; the lock-down was undone"),
                    "pass --reload-cmd with the command that reloads sshd on this host",
                ));
            }
            say(&format!(
                "{name}: sshd locked down ({}), validated by sshd -t and reloaded",
                settings.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }

    // The proof: a new connection, with the project key, as the new user, host key
    // checked strictly (not through sudo: a rule may allow only some commands, and
    // visudo already checked it).
    let target = Target {
        name: name.to_owned(),
        address: format!("{}:{}", req.host, req.port),
        user: Some(user.to_owned()),
        port: None,
        key: None,
        labels: req.labels.clone(),
        vars: Default::default(),
    };
    let proof = async {
        // A reloaded sshd may take a moment to listen again (SIGHUP re-executes it).
        let mut attempt = 0;
        let s = loop {
            match connector.open(&target, false).await {
                Ok(s) => break s,
                Err(e) if attempt < 10 && e.message.contains("refused") => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e.message),
            }
        };
        let r = s
            .call("exec", json!({ "argv": ["id", "-un"] }), OP_TIMEOUT)
            .await
            .map_err(|e| e.to_string());
        s.close().await;
        r
    }
    .await;
    if let Err(e) = proof {
        if locked {
            undo_lock_down(session, name, &req.reload).await;
        }
        return Err(fail(
            name,
            format!(
                "a key login as `{user}` does not work ({e}){}",
                if locked {
                    "; the lock-down was undone"
                } else {
                    ""
                }
            ),
            "the user and key are in place; check the target's sshd (AllowUsers, AuthorizedKeysFile) and onboard again",
        ));
    }
    say(&format!("{name}: key login as `{user}` proven"));

    let onboarded = OnboardedTarget {
        name: name.to_owned(),
        address: format!("{}:{}", req.host, req.port),
        user: user.to_owned(),
        fingerprint: host_key.fingerprint.clone(),
        labels: req.labels.clone(),
        changes: Json::Object(changes),
    };
    store
        .put_onboarded(&onboarded)
        .and_then(|()| {
            store.audit(
                "onboard",
                &serde_json::to_value(&onboarded).unwrap_or_default(),
            )
        })
        .map_err(|e| {
            fail(
                name,
                format!("the host is set up, but recording it failed: {e}"),
                "run the same onboarding again: every step is idempotent",
            )
        })?;
    Ok(onboarded)
}

async fn undo_lock_down(session: &Session, name: &str, reload: &str) {
    let _ = session
        .call("sshd.unharden", json!({ "name": SSHD_DROPIN }), OP_TIMEOUT)
        .await;
    if let Err(e) = reload_sshd(session, name, reload).await {
        tracing::warn!("{e}");
    }
}

/// Appends the host key to `known_hosts` unless that exact key is already there.
fn record_host_key(
    known_hosts: &Path,
    host: &str,
    port: u16,
    key: &russh::keys::PublicKey,
) -> Result<(), String> {
    if known_hosts.exists()
        && russh::keys::check_known_hosts_path(host, port, key, known_hosts).unwrap_or(false)
    {
        return Ok(());
    }
    russh::keys::known_hosts::learn_known_hosts_path(host, port, key, known_hosts).map_err(|e| {
        format!(
            "cannot record the host key in `{}`: {e}",
            known_hosts.display()
        )
    })
}

/// Drops every `known_hosts` line for `host:port`.
fn forget_host_key(known_hosts: &Path, host: &str, port: u16) -> Result<(), String> {
    let Ok(text) = std::fs::read_to_string(known_hosts) else {
        return Ok(());
    };
    let spec = if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_none_or(|hosts| !hosts.split(',').any(|h| h == spec))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(known_hosts, kept).map_err(|e| e.to_string())
}

/// Undoes what onboarding recorded for `name`, over a key login as the onboarded user
/// (through sudo), or with `auth` as `login_user` when given; then forgets the target.
pub async fn rollback(
    connector: &Connector,
    store: &(dyn Store + Sync),
    name: &str,
    login: Option<(&str, &Auth)>,
    reload: &str,
    say: &(dyn Fn(&str) + Sync),
) -> Result<(), Error> {
    let t = store
        .onboarded()
        .map_err(|e| fail(name, e.to_string(), "check the state database"))?
        .into_iter()
        .find(|t| t.name == name || t.address.split(':').next() == Some(name))
        .ok_or_else(|| {
            fail(
                name,
                "no onboarded target by that name or host",
                "the state lists onboarded targets; `froyo onboard ssh` adds them",
            )
        })?;
    let (host, port) =
        crate::transport::split_address(&t.address, 22).map_err(|e| fail(name, e, ""))?;
    let session = match login {
        Some((user, auth)) => {
            connector
                .open_onboarding(&t.name, &host, port, user, auth, user != "root")
                .await
                .map(|(s, _)| s)
        }
        None => {
            let target = Target {
                name: t.name.clone(),
                address: t.address.clone(),
                user: Some(t.user.clone()),
                port: None,
                key: None,
                labels: t.labels.clone(),
                vars: Default::default(),
            };
            connector.open(&target, true).await
        }
    }
    .map_err(|e| fail(&t.name, e.message, "rollback needs root on the target: by default through sudo as the onboarded user; else pass --user root with --password-stdin or --key"))?;
    let changes = &t.changes;
    let result = async {
        if changes.get("sshd_dropin").and_then(Json::as_str).is_some() {
            op(&session, &t.name, "sshd.unharden", json!({ "name": SSHD_DROPIN })).await?;
            reload_sshd(&session, &t.name, reload).await.map_err(|e| fail(&t.name, e, "pass --reload-cmd"))?;
            say(&format!("{}: sshd lock-down removed", t.name));
        }
        if let Some(file) = changes.get("sudoers").and_then(Json::as_str) {
            op(&session, &t.name, "sudoers.remove", json!({ "name": file })).await?;
            say(&format!("{}: sudoers rule removed", t.name));
        }
        if changes.get("user_created").and_then(Json::as_bool) == Some(true) {
            // `-f`: our own login session as that user is still open.
            let r = op(&session, &t.name, "exec", json!({ "argv": ["userdel", "-f", "-r", t.user] })).await?;
            // 12: the home directory could not be removed (already gone): the user is.
            if !matches!(r.get("rc").and_then(Json::as_i64), Some(0) | Some(12)) {
                return Err(fail(&t.name, format!("userdel failed: {}", r.get("stderr").and_then(Json::as_str).unwrap_or("").trim()), "remove the user by hand"));
            }
            say(&format!("{}: user `{}` removed", t.name, t.user));
        } else if changes.get("key_added").and_then(Json::as_bool) == Some(true) {
            say(&format!("{}: user `{}` existed before onboarding and is kept (remove the project key from its authorized_keys by hand if needed)", t.name, t.user));
        }
        Ok(())
    }
    .await;
    session.close().await;
    result?;
    forget_host_key(&connector.known_hosts, &host, port).map_err(|e| fail(&t.name, e, ""))?;
    store
        .remove_onboarded(&t.name)
        .and_then(|()| {
            store.audit(
                "onboard.rollback",
                &json!({ "name": t.name, "undone": t.changes }),
            )
        })
        .map_err(|e| fail(&t.name, e.to_string(), "check the state database"))?;
    Ok(())
}
