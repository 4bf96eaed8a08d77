//! Keystone's TOML formats, unchanged: the deployment plan (`[[components]] name,
//! recipe`) and the recipe (`[metadata]`, `[[dependencies]]`, `[[artifacts]]`,
//! `[lifecycle.*]`, `[resources]`). Parsing is strict where Keystone is lenient: a key
//! the format does not define is an error at its file and line (Keystone ignores it, so
//! `restart_polciy = "never"` silently means `always`), and so is a bad value.
//!
//! Parts of Keystone's format this agent does not implement (containers, datasets,
//! reload hooks, privilege dropping) parse, and are refused with `E-AGENT-UNSUPPORTED`
//! when a recipe uses them; `[artifacts.delta]` is accepted and ignored, which Keystone
//! documents as always safe (the whole artifact is downloaded instead).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{AgentError, Result};

/// A deployment plan file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    #[serde(default)]
    pub components: Vec<PlanComponent>,
}

/// One `[[components]]` entry of a plan.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanComponent {
    /// How the API, the CLI and the logs name the component.
    pub name: Spanned<String>,
    /// The recipe file, relative to the agent's working directory (as Keystone
    /// resolves it), else to the plan's directory.
    pub recipe: Spanned<String>,
    /// Per-component override, merged over the recipe's `[lifecycle.run.exec.env]`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Per-component override replacing the recipe's `args`.
    #[serde(default)]
    pub args: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub metadata: Metadata,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    #[serde(default)]
    pub datasets: Option<Spanned<toml::Value>>,
    pub lifecycle: Lifecycle,
    #[serde(default)]
    pub resources: Option<Resources>,
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: Spanned<String>,
    pub version: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub publisher: Option<String>,
    /// Reserved by Keystone.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub uri: Spanned<String>,
    #[serde(default)]
    pub sha256: Option<Spanned<String>>,
    /// Bytes; when given, a download of another size is refused.
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub unpack: bool,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub github_token: Option<String>,
    #[serde(default)]
    pub sig_uri: Option<Spanned<String>>,
    #[serde(default)]
    pub cert_uri: Option<Spanned<String>>,
    /// Keystone's patch-based update: optional and always falling back to the whole
    /// download, which is what this agent does.
    #[serde(default)]
    pub delta: Option<toml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    #[serde(default)]
    pub install: Option<Install>,
    pub run: Run,
    #[serde(default)]
    pub shutdown: Option<Shutdown>,
    #[serde(default)]
    pub reload: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Install {
    #[serde(default)]
    pub script: Option<String>,
    #[serde(default)]
    pub require_privilege: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shutdown {
    #[serde(default)]
    pub script: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Run {
    #[serde(default, rename = "type")]
    pub kind: Option<Spanned<String>>,
    #[serde(default)]
    pub exec: Option<Exec>,
    #[serde(default)]
    pub container: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub security: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default)]
    pub max_retries: Option<u32>,
    #[serde(default)]
    pub health: Option<Health>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    pub command: Spanned<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub check: Spanned<String>,
    #[serde(default)]
    pub interval: Option<Spanned<String>>,
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub failure_threshold: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// `RLIMIT_NOFILE` of the component's process.
    #[serde(default)]
    pub open_files: Option<u64>,
    /// `memory.max` of the component's cgroup (`"256M"`), where cgroup v2 is writable.
    #[serde(default)]
    pub memory_limit: Option<Spanned<String>>,
    /// Microseconds of CPU per 100 ms period (`cpu.max`), where cgroup v2 is writable.
    #[serde(default)]
    pub cpu_quota: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DepType {
    #[default]
    Hard,
    Soft,
    Ordering,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    pub name: Spanned<String>,
    #[serde(default)]
    pub version: Option<Spanned<String>>,
    #[serde(default, rename = "type")]
    pub kind: Option<DepType>,
}

/// A health probe, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Probe {
    /// `http://…` or `https://…`: healthy on a 2xx or 3xx answer.
    Http(String),
    /// `tcp://host:port`: healthy when a connection opens.
    Tcp(String),
    /// `cmd:…`: a shell command in the work dir, healthy on exit 0.
    Cmd(String),
}

/// A recipe file, parsed and checked, with its text for positions.
#[derive(Debug, Clone)]
pub struct LoadedRecipe {
    pub path: PathBuf,
    pub text: String,
    pub recipe: Recipe,
    pub version: semver::Version,
    pub probe: Option<(Probe, ProbeTiming)>,
}

/// How often and how patiently a probe runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeTiming {
    pub interval: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
}

impl Default for ProbeTiming {
    fn default() -> Self {
        ProbeTiming {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            failure_threshold: 3,
        }
    }
}

/// A position in a file for errors.
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    pub fn error(&self, span: Range<usize>, message: impl Into<String>, help: &str) -> AgentError {
        let (line, column) = self.line_col(span.start);
        AgentError::Format {
            file: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
            help: help.to_owned(),
        }
    }

    pub fn unsupported(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        help: &str,
    ) -> AgentError {
        let (line, column) = self.line_col(span.start);
        AgentError::Unsupported {
            file: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
            help: help.to_owned(),
        }
    }

    /// `file:line` of a span, for messages that point at a second place.
    pub fn at(&self, span: Range<usize>) -> String {
        let (line, _) = self.line_col(span.start);
        format!("{}:{line}", self.path.display())
    }

    /// A TOML or serde error as a positioned `E-AGENT-FORMAT`, with a "did you mean"
    /// for a misspelled key.
    fn toml_error(&self, e: &toml::de::Error, what: &str) -> AgentError {
        let message = e.message().trim().to_owned();
        let help = unknown_key_hint(&message).unwrap_or_else(|| {
            format!("see docs/agent.md for the {what} format (Keystone's, unchanged)")
        });
        let span = e.span().unwrap_or(0..0);
        self.error(span, message, &help)
    }
}

/// For "unknown field `x`, expected one of `a`, `b`": the closest key, and why this is
/// an error here.
fn unknown_key_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| !s.is_empty())
        .collect();
    let best = expected
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let why = "Keystone ignores unknown keys (a typo then silently falls back to a default); froyo agent refuses them";
    Some(match best {
        Some((_, k)) => format!("did you mean `{k}`? {why}"),
        None if expected.is_empty() => why.to_owned(),
        None => format!("expected one of {}; {why}", expected.join(", ")),
    })
}

/// Parses a plan file.
pub fn parse_plan(path: &Path, text: &str) -> Result<PlanFile> {
    let src = Source { path, text };
    let plan: PlanFile = toml::from_str(text).map_err(|e| src.toml_error(&e, "plan"))?;
    let mut seen: BTreeMap<&str, Range<usize>> = BTreeMap::new();
    for c in &plan.components {
        check_name(&src, &c.name, "component name")?;
        if let Some(first) = seen.insert(c.name.get_ref().as_str(), c.name.span()) {
            return Err(src.error(
                c.name.span(),
                format!("component `{}` is listed twice", c.name.get_ref()),
                &format!(
                    "the first is at {}; component names are unique in a plan",
                    src.at(first)
                ),
            ));
        }
        if c.recipe.get_ref().trim().is_empty() {
            return Err(src.error(
                c.recipe.span(),
                "`recipe` is empty",
                "give the recipe file's path",
            ));
        }
    }
    Ok(plan)
}

/// A name used as a path segment (component and recipe names, versions).
fn check_name(src: &Source, name: &Spanned<String>, what: &str) -> Result<()> {
    let n = name.get_ref();
    let ok = !n.is_empty()
        && n.len() <= 128
        && n != "."
        && n != ".."
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(src.error(
            name.span(),
            format!("{what} `{n}` is not a safe name"),
            "use letters, digits, `.`, `_`, `-` and `+` (it names directories under the data dir)",
        ))
    }
}

/// Parses and checks a recipe file.
pub fn parse_recipe(path: &Path, text: &str) -> Result<LoadedRecipe> {
    let src = Source { path, text };
    let recipe: Recipe = toml::from_str(text).map_err(|e| src.toml_error(&e, "recipe"))?;
    check_name(&src, &recipe.metadata.name, "recipe name")?;
    check_name(&src, &recipe.metadata.version, "version")?;
    let version = semver::Version::parse(recipe.metadata.version.get_ref()).map_err(|e| {
        src.error(
            recipe.metadata.version.span(),
            format!(
                "version `{}` is not semver: {e}",
                recipe.metadata.version.get_ref()
            ),
            "write a full semantic version such as \"1.4.0\"",
        )
    })?;
    let unsupported_help =
        "froyo agent runs native processes; see docs/agent.md for what it supports";
    if let Some(d) = &recipe.datasets {
        return Err(src.unsupported(
            d.span(),
            "`[[datasets]]` are not supported yet",
            unsupported_help,
        ));
    }
    if let Some(r) = &recipe.lifecycle.reload {
        return Err(src.unsupported(
            r.span(),
            "`[lifecycle.reload]` is not supported yet",
            unsupported_help,
        ));
    }
    let run = &recipe.lifecycle.run;
    if let Some(kind) = &run.kind
        && kind.get_ref() != "process"
    {
        return Err(if kind.get_ref() == "container" {
            src.unsupported(
                kind.span(),
                "container components are not supported",
                unsupported_help,
            )
        } else {
            src.error(
                kind.span(),
                format!("unknown run type `{}`", kind.get_ref()),
                "`type` is \"process\" (the default) or \"container\"",
            )
        });
    }
    if let Some(c) = &run.container {
        return Err(src.unsupported(
            c.span(),
            "container components are not supported",
            unsupported_help,
        ));
    }
    if let Some(s) = &run.security {
        return Err(src.unsupported(
            s.span(),
            "`[lifecycle.run.security]` is not supported yet, and Keystone's rule is that a declared restriction is enforced or the component does not start",
            "remove the block, or run the agent as the user the component should run as",
        ));
    }
    let Some(exec) = &run.exec else {
        return Err(src.error(
            0..0,
            format!(
                "recipe `{}` has no `[lifecycle.run.exec]`",
                recipe.metadata.name.get_ref()
            ),
            "add `[lifecycle.run.exec]` with `command`",
        ));
    };
    if exec.command.get_ref().trim().is_empty() {
        return Err(src.error(
            exec.command.span(),
            "`command` is empty",
            "name the program to run",
        ));
    }
    for key in exec.env.keys() {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(src.error(
                exec.command.span(),
                format!("invalid environment variable name `{key}`"),
                "names may not be empty or contain `=`",
            ));
        }
    }
    for a in &recipe.artifacts {
        let uri = a.uri.get_ref();
        if !(uri.starts_with("http://")
            || uri.starts_with("https://")
            || uri.starts_with("file://"))
        {
            return Err(src.error(
                a.uri.span(),
                format!("artifact uri `{uri}` is not http://, https:// or file://"),
                "give a URL the agent can download",
            ));
        }
        if uri.starts_with("https://") {
            return Err(src.unsupported(
                a.uri.span(),
                "https:// downloads are not supported yet (the agent links no TLS stack)",
                "serve it over http:// on a trusted network (the sha256, and a signature under `--trust`, protect the bytes) or as file://",
            ));
        }
        if artifact_file_name(uri).is_none() {
            return Err(src.error(
                a.uri.span(),
                format!("artifact uri `{uri}` does not end in a file name"),
                "the last path segment names the file under artifacts/<name>/<version>/",
            ));
        }
        match &a.sha256 {
            None => {
                return Err(src.error(
                    a.uri.span(),
                    "artifact without `sha256`",
                    "every artifact is verified: add `sha256 = \"<64 hex digits>\"` (`sha256sum FILE`)",
                ));
            }
            Some(s) => {
                let h = s.get_ref();
                if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(src.error(
                        s.span(),
                        format!("`sha256` `{h}` is not 64 hex digits"),
                        "`sha256sum FILE` prints it",
                    ));
                }
            }
        }
        if a.unpack {
            return Err(src.unsupported(
                a.uri.span(),
                "`unpack = true` is not supported yet",
                "ship the file as is and unpack it in `[lifecycle.install] script`",
            ));
        }
        if let Some(cert) = &a.cert_uri {
            return Err(src.unsupported(
                cert.span(),
                "X.509 signatures (`cert_uri`, Keystone's ECDSA/RSA/Ed25519 over the sha256 with a certificate chain) are not supported yet",
                "sign the artifact with minisign (`minisign -S -m FILE`), point `sig_uri` at the `.minisig`, drop `cert_uri`, and start the agent with `--trust` holding the public key",
            ));
        }
        if let Some(sig) = &a.sig_uri {
            let u = sig.get_ref();
            if !(u.starts_with("http://") || u.starts_with("https://") || u.starts_with("file://"))
            {
                return Err(src.error(
                    sig.span(),
                    format!("`sig_uri` `{u}` is not http://, https:// or file://"),
                    "give the URL of the artifact's detached minisign signature (`FILE.minisig`)",
                ));
            }
            if u.starts_with("https://") {
                return Err(src.unsupported(
                    sig.span(),
                    "https:// downloads are not supported yet (the agent links no TLS stack)",
                    "serve it over http:// on a trusted network (the sha256, and a signature under `--trust`, protect the bytes) or as file://",
                ));
            }
        }
    }
    for d in &recipe.dependencies {
        check_name(&src, &d.name, "dependency name")?;
        if let Some(v) = &d.version {
            Constraint::parse(v.get_ref()).map_err(|e| {
                src.error(
                    v.span(),
                    format!("version constraint `{}`: {e}", v.get_ref()),
                    "write a semver constraint such as \">=2.0.0\", \"^1.2\", \"~1.4.0\" or an exact \"1.0.0\"",
                )
            })?;
        }
    }
    if let Some(r) = &recipe.resources
        && let Some(m) = &r.memory_limit
    {
        if parse_bytes(m.get_ref()).is_none() {
            return Err(src.error(
                m.span(),
                format!("`memory_limit` `{}` is not a size", m.get_ref()),
                "write bytes with an optional K, M or G suffix, such as \"256M\"",
            ));
        }
        return Err(src.unsupported(
            m.span(),
            "`memory_limit` (cgroup v2 `memory.max`) is not enforced yet",
            "remove it for now: a declared limit is enforced or the component does not start",
        ));
    }
    if let Some(r) = &recipe.resources
        && r.cpu_quota.is_some()
    {
        let at = text
            .find("cpu_quota")
            .map_or(0..0, |i| i..i + "cpu_quota".len());
        return Err(src.unsupported(
            at,
            "`cpu_quota` (cgroup v2 `cpu.max`) is not enforced yet",
            "remove it for now: a declared limit is enforced or the component does not start",
        ));
    }
    let probe = match &run.health {
        None => None,
        Some(h) => Some(parse_probe(&src, h)?),
    };
    Ok(LoadedRecipe {
        path: path.to_path_buf(),
        text: text.to_owned(),
        recipe,
        version,
        probe,
    })
}

fn parse_probe(src: &Source, h: &Health) -> Result<(Probe, ProbeTiming)> {
    let check = h.check.get_ref().trim();
    let probe = if check.starts_with("https://") {
        return Err(src.unsupported(
            h.check.span(),
            "https:// health checks are not supported yet (the agent links no TLS stack)",
            "probe the plain-HTTP or TCP port on loopback (`http://127.0.0.1:PORT/…`, `tcp://127.0.0.1:PORT`), or use `cmd:`",
        ));
    } else if check.starts_with("http://") {
        Probe::Http(check.to_owned())
    } else if let Some(addr) = check.strip_prefix("tcp://") {
        if !addr.contains(':') {
            return Err(src.error(
                h.check.span(),
                format!("`{check}` has no port"),
                "write tcp://host:port",
            ));
        }
        Probe::Tcp(addr.trim_end_matches('/').to_owned())
    } else if let Some(cmd) = check.strip_prefix("cmd:") {
        if cmd.trim().is_empty() {
            return Err(src.error(
                h.check.span(),
                "`cmd:` has no command",
                "write cmd:<shell command>",
            ));
        }
        Probe::Cmd(cmd.trim().to_owned())
    } else {
        return Err(src.error(
            h.check.span(),
            format!("unknown health check `{check}`"),
            "a check is http://…, https://…, tcp://host:port or cmd:<shell command>",
        ));
    };
    let mut timing = ProbeTiming::default();
    let dur = |v: &Spanned<String>, what: &str| {
        crate::duration::parse(v.get_ref())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                src.error(
                    v.span(),
                    format!("`{what}` `{}` is not a duration", v.get_ref()),
                    "write a duration string such as \"10s\", \"500ms\" or \"1m\"",
                )
            })
    };
    if let Some(i) = &h.interval {
        timing.interval = dur(i, "interval")?;
    }
    if let Some(t) = &h.timeout {
        timing.timeout = dur(t, "timeout")?;
    }
    if let Some(f) = h.failure_threshold
        && f > 0
    {
        timing.failure_threshold = f;
    }
    Ok((probe, timing))
}

/// The file name an artifact is stored under: the URI's last path segment.
pub fn artifact_file_name(uri: &str) -> Option<String> {
    let path = uri.split(['?', '#']).next()?;
    let after_scheme = path.split_once("://").map_or(path, |(_, r)| r);
    let (_, p) = after_scheme.split_once('/')?;
    let name = p.rsplit('/').next()?;
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+%".contains(c));
    ok.then(|| name.to_owned())
}

/// `256M`, `1G`, `4096`: bytes.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last()? {
        (i, 'K' | 'k') => (&t[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&t[..i], 1 << 20),
        (i, 'G' | 'g') => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// A dependency's version constraint: semver requirements joined by `||`, a bare
/// version meaning exactly that version (Keystone's reading, not Cargo's caret).
#[derive(Debug, Clone)]
pub struct Constraint(Vec<semver::VersionReq>);

impl Constraint {
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut alts = Vec::new();
        for part in text.split("||") {
            let p = part.trim();
            if p.is_empty() {
                return Err("empty alternative".into());
            }
            let req = if let Ok(v) = semver::Version::parse(p.trim_start_matches('v')) {
                semver::VersionReq::parse(&format!("={v}")).map_err(|e| e.to_string())?
            } else {
                // Masterminds/semver (Keystone's Go library) also separates terms with
                // spaces: `>= 1.2, < 3` and `>=1.2 <3` mean the same.
                let joined = normalize_terms(p);
                semver::VersionReq::parse(&joined).map_err(|e| e.to_string())?
            };
            alts.push(req);
        }
        Ok(Constraint(alts))
    }

    pub fn matches(&self, v: &semver::Version) -> bool {
        self.0.iter().any(|r| r.matches(v))
    }
}

/// `>= 1.2 < 3` → `>=1.2, <3`.
fn normalize_terms(text: &str) -> String {
    let mut terms: Vec<String> = Vec::new();
    for tok in text.split([',', ' ']).filter(|t| !t.is_empty()) {
        match terms.last_mut() {
            // An operator standing alone (`>= 1.2`) takes the version after it.
            Some(last) if last.chars().all(|c| "<>=~^".contains(c)) => last.push_str(tok),
            _ => terms.push(tok.to_owned()),
        }
    }
    terms.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECIPE: &str = r#"[metadata]
name = "com.demo.consumer"
version = "1.0.0"
description = "Demo data-consumer v1"
publisher = "keystone-demo"

[[dependencies]]
name = "com.demo.config"
version = "1.0.0"
type = "hard"

[[artifacts]]
uri = "http://localhost:9000/data-consumer-v1"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

[lifecycle.install]
script = """
cp ../../../artifacts/com.demo.consumer/1.0.0/data-consumer-v1 ./app
chmod +x ./app
"""

[lifecycle.run]
restart_policy = "on-failure"
max_retries = 3

[lifecycle.run.exec]
command = "./app"

[lifecycle.run.exec.env]
CONSUMER_ADDR = ":7003"

[lifecycle.run.health]
check = "http://localhost:7003/healthz"
interval = "3s"
timeout = "2s"
failure_threshold = 3
"#;

    #[test]
    fn keystone_demo_recipe_parses() {
        let r = parse_recipe(Path::new("r.toml"), RECIPE).unwrap();
        assert_eq!(r.recipe.metadata.name.get_ref(), "com.demo.consumer");
        assert_eq!(
            r.recipe.lifecycle.run.restart_policy,
            Some(RestartPolicy::OnFailure)
        );
        let (probe, timing) = r.probe.unwrap();
        assert_eq!(probe, Probe::Http("http://localhost:7003/healthz".into()));
        assert_eq!(timing.interval, Duration::from_secs(3));
    }

    #[test]
    fn unknown_key_is_an_error_at_its_line() {
        let text = RECIPE.replace(
            "restart_policy = \"on-failure\"",
            "restart_polciy = \"never\"",
        );
        let e = parse_recipe(Path::new("r.toml"), &text).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("r.toml:23:1: unknown field `restart_polciy`"),
            "{msg}"
        );
        assert_eq!(e.code(), "E-AGENT-FORMAT");
        assert!(
            e.hint().unwrap().contains("did you mean `restart_policy`?"),
            "{:?}",
            e.hint()
        );
    }

    #[test]
    fn bad_values_are_errors_at_their_line() {
        let text = RECIPE.replace("\"on-failure\"", "\"sometimes\"");
        let e = parse_recipe(Path::new("r.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("r.toml:23:"), "{e}");
        let text = RECIPE.replace("interval = \"3s\"", "interval = \"soon\"");
        let e = parse_recipe(Path::new("r.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("r.toml:34:12: `interval` `soon`"), "{e}");
    }

    #[test]
    fn plan_unknown_key_and_duplicates() {
        let e = parse_plan(
            Path::new("p.toml"),
            "[[components]]\nname = \"a\"\nrecipie = \"x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("p.toml:3:1: unknown field `recipie`"), "{e}");
        let e = parse_plan(
            Path::new("p.toml"),
            "[[components]]\nname = \"a\"\nrecipe = \"x\"\n[[components]]\nname = \"a\"\nrecipe = \"y\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("p.toml:5:8: component `a` is listed twice"),
            "{e}"
        );
    }

    #[test]
    fn constraints() {
        let v = |s| semver::Version::parse(s).unwrap();
        assert!(Constraint::parse("1.0.0").unwrap().matches(&v("1.0.0")));
        assert!(!Constraint::parse("1.0.0").unwrap().matches(&v("1.0.1")));
        assert!(Constraint::parse(">=2.0.0").unwrap().matches(&v("2.3.0")));
        assert!(
            Constraint::parse(">= 1.2, < 3.0.0 || >= 4.2.3")
                .unwrap()
                .matches(&v("4.3.0"))
        );
        assert!(
            !Constraint::parse(">= 1.2 < 3.0.0")
                .unwrap()
                .matches(&v("3.1.0"))
        );
        assert!(Constraint::parse("^1.2").unwrap().matches(&v("1.9.0")));
        assert!(Constraint::parse("nope").is_err());
    }

    #[test]
    fn artifact_names() {
        assert_eq!(
            artifact_file_name("http://h:1/a/b/app-v1").as_deref(),
            Some("app-v1")
        );
        assert_eq!(
            artifact_file_name("http://h/x.tar.gz?sig=1").as_deref(),
            Some("x.tar.gz")
        );
        assert_eq!(artifact_file_name("http://h/"), None);
        assert_eq!(artifact_file_name("http://h"), None);
        assert_eq!(artifact_file_name("http://h/.."), None);
    }
}
