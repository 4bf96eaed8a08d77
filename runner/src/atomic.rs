//! Atomic file replacement: write a temp file next to the target, fsync it, give it
//! its final mode and owner, then rename it over the target. Readers see the old file
//! or the new one, never a half-written one, and a crash leaves at most a stray temp
//! file whose name (`.froyo-tmp.*`) no `*.conf` or sudoers include picks up.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, fchown};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::OpError;
use crate::meta::Owner;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temp path in `dir`, unique within this process; created with `O_EXCL`
/// by callers so a clash with another process is detected, not overwritten.
pub fn temp_path(dir: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".froyo-tmp.{}.{n}", std::process::id()))
}

/// The directory holding `path`.
pub fn parent(path: &Path) -> Result<&Path, OpError> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => Ok(p),
        _ => Err(OpError::permanent(format!(
            "`{}` has no parent directory",
            path.display()
        ))),
    }
}

/// A complete temp file waiting to be renamed over its target; dropping it without
/// [`Staged::commit`] removes it.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl Staged {
    /// Where the staged content is, for validators such as `visudo -cf`.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Renames the temp file over the target and syncs the directory.
    pub fn commit(mut self) -> Result<(), OpError> {
        fs::rename(&self.tmp, &self.target).map_err(|e| OpError::io(&self.target, &e))?;
        self.committed = true;
        if let Some(dir) = self.target.parent() {
            // Best effort: the rename already happened; a failed directory fsync only
            // weakens durability across a power cut.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `content` with `mode` and `owner` to a temp file beside `target`.
pub fn stage(target: &Path, content: &[u8], mode: u32, owner: Owner) -> Result<Staged, OpError> {
    let dir = parent(target)?;
    let mut attempts = 0;
    let (file, tmp) = loop {
        let tmp = temp_path(dir);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(f) => break (f, tmp),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => attempts += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OpError::permanent(format!(
                    "the directory `{}` does not exist",
                    dir.display()
                )));
            }
            Err(e) => return Err(OpError::io(&tmp, &e)),
        }
    };
    let staged = Staged {
        tmp,
        target: target.to_path_buf(),
        committed: false,
    };
    write_out(file, content, mode, owner).map_err(|e| OpError::io(&staged.tmp, &e))?;
    Ok(staged)
}

/// Ownership and mode go through the open handle, never the name: in a directory
/// another user can write to (such as `~/.ssh`), the name could be swapped for a
/// symlink between our calls.
fn write_out(mut file: File, content: &[u8], mode: u32, owner: Owner) -> io::Result<()> {
    file.write_all(content)?;
    if owner.uid.is_some() || owner.gid.is_some() {
        fchown(&file, owner.uid, owner.gid)?;
    }
    // After chown, which would clear setuid/setgid bits.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.sync_all()
}

/// Replaces `target` with `content` atomically.
pub fn replace(target: &Path, content: &[u8], mode: u32, owner: Owner) -> Result<(), OpError> {
    stage(target, content, mode, owner)?.commit()
}
