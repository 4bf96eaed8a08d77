//! `read`: the actual state of a batch of paths with as few runner calls as possible —
//! one `file.stat` for the whole batch, plus a `file.read` only for small files whose
//! content differs (for the plan's diff), a second `file.stat` only for directories
//! reached through a symlink, and a `find` only for directories with `recurse` and a
//! managed owner or group.

use froyo_provider_sdk::runner::{
    self, ExecArgs, ExecResult, FileKind, ReadArgs, ReadResult, StatEntry,
};
use froyo_provider_sdk::{Actual, Resource, Result, log};

use crate::config::{Config, DirectoryConfig};
use crate::state::{MAX_DIFF_BYTES, State};

/// The runner ops `read` uses, so its choices can be tested with a fake runner.
pub trait Ops {
    fn stat(&mut self, paths: &[String]) -> Result<Vec<StatEntry>>;
    fn read(&mut self, args: &ReadArgs) -> Result<ReadResult>;
    fn exec(&mut self, args: &ExecArgs) -> Result<ExecResult>;
}

/// The real runner, through the host.
struct Live;

impl Ops for Live {
    fn stat(&mut self, paths: &[String]) -> Result<Vec<StatEntry>> {
        runner::stat(paths)
    }

    fn read(&mut self, args: &ReadArgs) -> Result<ReadResult> {
        runner::read_with(args)
    }

    fn exec(&mut self, args: &ExecArgs) -> Result<ExecResult> {
        runner::exec(args)
    }
}

pub fn read(resources: Vec<Resource>) -> Result<Vec<Actual>> {
    read_with(&mut Live, resources)
}

pub fn read_with(ops: &mut impl Ops, resources: Vec<Resource>) -> Result<Vec<Actual>> {
    let configs = resources
        .iter()
        .map(|r| Config::parse(r).map_err(|e| e.context(&r.id)))
        .collect::<Result<Vec<Config>>>()?;
    if configs.is_empty() {
        return Ok(Vec::new());
    }
    let paths: Vec<String> = configs.iter().map(|c| c.path().to_owned()).collect();
    let mut states = ops
        .stat(&paths)?
        .iter()
        .map(State::from_stat)
        .collect::<Result<Vec<Option<State>>>>()?;

    follow_directory_links(ops, &configs, &mut states)?;

    for (config, state) in configs.iter().zip(states.iter_mut()) {
        let Some(s) = state.as_mut() else { continue };
        match config {
            Config::File(c) if s.kind == FileKind::File => {
                let Some(desired) = c.desired_content()? else {
                    continue;
                };
                if s.sha256.as_deref() == Some(desired.sha256().as_str()) {
                    continue;
                }
                if desired.sensitive {
                    s.sensitive = true;
                } else if s.size.is_some_and(|n| n < MAX_DIFF_BYTES) {
                    // Only for showing the diff: a file that grew or became unreadable since
                    // the stat is not worth failing the read for.
                    let args = ReadArgs {
                        path: c.path.clone(),
                        max_bytes: Some(MAX_DIFF_BYTES),
                    };
                    match ops.read(&args) {
                        Ok(r) => s.content = r.content,
                        Err(e) => log::warn(&format!("cannot read {} for the diff: {e}", c.path)),
                    }
                }
            }
            // A line is edited in the whole text: the plan needs the current content.
            Config::Line(_) | Config::Block(_)
                if s.kind == FileKind::File && s.size.is_some_and(|n| n < MAX_DIFF_BYTES) =>
            {
                let args = ReadArgs {
                    path: config.path().to_owned(),
                    max_bytes: Some(MAX_DIFF_BYTES),
                };
                s.content = ops.read(&args)?.content;
            }
            Config::Directory(c) if c.recurse && s.kind == FileKind::Dir => {
                s.inner_mismatch = contents_mismatch(ops, c)?;
            }
            _ => {}
        }
    }

    Ok(resources
        .into_iter()
        .zip(states)
        .map(|(r, s)| Actual {
            id: r.id,
            state: State::to_json(s.as_ref()),
        })
        .collect())
}

/// A directory resource whose path is a symlink to a directory is that directory (as for
/// `dir.ensure`): describe it through `PATH/.`, keeping the link's target.
fn follow_directory_links(
    ops: &mut impl Ops,
    configs: &[Config],
    states: &mut [Option<State>],
) -> Result<()> {
    let links: Vec<usize> = (0..configs.len())
        .filter(|&i| {
            matches!(configs[i], Config::Directory(_))
                && states[i]
                    .as_ref()
                    .is_some_and(|s| s.kind == FileKind::Symlink)
        })
        .collect();
    if links.is_empty() {
        return Ok(());
    }
    let paths: Vec<String> = links
        .iter()
        .map(|&i| format!("{}/.", configs[i].path().trim_end_matches('/')))
        .collect();
    for (&i, entry) in links.iter().zip(ops.stat(&paths)?) {
        // A dangling link or one to a non-directory stays a symlink (and diff says so).
        if entry.error.is_some() {
            continue;
        }
        if let Some(mut dir) = State::from_stat(&entry)?.filter(|s| s.kind == FileKind::Dir) {
            dir.link_target = states[i].as_ref().and_then(|s| s.link_target.clone());
            states[i] = Some(dir);
        }
    }
    Ok(())
}

/// With `recurse`, the first path inside the directory whose owner or group differs from
/// the managed ones (symlinks are judged themselves, as `chown -R -h` changes them).
fn contents_mismatch(ops: &mut impl Ops, c: &DirectoryConfig) -> Result<Option<String>> {
    let test: Vec<&str> = match (c.owner.as_deref(), c.group.as_deref()) {
        (None, None) => return Ok(None),
        (Some(o), None) => vec!["!", "-user", o],
        (None, Some(g)) => vec!["!", "-group", g],
        (Some(o), Some(g)) => vec!["(", "!", "-user", o, "-o", "!", "-group", g, ")"],
    };
    let mut argv = vec!["find", "-H", c.path.as_str(), "-mindepth", "1"];
    argv.extend(test);
    argv.extend(["-print", "-quit"]);
    let result = ops.exec(&ExecArgs::argv(argv))?;
    if let Some(first) = result.stdout.lines().next() {
        return Ok(Some(first.to_owned()));
    }
    if result.success() {
        return Ok(None);
    }
    // Typically an owner or group the target does not know yet (created later in the
    // same run): `chown -R` at apply time tells whether it exists by then.
    let why = result.stderr.lines().next().unwrap_or("find failed");
    Ok(Some(format!("could not check: {why}")))
}

#[cfg(test)]
mod tests {
    use froyo_provider_sdk::ProviderError;
    use serde_json::{Value, json};

    use super::*;
    use crate::config::{DIRECTORY, FILE, sha256_hex};

    /// A runner that answers from fixed entries and records every call.
    #[derive(Default)]
    struct Fake {
        entries: Vec<StatEntry>,
        files: Vec<(String, String)>,
        find_stdout: String,
        calls: Vec<String>,
    }

    impl Ops for Fake {
        fn stat(&mut self, paths: &[String]) -> Result<Vec<StatEntry>> {
            self.calls.push(format!("file.stat {}", paths.join(" ")));
            Ok(paths
                .iter()
                .map(|p| {
                    self.entries
                        .iter()
                        .find(|e| &e.path == p)
                        .cloned()
                        .unwrap_or(StatEntry {
                            path: p.clone(),
                            ..Default::default()
                        })
                })
                .collect())
        }

        fn read(&mut self, args: &ReadArgs) -> Result<ReadResult> {
            self.calls.push(format!("file.read {}", args.path));
            let (_, content) = self
                .files
                .iter()
                .find(|(p, _)| *p == args.path)
                .ok_or_else(|| ProviderError::permanent("no such file"))?;
            Ok(ReadResult {
                content: Some(content.clone()),
                content_b64: None,
                size: content.len() as u64,
                sha256: sha256_hex(content.as_bytes()),
            })
        }

        fn exec(&mut self, args: &ExecArgs) -> Result<ExecResult> {
            self.calls.push(format!(
                "exec {}",
                args.argv.as_deref().unwrap_or_default().join(" ")
            ));
            Ok(ExecResult {
                rc: Some(0),
                signal: None,
                stdout: self.find_stdout.clone(),
                stderr: String::new(),
                truncated: false,
                duration_ms: 1,
            })
        }
    }

    fn file(path: &str, content: &str) -> StatEntry {
        StatEntry {
            path: path.into(),
            exists: true,
            kind: Some(FileKind::File),
            size: Some(content.len() as u64),
            mode: Some("0644".into()),
            owner: Some("root".into()),
            group: Some("root".into()),
            sha256: Some(sha256_hex(content.as_bytes())),
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

    #[test]
    fn one_stat_for_the_batch_and_reads_only_differing_files() {
        let mut fake = Fake {
            entries: vec![
                file("/same", "a\n"),
                file("/differs", "old\n"),
                file("/secret", "s1\n"),
            ],
            files: vec![("/differs".into(), "old\n".into())],
            ..Default::default()
        };
        let sensitive = json!({"$content": {"source": "template", "path": "t", "sha256": "x", "text": "s2\n", "sensitive": true}});
        let actuals = read_with(
            &mut fake,
            vec![
                resource("same", FILE, json!({"path": "/same", "content": "a\n"})),
                resource(
                    "differs",
                    FILE,
                    json!({"path": "/differs", "content": "new\n"}),
                ),
                resource(
                    "secret",
                    FILE,
                    json!({"path": "/secret", "content": sensitive}),
                ),
                resource("unmanaged", FILE, json!({"path": "/differs"})),
                resource("missing", FILE, json!({"path": "/missing", "content": "x"})),
            ],
        )
        .unwrap();
        assert_eq!(
            fake.calls,
            [
                "file.stat /same /differs /secret /differs /missing",
                "file.read /differs"
            ]
        );
        assert_eq!(state(&actuals[0])["content"], Value::Null);
        assert_eq!(state(&actuals[1])["content"], "old\n");
        assert_eq!(state(&actuals[1])["mode"], "0644");
        assert_eq!(state(&actuals[2])["sensitive"], true);
        assert_eq!(state(&actuals[2]).get("content"), None);
        assert_eq!(state(&actuals[3]).get("content"), None);
        assert_eq!(actuals[4].state, "null");
        assert_eq!(actuals[4].id, "missing");
    }

    #[test]
    fn a_directory_through_a_symlink_and_recursive_ownership() {
        let mut fake = Fake {
            entries: vec![
                StatEntry {
                    path: "/var/run".into(),
                    exists: true,
                    kind: Some(FileKind::Symlink),
                    link_target: Some("/run".into()),
                    ..Default::default()
                },
                StatEntry {
                    path: "/var/run/.".into(),
                    exists: true,
                    kind: Some(FileKind::Dir),
                    mode: Some("0755".into()),
                    ..Default::default()
                },
            ],
            find_stdout: "/var/run/x.pid\n".into(),
            ..Default::default()
        };
        let actuals = read_with(
            &mut fake,
            vec![resource(
                "run",
                DIRECTORY,
                json!({"path": "/var/run", "owner": "root", "recurse": true}),
            )],
        )
        .unwrap();
        assert_eq!(
            fake.calls,
            [
                "file.stat /var/run",
                "file.stat /var/run/.",
                "exec find -H /var/run -mindepth 1 ! -user root -print -quit"
            ]
        );
        let s = state(&actuals[0]);
        assert_eq!(
            (s["kind"].as_str(), s["link_target"].as_str()),
            (Some("dir"), Some("/run"))
        );
        assert_eq!(s["inner_mismatch"], "/var/run/x.pid");
    }
}
