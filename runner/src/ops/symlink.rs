//! `symlink.ensure`: make a path a symlink to a target, replacing an old link
//! atomically (a new link under a temp name, renamed over the old one).

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;

use crate::atomic;
use crate::error::OpError;
use crate::meta::abs_path;
use crate::protocol::ops::{SymlinkEnsureArgs, SymlinkEnsureResult};

/// `symlink.ensure`. A regular file or an empty directory at `path` is replaced only
/// with `force`; a non-empty directory never is.
pub fn ensure(args: SymlinkEnsureArgs) -> Result<SymlinkEnsureResult, OpError> {
    let path = abs_path("path", &args.path)?;
    if args.target.is_empty() || args.target.contains('\0') {
        return Err(OpError::permanent("`target` must be a non-empty path"));
    }
    let md = match fs::symlink_metadata(&path) {
        Ok(md) => Some(md),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(OpError::io(&path, &e)),
    };
    let Some(md) = md else {
        return match symlink(&args.target, &path) {
            Ok(()) => Ok(SymlinkEnsureResult {
                changed: true,
                previous_target: None,
            }),
            Err(e) => Err(OpError::io(&path, &e)),
        };
    };
    let ft = md.file_type();
    if ft.is_symlink() {
        let old = fs::read_link(&path).map_err(|e| OpError::io(&path, &e))?;
        let previous_target = Some(old.to_string_lossy().into_owned());
        if old == Path::new(&args.target) {
            return Ok(SymlinkEnsureResult {
                changed: false,
                previous_target,
            });
        }
        replace_with_link(&path, &args.target)?;
        return Ok(SymlinkEnsureResult {
            changed: true,
            previous_target,
        });
    }
    if !args.force {
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_file() {
            "a regular file"
        } else {
            "not a symlink"
        };
        return Err(OpError::permanent(format!(
            "`{}` exists and is {what}; set `force` to replace it",
            path.display()
        )));
    }
    if ft.is_dir() {
        fs::remove_dir(&path).map_err(|e| match e.kind() {
            io::ErrorKind::DirectoryNotEmpty => OpError::permanent(format!(
                "`{}` is a non-empty directory; it is never replaced by a symlink",
                path.display()
            )),
            _ => OpError::io(&path, &e),
        })?;
        symlink(&args.target, &path).map_err(|e| OpError::io(&path, &e))?;
    } else {
        replace_with_link(&path, &args.target)?;
    }
    Ok(SymlinkEnsureResult {
        changed: true,
        previous_target: None,
    })
}

fn replace_with_link(path: &Path, target: &str) -> Result<(), OpError> {
    let tmp = atomic::temp_path(atomic::parent(path)?);
    symlink(target, &tmp).map_err(|e| OpError::io(&tmp, &e))?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        OpError::io(path, &e)
    })
}
