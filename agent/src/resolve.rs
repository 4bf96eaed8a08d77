//! A plan and its recipes resolved into what the supervisor runs: one
//! [`ComponentSpec`] per component (its identity, digest, artifacts, command, probe
//! and resolved dependencies) and the start layers of the dependency DAG.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{AgentError, Result};
use crate::recipe::{self, Constraint, DepType, LoadedRecipe, Probe, ProbeTiming, RestartPolicy};

/// An artifact to fetch: where from, what it must hash to, where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactSpec {
    pub uri: String,
    pub sha256: String,
    pub size: Option<u64>,
    /// Request headers (`github_token` becomes `Authorization`). Credentials are never
    /// written out (journal, documents): see [`is_secret_header`].
    #[serde(serialize_with = "headers_without_secrets")]
    pub headers: BTreeMap<String, String>,
    /// The file name under `artifacts/<recipe>/<version>/`.
    pub file: String,
    /// A detached minisign signature of the file, checked against `--trust`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig_uri: Option<String>,
}

/// Whether a request header carries a credential (kept in memory only).
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie"
    ) || ["token", "secret", "key", "password"]
        .iter()
        .any(|w| n.contains(w))
}

fn headers_without_secrets<S: serde::Serializer>(
    h: &BTreeMap<String, String>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(None)?;
    for (k, v) in h.iter().filter(|(k, _)| !is_secret_header(k)) {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

/// A resolved dependency edge: this component needs `on` (a plan component name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepSpec {
    pub on: String,
    pub kind: DepType,
}

/// Everything needed to install, run, probe and compare one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentSpec {
    /// The plan's name for it.
    pub name: String,
    /// `metadata.name` and `metadata.version`: its identity, and its directories.
    pub recipe: String,
    pub version: String,
    /// sha256 over the recipe's bytes and the plan's overrides: a changed digest means
    /// a changed component.
    pub digest: String,
    pub recipe_path: String,
    pub artifacts: Vec<ArtifactSpec>,
    pub install: Option<String>,
    pub shutdown: Option<String>,
    pub command: String,
    pub args: Vec<String>,
    pub working_dir: Option<String>,
    pub env: BTreeMap<String, String>,
    pub restart: RestartPolicy,
    pub max_retries: u32,
    pub probe: Option<Probe>,
    pub timing: ProbeTiming,
    pub open_files: Option<u64>,
    pub memory_limit: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub deps: Vec<DepSpec>,
}

/// A plan ready to apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedPlan {
    pub path: String,
    /// In start order (layer by layer).
    pub components: Vec<ComponentSpec>,
    /// Component names per start layer: a layer starts once the previous one is ready.
    pub layers: Vec<Vec<String>>,
    /// Set by the agent on the plan of a signed desired-state document it accepted (kept
    /// through the journal): its artifacts are trusted by the digests it lists.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_document: bool,
}

impl ResolvedPlan {
    pub fn get(&self, name: &str) -> Option<&ComponentSpec> {
        self.components.iter().find(|c| c.name == name)
    }

    /// Components that must restart when `name` restarts (`hard` and `soft` edges,
    /// transitively), not including `name`.
    pub fn dependents(&self, names: &BTreeSet<String>) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        let mut frontier: Vec<String> = names.iter().cloned().collect();
        while let Some(n) = frontier.pop() {
            for c in &self.components {
                if c.deps
                    .iter()
                    .any(|d| d.on == n && d.kind != DepType::Ordering)
                    && !names.contains(&c.name)
                    && out.insert(c.name.clone())
                {
                    frontier.push(c.name.clone());
                }
            }
        }
        out
    }

    /// The graph as JSON: nodes, edges and the start order (`GET /v1/plan/graph`).
    pub fn graph_json(&self) -> serde_json::Value {
        let nodes: Vec<_> = self
            .components
            .iter()
            .map(|c| serde_json::json!({"name": c.name, "recipe": c.recipe, "version": c.version}))
            .collect();
        let edges: Vec<_> = self
            .components
            .iter()
            .flat_map(|c| {
                c.deps
                    .iter()
                    .map(move |d| serde_json::json!({"from": d.on, "to": c.name, "type": d.kind}))
            })
            .collect();
        let order: Vec<&String> = self.layers.iter().flatten().collect();
        serde_json::json!({"nodes": nodes, "edges": edges, "layers": self.layers, "order": order})
    }
}

/// Where a plan's relative recipe path points: the agent's working directory first (as
/// Keystone resolves it), else the plan file's directory.
fn recipe_file(rel: &str, cwd: &Path, plan_dir: &Path) -> PathBuf {
    let p = Path::new(rel);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let from_cwd = cwd.join(p);
    if from_cwd.exists() {
        from_cwd
    } else {
        plan_dir.join(p)
    }
}

/// Reads a plan and its recipes and resolves them.
pub fn load(plan_path: &Path, cwd: &Path) -> Result<ResolvedPlan> {
    let plan_path = if plan_path.is_absolute() {
        plan_path.to_path_buf()
    } else {
        cwd.join(plan_path)
    };
    let text = std::fs::read_to_string(&plan_path).map_err(|e| AgentError::io(&plan_path, e))?;
    let plan = recipe::parse_plan(&plan_path, &text)?;
    let plan_dir = plan_path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut loaded = Vec::new();
    for c in &plan.components {
        let file = recipe_file(c.recipe.get_ref(), cwd, &plan_dir);
        let rtext = std::fs::read_to_string(&file).map_err(|e| {
            let src = recipe::Source {
                path: &plan_path,
                text: &text,
            };
            src.error(
                c.recipe.span(),
                format!("cannot read recipe `{}`: {e}", file.display()),
                "recipe paths are relative to the agent's working directory, else to the plan's directory",
            )
        })?;
        let r = recipe::parse_recipe(&file, &rtext)?;
        loaded.push((c, r));
    }
    resolve(&plan_path, &loaded)
}

fn resolve(
    plan_path: &Path,
    loaded: &[(&recipe::PlanComponent, LoadedRecipe)],
) -> Result<ResolvedPlan> {
    // Recipe name → plan component name; recipe names are the dependency keys and the
    // directory names, so they are unique in a plan.
    let mut by_recipe: BTreeMap<&str, (&str, &LoadedRecipe)> = BTreeMap::new();
    for (c, r) in loaded {
        let rname = r.recipe.metadata.name.get_ref().as_str();
        if let Some((other, _)) = by_recipe.insert(rname, (c.name.get_ref().as_str(), r)) {
            return Err(AgentError::Deps {
                message: format!(
                    "components `{other}` and `{}` both use recipe `{rname}`",
                    c.name.get_ref()
                ),
                help: "a recipe name is a component's identity and directory; give each component its own recipe".into(),
            });
        }
    }
    let mut specs: BTreeMap<String, ComponentSpec> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (c, r) in loaded {
        let src = recipe::Source {
            path: &r.path,
            text: &r.text,
        };
        let mut deps = Vec::new();
        for d in &r.recipe.dependencies {
            let kind = d.kind.unwrap_or_default();
            let dname = d.name.get_ref();
            let Some((target, target_recipe)) = by_recipe.get(dname.as_str()) else {
                if kind == DepType::Soft {
                    continue;
                }
                return Err(AgentError::Deps {
                    message: format!(
                        "{}: `{}` depends on `{dname}` ({kind:?}), which is not in the plan",
                        src.at(d.name.span()),
                        r.recipe.metadata.name.get_ref()
                    )
                    .replace("(Hard)", "(hard)")
                    .replace("(Ordering)", "(ordering)"),
                    help: "add a component with that recipe to the plan, or make the dependency `type = \"soft\"`".into(),
                });
            };
            if *target == c.name.get_ref().as_str() {
                return Err(AgentError::Deps {
                    message: format!(
                        "{}: a recipe cannot depend on itself",
                        src.at(d.name.span())
                    ),
                    help: "remove the dependency".into(),
                });
            }
            if let Some(v) = &d.version {
                let constraint = Constraint::parse(v.get_ref()).map_err(|e| AgentError::Deps {
                    message: format!("{}: {e}", src.at(v.span())),
                    help: "write a semver constraint".into(),
                })?;
                if !constraint.matches(&target_recipe.version) {
                    if kind == DepType::Soft {
                        continue;
                    }
                    return Err(AgentError::Deps {
                        message: format!(
                            "{}: `{}` needs `{dname}` {}, but the plan has {}",
                            src.at(v.span()),
                            r.recipe.metadata.name.get_ref(),
                            v.get_ref(),
                            target_recipe.version
                        ),
                        help: "change the dependency's `version` constraint or the plan's recipe"
                            .into(),
                    });
                }
            }
            deps.push(DepSpec {
                on: target.to_string(),
                kind,
            });
        }
        let spec = spec_of(c, r, deps);
        order.push(spec.name.clone());
        specs.insert(spec.name.clone(), spec);
    }
    let layers = layers(&order, &specs)?;
    let components = layers.iter().flatten().map(|n| specs[n].clone()).collect();
    Ok(ResolvedPlan {
        path: plan_path.display().to_string(),
        components,
        layers,
        from_document: false,
    })
}

fn spec_of(c: &recipe::PlanComponent, r: &LoadedRecipe, deps: Vec<DepSpec>) -> ComponentSpec {
    use sha2::{Digest, Sha256};
    let rec = &r.recipe;
    let exec = rec
        .lifecycle
        .run
        .exec
        .as_ref()
        .expect("checked by parse_recipe");
    let mut env = exec.env.clone();
    env.extend(c.env.clone());
    let args = c.args.clone().unwrap_or_else(|| exec.args.clone());
    let mut h = Sha256::new();
    h.update(r.text.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(&(&c.env, &c.args)).unwrap_or_default());
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let (probe, timing) = match &r.probe {
        Some((p, t)) => (Some(p.clone()), *t),
        None => (None, ProbeTiming::default()),
    };
    let run = &rec.lifecycle.run;
    let restart = run.restart_policy.unwrap_or_default();
    ComponentSpec {
        name: c.name.get_ref().clone(),
        recipe: rec.metadata.name.get_ref().clone(),
        version: rec.metadata.version.get_ref().clone(),
        digest,
        recipe_path: r.path.display().to_string(),
        artifacts: rec
            .artifacts
            .iter()
            .map(|a| ArtifactSpec {
                uri: a.uri.get_ref().clone(),
                sha256: a
                    .sha256
                    .as_ref()
                    .map(|s| s.get_ref().to_ascii_lowercase())
                    .unwrap_or_default(),
                size: a.size,
                headers: {
                    let mut h = a.headers.clone();
                    if let Some(t) = &a.github_token
                        && !t.is_empty()
                        && !h.keys().any(|k| k.eq_ignore_ascii_case("authorization"))
                    {
                        h.insert("Authorization".into(), format!("token {t}"));
                    }
                    h
                },
                file: recipe::artifact_file_name(a.uri.get_ref()).unwrap_or_default(),
                sig_uri: a.sig_uri.as_ref().map(|s| s.get_ref().clone()),
            })
            .collect(),
        install: rec
            .lifecycle
            .install
            .as_ref()
            .and_then(|i| i.script.clone())
            .filter(|s| !s.trim().is_empty()),
        shutdown: rec
            .lifecycle
            .shutdown
            .as_ref()
            .and_then(|s| s.script.clone())
            .filter(|s| !s.trim().is_empty()),
        command: exec.command.get_ref().clone(),
        args,
        working_dir: exec.working_dir.clone().filter(|d| !d.is_empty()),
        env,
        restart,
        max_retries: match run.max_retries {
            Some(0) | None => 5,
            Some(n) => n,
        },
        probe,
        timing,
        open_files: rec.resources.as_ref().and_then(|r| r.open_files),
        memory_limit: rec
            .resources
            .as_ref()
            .and_then(|r| r.memory_limit.as_ref())
            .and_then(|m| recipe::parse_bytes(m.get_ref())),
        cpu_quota: rec.resources.as_ref().and_then(|r| r.cpu_quota),
        deps,
    }
}

/// Kahn's algorithm by generations; a layer keeps the plan's order. A cycle is an
/// error naming its members.
fn layers(order: &[String], specs: &BTreeMap<String, ComponentSpec>) -> Result<Vec<Vec<String>>> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    while done.len() < order.len() {
        let layer: Vec<String> = order
            .iter()
            .filter(|n| !done.contains(n.as_str()))
            .filter(|n| specs[*n].deps.iter().all(|d| done.contains(d.on.as_str())))
            .cloned()
            .collect();
        if layer.is_empty() {
            let rest: Vec<&str> = order
                .iter()
                .map(String::as_str)
                .filter(|n| !done.contains(n))
                .collect();
            return Err(AgentError::Deps {
                message: format!("cycle detected in component graph among: {}", rest.join(", ")),
                help: "a dependency chain must not lead back to where it started; remove one `[[dependencies]]` entry".into(),
            });
        }
        for n in &layer {
            done.insert(specs[n].name.as_str());
        }
        out.push(layer);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(name: &str, version: &str, deps: &[(&str, &str, &str)]) -> String {
        let mut t = format!("[metadata]\nname = \"{name}\"\nversion = \"{version}\"\n\n");
        for (d, v, k) in deps {
            t.push_str(&format!(
                "[[dependencies]]\nname = \"{d}\"\nversion = \"{v}\"\ntype = \"{k}\"\n\n"
            ));
        }
        t.push_str("[lifecycle.run.exec]\ncommand = \"/bin/true\"\n");
        t
    }

    fn plan(dir: &Path, recipes: &[(&str, String)]) -> Result<ResolvedPlan> {
        let mut p = String::new();
        for (name, text) in recipes {
            std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
            p.push_str(&format!(
                "[[components]]\nname = \"{name}\"\nrecipe = \"{name}.toml\"\n\n"
            ));
        }
        std::fs::write(dir.join("plan.toml"), p).unwrap();
        load(Path::new("plan.toml"), dir)
    }

    #[test]
    fn layers_follow_dependencies_and_keep_plan_order() {
        let d = tempfile::tempdir().unwrap();
        let p = plan(
            d.path(),
            &[
                ("ui", recipe("r.ui", "1.0.0", &[("r.api", "^1", "hard")])),
                (
                    "api",
                    recipe("r.api", "1.2.0", &[("r.db", ">=2.0.0", "hard")]),
                ),
                (
                    "ingest",
                    recipe(
                        "r.ingest",
                        "1.0.0",
                        &[("r.db", "2.0.0", "ordering"), ("r.broker", "1.0.0", "hard")],
                    ),
                ),
                ("db", recipe("r.db", "2.0.0", &[])),
                (
                    "broker",
                    recipe("r.broker", "1.0.0", &[("r.absent", "1.0.0", "soft")]),
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            p.layers,
            vec![vec!["db", "broker"], vec!["api", "ingest"], vec!["ui"]]
        );
        // `ordering` edges order but do not cascade restarts.
        let d = p.dependents(&BTreeSet::from(["db".to_string()]));
        assert_eq!(d, BTreeSet::from(["api".to_string(), "ui".to_string()]));
    }

    #[test]
    fn credentials_stay_in_memory_and_out_of_the_journal() {
        let d = tempfile::tempdir().unwrap();
        let sha = "0".repeat(64);
        let text = format!(
            "[metadata]\nname = \"r.app\"\nversion = \"1.0.0\"\n\n[[artifacts]]\nuri = \"http://127.0.0.1:1/app\"\nsha256 = \"{sha}\"\ngithub_token = \"ghp_sekrit\"\nheaders = {{ X-Api-Key = \"k-sekrit\", Accept = \"application/octet-stream\" }}\n\n[lifecycle.run.exec]\ncommand = \"/bin/true\"\n"
        );
        let p = plan(d.path(), &[("app", text)]).unwrap();
        let h = &p.components[0].artifacts[0].headers;
        assert_eq!(h["Authorization"], "token ghp_sekrit");
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains("sekrit"), "{json}");
        assert!(json.contains("application/octet-stream"), "{json}");
    }

    #[test]
    fn missing_mismatched_and_cyclic_dependencies_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let e = plan(
            d.path(),
            &[("a", recipe("r.a", "1.0.0", &[("r.b", "1.0.0", "hard")]))],
        )
        .unwrap_err();
        assert_eq!(e.code(), "E-AGENT-DEPS");
        assert!(
            e.to_string()
                .contains("a.toml:6: `r.a` depends on `r.b` (hard), which is not in the plan"),
            "{e}"
        );
        let e = plan(
            d.path(),
            &[
                ("a", recipe("r.a", "1.0.0", &[("r.b", ">=2", "hard")])),
                ("b", recipe("r.b", "1.5.0", &[])),
            ],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("needs `r.b` >=2, but the plan has 1.5.0"),
            "{e}"
        );
        let e = plan(
            d.path(),
            &[
                ("a", recipe("r.a", "1.0.0", &[("r.b", "1.0.0", "hard")])),
                ("b", recipe("r.b", "1.0.0", &[("r.a", "1.0.0", "ordering")])),
            ],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("cycle detected in component graph among: a, b"),
            "{e}"
        );
    }

    #[test]
    fn the_digest_changes_with_the_recipe_and_the_overrides() {
        let d = tempfile::tempdir().unwrap();
        let p1 = plan(d.path(), &[("a", recipe("r.a", "1.0.0", &[]))]).unwrap();
        let p2 = plan(
            d.path(),
            &[("a", recipe("r.a", "1.0.0", &[]) + "\n# changed\n")],
        )
        .unwrap();
        assert_ne!(p1.components[0].digest, p2.components[0].digest);
        let p3 = plan(d.path(), &[("a", recipe("r.a", "1.0.0", &[]))]).unwrap();
        assert_eq!(p1.components[0].digest, p3.components[0].digest);
    }
}
