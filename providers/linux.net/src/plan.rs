//! `diff`: compares a desired config with the actual state `read` recorded and plans at
//! most one operation, whose payload says what `apply` does. Pure, so every case is
//! unit-tested on recorded states.
//!
//! A download is fetched only when dest lacks the configured sha256; otherwise only its
//! managed mode, owner and group are fixed. An extract is planned unless `creates`
//! exists or dest's marker records this very archive unpacked this way; a missing
//! archive is planned too (a download earlier in the run may create it), and `apply`
//! says so clearly when it is still missing then.

use std::collections::BTreeMap;

use froyo_provider_sdk::runner::FileKind;
use froyo_provider_sdk::{Actual, Operation, ProviderError, Resource, Result};
use serde::{Deserialize, Serialize};

use crate::config::{
    Config, DownloadConfig, ExtractConfig, Format, normalize_mode, same_mode, same_principal, short,
};
use crate::marker::Marker;
use crate::state::{DownloadState, ExtractState, PathState, kind_name, parse};

/// What `apply` does, chosen by `diff` (the operation's payload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Payload {
    /// Fetch `url` into a temp file beside dest, verify it, move it over dest.
    Download {
        url: String,
        dest: String,
        sha256: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
        /// Values may be secrets: they go to curl or wget on stdin, nowhere else.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
    },
    /// dest already has the content: only chmod/chown it.
    Metadata {
        dest: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
    },
    /// Unpack `src` into `dest` (or, with `reown_only`, only `chown -R` it when the
    /// archive is still the one planned), then write the marker.
    Extract {
        src: String,
        dest: String,
        format: Format,
        strip_components: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reown_only: bool,
        /// The archive's sha256 when planned (`None`: it did not exist yet).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        planned_sha256: Option<String>,
    },
}

impl Payload {
    pub fn parse(op: &Operation) -> Result<Payload> {
        serde_json::from_str(&op.payload)
            .map_err(|e| ProviderError::permanent(format!("{}: malformed payload: {e}", op.id)))
    }
}

/// The marker an extract of an archive with `sha256` leaves with this config.
pub fn expected_marker(c: &ExtractConfig, sha256: &str) -> Result<Marker> {
    Ok(Marker {
        sha256: sha256.to_owned(),
        format: c.format()?,
        strip_components: c.strip_components,
        owner: c.owner.clone(),
        group: c.group.clone(),
    })
}

pub fn plan(desired: &Resource, actual: &Actual) -> Result<Vec<Operation>> {
    let step = match Config::parse(desired)? {
        Config::Download(c) => download(&c, &parse(&actual.state)?),
        Config::Extract(c) => extract(&c, &parse(&actual.state)?),
    }
    .map_err(|e| e.context(&desired.id))?;
    Ok(step
        .into_iter()
        .map(|s| Operation {
            id: desired.id.clone(),
            type_name: desired.type_name.clone(),
            kind: s.kind.into(),
            summary: s.summary,
            diff: None,
            // Plain strings and numbers: serializing cannot fail.
            payload: serde_json::to_string(&s.payload).unwrap_or_default(),
        })
        .collect())
}

/// One planned operation before it becomes an [`Operation`].
#[derive(Debug)]
struct Step {
    kind: &'static str,
    summary: String,
    payload: Payload,
}

fn download(c: &DownloadConfig, state: &DownloadState) -> Result<Option<Step>> {
    let fetch = |kind, was: String| Step {
        kind,
        summary: format!(
            "download {} → {} (sha256 {}{was})",
            c.url,
            c.dest,
            short(&c.sha256)
        ),
        payload: Payload::Download {
            url: c.url.clone(),
            dest: c.dest.clone(),
            sha256: c.sha256.clone(),
            mode: c.mode.as_deref().and_then(normalize_mode),
            owner: c.owner.clone(),
            group: c.group.clone(),
            headers: c.headers.clone(),
        },
    };
    let Some(s) = state else {
        return Ok(Some(fetch("create", String::new())));
    };
    match s.kind {
        FileKind::File if s.sha256.as_deref() == Some(c.sha256.as_str()) => {
            let changes =
                metadata_changes(s, c.mode.as_deref(), c.owner.as_deref(), c.group.as_deref());
            Ok((!changes.is_empty()).then(|| Step {
                kind: "update",
                summary: changes.join(", "),
                payload: Payload::Metadata {
                    dest: c.dest.clone(),
                    mode: c.mode.as_deref().and_then(normalize_mode),
                    owner: c.owner.clone(),
                    group: c.group.clone(),
                },
            }))
        }
        FileKind::File => {
            let was = match &s.sha256 {
                Some(old) => format!(", was {}", short(old)),
                None => ", replaces a file too large to hash".to_owned(),
            };
            Ok(Some(fetch("update", was)))
        }
        // Replaced by the file, as `file.write` does; never written through.
        FileKind::Symlink => Ok(Some(fetch("update", ", replaces a symlink".to_owned()))),
        kind => Err(ProviderError::permanent(format!(
            "dest {} is {}, not a file: remove it or choose another dest",
            c.dest,
            kind_name(kind)
        ))),
    }
}

fn extract(c: &ExtractConfig, state: &ExtractState) -> Result<Option<Step>> {
    if state.creates_exists == Some(true) {
        return Ok(None);
    }
    if let Some(kind) = state
        .dest
        .filter(|k| !matches!(k, FileKind::Dir | FileKind::Symlink))
    {
        return Err(ProviderError::permanent(format!(
            "dest {} is {}, not a directory",
            c.dest,
            kind_name(kind)
        )));
    }
    let format = c.format()?;
    let payload = |reown_only: bool, planned: Option<&str>| Payload::Extract {
        src: c.src.clone(),
        dest: c.dest.clone(),
        format,
        strip_components: c.strip_components,
        owner: c.owner.clone(),
        group: c.group.clone(),
        reown_only,
        planned_sha256: planned.map(str::to_owned),
    };
    let kind = if state.marker_sha256.is_some() {
        "update"
    } else {
        "create"
    };
    let mut details = vec![format!("{} archive", format.name())];
    if c.strip_components > 0 {
        details.push(format!("strip_components {}", c.strip_components));
    }
    let head = format!("extract {} → {}", c.src, c.dest);
    let archive = match &state.archive {
        None => {
            details.push("the archive is not there yet: an earlier step must create it".into());
            return Ok(Some(Step {
                kind,
                summary: format!("{head} ({})", details.join(", ")),
                payload: payload(false, None),
            }));
        }
        Some(PathState {
            kind: FileKind::File,
            ..
        }) => state.archive.as_ref(),
        Some(a) => {
            return Err(ProviderError::permanent(format!(
                "src {} is {}, not an archive file",
                c.src,
                kind_name(a.kind)
            )));
        }
    };
    let Some(sha256) = archive.and_then(|a| a.sha256.as_deref()) else {
        details.push("the archive could not be hashed".into());
        return Ok(Some(Step {
            kind,
            summary: format!("{head} ({})", details.join(", ")),
            payload: payload(false, None),
        }));
    };
    let expected = expected_marker(c, sha256)?;
    if state.marker_sha256.as_deref() == Some(expected.sha256_of_text().as_str()) {
        return Ok(None);
    }
    details.insert(0, format!("sha256 {}", short(sha256)));
    match (&state.marker_sha256, &state.marker) {
        (None, _) => {}
        (Some(_), Some(old)) if old.same_unpack(&expected) => {
            let mut changes = Vec::new();
            if old.owner != expected.owner {
                changes.push(format!(
                    "owner {} → {}",
                    old.owner.as_deref().unwrap_or("(unmanaged)"),
                    expected.owner.as_deref().unwrap_or("(unmanaged)")
                ));
            }
            if old.group != expected.group {
                changes.push(format!(
                    "group {} → {}",
                    old.group.as_deref().unwrap_or("(unmanaged)"),
                    expected.group.as_deref().unwrap_or("(unmanaged)")
                ));
            }
            return Ok(Some(Step {
                kind: "update",
                summary: format!("{} of the files in {}", changes.join(", "), c.dest),
                payload: payload(true, Some(sha256)),
            }));
        }
        (Some(_), Some(old)) => {
            if old.sha256 != expected.sha256 {
                details.push(format!("was {}", short(&old.sha256)));
            }
            if old.format != expected.format {
                details.push(format!("format was {}", old.format.name()));
            }
            if old.strip_components != expected.strip_components {
                details.push(format!("strip_components was {}", old.strip_components));
            }
        }
        (Some(_), None) => details.push("unrecognised marker".into()),
    }
    Ok(Some(Step {
        kind,
        summary: format!("{head} ({})", details.join(", ")),
        payload: payload(false, Some(sha256)),
    }))
}

/// `mode 0600 → 0644`, `owner root → www-data`, … for the managed fields that differ.
pub fn metadata_changes(
    s: &PathState,
    mode: Option<&str>,
    owner: Option<&str>,
    group: Option<&str>,
) -> Vec<String> {
    let mut changes = Vec::new();
    if let Some(mode) = mode.filter(|m| !same_mode(m, s.mode.as_deref())) {
        changes.push(format!(
            "mode {} → {}",
            s.mode.as_deref().unwrap_or("?"),
            normalize_mode(mode).unwrap_or_else(|| mode.to_owned())
        ));
    }
    if let Some(owner) = owner.filter(|o| !same_principal(o, s.owner.as_deref(), s.uid)) {
        changes.push(format!(
            "owner {} → {owner}",
            shown_principal(s.owner.as_deref(), s.uid)
        ));
    }
    if let Some(group) = group.filter(|g| !same_principal(g, s.group.as_deref(), s.gid)) {
        changes.push(format!(
            "group {} → {group}",
            shown_principal(s.group.as_deref(), s.gid)
        ));
    }
    changes
}

fn shown_principal(name: Option<&str>, id: Option<u32>) -> String {
    match (name, id) {
        (Some(name), _) => name.to_owned(),
        (None, Some(id)) => id.to_string(),
        (None, None) => "?".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::config::{DOWNLOAD, EXTRACT};

    const NEW: &str = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111";
    const OLD: &str = "bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222";

    fn diff(type_name: &str, config: Value, state: Value) -> Result<Vec<Operation>> {
        plan(
            &Resource {
                id: "r".into(),
                type_name: type_name.into(),
                config: config.to_string(),
            },
            &Actual {
                id: "r".into(),
                state: state.to_string(),
            },
        )
    }

    fn dl(extra: Value) -> Value {
        let mut c = json!({"dest": "/opt/x.tar.gz", "url": "https://e.org/x.tar.gz", "sha256": NEW,
                           "headers": {"Authorization": "Bearer s3cret"}});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    }

    fn file(sha256: &str) -> Value {
        json!({"kind": "file", "mode": "0644", "owner": "root", "group": "root", "uid": 0, "gid": 0, "sha256": sha256})
    }

    fn payload(op: &Operation) -> Value {
        serde_json::from_str(&op.payload).unwrap()
    }

    #[test]
    fn a_missing_dest_is_downloaded() {
        let ops = diff(DOWNLOAD, dl(json!({"mode": "640"})), Value::Null).unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].kind, "create");
        assert_eq!(
            ops[0].summary,
            "download https://e.org/x.tar.gz → /opt/x.tar.gz (sha256 aaaaaaaaaaaa…)"
        );
        assert_eq!(
            payload(&ops[0]),
            json!({"action": "download", "url": "https://e.org/x.tar.gz", "dest": "/opt/x.tar.gz",
                   "sha256": NEW, "mode": "0640", "headers": {"Authorization": "Bearer s3cret"}})
        );
    }

    #[test]
    fn other_content_is_downloaded_again_and_the_same_content_never() {
        let ops = diff(DOWNLOAD, dl(json!({})), file(OLD)).unwrap();
        assert_eq!(
            (ops[0].kind.as_str(), ops[0].summary.as_str()),
            (
                "update",
                "download https://e.org/x.tar.gz → /opt/x.tar.gz (sha256 aaaaaaaaaaaa…, was bbbbbbbbbbbb…)"
            )
        );
        assert!(diff(DOWNLOAD, dl(json!({})), file(NEW)).unwrap().is_empty());
        assert!(
            diff(
                DOWNLOAD,
                dl(json!({"mode": "644", "owner": "0", "group": "root"})),
                file(NEW)
            )
            .unwrap()
            .is_empty()
        );
        let link = json!({"kind": "symlink"});
        let ops = diff(DOWNLOAD, dl(json!({})), link).unwrap();
        assert!(
            ops[0].summary.ends_with(", replaces a symlink)"),
            "{}",
            ops[0].summary
        );
    }

    #[test]
    fn the_same_content_only_gets_its_metadata_fixed() {
        let ops = diff(
            DOWNLOAD,
            dl(json!({"mode": "0600", "owner": "app"})),
            file(NEW),
        )
        .unwrap();
        assert_eq!(
            (ops[0].kind.as_str(), ops[0].summary.as_str()),
            ("update", "mode 0644 → 0600, owner root → app")
        );
        assert_eq!(
            payload(&ops[0]),
            json!({"action": "metadata", "dest": "/opt/x.tar.gz", "mode": "0600", "owner": "app"})
        );
    }

    #[test]
    fn summaries_never_show_header_values_and_a_directory_is_refused() {
        for state in [Value::Null, file(OLD), file(NEW)] {
            for op in diff(DOWNLOAD, dl(json!({"mode": "0600"})), state).unwrap() {
                assert!(!op.summary.contains("s3cret"), "{}", op.summary);
            }
        }
        let e = diff(DOWNLOAD, dl(json!({})), json!({"kind": "dir"})).unwrap_err();
        assert_eq!(
            e.message,
            "r: dest /opt/x.tar.gz is a directory, not a file: remove it or choose another dest"
        );
    }

    fn ex(extra: Value) -> Value {
        let mut c = json!({"dest": "/opt/app", "src": "/opt/app.tar.gz", "strip_components": 1});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    }

    fn marker(sha256: &str, owner: Option<&str>) -> Marker {
        Marker {
            sha256: sha256.into(),
            format: Format::TarGz,
            strip_components: 1,
            owner: owner.map(str::to_owned),
            group: None,
        }
    }

    fn ex_state(archive: Option<&str>, marker: Option<&Marker>, read_back: bool) -> Value {
        json!({
            "archive": archive.map(file),
            "dest": marker.map(|_| "dir"),
            "marker_sha256": marker.map(Marker::sha256_of_text),
            "marker": if read_back { marker.map(|m| serde_json::to_value(m).unwrap()) } else { None },
        })
    }

    #[test]
    fn a_first_extract_and_a_current_marker() {
        let ops = diff(EXTRACT, ex(json!({})), ex_state(Some(NEW), None, false)).unwrap();
        assert_eq!(
            (ops[0].kind.as_str(), ops[0].summary.as_str()),
            (
                "create",
                "extract /opt/app.tar.gz → /opt/app (sha256 aaaaaaaaaaaa…, tar.gz archive, strip_components 1)"
            )
        );
        assert_eq!(
            payload(&ops[0]),
            json!({"action": "extract", "src": "/opt/app.tar.gz", "dest": "/opt/app", "format": "tar.gz",
                   "strip_components": 1, "planned_sha256": NEW})
        );
        let current = marker(NEW, None);
        assert!(
            diff(
                EXTRACT,
                ex(json!({})),
                ex_state(Some(NEW), Some(&current), false)
            )
            .unwrap()
            .is_empty()
        );
        // tgz and tar.gz are one format: no new unpack for a new spelling.
        assert!(
            diff(
                EXTRACT,
                ex(json!({"format": "tgz"})),
                ex_state(Some(NEW), Some(&current), false)
            )
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn a_changed_archive_or_layout_is_unpacked_again() {
        let old = marker(OLD, None);
        let ops = diff(
            EXTRACT,
            ex(json!({})),
            ex_state(Some(NEW), Some(&old), true),
        )
        .unwrap();
        assert_eq!(
            (ops[0].kind.as_str(), ops[0].summary.as_str()),
            (
                "update",
                "extract /opt/app.tar.gz → /opt/app (sha256 aaaaaaaaaaaa…, tar.gz archive, strip_components 1, was bbbbbbbbbbbb…)"
            )
        );
        let ops = diff(
            EXTRACT,
            ex(json!({"strip_components": 0})),
            ex_state(Some(NEW), Some(&marker(NEW, None)), true),
        )
        .unwrap();
        assert!(
            ops[0]
                .summary
                .ends_with("tar.gz archive, strip_components was 1)"),
            "{}",
            ops[0].summary
        );
        assert_eq!(payload(&ops[0])["reown_only"], Value::Null);
        let mut garbled = ex_state(Some(NEW), Some(&old), false);
        garbled["marker"] = Value::Null;
        let ops = diff(EXTRACT, ex(json!({})), garbled).unwrap();
        assert!(
            ops[0].summary.ends_with(", unrecognised marker)"),
            "{}",
            ops[0].summary
        );
    }

    #[test]
    fn an_owner_change_alone_re_owns_without_unpacking() {
        let ops = diff(
            EXTRACT,
            ex(json!({"owner": "app"})),
            ex_state(Some(NEW), Some(&marker(NEW, Some("root"))), true),
        )
        .unwrap();
        assert_eq!(ops[0].summary, "owner root → app of the files in /opt/app");
        assert_eq!(payload(&ops[0])["reown_only"], true);
        assert_eq!(payload(&ops[0])["owner"], "app");
    }

    #[test]
    fn a_missing_archive_is_planned_and_creates_guards() {
        let ops = diff(EXTRACT, ex(json!({})), ex_state(None, None, false)).unwrap();
        assert_eq!(
            ops[0].summary,
            "extract /opt/app.tar.gz → /opt/app (tar.gz archive, strip_components 1, the archive is not there yet: an earlier step must create it)"
        );
        assert_eq!(payload(&ops[0]).get("planned_sha256"), None);
        let mut guarded = ex_state(None, None, false);
        guarded["creates_exists"] = json!(true);
        assert!(
            diff(EXTRACT, ex(json!({"creates": "/opt/app/bin"})), guarded)
                .unwrap()
                .is_empty()
        );
        let mut unguarded = ex_state(Some(NEW), None, false);
        unguarded["creates_exists"] = json!(false);
        assert_eq!(
            diff(EXTRACT, ex(json!({"creates": "/opt/app/bin"})), unguarded)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn wrong_kinds_are_refused() {
        let mut state = ex_state(Some(NEW), None, false);
        state["dest"] = json!("file");
        let e = diff(EXTRACT, ex(json!({})), state).unwrap_err();
        assert_eq!(
            e.message,
            "r: dest /opt/app is a regular file, not a directory"
        );
        let mut state = ex_state(None, None, false);
        state["archive"] = json!({"kind": "dir"});
        let e = diff(EXTRACT, ex(json!({})), state).unwrap_err();
        assert_eq!(
            e.message,
            "r: src /opt/app.tar.gz is a directory, not an archive file"
        );
        let e = diff(EXTRACT, ex(json!({})), Value::Null).unwrap_err();
        assert!(
            e.message.contains("malformed actual state"),
            "{}",
            e.message
        );
    }
}
