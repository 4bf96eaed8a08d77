//! `froyo agent …`: the edge agent is its own small static binary (no Starlark, libcue
//! or wasmtime), embedded in `froyo`. This extracts it (sha256-checked) and `exec`s it
//! with the same arguments, so `froyo agent serve` *is* the agent process (same PID).
//! The binary lands in `<data-dir>/bin/` when `--data-dir` is given (a device keeps it
//! there and can run it alone), else in the user's cache directory.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::error::Error;

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct AgentArgs {
    /// `serve`, `apply`, `status`, `components`, `graph`, `stop-plan`, `stop`,
    /// `restart` and their options (`froyo agent --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<OsString>,
}

pub fn run(a: &AgentArgs) -> Result<ExitCode, Error> {
    let dir = bin_dir(&a.args);
    let path = extract(&dir, crate::bundled::AGENT, crate::bundled::AGENT_SHA256)?;
    let err = std::process::Command::new(&path)
        .arg0("froyo agent")
        .args(&a.args)
        .exec();
    Err(Error::Usage(format!(
        "cannot run the agent `{}`: {err}",
        path.display()
    )))
}

/// `<data-dir>/bin` when the arguments name a data dir, else `$XDG_CACHE_HOME/froyo`
/// (or `~/.cache/froyo`, or the temp dir).
fn bin_dir(args: &[OsString]) -> PathBuf {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        if s == "--data-dir" {
            if let Some(d) = it.next() {
                return PathBuf::from(d).join("bin");
            }
        } else if let Some(d) = s.strip_prefix("--data-dir=") {
            return PathBuf::from(d).join("bin");
        }
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|c| c.join("froyo"))
        .unwrap_or_else(|| std::env::temp_dir().join(format!("froyo-{}", euid())))
}

fn euid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `dir/froyo-agent-<sha>` unless a file of ours with that digest is
/// there, checks the digest of what is on disk, and returns its path.
fn extract(dir: &Path, bytes: &[u8], sha: &str) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let path = dir.join(format!("froyo-agent-{}", &sha[..16]));
    let ours = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.uid() == euid())
            && std::fs::read(p).is_ok_and(|b| crate::util::sha256_hex(&b) == sha)
    };
    if ours(&path) {
        return Ok(path);
    }
    let tmp = dir.join(format!(".froyo-agent.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&tmp)
        .map_err(|e| io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| io(&tmp, e))?;
    drop(f);
    if !ours(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Usage(format!(
            "the agent written to `{}` does not have the sha256 it was built with",
            tmp.display()
        )));
    }
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    Ok(path)
}
