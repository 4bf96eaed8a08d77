//! `froyo onboard ssh` (one host, or many from a TOML file, in parallel) and `froyo
//! onboard rollback`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Deserialize;

use super::write_stdout;
use crate::error::Error;
use crate::onboard::{DEFAULT_RELOAD, LockDown, Request};
use crate::transport::{Auth, Connector, split_address};

#[derive(Debug, Args)]
pub struct OnboardArgs {
    #[command(subcommand)]
    command: OnboardCommand,
}

/// How the first login authenticates.
#[derive(Debug, Args)]
struct Login {
    /// Who logs in for the first contact: root, or a user with passwordless sudo.
    #[arg(long, default_value = "root")]
    user: String,
    /// Read the login password from stdin (one line).
    #[arg(long, conflicts_with = "key")]
    password_stdin: bool,
    /// Log in with this private key instead of a password.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum OnboardCommand {
    /// Set up a host for froyo: a user with the project key, an optional sudoers rule and
    /// sshd lock-down, proven by a key login, recorded in the state.
    Ssh {
        /// `host` or `host:port`.
        #[arg(long, required_unless_present = "from")]
        host: Option<String>,
        #[command(flatten)]
        login: Login,
        /// The user froyo will log in as.
        #[arg(long, default_value = "froyo")]
        create_user: String,
        /// A sudoers rule for that user, e.g. 'NOPASSWD: /usr/bin/systemctl,/usr/bin/apt-get'.
        #[arg(long, value_name = "RULE")]
        sudo: Option<String>,
        /// Comma-separated: disable_password_auth, disable_root_login.
        #[arg(long, value_name = "LIST", value_delimiter = ',')]
        lock_down: Vec<String>,
        /// Comma-separated labels, `k=v,...`.
        #[arg(long, value_name = "K=V,...", value_delimiter = ',')]
        labels: Vec<String>,
        /// The target's name (default: the host).
        #[arg(long)]
        name: Option<String>,
        /// The command that reloads sshd on the target after a lock-down.
        #[arg(long, value_name = "SHELL")]
        reload_cmd: Option<String>,
        /// Onboard every host of this TOML file, in parallel (docs/onboarding.md).
        #[arg(long, value_name = "FILE", conflicts_with = "host")]
        from: Option<PathBuf>,
    },
    /// Undo what onboarding recorded for a host, then forget it.
    Rollback {
        /// The target's name or host.
        #[arg(long)]
        host: String,
        /// Log in with --password-stdin or --key as --user instead of the onboarded user.
        #[command(flatten)]
        login: Login,
        #[arg(long, value_name = "SHELL")]
        reload_cmd: Option<String>,
    },
}

fn read_password() -> Result<String, Error> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| Error::Usage(format!("cannot read the password from stdin: {e}")))?;
    let line = s.lines().next().unwrap_or("").to_owned();
    if line.is_empty() {
        return Err(Error::Usage("the password on stdin is empty".into()));
    }
    Ok(line)
}

fn auth_of(login: &Login, password: Option<&String>) -> Result<Auth, Error> {
    match (&login.key, password) {
        (Some(k), _) => Ok(Auth::Key(k.clone())),
        (None, Some(p)) => Ok(Auth::Password(p.clone())),
        (None, None) => Err(Error::Usage(
            "give --password-stdin or --key for the first login".into(),
        )),
    }
}

fn labels_of(items: &[String]) -> Result<BTreeMap<String, String>, Error> {
    items
        .iter()
        .filter(|s| !s.is_empty())
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| Error::Usage(format!("label `{kv}` is not `k=v`")))
        })
        .collect()
}

/// `onboarding.toml` for `--from`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    #[serde(default)]
    defaults: BatchHost,
    hosts: Vec<BatchHost>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct BatchHost {
    host: Option<String>,
    name: Option<String>,
    user: Option<String>,
    /// An environment variable holding the login password.
    password_env: Option<String>,
    key: Option<PathBuf>,
    create_user: Option<String>,
    sudo: Option<String>,
    lock_down: Option<Vec<String>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    reload_cmd: Option<String>,
}

pub fn run(args: &OnboardArgs) -> Result<ExitCode, Error> {
    let project = super::cwd_project()?;
    let connector = Connector::for_project(&project);
    let pubkey_path = connector.default_key.with_extension("pub");
    let public_key = std::fs::read_to_string(&pubkey_path).map_err(|_| {
        Error::Usage(
            "the project has no SSH key (.froyo/keys/id_ed25519): run `froyo init` first".into(),
        )
    })?;
    let store = crate::state::open(&project)?;
    let runtime = super::runtime()?;
    let say = |m: &str| say!("{m}");
    match &args.command {
        OnboardCommand::Ssh {
            host,
            login,
            create_user,
            sudo,
            lock_down,
            labels,
            name,
            reload_cmd,
            from,
        } => {
            let password = if login.password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            let requests: Vec<Request> = match from {
                Some(file) => batch_requests(file, password.as_ref())?,
                None => {
                    let address = host.clone().unwrap_or_default();
                    let (h, port) = split_address(&address, 22).map_err(Error::Usage)?;
                    vec![Request {
                        name: name.clone().unwrap_or_else(|| h.clone()),
                        host: h,
                        port,
                        user: login.user.clone(),
                        auth: auth_of(login, password.as_ref())?,
                        create_user: create_user.clone(),
                        sudo: sudo.clone(),
                        lock_down: lock_down
                            .iter()
                            .filter(|s| !s.is_empty())
                            .map(|s| LockDown::parse(s).map_err(Error::Usage))
                            .collect::<Result<_, _>>()?,
                        labels: labels_of(labels)?,
                        reload: reload_cmd
                            .clone()
                            .unwrap_or_else(|| DEFAULT_RELOAD.to_owned()),
                    }]
                }
            };
            let results =
                runtime.block_on(futures::future::join_all(requests.iter().map(|r| {
                    crate::onboard::onboard(&connector, &*store, &public_key, r, &say)
                })));
            let mut failed = 0;
            for result in results {
                match result {
                    Ok(t) => write_stdout(&format!(
                        "onboarded {} ({}) as {}, host key {}\n",
                        t.name, t.address, t.user, t.fingerprint
                    )),
                    Err(e) => {
                        failed += 1;
                        say!("{:?}", miette::Report::new(e));
                    }
                }
            }
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        OnboardCommand::Rollback {
            host,
            login,
            reload_cmd,
        } => {
            let password = if login.password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            let auth = if login.key.is_some() || password.is_some() {
                Some(auth_of(login, password.as_ref())?)
            } else {
                None
            };
            let reload = reload_cmd
                .clone()
                .unwrap_or_else(|| DEFAULT_RELOAD.to_owned());
            runtime.block_on(crate::onboard::rollback(
                &connector,
                &*store,
                host,
                auth.as_ref().map(|a| (login.user.as_str(), a)),
                &reload,
                &say,
            ))?;
            write_stdout(&format!("rolled back and forgot {host}\n"));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn batch_requests(file: &PathBuf, password: Option<&String>) -> Result<Vec<Request>, Error> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::Io {
        path: file.clone(),
        source: e,
    })?;
    let batch: Batch = toml::from_str(&text).map_err(|e| Error::toml(file, &text, &e))?;
    let d = &batch.defaults;
    batch
        .hosts
        .iter()
        .map(|h| {
            let address = h.host.clone().ok_or_else(|| {
                Error::Usage(format!(
                    "{}: a [[hosts]] entry has no `host`",
                    file.display()
                ))
            })?;
            let (host, port) = split_address(&address, 22).map_err(Error::Usage)?;
            let key = h.key.clone().or_else(|| d.key.clone());
            let password_env = h.password_env.clone().or_else(|| d.password_env.clone());
            let auth = match (key, password_env, password) {
                (Some(k), _, _) => Auth::Key(k),
                (None, Some(var), _) => Auth::Password(std::env::var(&var).map_err(|_| {
                    Error::Usage(format!(
                        "{address}: the environment variable `{var}` (password_env) is not set"
                    ))
                })?),
                (None, None, Some(p)) => Auth::Password(p.clone()),
                (None, None, None) => {
                    return Err(Error::Usage(format!(
                        "{address}: no `key` or `password_env`, and no --password-stdin"
                    )));
                }
            };
            let mut labels = d.labels.clone();
            labels.extend(h.labels.clone());
            Ok(Request {
                name: h.name.clone().unwrap_or_else(|| host.clone()),
                host,
                port,
                user: h
                    .user
                    .clone()
                    .or_else(|| d.user.clone())
                    .unwrap_or_else(|| "root".into()),
                auth,
                create_user: h
                    .create_user
                    .clone()
                    .or_else(|| d.create_user.clone())
                    .unwrap_or_else(|| "froyo".into()),
                sudo: h.sudo.clone().or_else(|| d.sudo.clone()),
                lock_down: h
                    .lock_down
                    .clone()
                    .or_else(|| d.lock_down.clone())
                    .unwrap_or_default()
                    .iter()
                    .map(|s| LockDown::parse(s).map_err(Error::Usage))
                    .collect::<Result<_, _>>()?,
                labels,
                reload: h
                    .reload_cmd
                    .clone()
                    .or_else(|| d.reload_cmd.clone())
                    .unwrap_or_else(|| DEFAULT_RELOAD.to_owned()),
            })
        })
        .collect()
}
