//! `sshd.harden` and `sshd.unharden`: an sshd drop-in under `/etc/ssh/sshd_config.d`,
//! kept only when `sshd -t` accepts the resulting configuration, because a broken sshd
//! config cuts off the very connection onboarding runs over at the next restart.
//! Neither op reloads sshd; the caller does that once it is done.

use std::fs;
use std::io;

use crate::atomic;
use crate::error::OpError;
use crate::meta::Owner;
use crate::ops::dir::ensure_dir;
use crate::ops::exec::run_tool;
use crate::ops::file::ensure_file;
use crate::ops::{Ctx, check_name, system_files_lock};
use crate::protocol::ops::{Changed, NameArgs, SettingValue, SshdHardenArgs, SshdHardenResult};

const DIR: &str = "/etc/ssh/sshd_config.d";
const MAIN: &str = "/etc/ssh/sshd_config";
const ROOT: Owner = Owner {
    uid: Some(0),
    gid: Some(0),
};
const HEADER: &str = "# Managed by OpenFroyo (sshd.harden); local changes are overwritten.\n";

/// The drop-in's text: a header, then `Keyword value` lines in keyword order.
pub fn render(
    settings: &std::collections::BTreeMap<String, SettingValue>,
) -> Result<String, OpError> {
    if settings.is_empty() {
        return Err(OpError::permanent("`settings` is empty"));
    }
    let mut text = String::from(HEADER);
    for (key, value) in settings {
        if key.is_empty()
            || !key.starts_with(|c: char| c.is_ascii_alphabetic())
            || !key.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(OpError::permanent(format!("invalid sshd keyword `{key}`")));
        }
        let value = match value {
            SettingValue::Bool(true) => "yes".to_string(),
            SettingValue::Bool(false) => "no".to_string(),
            SettingValue::Int(n) => n.to_string(),
            SettingValue::Str(s) => s.clone(),
        };
        if value.trim().is_empty() || value.contains(['\n', '\r', '\0']) {
            return Err(OpError::permanent(format!(
                "invalid value for sshd keyword `{key}`"
            )));
        }
        text.push_str(&format!("{key} {value}\n"));
    }
    Ok(text)
}

/// Whether the main config includes the drop-in directory.
fn included(main: &str) -> bool {
    main.lines().any(|line| {
        let line = line.trim();
        line.get(..7)
            .is_some_and(|kw| kw.eq_ignore_ascii_case("include"))
            && line.contains("sshd_config.d")
    })
}

/// `sshd.harden`.
pub fn harden(ctx: &Ctx, args: SshdHardenArgs) -> Result<SshdHardenResult, OpError> {
    check_name("name", &args.name)?;
    let content = render(&args.settings)?;
    let sshd = ctx.host.which("sshd").ok_or_else(|| {
        OpError::permanent("`sshd` not found on the target (looked in PATH and /usr/sbin)")
    })?;
    let included = fs::read_to_string(ctx.host.path(MAIN)).is_ok_and(|m| included(&m));
    let dir = ctx.host.path(DIR);
    let target = dir.join(format!("{}.conf", args.name));
    let _guard = system_files_lock();
    ensure_dir(&dir, None, Owner::default(), false)?;
    let written = ensure_file(&target, content.as_bytes(), Some(0o644), ROOT, |_| Ok(()))?;
    let previous = written
        .previous
        .as_ref()
        .and_then(|p| p.content.as_ref())
        .map(|c| String::from_utf8_lossy(c).into_owned());
    if !written.changed {
        return Ok(SshdHardenResult {
            changed: false,
            previous,
            included,
        });
    }
    let out = run_tool(&sshd, &["-t"], ctx.cancel)?;
    if out.status.success() {
        return Ok(SshdHardenResult {
            changed: true,
            previous,
            included,
        });
    }
    let restored = match &written.previous {
        Some(p) => match &p.content {
            Some(old) => atomic::replace(&target, old, p.mode, ROOT).map(|()| "restored"),
            None => Ok("left in place: the previous file was too large to keep"),
        },
        None => fs::remove_file(&target)
            .map(|()| "removed")
            .map_err(|e| OpError::io(&target, &e)),
    };
    // Reported, not hidden: the caller must know when the broken file is still there.
    let restored = restored.map_or_else(|e| format!("NOT restored ({e})"), str::to_string);
    Err(OpError::permanent(format!(
        "`sshd -t` rejected the configuration, `{}` was {restored}: {}",
        target.display(),
        out.combined()
    )))
}

/// `sshd.unharden`.
pub fn unharden(ctx: &Ctx, args: NameArgs) -> Result<Changed, OpError> {
    check_name("name", &args.name)?;
    let target = ctx.host.path(DIR).join(format!("{}.conf", args.name));
    let _guard = system_files_lock();
    match fs::remove_file(&target) {
        Ok(()) => Ok(Changed { changed: true }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Changed { changed: false }),
        Err(e) => Err(OpError::io(&target, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn settings_render_sorted_with_yes_no() {
        let mut s = BTreeMap::new();
        s.insert(
            "PasswordAuthentication".to_string(),
            SettingValue::Bool(false),
        );
        s.insert("MaxAuthTries".to_string(), SettingValue::Int(3));
        s.insert(
            "AllowGroups".to_string(),
            SettingValue::Str("ssh-users admins".into()),
        );
        let text = render(&s).expect("renders");
        assert_eq!(
            text,
            format!(
                "{HEADER}AllowGroups ssh-users admins\nMaxAuthTries 3\nPasswordAuthentication no\n"
            )
        );
        s.insert("Bad Key".to_string(), SettingValue::Bool(true));
        assert!(render(&s).is_err());
        let mut s = BTreeMap::new();
        s.insert(
            "Banner".to_string(),
            SettingValue::Str("x\nPermitRootLogin yes".into()),
        );
        assert!(render(&s).is_err(), "newlines would inject settings");
    }

    #[test]
    fn include_detection() {
        assert!(included(
            "# c\nInclude /etc/ssh/sshd_config.d/*.conf\nPort 22\n"
        ));
        assert!(included("  include /etc/ssh/sshd_config.d/*.conf"));
        assert!(!included("#Include /etc/ssh/sshd_config.d/*.conf\n"));
        assert!(!included("Port 22\n"));
    }
}
