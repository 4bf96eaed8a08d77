//! The actual states `read` reports and `diff` reads back: for a download what is at
//! dest (JSON `null` when nothing), for an extract what `diff` needs to decide whether
//! the archive must be unpacked (again).

use froyo_provider_sdk::runner::{FileKind, StatEntry};
use froyo_provider_sdk::{ProviderError, Result};
use serde::{Deserialize, Serialize};

use crate::marker::Marker;

/// What is at a path: one `file.stat` entry without the noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathState {
    pub kind: FileKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Four octal digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Regular files only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl PathState {
    /// The state of one `file.stat` entry; `None` when the path does not exist, an error
    /// when the runner could not look at it (permission denied, …).
    pub fn from_stat(entry: &StatEntry) -> Result<Option<PathState>> {
        if let Some(error) = &entry.error {
            return Err(ProviderError::permanent(format!(
                "cannot stat {}: {error}",
                entry.path
            )));
        }
        if !entry.exists {
            return Ok(None);
        }
        Ok(Some(PathState {
            kind: entry.kind.unwrap_or(FileKind::Other),
            size: entry.size,
            mode: entry.mode.clone(),
            owner: entry.owner.clone(),
            group: entry.group.clone(),
            uid: entry.uid,
            gid: entry.gid,
            sha256: entry.sha256.clone(),
        }))
    }
}

/// A download's state: what is at dest.
pub type DownloadState = Option<PathState>;

/// An extract's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractState {
    /// The archive (`None`: not there yet, e.g. a download later in the run creates it).
    pub archive: Option<PathState>,
    /// What dest is (`None`: missing).
    pub dest: Option<FileKind>,
    /// The sha256 of the marker file in dest (`None`: no marker).
    pub marker_sha256: Option<String>,
    /// The marker's content, read only when it differs from the expected one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<Marker>,
    /// Whether the `creates` path exists (`None`: no `creates` guard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creates_exists: Option<bool>,
}

pub fn to_json<T: Serialize>(state: &T) -> String {
    // Plain fields: serializing cannot fail.
    serde_json::to_string(state).unwrap_or_else(|_| "null".to_owned())
}

pub fn parse<T: for<'de> Deserialize<'de>>(json: &str) -> Result<T> {
    serde_json::from_str(json)
        .map_err(|e| ProviderError::permanent(format!("malformed actual state: {e}")))
}

/// How a kind is named in messages.
pub fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::File => "a regular file",
        FileKind::Dir => "a directory",
        FileKind::Symlink => "a symlink",
        FileKind::Other => "a special file",
    }
}
