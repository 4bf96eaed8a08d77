//! `read`: the actual state of a batch with as few runner calls as possible and without
//! changing anything. ONE hashed `file.stat` covers every download's dest and every
//! extract's archive, dest and marker; a second, unhashed one only the `creates` guards
//! (so a large binary named there is not hashed on every run); a `file.read` happens only
//! for a marker whose sha256 is not the expected one, to tell the plan what changed.

use std::collections::{HashMap, HashSet};

use froyo_provider_sdk::runner::{self, FileKind, ReadResult, StatArgs, StatEntry};
use froyo_provider_sdk::{Actual, ProviderError, Resource, Result};

use crate::config::{Config, ExtractConfig};
use crate::marker::{Marker, marker_path};
use crate::state::{ExtractState, PathState, to_json};

/// Every regular file is hashed, however large: a download is only known to be in place
/// by its sha256, and an archive only known unchanged by its own.
pub const MAX_HASH_BYTES: u64 = u64::MAX;

/// The runner ops `read` uses, so its choices can be tested with a fake runner.
pub trait Ops {
    fn stat(&mut self, args: &StatArgs) -> Result<Vec<StatEntry>>;
    fn read(&mut self, path: &str) -> Result<ReadResult>;
}

struct Live;

impl Ops for Live {
    fn stat(&mut self, args: &StatArgs) -> Result<Vec<StatEntry>> {
        runner::stat_with(args)
    }

    fn read(&mut self, path: &str) -> Result<ReadResult> {
        runner::read(path)
    }
}

pub fn read(resources: Vec<Resource>) -> Result<Vec<Actual>> {
    read_with(&mut Live, resources)
}

/// Paths in first-seen order, each once (sets keep a batch of thousands linear).
#[derive(Default)]
struct Paths<'a> {
    seen: HashSet<&'a str>,
    list: Vec<String>,
}

impl<'a> Paths<'a> {
    fn add(&mut self, path: &'a str) {
        if self.seen.insert(path) {
            self.list.push(path.to_owned());
        }
    }
}

pub fn read_with(ops: &mut impl Ops, resources: Vec<Resource>) -> Result<Vec<Actual>> {
    let configs = resources
        .iter()
        .map(Config::parse)
        .collect::<Result<Vec<_>>>()?;
    let markers: Vec<Option<String>> = configs
        .iter()
        .map(|c| match c {
            Config::Extract(e) => Some(marker_path(&e.dest)),
            Config::Download(_) => None,
        })
        .collect();
    let mut hashed = Paths::default();
    let mut plain = Paths::default();
    for (c, marker) in configs.iter().zip(&markers) {
        match c {
            Config::Download(d) => hashed.add(&d.dest),
            Config::Extract(e) => {
                hashed.add(&e.src);
                hashed.add(&e.dest);
                hashed.add(marker.as_deref().unwrap_or_default());
                if let Some(creates) = &e.creates {
                    plain.add(creates);
                }
            }
        }
    }
    let mut entries: HashMap<String, StatEntry> = HashMap::new();
    for (paths, sha256) in [(hashed.list, true), (plain.list, false)] {
        if paths.is_empty() {
            continue;
        }
        let args = StatArgs {
            paths,
            sha256,
            max_hash_bytes: sha256.then_some(MAX_HASH_BYTES),
        };
        for entry in ops.stat(&args)? {
            entries.insert(entry.path.clone(), entry);
        }
    }
    let at = |path: &str| -> Result<Option<PathState>> {
        let entry = entries
            .get(path)
            .ok_or_else(|| ProviderError::permanent(format!("file.stat said nothing of {path}")))?;
        PathState::from_stat(entry)
    };
    let mut actuals = Vec::with_capacity(configs.len());
    for ((resource, c), marker) in resources.iter().zip(&configs).zip(&markers) {
        let state = match c {
            Config::Download(d) => to_json(&at(&d.dest).map_err(|e| e.context(&resource.id))?),
            Config::Extract(e) => {
                let marker = marker.as_deref().unwrap_or_default();
                to_json(&extract_state(ops, e, marker, &at).map_err(|e| e.context(&resource.id))?)
            }
        };
        actuals.push(Actual {
            id: resource.id.clone(),
            state,
        });
    }
    Ok(actuals)
}

fn extract_state(
    ops: &mut impl Ops,
    c: &ExtractConfig,
    marker: &str,
    at: &impl Fn(&str) -> Result<Option<PathState>>,
) -> Result<ExtractState> {
    let archive = at(&c.src)?;
    let dest = at(&c.dest)?.map(|s| s.kind);
    let marker_file = at(marker)?.filter(|s| s.kind == FileKind::File);
    let marker_sha256 = marker_file.as_ref().and_then(|s| s.sha256.clone());
    let creates_exists = match &c.creates {
        Some(path) => Some(at(path)?.is_some()),
        None => None,
    };
    // The marker is read only when it is not the one this config and archive would
    // leave, and only when the plan would use it (no `creates` guard that holds).
    let expected = archive
        .as_ref()
        .and_then(|a| a.sha256.as_deref())
        .map(|sha| crate::plan::expected_marker(c, sha))
        .transpose()?;
    let current = match (&expected, &marker_sha256) {
        (Some(m), Some(sha)) => m.sha256_of_text() == *sha,
        _ => false,
    };
    let mut parsed = None;
    if marker_sha256.is_some() && !current && creates_exists != Some(true) {
        let text = ops.read(marker)?;
        parsed = text.content.as_deref().and_then(Marker::parse);
    }
    Ok(ExtractState {
        archive,
        dest,
        marker_sha256,
        marker: parsed,
        creates_exists,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::config::{DOWNLOAD, EXTRACT, Format, sha256_hex};

    const ARCHIVE_SHA: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    /// A runner that answers from fixed entries and records every call.
    #[derive(Default)]
    struct Fake {
        entries: Vec<StatEntry>,
        files: Vec<(String, String)>,
        calls: Vec<String>,
    }

    impl Ops for Fake {
        fn stat(&mut self, args: &StatArgs) -> Result<Vec<StatEntry>> {
            self.calls.push(format!(
                "file.stat{} {}",
                if args.sha256 { "+sha256" } else { "" },
                args.paths.join(" ")
            ));
            Ok(args
                .paths
                .iter()
                .map(|p| {
                    let mut e = self
                        .entries
                        .iter()
                        .find(|e| &e.path == p)
                        .cloned()
                        .unwrap_or(StatEntry {
                            path: p.clone(),
                            ..Default::default()
                        });
                    if !args.sha256 {
                        e.sha256 = None;
                    }
                    e
                })
                .collect())
        }

        fn read(&mut self, path: &str) -> Result<ReadResult> {
            self.calls.push(format!("file.read {path}"));
            let (_, content) = self
                .files
                .iter()
                .find(|(p, _)| p == path)
                .ok_or_else(|| ProviderError::permanent("no such file"))?;
            Ok(ReadResult {
                content: Some(content.clone()),
                content_b64: None,
                size: content.len() as u64,
                sha256: sha256_hex(content.as_bytes()),
            })
        }
    }

    fn file(path: &str, sha256: &str) -> StatEntry {
        StatEntry {
            path: path.into(),
            exists: true,
            kind: Some(FileKind::File),
            mode: Some("0644".into()),
            owner: Some("root".into()),
            uid: Some(0),
            sha256: Some(sha256.into()),
            ..Default::default()
        }
    }

    fn dir(path: &str) -> StatEntry {
        StatEntry {
            path: path.into(),
            exists: true,
            kind: Some(FileKind::Dir),
            ..Default::default()
        }
    }

    fn resource(id: &str, type_name: &str, config: Value) -> Resource {
        Resource {
            id: id.into(),
            type_name: type_name.into(),
            config: config.to_string(),
        }
    }

    fn state(actual: &Actual) -> Value {
        serde_json::from_str(&actual.state).unwrap()
    }

    fn marker(strip: u32) -> Marker {
        Marker {
            sha256: ARCHIVE_SHA.into(),
            format: Format::TarGz,
            strip_components: strip,
            owner: None,
            group: None,
        }
    }

    #[test]
    fn one_hashed_stat_for_the_batch_and_markers_read_only_when_stale() {
        let current = marker(1);
        let stale = marker(0).render();
        let mut fake = Fake {
            entries: vec![
                file("/opt/app.tar.gz", ARCHIVE_SHA),
                dir("/opt/app"),
                file("/opt/app/.froyo-extract", &current.sha256_of_text()),
                dir("/opt/old"),
                file("/opt/old/.froyo-extract", &sha256_hex(stale.as_bytes())),
                file("/usr/bin/app", "big"),
            ],
            files: vec![("/opt/old/.froyo-extract".into(), stale)],
            ..Default::default()
        };
        let actuals = read_with(
            &mut fake,
            vec![
                resource(
                    "dl",
                    DOWNLOAD,
                    json!({"dest": "/opt/app.tar.gz", "url": "https://e.org/app.tar.gz", "sha256": ARCHIVE_SHA}),
                ),
                resource(
                    "app",
                    EXTRACT,
                    json!({"dest": "/opt/app", "src": "/opt/app.tar.gz", "strip_components": 1}),
                ),
                resource(
                    "old",
                    EXTRACT,
                    json!({"dest": "/opt/old", "src": "/opt/app.tar.gz", "strip_components": 1, "creates": "/usr/bin/app2"}),
                ),
                resource(
                    "guarded",
                    EXTRACT,
                    json!({"dest": "/opt/g", "src": "/opt/missing.zip", "strip_components": 0, "creates": "/usr/bin/app"}),
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            fake.calls,
            [
                "file.stat+sha256 /opt/app.tar.gz /opt/app /opt/app/.froyo-extract /opt/old /opt/old/.froyo-extract /opt/missing.zip /opt/g /opt/g/.froyo-extract",
                "file.stat /usr/bin/app2 /usr/bin/app",
                "file.read /opt/old/.froyo-extract",
            ]
        );
        assert_eq!(state(&actuals[0])["sha256"], ARCHIVE_SHA);
        assert_eq!(state(&actuals[0])["mode"], "0644");
        let app = state(&actuals[1]);
        assert_eq!(app["marker_sha256"], current.sha256_of_text());
        assert_eq!(app.get("marker"), None);
        assert_eq!(app.get("creates_exists"), None);
        let old = state(&actuals[2]);
        assert_eq!(old["marker"]["strip_components"], 0);
        assert_eq!(old["creates_exists"], false);
        let guarded = state(&actuals[3]);
        assert_eq!(guarded["archive"], Value::Null);
        assert_eq!(guarded["dest"], Value::Null);
        assert_eq!(guarded["creates_exists"], true);
    }

    #[test]
    fn a_missing_download_is_null_and_stat_errors_name_the_resource() {
        let mut fake = Fake::default();
        let actuals = read_with(
            &mut fake,
            vec![resource(
                "dl",
                DOWNLOAD,
                json!({"dest": "/x", "url": "http://e.org/x", "sha256": ARCHIVE_SHA}),
            )],
        )
        .unwrap();
        assert_eq!(actuals[0].state, "null");
        assert_eq!(fake.calls, ["file.stat+sha256 /x"]);
        let mut fake = Fake {
            entries: vec![StatEntry {
                path: "/x".into(),
                error: Some("permission denied".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let e = read_with(
            &mut fake,
            vec![resource(
                "dl",
                DOWNLOAD,
                json!({"dest": "/x", "url": "http://e.org/x", "sha256": ARCHIVE_SHA}),
            )],
        )
        .unwrap_err();
        assert_eq!(e.message, "dl: cannot stat /x: permission denied");
    }
}
