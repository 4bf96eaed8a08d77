//! `inventory.toml` (spec §5): targets, labels and host vars with four precedence levels
//! (`[defaults]` vars < matching `[[label_vars]]` < target vars < `--var k=v`).
//! Without an inventory the only target is `local`; `local` always exists.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::error::Error;
use crate::selector::Selector;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    targets: Vec<TargetEntry>,
    #[serde(default)]
    label_vars: Vec<LabelVars>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub key: Option<String>,
    /// `sudo`, or `false` to never escalate.
    pub r#become: Option<toml::Value>,
    #[serde(default)]
    pub vars: Map<String, Json>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetEntry {
    name: String,
    address: Option<String>,
    user: Option<String>,
    port: Option<u16>,
    key: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    vars: Map<String, Json>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelVars {
    select: String,
    #[serde(default)]
    vars: Map<String, Json>,
}

/// A resolved target: where it is and what its vars are.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    /// `local`, `host` or `host:port`.
    pub address: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub key: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Merged vars, highest precedence applied last.
    pub vars: Map<String, Json>,
}

impl Target {
    pub fn is_local(&self) -> bool {
        self.address == "local"
    }
}

/// All targets, sorted by name.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub targets: Vec<Target>,
    pub defaults: Defaults,
}

impl Inventory {
    /// Only `local`.
    pub fn local_only(cli_vars: &Map<String, Json>) -> Inventory {
        let mut vars = Map::new();
        vars.extend(cli_vars.clone());
        Inventory {
            targets: vec![local_target(vars)],
            defaults: Defaults::default(),
        }
    }

    /// Reads `<root>/inventory.toml` if present, plus the targets onboarded with `froyo
    /// onboard ssh` (kept in the state; an inventory entry of the same name wins).
    pub fn load(root: &Path, cli_vars: &Map<String, Json>) -> Result<Inventory, Error> {
        let path = root.join("inventory.toml");
        let mut inventory = if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::Io {
                path: path.clone(),
                source: e,
            })?;
            Inventory::parse(&crate::project::display_path(root, &path), &text, cli_vars)?
        } else {
            Inventory::local_only(cli_vars)
        };
        if let Some(store) =
            crate::state::open_existing(&crate::project::Project::at(root.to_owned())?)?
        {
            for t in store.onboarded()? {
                if inventory.targets.iter().any(|o| o.name == t.name) {
                    continue;
                }
                let mut vars = inventory.defaults.vars.clone();
                vars.extend(cli_vars.clone());
                inventory.targets.push(Target {
                    name: t.name,
                    address: t.address,
                    user: Some(t.user),
                    port: None,
                    key: None,
                    labels: t.labels,
                    vars,
                });
            }
            inventory.targets.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(inventory)
    }

    pub fn parse(
        path: &Path,
        text: &str,
        cli_vars: &Map<String, Json>,
    ) -> Result<Inventory, Error> {
        let file: File = toml::from_str(text).map_err(|e| Error::toml(path, text, &e))?;
        let bad = |msg: String| Error::Inventory {
            path: path.to_owned(),
            message: msg,
        };
        let mut label_vars = Vec::new();
        for lv in &file.label_vars {
            let sel =
                Selector::parse(&lv.select).map_err(|e| bad(format!("[[label_vars]]: {e}")))?;
            label_vars.push((sel, lv));
        }
        let mut targets: Vec<Target> = Vec::new();
        for t in file.targets {
            if t.name.is_empty()
                || !t
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(bad(format!(
                    "target name `{}` may only hold letters, digits, `-`, `_` and `.`",
                    t.name
                )));
            }
            if targets.iter().any(|o| o.name == t.name) {
                return Err(bad(format!("target `{}` is declared twice", t.name)));
            }
            let address = match (t.address, t.name.as_str()) {
                (Some(a), _) => a,
                (None, "local") => "local".to_owned(),
                (None, _) => return Err(bad(format!("target `{}` has no `address`", t.name))),
            };
            let mut vars = file.defaults.vars.clone();
            // Label vars: two matching entries that set one key differently are ambiguous.
            let mut from_labels: BTreeMap<String, (Json, &str)> = BTreeMap::new();
            for (sel, lv) in &label_vars {
                if !sel.matches(&t.name, &t.labels) {
                    continue;
                }
                for (k, v) in &lv.vars {
                    if let Some((old, old_sel)) = from_labels.get(k)
                        && old != v
                    {
                        return Err(bad(format!(
                            "var `{k}` of target `{}` is set by both [[label_vars]] `{old_sel}` and `{}`",
                            t.name, lv.select
                        )));
                    }
                    from_labels.insert(k.clone(), (v.clone(), lv.select.as_str()));
                }
            }
            vars.extend(from_labels.into_iter().map(|(k, (v, _))| (k, v)));
            vars.extend(t.vars);
            vars.extend(cli_vars.clone());
            targets.push(Target {
                name: t.name,
                address,
                user: t.user.or_else(|| file.defaults.user.clone()),
                port: t.port.or(file.defaults.port),
                key: t.key.or_else(|| file.defaults.key.clone()),
                labels: t.labels,
                vars,
            });
        }
        if !targets.iter().any(|t| t.name == "local") {
            let mut vars = file.defaults.vars.clone();
            vars.extend(cli_vars.clone());
            targets.push(local_target(vars));
        }
        targets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Inventory {
            targets,
            defaults: file.defaults,
        })
    }

    /// Targets matching `sel`, sorted by name.
    pub fn select(&self, sel: &Selector) -> Vec<&Target> {
        self.targets
            .iter()
            .filter(|t| sel.matches(&t.name, &t.labels))
            .collect()
    }
}

fn local_target(vars: Map<String, Json>) -> Target {
    Target {
        name: "local".into(),
        address: "local".into(),
        user: None,
        port: None,
        key: None,
        labels: BTreeMap::new(),
        vars,
    }
}

/// Parses `--var k=v` (the value is JSON when it parses as JSON, else a string).
pub fn parse_cli_var(s: &str) -> Result<(String, Json), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`--var {s}`: expected KEY=VALUE"))?;
    if k.is_empty() {
        return Err(format!("`--var {s}`: empty key"));
    }
    let value = serde_json::from_str(v).unwrap_or_else(|_| Json::String(v.to_owned()));
    Ok((k.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INV: &str = r#"
[defaults]
user = "froyo"
vars = { level = "defaults", only_default = 1 }

[[targets]]
name = "web-01"
address = "10.0.1.11"
labels = { role = "web", env = "prod" }
vars = { level = "target" }

[[targets]]
name = "web-02"
address = "10.0.1.12:2222"
labels = { role = "web", env = "stage" }

[[label_vars]]
select = "env=prod"
vars = { level = "label", db = "prod-db" }

[[label_vars]]
select = "role=web"
vars = { db_port = 5432 }
"#;

    #[test]
    fn vars_have_four_levels() {
        let cli: Map<String, Json> = [("cli".to_string(), Json::from(true))]
            .into_iter()
            .collect();
        let inv = Inventory::parse(Path::new("inventory.toml"), INV, &cli).unwrap();
        let names: Vec<_> = inv.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["local", "web-01", "web-02"]);
        let w1 = &inv.targets[1];
        assert_eq!(w1.vars["level"], "target");
        assert_eq!(w1.vars["db"], "prod-db");
        assert_eq!(w1.vars["db_port"], 5432);
        assert_eq!(w1.vars["only_default"], 1);
        assert_eq!(w1.vars["cli"], true);
        assert_eq!(w1.user.as_deref(), Some("froyo"));
        let w2 = &inv.targets[2];
        assert_eq!(w2.vars["level"], "defaults");
        assert!(!w2.vars.contains_key("db"));
        let cli: Map<String, Json> = [("level".to_string(), Json::from("cli"))]
            .into_iter()
            .collect();
        let inv = Inventory::parse(Path::new("inventory.toml"), INV, &cli).unwrap();
        assert_eq!(inv.targets[1].vars["level"], "cli");
        let sel = Selector::parse("role=web").unwrap();
        assert_eq!(inv.select(&sel).len(), 2);
    }

    #[test]
    fn ambiguous_label_vars_are_refused() {
        let text = "[[targets]]\nname = \"a\"\naddress = \"h\"\nlabels = { x = \"1\", y = \"1\" }\n[[label_vars]]\nselect = \"x\"\nvars = { k = 1 }\n[[label_vars]]\nselect = \"y\"\nvars = { k = 2 }\n";
        let err = Inventory::parse(Path::new("inventory.toml"), text, &Map::new()).unwrap_err();
        assert!(err.to_string().contains("set by both"), "{err}");
    }
}
