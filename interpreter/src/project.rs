//! The project a playbook belongs to: its root (the nearest directory with `froyo.toml`,
//! else the playbook's own directory), `froyo.toml` settings, and the path rules that keep
//! evaluation inside the root.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;

/// `froyo.toml`. Every key is optional; unknown keys are refused so typos surface.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub project: ProjectSection,
    #[serde(default)]
    pub defaults: DefaultsSection,
    /// Extra provider directories (`[[providers]]`), each pinned by sha256.
    #[serde(default)]
    pub providers: Vec<ExtraProvider>,
    /// Policy settings (read by the policy engine).
    #[serde(default)]
    pub policy: Option<toml::Value>,
    /// Where the state lives (`crate::state::location`).
    #[serde(default)]
    pub state: StateSection,
    /// The work queue of the cluster profile (`apply --queue`, `froyo worker`).
    #[serde(default)]
    pub queue: QueueSection,
    /// Time limits of target sessions.
    #[serde(default)]
    pub transport: TransportSection,
}

/// `[transport]`: time limits of reaching targets, in seconds (each at least 1). A host
/// that breaks one of them fails with `E-TARGET`; the other hosts go on.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportSection {
    /// From the TCP connection to a logged-in SSH session (default 10).
    pub connect_timeout: Option<u64>,
    /// From the login to the runner's `ready` frame (default 30).
    pub start_timeout: Option<u64>,
    /// The longest one runner op may take, such as a command (default 900).
    pub op_timeout: Option<u64>,
    /// Seconds between SSH keepalives (default 15).
    pub keepalive_interval: Option<u64>,
    /// Keepalives left unanswered before the connection counts as lost (default 3): a
    /// silent network ends the session after about `keepalive_interval` ×
    /// (`keepalive_max` + 1) seconds.
    pub keepalive_max: Option<u64>,
}

/// `[queue]`: where `apply --queue` publishes and `froyo worker` takes work items.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSection {
    /// `nats://HOST:PORT` of a `nats-server -js` (`--queue` wins).
    pub url: Option<String>,
    /// How long a worker may hold an item without a heartbeat before it is given to
    /// another worker (`30s`; read when the queue's consumer is first created).
    pub ack_wait: Option<String>,
    /// Deliveries of one item before its host counts as failed (default 5).
    pub max_deliver: Option<i64>,
}

/// `[state]`: without `url` the state is `.froyo/state.db`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (`FROYO_STATE_URL` wins).
    pub url: Option<String>,
    /// The project's name on the server (default: `[project] name`, else the root
    /// directory's name); two projects on one database must differ here.
    pub namespace: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSection {
    pub name: Option<String>,
    /// The stdlib major version the project was written for.
    pub stdlib: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsSection {
    pub parallelism: Option<u32>,
    pub become_method: Option<String>,
    /// The default `--on` selector.
    pub on: Option<String>,
    /// Seconds facts stay cached in the state between runs (0: gather every run).
    pub facts_ttl: Option<u64>,
    /// The most Starlark ticks (function calls and loop iterations) one evaluation
    /// (the top level, a `load()`ed module, a play body) may take; default 1,000,000,000.
    pub eval_max_ticks: Option<u64>,
    /// The most heap, in MiB, one evaluation may hold; default 2048.
    pub eval_max_heap_mb: Option<u64>,
}

/// `[[providers]] path = "…" sha256 = "…"`: a provider directory beside the built-in ones
/// (`manifest.toml`, `schema.cue`, `provider.wasm`), trusted only with exactly this pin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraProvider {
    /// Relative to the project root, or absolute.
    pub path: String,
    /// [`provider_pin`] of the directory's three files.
    pub sha256: String,
}

/// An extra provider whose files matched their pin.
#[derive(Debug, Clone)]
pub struct ProviderFiles {
    pub dir: PathBuf,
    /// The pin the files matched.
    pub pin: String,
    pub manifest: String,
    pub schema: String,
    pub wasm: Vec<u8>,
}

/// The pin of a provider directory: one sha256 over the digests of `manifest.toml`,
/// `schema.cue` and `provider.wasm`, so that widening the manifest's capabilities or
/// editing the schema breaks the pin as surely as swapping the code does.
pub fn provider_pin(manifest: &[u8], schema: &[u8], wasm: &[u8]) -> String {
    use crate::util::sha256_hex;
    sha256_hex(
        format!(
            "manifest.toml {}\nschema.cue {}\nprovider.wasm {}\n",
            sha256_hex(manifest),
            sha256_hex(schema),
            sha256_hex(wasm)
        )
        .as_bytes(),
    )
}

/// A resolved project.
#[derive(Debug, Clone)]
pub struct Project {
    /// Canonical absolute root.
    pub root: PathBuf,
    pub settings: Settings,
}

impl Settings {
    /// Parses the text of `froyo.toml` (`display` names it in errors).
    pub fn parse(display: &Path, text: &str) -> Result<Settings, Error> {
        toml::from_str(text).map_err(|e| Error::toml(display, text, &e))
    }
}

impl Project {
    /// Finds the project of `playbook` (a `.star` or `.cue` file, or a directory of `.cue` files).
    pub fn discover(playbook: &Path) -> Result<Project, Error> {
        let abs = std::fs::canonicalize(playbook).map_err(|e| Error::Io {
            path: playbook.to_owned(),
            source: e,
        })?;
        // A directory of `.cue` files (one CUE package) is its own starting point.
        if abs.is_dir() {
            return Project::discover_dir(&abs);
        }
        Project::discover_dir(abs.parent().unwrap_or(Path::new("/")))
    }

    /// The project of a directory (the nearest ancestor with `froyo.toml`, else `dir`).
    pub fn discover_dir(dir: &Path) -> Result<Project, Error> {
        let abs = std::fs::canonicalize(dir).map_err(|e| Error::Io {
            path: dir.to_owned(),
            source: e,
        })?;
        let root = abs
            .ancestors()
            .find(|d| d.join("froyo.toml").is_file())
            .map(Path::to_path_buf)
            .unwrap_or(abs);
        Project::at(root)
    }

    /// The project rooted at `root`.
    pub fn at(root: PathBuf) -> Result<Project, Error> {
        let root = std::fs::canonicalize(&root).map_err(|e| Error::Io {
            path: root.clone(),
            source: e,
        })?;
        let path = root.join("froyo.toml");
        let settings = if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::Io {
                path: path.clone(),
                source: e,
            })?;
            Settings::parse(&display_path(&root, &path), &text)?
        } else {
            Settings::default()
        };
        Ok(Project { root, settings })
    }

    /// Reads every `[[providers]]` directory and checks it against its pin. Nothing of a
    /// provider that does not match is used.
    pub fn extra_providers(&self) -> Result<Vec<ProviderFiles>, Error> {
        self.settings
            .providers
            .iter()
            .map(|p| self.read_provider(p))
            .collect()
    }

    fn read_provider(&self, p: &ExtraProvider) -> Result<ProviderFiles, Error> {
        let dir = self.root.join(&p.path);
        let fail = |message: String, help: &str| Error::Provider {
            path: PathBuf::from(&p.path),
            message,
            help: help.to_owned(),
        };
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| {
                fail(
                    format!("cannot read {name}: {e}"),
                    "a provider directory holds manifest.toml, schema.cue and provider.wasm",
                )
            })
        };
        let (manifest, schema, wasm) = (
            read("manifest.toml")?,
            read("schema.cue")?,
            read("provider.wasm")?,
        );
        let pin = provider_pin(&manifest, &schema, &wasm);
        if !pin.eq_ignore_ascii_case(p.sha256.trim()) {
            return Err(fail(
                format!(
                    "its files have the pin {pin}, but froyo.toml says {}",
                    p.sha256
                ),
                &format!(
                    "if you trust this provider as it is now, set `sha256 = \"{pin}\"` in froyo.toml"
                ),
            ));
        }
        let text = |bytes: Vec<u8>, name: &str| {
            String::from_utf8(bytes)
                .map_err(|_| fail(format!("{name} is not UTF-8"), "fix the file"))
        };
        Ok(ProviderFiles {
            manifest: text(manifest, "manifest.toml")?,
            schema: text(schema, "schema.cue")?,
            wasm,
            dir,
            pin,
        })
    }

    /// Resolves `rel` against `base_dir` and checks that the result stays inside the root.
    /// Symlinks are resolved, so a link pointing outside is refused too.
    pub fn resolve_inside(&self, base_dir: &Path, rel: &str) -> Result<PathBuf, String> {
        if rel.is_empty() {
            return Err("empty path".into());
        }
        if rel.contains('\0') {
            return Err(format!(
                "path `{}` contains a NUL byte",
                rel.escape_default()
            ));
        }
        let joined = if Path::new(rel).is_absolute() {
            PathBuf::from(rel)
        } else {
            base_dir.join(rel)
        };
        let lexical = normalize(&joined);
        if !lexical.starts_with(&self.root) {
            return Err(format!("`{rel}` resolves outside the project root"));
        }
        let real = std::fs::canonicalize(&lexical).map_err(|e| format!("`{rel}`: {e}"))?;
        if !real.starts_with(&self.root) {
            return Err(format!(
                "`{rel}` is a symlink that leads outside the project root"
            ));
        }
        Ok(real)
    }

    /// How a file under the root is named in diagnostics: relative to the current directory
    /// when possible (so `file:line` is clickable), else relative to the root.
    pub fn display_name(&self, path: &Path) -> String {
        let cwd = std::env::current_dir()
            .ok()
            .and_then(|c| std::fs::canonicalize(c).ok());
        if let Some(cwd) = cwd
            && let Ok(rel) = path.strip_prefix(&cwd)
        {
            return rel.display().to_string();
        }
        path.strip_prefix(&self.root)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| path.display().to_string())
    }
}

/// `path` as shown to the user: relative to the current directory when under it.
pub fn display_path(root: &Path, path: &Path) -> PathBuf {
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|c| std::fs::canonicalize(c).ok());
    match cwd.as_ref().and_then(|c| path.strip_prefix(c).ok()) {
        Some(rel) => rel.to_path_buf(),
        None => path
            .strip_prefix(root.parent().unwrap_or(root))
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| path.to_path_buf()),
    }
}

/// Removes `.` and resolves `..` lexically.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same digest as the shell recipe in docs/providers.md gives for these files.
    #[test]
    fn provider_pin_matches_the_documented_recipe() {
        assert_eq!(
            provider_pin(b"a", b"b", b"c"),
            "0554760026b3c5733b3d2dc1bd8b4093ecbb9ec1034c9695df32772ac4d51362"
        );
    }

    #[test]
    fn paths_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.txt"), "a").unwrap();
        let p = Project::at(dir.path().to_owned()).unwrap();
        let sub = p.root.join("sub");
        assert!(p.resolve_inside(&sub, "a.txt").is_ok());
        assert!(p.resolve_inside(&sub, "../sub/a.txt").is_ok());
        assert!(
            p.resolve_inside(&sub, "../../etc/passwd")
                .unwrap_err()
                .contains("outside the project root")
        );
        assert!(
            p.resolve_inside(&sub, "/etc/passwd")
                .unwrap_err()
                .contains("outside")
        );
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("sub/link")).unwrap();
        assert!(
            p.resolve_inside(&sub, "link")
                .unwrap_err()
                .contains("outside the project root")
        );
        assert!(p.resolve_inside(&sub, "missing.txt").is_err());
    }
}
