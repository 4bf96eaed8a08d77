//! Policy as code: the bundled Rego policies and the project's own (`policies/*.rego`),
//! evaluated with regorus over the graph (and, at plan time, the planned operations).
//! Rules add `{rule, id, host?, msg}` objects to `data.froyo.deny` (`E-POLICY`) and
//! `data.froyo.warn` (`W-POLICY`); see `docs/policy.md` for the input document.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::diag::{Code, Diagnostic, Severity};
use crate::error::Error;
use crate::graph::Graph;
use crate::inventory::Inventory;
use crate::plan::Plan;
use crate::project::Project;

/// The version of the input document.
pub const INPUT_VERSION: u32 = 1;

/// Loaded before every policy: declares both sets, so a project with no rule of one kind
/// still evaluates, and indexes the resources by type (`froyo_by_type`, see the file).
const BASE: &str = include_str!("policy/base.rego");

/// `[policy]` in `froyo.toml`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    /// Rules whose messages are dropped.
    #[serde(default)]
    pub disable: Vec<String>,
    /// `false`: only the project's policies.
    pub bundled: Option<bool>,
    /// `data.froyo.config.<rule>`.
    #[serde(default)]
    pub config: toml::Table,
}

impl PolicySettings {
    pub fn of(project: &Project) -> Result<PolicySettings, Error> {
        match &project.settings.policy {
            None => Ok(PolicySettings::default()),
            Some(v) => v
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| Error::Policy {
                    path: project.root.join("froyo.toml"),
                    message: format!("[policy]: {}", e.message()),
                }),
        }
    }
}

/// One message of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: String,
    pub id: Option<String>,
    pub host: Option<String>,
    pub msg: String,
    pub deny: bool,
}

/// The loaded policies of a project.
#[derive(Debug)]
pub struct Policies {
    /// `(name shown in errors, source)`.
    modules: Vec<(String, String)>,
    settings: PolicySettings,
}

impl Policies {
    /// The bundled policies (unless `bundled` is false here or in `froyo.toml`) and the
    /// project's `policies/*.rego` (tests left out).
    pub fn for_project(project: &Project, bundled: bool) -> Result<Policies, Error> {
        let settings = PolicySettings::of(project)?;
        let mut modules = Vec::new();
        if bundled && settings.bundled != Some(false) {
            for (name, src) in crate::bundled::POLICIES {
                modules.push((format!("@bundled/{name}"), (*src).to_owned()));
            }
        }
        let dir = project.root.join("policies");
        if dir.is_dir() {
            for (path, src) in rego_files(&dir, false)? {
                modules.push((project.display_name(&path), src));
            }
        }
        Ok(Policies { modules, settings })
    }

    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    fn engine(&self) -> Result<regorus::Engine, Error> {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("@base.rego".into(), BASE.into())
            .map_err(|e| policy_error("@base.rego", e))?;
        for (name, src) in &self.modules {
            engine
                .add_policy(name.clone(), src.clone())
                .map_err(|e| policy_error(name, e))?;
        }
        let config = serde_json::to_string(
            &json!({"froyo": {"config": toml_to_json(&self.settings.config)}}),
        )
        .unwrap_or_default();
        engine
            .add_data_json(&config)
            .map_err(|e| policy_error("froyo.toml [policy.config]", e))?;
        Ok(engine)
    }

    /// Evaluates every rule over `input`; findings of disabled rules are dropped.
    #[tracing::instrument(name = "policy", skip_all, fields(modules = self.modules.len()))]
    pub fn evaluate(&self, input: &Json) -> Result<Vec<Finding>, Error> {
        let mut engine = self.engine()?;
        // Converted directly, not printed as JSON text and parsed again.
        let input = regorus::Value::deserialize(input).map_err(|e| policy_error("input", e))?;
        engine.set_input(input);
        // One query for both sets: the rules they share (the index by type, a rule's
        // hits) are evaluated once, where two `eval_rule` calls would start afresh.
        let query = "[data.froyo.deny, data.froyo.warn]";
        let results = engine
            .eval_query(query.into(), false)
            .map_err(|e| policy_error(query, e))?;
        let both = match results.result.first().and_then(|r| r.expressions.first()) {
            Some(e) => e
                .value
                .to_json_str()
                .map_err(|e| policy_error("result", e))?,
            None => "[]".into(),
        };
        let sets: Vec<Json> = serde_json::from_str(&both).unwrap_or_default();
        let mut out = Vec::new();
        for (set, deny) in sets.into_iter().zip([true, false]) {
            let Json::Array(items) = set else { continue };
            for item in items {
                let f = finding(&item, deny);
                if !self.settings.disable.contains(&f.rule) {
                    out.push(f);
                }
            }
        }
        out.sort_by(|a, b| (b.deny, &a.rule, &a.id, &a.msg).cmp(&(a.deny, &b.rule, &b.id, &b.msg)));
        Ok(out)
    }
}

fn finding(item: &Json, deny: bool) -> Finding {
    let s = |k: &str| item.get(k).and_then(Json::as_str).map(str::to_owned);
    match item {
        Json::String(msg) => Finding {
            rule: "policy".into(),
            id: None,
            host: None,
            msg: msg.clone(),
            deny,
        },
        _ => Finding {
            rule: s("rule").unwrap_or_else(|| "policy".into()),
            id: s("id"),
            host: s("host"),
            msg: s("msg").unwrap_or_else(|| item.to_string()),
            deny,
        },
    }
}

fn policy_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Policy {
        path: PathBuf::from(what),
        message: e.to_string(),
    }
}

/// `.rego` files of `dir` (recursively), sorted; `tests`: only `_test.rego`, else all
/// but those.
pub fn rego_files(dir: &Path, tests: bool) -> Result<Vec<(PathBuf, String)>, Error> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| Error::Io {
            path: d.clone(),
            source: e,
        })?;
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".rego") && name.ends_with("_test.rego") == tests {
                let src = std::fs::read_to_string(&path).map_err(|e| Error::Io {
                    path: path.clone(),
                    source: e,
                })?;
                out.push((path, src));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn toml_to_json(t: &toml::Table) -> Json {
    serde_json::to_value(t).unwrap_or(Json::Null)
}

/// The input document of `froyo check` (`operations` empty) or `froyo plan`.
pub fn input(graph: &Graph, inventory: &Inventory, plan: Option<&Plan>) -> Json {
    let labels = |host: &str| {
        inventory
            .targets
            .iter()
            .find(|t| t.name == host)
            .map(|t| json!(t.labels))
            .unwrap_or_else(|| json!({}))
    };
    let resources: Vec<Json> = graph
        .resources()
        .map(|r| {
            json!({
                "id": r.id,
                "type": r.rtype,
                "name": r.name,
                "host": r.host,
                "labels": labels(&r.host),
                "play": r.play,
                "handler": r.handler,
                "sensitive": r.sensitive,
                "config": r.config,
                "meta": r.meta,
                "location": r.location(),
            })
        })
        .collect();
    let targets: Vec<Json> = inventory
        .targets
        .iter()
        .map(|t| json!({"name": t.name, "labels": t.labels}))
        .collect();
    let operations: Vec<Json> = plan
        .map(|p| {
            p.hosts
                .iter()
                .flat_map(|h| {
                    h.units.iter().flat_map(move |u| {
                        u.ops.iter().map(move |o| {
                            json!({"host": h.target, "id": u.id, "kind": o.kind, "summary": o.summary})
                        })
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "version": INPUT_VERSION,
        "phase": if plan.is_some() { "plan" } else { "check" },
        "resources": resources,
        "targets": targets,
        "operations": operations,
    })
}

/// Findings as diagnostics at the declaration of the resource each names.
pub fn diagnostics(findings: &[Finding], graph: &Graph) -> Vec<Diagnostic> {
    // id -> the resources with it, in graph order (one per host), built only when a rule
    // found something: a scan of the graph per finding was quadratic.
    let mut by_id: std::collections::HashMap<&str, Vec<&crate::graph::Resource>> =
        std::collections::HashMap::new();
    if !findings.is_empty() {
        for r in graph.resources() {
            by_id.entry(r.id.as_str()).or_default().push(r);
        }
    }
    findings
        .iter()
        .map(|f| {
            let span = f.id.as_ref().and_then(|id| {
                by_id
                    .get(id.as_str())?
                    .iter()
                    .find(|r| f.host.as_ref().is_none_or(|h| h == &r.host))
                    .and_then(|r| r.span.clone())
            });
            let (code, label) = if f.deny {
                (Code::Policy, "denied by policy")
            } else {
                (Code::PolicyWarn, "policy warning")
            };
            let subject = f.id.as_deref().map(|id| format!("{id}: ")).unwrap_or_default();
            let d = Diagnostic::new(code, format!("[{}] {subject}{}", f.rule, f.msg))
                .at_opt(span, label)
                .help(format!(
                    "fix the resource, or disable the rule with `[policy] disable = [\"{}\"]` in froyo.toml",
                    f.rule
                ));
            if f.deny { d } else { d.severity(Severity::Warning) }
        })
        .collect()
}

/// One `test_` rule's outcome.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub file: String,
    pub name: String,
    pub passed: bool,
    pub error: Option<String>,
}

/// Runs every `test_` rule of the `.rego` files under `dir` (policies and tests loaded
/// together, as `opa test` does).
pub fn run_tests(dir: &Path) -> Result<Vec<TestResult>, Error> {
    let all = rego_files(dir, false)?;
    let tests = rego_files(dir, true)?;
    let mut engine = regorus::Engine::new();
    engine
        .add_policy("@base.rego".into(), BASE.into())
        .map_err(|e| policy_error("@base.rego", e))?;
    for (path, src) in all.iter().chain(&tests) {
        engine
            .add_policy(path.display().to_string(), src.clone())
            .map_err(|e| policy_error(&path.display().to_string(), e))?;
    }
    let mut out = Vec::new();
    for (path, src) in &tests {
        let Some(package) = src
            .lines()
            .find_map(|l| l.trim().strip_prefix("package "))
            .map(|p| p.trim().to_owned())
        else {
            continue;
        };
        let mut names: Vec<String> = src
            .lines()
            .filter_map(|l| {
                let name: String = l
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                name.starts_with("test_").then_some(name)
            })
            .collect();
        names.dedup();
        for name in names {
            let result = engine.eval_rule(format!("data.{package}.{name}"));
            let (passed, error) = match result {
                Ok(v) => (v == regorus::Value::from(true), None),
                Err(e) => (false, Some(e.to_string())),
            };
            out.push(TestResult {
                file: path.display().to_string(),
                name: format!("data.{package}.{name}"),
                passed,
                error,
            });
        }
    }
    Ok(out)
}
