//! The actual state of a path, as `read` reports it and `diff` reads it back: JSON `null`
//! when nothing is at the path, else what `file.stat` said plus, for a file whose content
//! differs from the desired one, the current content (small text files only) for the
//! plan's diff.

use froyo_provider_sdk::runner::{FileKind, StatEntry};
use froyo_provider_sdk::{ProviderError, Result};
use serde::{Deserialize, Serialize};

/// Current content is fetched for the diff only below this size.
pub const MAX_DIFF_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// `file`, `dir`, `symlink` or `other` (the runner's names).
    pub kind: FileKind,
    /// Four octal digits.
    pub mode: Option<String>,
    /// Names from the target's `/etc/passwd` and `/etc/group`, `None` when unknown.
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Regular files only.
    pub sha256: Option<String>,
    pub size: Option<u64>,
    /// For a symlink, its target; for a directory, the symlink it was reached through.
    pub link_target: Option<String>,
    /// The current content of a file whose content differs from the desired one, when it
    /// is UTF-8, smaller than [`MAX_DIFF_BYTES`] and not sensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// The content is sensitive: it is never read into the state nor shown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    /// Directories with `recurse`: something inside whose owner or group differs (the
    /// first one found, or why it could not be checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_mismatch: Option<String>,
}

impl State {
    /// The state of one `file.stat` entry; `None` when the path does not exist.
    pub fn from_stat(entry: &StatEntry) -> Result<Option<State>> {
        if let Some(error) = &entry.error {
            return Err(ProviderError::permanent(format!(
                "cannot stat {}: {error}",
                entry.path
            )));
        }
        if !entry.exists {
            return Ok(None);
        }
        Ok(Some(State {
            kind: entry.kind.unwrap_or(FileKind::Other),
            mode: entry.mode.clone(),
            owner: entry.owner.clone(),
            group: entry.group.clone(),
            sha256: entry.sha256.clone(),
            size: entry.size,
            link_target: entry.link_target.clone(),
            content: None,
            uid: entry.uid,
            gid: entry.gid,
            sensitive: false,
            inner_mismatch: None,
        }))
    }

    /// Parses an `actual.state` (`"null"` → `None`).
    pub fn parse(json: &str) -> Result<Option<State>> {
        serde_json::from_str(json)
            .map_err(|e| ProviderError::permanent(format!("malformed actual state: {e}")))
    }

    pub fn to_json(state: Option<&State>) -> String {
        // Serializing these plain fields cannot fail.
        serde_json::to_string(&state).unwrap_or_else(|_| "null".to_owned())
    }
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
