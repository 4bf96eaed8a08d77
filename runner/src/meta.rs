//! File metadata as ops speak it: absolute paths, `"0644"` modes, owners by name or
//! id, and the "chown, then chmod" step that makes a path's metadata match.

use std::fs::{self, Metadata};
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};

use crate::error::OpError;
use crate::host::Host;

/// Checks that an op argument is an absolute path.
pub fn abs_path(field: &str, path: &str) -> Result<PathBuf, OpError> {
    if !path.starts_with('/') {
        return Err(OpError::permanent(format!(
            "`{field}` must be an absolute path, got `{path}`"
        )));
    }
    if path.contains('\0') {
        return Err(OpError::permanent(format!("`{field}` contains a NUL byte")));
    }
    Ok(PathBuf::from(path))
}

/// Parses `"644"` or `"0644"` (3 or 4 octal digits) into permission bits.
pub fn parse_mode(text: &str) -> Result<u32, OpError> {
    let ok = (3..=4).contains(&text.len()) && text.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(text, 8) {
        Ok(mode) if ok => Ok(mode),
        _ => Err(OpError::permanent(format!(
            "invalid mode `{text}`: expected 3 or 4 octal digits like `0644`"
        ))),
    }
}

/// Permission bits as four octal digits.
pub fn format_mode(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// A wanted owner and group; `None` leaves that part alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owner {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Owner {
    /// Resolves `owner`/`group` arguments (names or numeric ids) on `host`. The account
    /// files are read only when a name needs looking up.
    pub fn resolve(host: &Host, owner: Option<&str>, group: Option<&str>) -> Result<Self, OpError> {
        if owner.is_none() && group.is_none() {
            return Ok(Self::default());
        }
        let accounts = host.accounts();
        Ok(Self {
            uid: owner.map(|o| accounts.resolve_uid(o)).transpose()?,
            gid: group.map(|g| accounts.resolve_gid(g)).transpose()?,
        })
    }

    /// This owner, with the parts it leaves alone taken from `md`.
    pub fn or_from(self, md: &Metadata) -> Self {
        Self {
            uid: Some(self.uid.unwrap_or(md.uid())),
            gid: Some(self.gid.unwrap_or(md.gid())),
        }
    }

    fn differs(&self, md: &Metadata) -> bool {
        self.uid.is_some_and(|u| u != md.uid()) || self.gid.is_some_and(|g| g != md.gid())
    }
}

/// Makes `path` (described by `md`) have `mode` and `owner`, changing only what
/// differs. Returns whether anything changed.
///
/// Ownership goes first because `chown` clears the setuid and setgid bits; the mode
/// (the wanted one, else the old one) is put back afterwards.
pub fn converge(
    path: &Path,
    md: &Metadata,
    mode: Option<u32>,
    owner: Owner,
) -> Result<bool, OpError> {
    let old_mode = md.mode() & 0o7777;
    let want_mode = mode.unwrap_or(old_mode);
    let mut changed = false;
    let mut current_mode = old_mode;
    if owner.differs(md) {
        chown(path, owner.uid, owner.gid).map_err(|e| OpError::io(path, &e))?;
        changed = true;
        current_mode = fs::metadata(path)
            .map_err(|e| OpError::io(path, &e))?
            .mode()
            & 0o7777;
    }
    if current_mode != want_mode {
        fs::set_permissions(path, fs::Permissions::from_mode(want_mode))
            .map_err(|e| OpError::io(path, &e))?;
        changed = true;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_format() {
        assert_eq!(parse_mode("0644"), Ok(0o644));
        assert_eq!(parse_mode("755"), Ok(0o755));
        assert_eq!(parse_mode("4755"), Ok(0o4755));
        for bad in ["", "64", "0o644", "0648", "07777x", "+644", "99999"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
        assert_eq!(format_mode(0o100644), "0644");
        assert_eq!(format_mode(0o2750), "2750");
    }

    #[test]
    fn relative_paths_are_refused() {
        assert!(abs_path("path", "etc/passwd").is_err());
        assert!(abs_path("path", "").is_err());
        assert!(abs_path("path", "/a\0b").is_err());
        assert_eq!(abs_path("path", "/etc"), Ok(PathBuf::from("/etc")));
    }
}
