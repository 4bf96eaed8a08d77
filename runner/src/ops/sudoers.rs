//! `sudoers.ensure` and `sudoers.remove`: drop-in files under `/etc/sudoers.d`, never
//! installed unless `visudo -cf` accepts them, because a broken sudoers file locks
//! every admin out of `sudo` on the host.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;

use crate::atomic;
use crate::error::OpError;
use crate::meta::Owner;
use crate::ops::exec::run_tool;
use crate::ops::{Ctx, check_name, system_files_lock};
use crate::protocol::ops::{Changed, NameArgs, SudoersEnsureArgs};

const DIR: &str = "/etc/sudoers.d";
const ROOT: Owner = Owner {
    uid: Some(0),
    gid: Some(0),
};

/// `sudoers.ensure`: `/etc/sudoers.d/<name>`, mode 0440, owned by root.
pub fn ensure(ctx: &Ctx, args: SudoersEnsureArgs) -> Result<Changed, OpError> {
    check_name("name", &args.name)?;
    let visudo = ctx.host.which("visudo").ok_or_else(|| {
        OpError::permanent("`visudo` not found on the target; is sudo installed?")
    })?;
    let dir = ctx.host.path(DIR);
    if !dir.is_dir() {
        return Err(OpError::permanent(format!(
            "`{DIR}` does not exist on the target"
        )));
    }
    let mut content = args.content;
    if !content.ends_with('\n') {
        // sudo rejects a file whose last line has no newline.
        content.push('\n');
    }
    let target = dir.join(&args.name);
    let _guard = system_files_lock();
    if let Ok(md) = fs::symlink_metadata(&target)
        && md.is_file()
        && md.mode() & 0o7777 == 0o440
        && md.uid() == 0
        && md.gid() == 0
        && fs::read(&target).is_ok_and(|old| old == content.as_bytes())
    {
        return Ok(Changed { changed: false });
    }
    let staged = atomic::stage(&target, content.as_bytes(), 0o440, ROOT)?;
    let tmp = staged.path().to_string_lossy().into_owned();
    let out = run_tool(&visudo, &["-c", "-f", &tmp], ctx.cancel)?;
    if !out.status.success() {
        // Dropping `staged` removes the rejected temp file.
        return Err(OpError::permanent(format!(
            "`visudo -cf` rejected sudoers `{}`: {}",
            args.name,
            out.combined().replace(&tmp, &args.name)
        )));
    }
    staged.commit()?;
    Ok(Changed { changed: true })
}

/// `sudoers.remove`.
pub fn remove(ctx: &Ctx, args: NameArgs) -> Result<Changed, OpError> {
    check_name("name", &args.name)?;
    let target = ctx.host.path(DIR).join(&args.name);
    let _guard = system_files_lock();
    match fs::remove_file(&target) {
        Ok(()) => Ok(Changed { changed: true }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Changed { changed: false }),
        Err(e) => Err(OpError::io(&target, &e)),
    }
}
