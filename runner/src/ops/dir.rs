//! `dir.ensure`: make a path a directory with the wanted mode and owner. Also used by
//! the onboarding ops for `~/.ssh` and drop-in directories.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use crate::error::OpError;
use crate::meta::{self, Owner, abs_path, parse_mode};
use crate::ops::Ctx;
use crate::protocol::ops::{Changed, DirEnsureArgs};

/// `dir.ensure`. A symlink to a directory counts as the directory; its target's mode
/// and owner are the ones converged.
pub fn ensure(ctx: &Ctx, args: DirEnsureArgs) -> Result<Changed, OpError> {
    let path = abs_path("path", &args.path)?;
    let mode = args.mode.as_deref().map(parse_mode).transpose()?;
    let owner = Owner::resolve(ctx.host, args.owner.as_deref(), args.group.as_deref())?;
    let changed = ensure_dir(&path, mode, owner, args.parents)?;
    Ok(Changed { changed })
}

/// Makes `path` a directory; a new one gets `mode` or `0755`. Missing parents are
/// created with `0755` (less the umask) when `parents`, else they are an error.
pub(crate) fn ensure_dir(
    path: &Path,
    mode: Option<u32>,
    owner: Owner,
    parents: bool,
) -> Result<bool, OpError> {
    let mut created = false;
    match fs::metadata(path) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => {
            return Err(OpError::permanent(format!(
                "`{}` exists and is not a directory",
                path.display()
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match DirBuilder::new()
                .recursive(parents)
                .mode(0o755)
                .create(path)
            {
                Ok(()) => created = true,
                // Created by somebody else in the meantime: converge what is there.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(OpError::permanent(format!(
                        "the parent of `{}` does not exist and `parents` is false",
                        path.display()
                    )));
                }
                Err(e) => return Err(OpError::io(path, &e)),
            }
        }
        Err(e) => return Err(OpError::io(path, &e)),
    }
    let md = fs::metadata(path).map_err(|e| OpError::io(path, &e))?;
    // A new directory gets exactly the wanted mode, whatever the umask took away.
    let mode = if created {
        Some(mode.unwrap_or(0o755))
    } else {
        mode
    };
    let converged = meta::converge(path, &md, mode, owner)?;
    Ok(created || converged)
}
