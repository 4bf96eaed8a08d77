//! The op catalogue: maps an op name from a `cmd` frame to its implementation, one
//! file per op family under `ops/`. Ops are plain functions from typed arguments to a
//! typed result or an [`OpError`]; they know nothing about frames or threads.

use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::OpError;
use crate::host::Host;
use crate::protocol::EventKind;

pub mod dir;
pub mod exec;
pub mod facts;
pub mod file;
pub mod net;
pub mod sshd;
pub mod sudoers;
pub mod symlink;
pub mod user;

/// Every op this runner understands, as announced in `ready.caps`.
pub const OPS: &[&str] = &[
    "exec",
    "file.stat",
    "file.read",
    "file.write",
    "file.remove",
    "dir.ensure",
    "symlink.ensure",
    "facts.collect",
    "net.connect",
    "user.ensure",
    "authorized_keys.ensure",
    "sudoers.ensure",
    "sudoers.remove",
    "sshd.harden",
    "sshd.unharden",
];

/// What an op may use besides its arguments.
pub struct Ctx<'a> {
    /// The command id, for logs.
    pub id: u64,
    pub host: &'a Host,
    /// Set when the runner shuts down; long-running ops stop early.
    pub cancel: &'a AtomicBool,
    /// Sends an `event` frame for this command.
    pub events: &'a (dyn Fn(EventKind, String) + Sync),
}

/// Runs `op` with `args`.
pub fn dispatch(ctx: &Ctx, op: &str, args: Value) -> Result<Value, OpError> {
    match op {
        "exec" => call(op, args, |a| exec::exec(ctx, a)),
        "file.stat" => call(op, args, |a| file::stat(ctx, a)),
        "file.read" => call(op, args, file::read),
        "file.write" => call(op, args, |a| file::write(ctx, a)),
        "file.remove" => call(op, args, file::remove),
        "dir.ensure" => call(op, args, |a| dir::ensure(ctx, a)),
        "symlink.ensure" => call(op, args, symlink::ensure),
        "facts.collect" => call(op, args, |a| facts::collect(ctx, a)),
        "net.connect" => call(op, args, net::connect),
        "user.ensure" => call(op, args, |a| user::ensure(ctx, a)),
        "authorized_keys.ensure" => call(op, args, |a| user::authorized_keys(ctx, a)),
        "sudoers.ensure" => call(op, args, |a| sudoers::ensure(ctx, a)),
        "sudoers.remove" => call(op, args, |a| sudoers::remove(ctx, a)),
        "sshd.harden" => call(op, args, |a| sshd::harden(ctx, a)),
        "sshd.unharden" => call(op, args, |a| sshd::unharden(ctx, a)),
        _ => Err(OpError::permanent(format!(
            "unknown op `{op}`; known ops: {}",
            OPS.join(", ")
        ))),
    }
}

fn call<A: DeserializeOwned, R: Serialize>(
    op: &str,
    args: Value,
    f: impl FnOnce(A) -> Result<R, OpError>,
) -> Result<Value, OpError> {
    let args = if args.is_null() {
        Value::Object(Default::default())
    } else {
        args
    };
    let args = serde_json::from_value(args)
        .map_err(|e| OpError::permanent(format!("invalid args for `{op}`: {e}")))?;
    let result = f(args)?;
    serde_json::to_value(result)
        .map_err(|e| OpError::permanent(format!("unserializable result of `{op}`: {e}")))
}

static SYSTEM_FILES: Mutex<()> = Mutex::new(());

/// Serializes the ops that edit shared system files (accounts, sudoers, sshd), so two
/// concurrent commands cannot interleave a write, a validation and a restore.
pub(crate) fn system_files_lock() -> MutexGuard<'static, ()> {
    SYSTEM_FILES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Checks a name that becomes a file name or a tool argument: ASCII letters, digits,
/// `_` and `-`, not starting with `-`, at most 64 bytes.
pub(crate) fn check_name(field: &str, name: &str) -> Result<(), OpError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(OpError::permanent(format!(
            "invalid `{field}` `{name}`: use letters, digits, `_` and `-` (not first), at most 64"
        )))
    }
}
