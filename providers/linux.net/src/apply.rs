//! `apply` and `destroy`: carry out a planned payload with runner ops. Each step looks at
//! the target again first, so an apply retried after a failure, or one whose work an
//! earlier step of the run already did, changes nothing twice.
//!
//! A download is fetched into a temp file beside dest, checked against its sha256 and
//! only then renamed over dest; a mismatch removes the temp file and leaves dest alone.
//! An extract unpacks, re-owns and finally writes its marker, so a failed unpack is
//! tried again next run. `destroy` removes a download's file, but of an extract only its
//! marker: which files in dest came from the archive is not recorded, and dest may hold
//! files of the user's, so froyo never deletes the directory.

use froyo_provider_sdk::runner::{self, ExecArgs, FileKind, RemoveArgs, StatArgs, WriteArgs};
use froyo_provider_sdk::shell::check;
use froyo_provider_sdk::{ApplyResult, Operation, ProviderError, Resource, Result, log};
use serde_json::json;

use crate::config::{
    Config, chown_spec, download_temp, same_mode, same_principal, short, split_path,
};
use crate::fetch;
use crate::marker::marker_path;
use crate::plan::{Payload, expected_marker};
use crate::read::MAX_HASH_BYTES;
use crate::state::{PathState, kind_name};
use crate::unpack::{self, Unpack};

/// A new download's mode when none is given (it is fetched under `umask 077`).
const DEFAULT_MODE: &str = "0644";

pub fn apply(op: &Operation) -> Result<ApplyResult> {
    let payload = Payload::parse(op)?;
    run(payload).map_err(|e| e.context(&op.id))
}

fn run(payload: Payload) -> Result<ApplyResult> {
    match payload {
        Payload::Download {
            url,
            dest,
            sha256,
            mode,
            owner,
            group,
            headers,
        } => download(&Download {
            url: &url,
            dest: &dest,
            sha256: &sha256,
            mode: mode.as_deref(),
            owner: owner.as_deref(),
            group: group.as_deref(),
            headers: &headers,
        }),
        Payload::Metadata {
            dest,
            mode,
            owner,
            group,
        } => {
            let [current] = stat([dest.as_str()], false)?;
            let Some(current) = current.filter(|s| s.kind == FileKind::File) else {
                return Err(ProviderError::conflict(format!(
                    "{dest} is no longer a regular file: plan again"
                )));
            };
            let changed = fix_metadata(
                &dest,
                &current,
                mode.as_deref(),
                owner.as_deref(),
                group.as_deref(),
            )?;
            done(changed, json!({}))
        }
        Payload::Extract {
            src,
            dest,
            format,
            strip_components,
            owner,
            group,
            reown_only,
            planned_sha256,
        } => {
            let config = crate::config::ExtractConfig {
                dest,
                src,
                format: Some(format),
                strip_components,
                owner,
                group,
                creates: None,
            };
            extract(&config, reown_only, planned_sha256.as_deref())
        }
    }
}

/// One `file.stat` of fixed paths (hashed when asked).
fn stat<const N: usize>(paths: [&str; N], sha256: bool) -> Result<[Option<PathState>; N]> {
    let entries = runner::stat_with(&StatArgs {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        sha256,
        max_hash_bytes: sha256.then_some(MAX_HASH_BYTES),
    })?;
    let states = entries
        .iter()
        .map(PathState::from_stat)
        .collect::<Result<Vec<_>>>()?;
    states
        .try_into()
        .map_err(|_| ProviderError::permanent("file.stat answered the wrong number of paths"))
}

fn done(changed: bool, output: serde_json::Value) -> Result<ApplyResult> {
    Ok(ApplyResult {
        changed,
        output: output.to_string(),
    })
}

fn exec_checked(script: String, what: &str) -> Result<()> {
    check(runner::exec(&ExecArgs::shell(script))?, what).map(|_| ())
}

struct Download<'a> {
    url: &'a str,
    dest: &'a str,
    sha256: &'a str,
    mode: Option<&'a str>,
    owner: Option<&'a str>,
    group: Option<&'a str>,
    headers: &'a std::collections::BTreeMap<String, String>,
}

fn download(d: &Download) -> Result<ApplyResult> {
    let (dir, _) = split_path(d.dest);
    let [current, parent] = stat([d.dest, dir], true)?;
    if parent.as_ref().map(|p| p.kind) != Some(FileKind::Dir) {
        return Err(ProviderError::permanent(format!(
            "the directory {dir} of {} does not exist: create it first (for example with linux.file::directory)",
            d.dest
        )));
    }
    if let Some(current) = &current {
        if current.kind == FileKind::File && current.sha256.as_deref() == Some(d.sha256) {
            // Already there (a retry, or fetched since the plan): metadata only.
            let changed = fix_metadata(d.dest, current, d.mode, d.owner, d.group)?;
            return done(changed, json!({"sha256": d.sha256, "downloaded": false}));
        }
        if !matches!(current.kind, FileKind::File | FileKind::Symlink) {
            return Err(ProviderError::permanent(format!(
                "dest {} is {}, not a file",
                d.dest,
                kind_name(current.kind)
            )));
        }
    }
    let detected = runner::exec(&fetch::detect_args())?;
    let fetcher = fetch::choose(&detected.stdout)?;
    let temp = download_temp(d.dest);
    log::info(&format!(
        "downloading {} to {} with {}",
        d.url,
        d.dest,
        fetcher.name()
    ));
    let fetched = match runner::exec(&fetch::fetch_args(fetcher, d.url, &temp, d.headers)) {
        Ok(result) => result,
        Err(e) => {
            // Killed (timeout): the script had no chance to clean up.
            remove_quietly(&temp);
            return Err(ProviderError::new(
                e.class,
                fetch::redact(&e.message, d.headers),
            ));
        }
    };
    if !fetched.success() {
        return Err(fetch::failure(fetcher, d.url, &fetched, d.headers));
    }
    let [got] = stat([temp.as_str()], true)?;
    let actual = got.as_ref().and_then(|g| g.sha256.clone());
    let Some(got) = got.filter(|_| actual.as_deref() == Some(d.sha256)) else {
        remove_quietly(&temp);
        return Err(ProviderError::permanent(format!(
            "sha256 mismatch for {}: expected {}, got {}; {} was not changed",
            d.url,
            d.sha256,
            actual.as_deref().unwrap_or("no file"),
            d.dest
        )));
    };
    let script = install(d, &temp, &got, current.as_ref());
    if let Err(e) = exec_checked(script, "installing the download") {
        remove_quietly(&temp);
        return Err(e);
    }
    log::info(&format!("{} now has sha256 {}", d.dest, short(d.sha256)));
    done(
        true,
        json!({"sha256": d.sha256, "downloaded": true, "fetcher": fetcher.name()}),
    )
}

/// The install script for a verified temp file: the configured mode, else the old
/// file's, else [`DEFAULT_MODE`]; the configured owner and group, else the old file's
/// uid and gid where they differ from the temp file's (so a replaced file keeps its
/// owner, as `file.write` keeps it).
fn install(d: &Download, temp: &str, got: &PathState, old: Option<&PathState>) -> String {
    let old_file = old.filter(|o| o.kind == FileKind::File);
    let mode = d
        .mode
        .or_else(|| old_file.and_then(|o| o.mode.as_deref()))
        .unwrap_or(DEFAULT_MODE);
    let mode = (!same_mode(mode, got.mode.as_deref())).then_some(mode);
    let keep = |id: Option<u32>, now: Option<u32>| {
        id.filter(|id| Some(*id) != now).map(|id| id.to_string())
    };
    let owner = d
        .owner
        .map(str::to_owned)
        .or_else(|| keep(old_file.and_then(|o| o.uid), got.uid));
    let group = d
        .group
        .map(str::to_owned)
        .or_else(|| keep(old_file.and_then(|o| o.gid), got.gid));
    let spec = chown_spec(owner.as_deref(), group.as_deref());
    let symlink = old.is_some_and(|o| o.kind == FileKind::Symlink);
    unpack::install_script(temp, d.dest, mode, spec.as_deref(), symlink)
}

/// chmod/chown of a file in place, only for managed fields that differ.
fn fix_metadata(
    path: &str,
    current: &PathState,
    mode: Option<&str>,
    owner: Option<&str>,
    group: Option<&str>,
) -> Result<bool> {
    let mode = mode.filter(|m| !same_mode(m, current.mode.as_deref()));
    let owner = owner.filter(|o| !same_principal(o, current.owner.as_deref(), current.uid));
    let group = group.filter(|g| !same_principal(g, current.group.as_deref(), current.gid));
    let spec = chown_spec(owner, group);
    match unpack::metadata_script(path, mode, spec.as_deref()) {
        Some(script) => exec_checked(script, "chmod/chown").map(|()| true),
        None => Ok(false),
    }
}

fn remove_quietly(path: &str) {
    if let Err(e) = runner::remove(&RemoveArgs {
        path: path.to_owned(),
        recursive: false,
    }) {
        log::warn(&format!("could not remove {path}: {}", e.message));
    }
}

fn extract(
    c: &crate::config::ExtractConfig,
    reown_only: bool,
    planned_sha256: Option<&str>,
) -> Result<ApplyResult> {
    let marker = marker_path(&c.dest);
    let [archive, current_marker] = stat([c.src.as_str(), marker.as_str()], true)?;
    let archive = match archive {
        None => {
            return Err(ProviderError::permanent(format!(
                "the archive {} does not exist: nothing created it (a download or copy that makes it must come earlier in the run)",
                c.src
            )));
        }
        Some(a) if a.kind != FileKind::File => {
            return Err(ProviderError::permanent(format!(
                "src {} is {}, not an archive file",
                c.src,
                kind_name(a.kind)
            )));
        }
        Some(a) => a,
    };
    let sha256 = archive.sha256.clone().ok_or_else(|| {
        ProviderError::permanent(format!("the runner did not hash the archive {}", c.src))
    })?;
    let expected = expected_marker(c, &sha256)?;
    let text = expected.render();
    if current_marker.and_then(|m| m.sha256) == Some(expected.sha256_of_text()) {
        return done(false, json!({"sha256": sha256, "unpacked": false}));
    }
    let spec = chown_spec(c.owner.as_deref(), c.group.as_deref());
    let reown = reown_only && planned_sha256 == Some(sha256.as_str());
    if reown {
        if let Some(spec) = &spec {
            exec_checked(unpack::reown_command(spec, &c.dest), "chown -R")?;
        }
    } else {
        log::info(&format!(
            "unpacking {} (sha256 {}) into {}",
            c.src,
            short(&sha256),
            c.dest
        ));
        let script = unpack::extract_script(&Unpack {
            format: c.format()?,
            src: &c.src,
            dest: &c.dest,
            strip_components: c.strip_components,
            marker: &marker,
            chown: spec.as_deref(),
        });
        exec_checked(script, &format!("unpacking {}", c.src))?;
    }
    runner::write(&WriteArgs {
        path: marker.clone(),
        content: Some(text),
        mode: Some("0644".into()),
        ..Default::default()
    })?;
    done(true, json!({"sha256": sha256, "unpacked": !reown}))
}

pub fn destroy(resource: &Resource) -> Result<ApplyResult> {
    let result = match Config::parse(resource)? {
        Config::Download(c) => {
            let [current] = stat([c.dest.as_str()], false)?;
            match current {
                None => done(false, json!({})),
                Some(s) if matches!(s.kind, FileKind::File | FileKind::Symlink) => {
                    let changed = runner::remove(&RemoveArgs {
                        path: c.dest.clone(),
                        recursive: false,
                    })?;
                    done(changed, json!({}))
                }
                Some(s) => Err(ProviderError::permanent(format!(
                    "dest {} is {}, not the downloaded file: left in place",
                    c.dest,
                    kind_name(s.kind)
                ))),
            }
        }
        Config::Extract(c) => {
            let changed = runner::remove(&RemoveArgs {
                path: marker_path(&c.dest),
                recursive: false,
            })?;
            if changed {
                log::info(&format!(
                    "forgot the unpack into {}: its files are left in place",
                    c.dest
                ));
            }
            done(changed, json!({}))
        }
    };
    result.map_err(|e| e.context(&resource.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(mode: &str, uid: u32, gid: u32) -> PathState {
        PathState {
            kind: FileKind::File,
            size: Some(3),
            mode: Some(mode.into()),
            owner: None,
            group: None,
            uid: Some(uid),
            gid: Some(gid),
            sha256: None,
        }
    }

    fn dl(mode: Option<&'static str>, owner: Option<&'static str>) -> Download<'static> {
        static NO_HEADERS: std::collections::BTreeMap<String, String> =
            std::collections::BTreeMap::new();
        Download {
            url: "https://e.org/x",
            dest: "/opt/x",
            sha256: "",
            mode,
            owner,
            group: None,
            headers: &NO_HEADERS,
        }
    }

    #[test]
    fn a_new_file_gets_the_default_mode_and_the_runners_owner() {
        let script = install(
            &dl(None, None),
            "/opt/.x.froyo-download",
            &file("0600", 0, 0),
            None,
        );
        assert_eq!(
            script,
            "chmod 0644 -- /opt/.x.froyo-download && mv -f -- /opt/.x.froyo-download /opt/x"
        );
    }

    #[test]
    fn a_replaced_file_keeps_its_mode_and_owner_unless_configured() {
        let old = file("0755", 1000, 1000);
        assert_eq!(
            install(&dl(None, None), "/t", &file("0600", 0, 0), Some(&old)),
            "chmod 0755 -- /t && chown 1000:1000 -- /t && mv -f -- /t /opt/x"
        );
        assert_eq!(
            install(
                &dl(Some("0600"), Some("app")),
                "/t",
                &file("0600", 0, 0),
                Some(&old)
            ),
            "chown app:1000 -- /t && mv -f -- /t /opt/x"
        );
        let link = PathState {
            kind: FileKind::Symlink,
            ..file("0777", 0, 0)
        };
        assert_eq!(
            install(&dl(None, None), "/t", &file("0644", 0, 0), Some(&link)),
            "rm -f -- /opt/x && mv -f -- /t /opt/x"
        );
    }
}
