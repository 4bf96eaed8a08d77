//! `file.stat`, `file.read`, `file.write`, `file.remove`: the file primitives every
//! file-shaped resource is read and converged with.

use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::atomic;
use crate::encoding::{base64_decode, base64_encode, sha256_file, sha256_hex};
use crate::error::OpError;
use crate::host::Accounts;
use crate::meta::{self, Owner, abs_path, format_mode, parse_mode};
use crate::ops::Ctx;
use crate::protocol::ops::{
    Changed, FileKind, ReadArgs, ReadResult, RemoveArgs, StatArgs, StatEntry, StatResult,
    WriteArgs, WriteResult,
};

const DEFAULT_MAX_HASH: u64 = 64 * 1024 * 1024;
const DEFAULT_MAX_READ: u64 = 16 * 1024 * 1024;

/// `file.stat`. Only a relative path fails the whole batch; anything wrong with one
/// path is reported in its entry's `error`.
pub fn stat(ctx: &Ctx, args: StatArgs) -> Result<StatResult, OpError> {
    for p in &args.paths {
        abs_path("paths", p)?;
    }
    let accounts = ctx.host.accounts();
    let max_hash = args.max_hash_bytes.unwrap_or(DEFAULT_MAX_HASH);
    let stats = args
        .paths
        .iter()
        .map(|p| stat_one(p, args.sha256, max_hash, &accounts))
        .collect();
    Ok(StatResult { stats })
}

fn stat_one(path: &str, hash: bool, max_hash: u64, accounts: &Accounts) -> StatEntry {
    let p = Path::new(path);
    let mut entry = StatEntry {
        path: path.to_string(),
        ..StatEntry::default()
    };
    let md = match fs::symlink_metadata(p) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return entry,
        Err(e) => {
            entry.error = Some(OpError::io(p, &e).message);
            return entry;
        }
    };
    let kind = kind_of(&md);
    entry.exists = true;
    entry.kind = Some(kind);
    entry.size = Some(md.len());
    entry.mode = Some(format_mode(md.mode()));
    entry.uid = Some(md.uid());
    entry.gid = Some(md.gid());
    entry.owner = accounts.user_name(md.uid()).map(str::to_string);
    entry.group = accounts.group_name(md.gid()).map(str::to_string);
    entry.mtime = Some(md.mtime());
    match kind {
        FileKind::File if hash && md.len() <= max_hash => match sha256_file(p) {
            Ok(sum) => entry.sha256 = Some(sum),
            Err(e) => entry.error = Some(OpError::io(p, &e).message),
        },
        FileKind::Symlink => match fs::read_link(p) {
            Ok(target) => entry.link_target = Some(target.to_string_lossy().into_owned()),
            Err(e) => entry.error = Some(OpError::io(p, &e).message),
        },
        _ => {}
    }
    entry
}

pub(crate) fn kind_of(md: &Metadata) -> FileKind {
    let ft = md.file_type();
    if ft.is_symlink() {
        FileKind::Symlink
    } else if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_file() {
        FileKind::File
    } else {
        FileKind::Other
    }
}

/// `file.read`.
pub fn read(args: ReadArgs) -> Result<ReadResult, OpError> {
    let path = abs_path("path", &args.path)?;
    let max = args.max_bytes.unwrap_or(DEFAULT_MAX_READ);
    let file = File::open(&path).map_err(|e| OpError::io(&path, &e))?;
    let md = file.metadata().map_err(|e| OpError::io(&path, &e))?;
    if !md.is_file() {
        return Err(OpError::permanent(format!(
            "`{}` is not a regular file",
            path.display()
        )));
    }
    // Read one byte past the limit, so a file that grew since `metadata` is caught too.
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| OpError::io(&path, &e))?;
    if bytes.len() as u64 > max {
        return Err(OpError::permanent(format!(
            "`{}` is larger than `max_bytes` ({max} bytes)",
            path.display()
        )));
    }
    let sha256 = sha256_hex(&bytes);
    let size = bytes.len() as u64;
    let (content, content_b64) = match String::from_utf8(bytes) {
        Ok(text) => (Some(text), None),
        Err(e) => (None, Some(base64_encode(e.as_bytes()))),
    };
    Ok(ReadResult {
        content,
        content_b64,
        size,
        sha256,
    })
}

/// `file.write`.
pub fn write(ctx: &Ctx, args: WriteArgs) -> Result<WriteResult, OpError> {
    let path = abs_path("path", &args.path)?;
    let content = match (args.content, args.content_b64) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(b64)) => base64_decode(&b64)
            .map_err(|e| OpError::permanent(format!("invalid `content_b64`: {e}")))?,
        _ => {
            return Err(OpError::permanent(
                "give exactly one of `content` and `content_b64`",
            ));
        }
    };
    let mode = args.mode.as_deref().map(parse_mode).transpose()?;
    let expect = args.expect_sha256.map(|s| s.to_ascii_lowercase());
    if let Some(e) = &expect
        && !(e.is_empty() || (e.len() == 64 && e.bytes().all(|b| b.is_ascii_hexdigit())))
    {
        return Err(OpError::permanent(
            "`expect_sha256` must be 64 hex digits or empty",
        ));
    }
    let owner = Owner::resolve(ctx.host, args.owner.as_deref(), args.group.as_deref())?;
    let outcome = ensure_file(&path, &content, mode, owner, |previous| {
        let Some(expect) = &expect else { return Ok(()) };
        let found = previous.map(|p| p.sha256.as_str()).unwrap_or("");
        if found == expect.as_str() {
            Ok(())
        } else {
            let found = if found.is_empty() { "no file" } else { found };
            let expected = if expect.is_empty() {
                "no file"
            } else {
                expect.as_str()
            };
            Err(OpError::conflict(format!(
                "`{}` changed: expected {expected}, found {found}",
                path.display()
            )))
        }
    })?;
    Ok(WriteResult {
        changed: outcome.changed,
        sha256: sha256_hex(&content),
        previous_sha256: outcome.previous.map(|p| p.sha256),
    })
}

/// A regular file as it was before [`ensure_file`] touched it.
#[derive(Debug, Clone)]
pub(crate) struct Previous {
    pub sha256: String,
    pub content: Option<Vec<u8>>,
    pub mode: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Ensured {
    pub changed: bool,
    pub previous: Option<Previous>,
}

/// Makes `path` a regular file with `content`, `mode` (default: the old file's, else
/// `0644`) and `owner` (default: the old file's), replacing it atomically when the
/// content differs and fixing metadata in place when only that differs. `check` sees
/// the old file first and may refuse. Small old contents (≤ 1 MiB) are kept in the
/// result so callers can restore them.
pub(crate) fn ensure_file(
    path: &Path,
    content: &[u8],
    mode: Option<u32>,
    owner: Owner,
    check: impl FnOnce(Option<&Previous>) -> Result<(), OpError>,
) -> Result<Ensured, OpError> {
    let current = match fs::symlink_metadata(path) {
        Ok(md) => Some(md),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(OpError::io(path, &e)),
    };
    if current.as_ref().is_some_and(|md| md.is_dir()) {
        return Err(OpError::permanent(format!(
            "`{}` is a directory",
            path.display()
        )));
    }
    // Symlinks and special files are replaced, not written through.
    let file_md = current.filter(|md| md.is_file());
    let previous = match &file_md {
        Some(md) if md.len() <= 1024 * 1024 => {
            let bytes = fs::read(path).map_err(|e| OpError::io(path, &e))?;
            Some(Previous {
                sha256: sha256_hex(&bytes),
                content: Some(bytes),
                mode: md.mode() & 0o7777,
            })
        }
        Some(md) => Some(Previous {
            sha256: sha256_file(path).map_err(|e| OpError::io(path, &e))?,
            content: None,
            mode: md.mode() & 0o7777,
        }),
        None => None,
    };
    check(previous.as_ref())?;
    let same_content = previous
        .as_ref()
        .is_some_and(|p| p.sha256 == sha256_hex(content));
    if let (true, Some(md)) = (same_content, &file_md) {
        let changed = meta::converge(path, md, mode, owner)?;
        return Ok(Ensured { changed, previous });
    }
    let owner = match &file_md {
        Some(md) => owner.or_from(md),
        None => owner,
    };
    let mode = mode.or(previous.as_ref().map(|p| p.mode)).unwrap_or(0o644);
    atomic::replace(path, content, mode, owner)?;
    Ok(Ensured {
        changed: true,
        previous,
    })
}

/// `file.remove`.
pub fn remove(args: RemoveArgs) -> Result<Changed, OpError> {
    let path = abs_path("path", &args.path)?;
    if path.parent().is_none() {
        return Err(OpError::permanent("refusing to remove `/`"));
    }
    let md = match fs::symlink_metadata(&path) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Changed { changed: false }),
        Err(e) => return Err(OpError::io(&path, &e)),
    };
    let result = if md.is_dir() {
        if args.recursive {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_dir(&path)
        }
    } else {
        fs::remove_file(&path)
    };
    match result {
        Ok(()) => Ok(Changed { changed: true }),
        // Somebody else removed it first: the wanted state holds.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Changed { changed: false }),
        Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => Err(OpError::permanent(format!(
            "`{}` is a non-empty directory; set `recursive` to remove it",
            path.display()
        ))),
        Err(e) => Err(OpError::io(&path, &e)),
    }
}
