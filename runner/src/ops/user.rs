//! `user.ensure` and `authorized_keys.ensure`: the account half of onboarding a host,
//! done with the distribution's own `useradd`/`usermod` so shadow files, subuid ranges
//! and skeleton files stay the distribution's business.

use std::fs;
use std::io;
use std::path::PathBuf;

use crate::error::OpError;
use crate::host::{Accounts, Group};
use crate::meta::{Owner, abs_path};
use crate::ops::dir::ensure_dir;
use crate::ops::exec::run_tool;
use crate::ops::file::ensure_file;
use crate::ops::{Ctx, system_files_lock};
use crate::protocol::ops::{AuthorizedKeysArgs, Changed, UserEnsureArgs};

/// `useradd` exits 9 when the name is taken: somebody created the user between our
/// read of `/etc/passwd` and the call.
const USERADD_NAME_IN_USE: i32 = 9;

/// Checks a user or group name: the portable POSIX set, which also keeps it from
/// being read as a tool option.
fn check_account(field: &str, name: &str) -> Result<(), OpError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase()
                || b == b'_'
                || (i > 0 && (b.is_ascii_digit() || b == b'-' || b == b'.'))
        });
    if ok
        || (field != "name"
            && field != "user"
            && name.bytes().all(|b| b.is_ascii_digit())
            && !name.is_empty())
    {
        Ok(())
    } else {
        Err(OpError::permanent(format!(
            "invalid `{field}` `{name}`: expected a name like `deploy` or `_svc-1`"
        )))
    }
}

fn check_plain_path(field: &str, value: &str) -> Result<(), OpError> {
    abs_path(field, value)?;
    if value.contains([':', '\n']) {
        return Err(OpError::permanent(format!(
            "`{field}` must not contain `:` or a newline"
        )));
    }
    Ok(())
}

fn find_group<'a>(acc: &'a Accounts, spec: &str) -> Option<&'a Group> {
    match spec.parse::<u32>() {
        Ok(gid) => acc.groups.iter().find(|g| g.gid == gid),
        Err(_) => acc.group(spec),
    }
}

/// `user.ensure`: create the user, or change what differs. Supplementary `groups` are
/// added to; memberships not listed are kept.
pub fn ensure(ctx: &Ctx, args: UserEnsureArgs) -> Result<Changed, OpError> {
    check_account("name", &args.name)?;
    if let Some(g) = &args.group {
        check_account("group", g)?;
    }
    let groups = args.groups.clone().unwrap_or_default();
    for g in &groups {
        check_account("groups", g)?;
    }
    if let Some(s) = &args.shell {
        check_plain_path("shell", s)?;
    }
    if let Some(h) = &args.home {
        check_plain_path("home", h)?;
    }
    let _guard = system_files_lock();
    let acc = ctx.host.accounts();
    let mut flags: Vec<String> = Vec::new();
    let flag = |flags: &mut Vec<String>, f: &str, v: &str| {
        flags.push(f.to_string());
        flags.push(v.to_string());
    };
    let Some(user) = acc.user(&args.name) else {
        if let Some(uid) = args.uid {
            flag(&mut flags, "-u", &uid.to_string());
        }
        if let Some(g) = &args.group {
            flag(&mut flags, "-g", g);
        }
        if !groups.is_empty() {
            flag(&mut flags, "-G", &groups.join(","));
        }
        if let Some(s) = &args.shell {
            flag(&mut flags, "-s", s);
        }
        if let Some(h) = &args.home {
            flag(&mut flags, "-d", h);
        }
        if args.system {
            flags.push("-r".into());
        }
        flags.push(if args.create_home { "-m" } else { "-M" }.into());
        run_account_tool(ctx, "useradd", flags, &args.name)?;
        return Ok(Changed { changed: true });
    };
    if let Some(uid) = args.uid.filter(|u| *u != user.uid) {
        flag(&mut flags, "-u", &uid.to_string());
    }
    if let Some(g) = &args.group {
        let gid = acc.resolve_gid(g)?;
        if gid != user.gid {
            flag(&mut flags, "-g", g);
        }
    }
    if let Some(s) = args.shell.as_deref().filter(|s| *s != user.shell) {
        flag(&mut flags, "-s", s);
    }
    if let Some(h) = args.home.as_deref().filter(|h| *h != user.home) {
        flag(&mut flags, "-d", h);
    }
    let mut missing = Vec::new();
    for spec in &groups {
        let group = find_group(&acc, spec)
            .ok_or_else(|| OpError::permanent(format!("unknown group `{spec}`")))?;
        if group.gid != user.gid && !group.members.contains(&user.name) {
            missing.push(spec.clone());
        }
    }
    if !missing.is_empty() {
        flags.push("-a".into());
        flag(&mut flags, "-G", &missing.join(","));
    }
    if flags.is_empty() {
        return Ok(Changed { changed: false });
    }
    run_account_tool(ctx, "usermod", flags, &args.name)?;
    Ok(Changed { changed: true })
}

fn run_account_tool(
    ctx: &Ctx,
    tool: &str,
    mut flags: Vec<String>,
    name: &str,
) -> Result<(), OpError> {
    let program = ctx
        .host
        .which(tool)
        .ok_or_else(|| OpError::permanent(format!("`{tool}` not found on the target")))?;
    flags.push(name.to_string());
    let argv: Vec<&str> = flags.iter().map(String::as_str).collect();
    let out = run_tool(&program, &argv, ctx.cancel)?;
    match out.status.code() {
        Some(0) => Ok(()),
        Some(USERADD_NAME_IN_USE) if tool == "useradd" => Err(OpError::conflict(format!(
            "user `{name}` was created concurrently: {}",
            out.combined()
        ))),
        _ => Err(OpError::permanent(format!(
            "`{tool}` failed for `{name}`: {}",
            out.combined()
        ))),
    }
}

/// The identity of an authorized_keys line: its key type and base64 blob, so the same
/// key with other options or another comment counts as present.
fn key_identity(line: &str) -> String {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let is_type = |t: &str| {
        t.starts_with("ssh-")
            || t.starts_with("ecdsa-sha2-")
            || t.starts_with("sk-ssh-")
            || t.starts_with("sk-ecdsa-")
    };
    match tokens.iter().position(|t| is_type(t)) {
        Some(i) if i + 1 < tokens.len() => format!("{} {}", tokens[i], tokens[i + 1]),
        _ => line.trim().to_string(),
    }
}

/// `authorized_keys.ensure`: `~user/.ssh` (0700) and `~user/.ssh/authorized_keys`
/// (0600), both owned by the user.
pub fn authorized_keys(ctx: &Ctx, args: AuthorizedKeysArgs) -> Result<Changed, OpError> {
    check_account("user", &args.user)?;
    for key in &args.keys {
        if key.trim().is_empty() || key.contains(['\n', '\r', '\0']) {
            return Err(OpError::permanent(
                "each of `keys` must be one non-empty line",
            ));
        }
    }
    let acc = ctx.host.accounts();
    let user = acc
        .user(&args.user)
        .ok_or_else(|| OpError::permanent(format!("unknown user `{}`", args.user)))?;
    let home = PathBuf::from(&user.home);
    if !home.is_absolute() || !home.is_dir() {
        return Err(OpError::permanent(format!(
            "the home directory `{}` of `{}` does not exist",
            user.home, user.name
        )));
    }
    let owner = Owner {
        uid: Some(user.uid),
        gid: Some(user.gid),
    };
    let ssh_dir = home.join(".ssh");
    // The user owns their home: never follow a `.ssh` symlink as root.
    if fs::symlink_metadata(&ssh_dir).is_ok_and(|md| md.file_type().is_symlink()) {
        return Err(OpError::permanent(format!(
            "`{}` is a symlink; refusing to follow it",
            ssh_dir.display()
        )));
    }
    let dir_changed = ensure_dir(&ssh_dir, Some(0o700), owner, false)?;
    let path = ssh_dir.join("authorized_keys");
    let mut lines: Vec<String> = Vec::new();
    if !args.exclusive {
        match fs::symlink_metadata(&path) {
            Ok(md) if md.is_file() => {
                let text = fs::read_to_string(&path).map_err(|e| OpError::io(&path, &e))?;
                lines.extend(text.lines().map(str::to_string));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(OpError::io(&path, &e)),
        }
    }
    for key in &args.keys {
        let id = key_identity(key);
        if !lines.iter().any(|l| key_identity(l) == id) {
            lines.push(key.trim().to_string());
        }
    }
    let mut content = lines.join("\n");
    if !content.is_empty() {
        content.push('\n');
    }
    let file = ensure_file(&path, content.as_bytes(), Some(0o600), owner, |_| Ok(()))?;
    Ok(Changed {
        changed: dir_changed || file.changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_identity_ignores_options_and_comments() {
        assert_eq!(
            key_identity(r#"from="10.0.0.1" ssh-ed25519 AAAAC3 old@host"#),
            key_identity("ssh-ed25519 AAAAC3 new comment")
        );
        assert_ne!(
            key_identity("ssh-ed25519 AAAA"),
            key_identity("ssh-ed25519 BBBB")
        );
        assert_eq!(key_identity("  # a comment "), "# a comment");
    }

    #[test]
    fn account_names_are_checked() {
        for ok in ["deploy", "_svc", "a-b.c", "x1"] {
            assert!(check_account("name", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-rf",
            "Root",
            "a b",
            "a:b",
            "1abc",
            "abcdefghijklmnopqrstuvwxyzabcdefg",
        ] {
            assert!(check_account("name", bad).is_err(), "{bad}");
        }
        assert!(check_account("group", "100").is_ok());
        assert!(check_account("name", "100").is_err());
    }
}
