//! `diff`: pure. Compares each package of a resource with what `read` found and plans
//! at most ONE operation for the resource (its packages change in one transaction),
//! with a summary such as `install nginx 1.24.0-1` or `upgrade nginx 1.22 → 1.24`.
//!
//! The index is refreshed first when `update_cache` is true, or, when it is left out,
//! when the manager knows no version to install (or not the pinned one): a stale index
//! is the usual reason. With `update_cache: false` that case is an error at plan time.

use std::cmp::Ordering;

use froyo_provider_sdk::{Actual, Operation, ProviderError, Resource, Result};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Manager, Want};
use crate::state::{Package, State};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Install,
    Upgrade,
    Downgrade,
    /// A pinned version whose order against the installed one is unknown (apk).
    Change,
    Remove,
}

/// One package's change: `version` is the pinned version passed to the manager; `from`
/// and `to` are only for the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub action: Action,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// What `apply` carries out: `{"manager", "refresh", "changes": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub manager: Manager,
    pub refresh: bool,
    pub changes: Vec<Change>,
}

/// One planned operation before it gets the resource's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub kind: &'static str,
    pub summary: String,
    pub payload: Payload,
}

pub fn plan(desired: &Resource, actual: &Actual) -> Result<Vec<Operation>> {
    let config = Config::parse(desired)?;
    let state = State::parse(&actual.state).map_err(|e| e.context(&desired.id))?;
    let step = plan_config(&config, &state).map_err(|e| e.context(&desired.id))?;
    Ok(step
        .into_iter()
        .map(|step| Operation {
            id: desired.id.clone(),
            type_name: desired.type_name.clone(),
            kind: step.kind.into(),
            summary: step.summary,
            diff: None,
            // Plain strings and enums: serializing cannot fail.
            payload: serde_json::to_string(&step.payload).unwrap_or_default(),
        })
        .collect())
}

pub fn plan_config(config: &Config, state: &State) -> Result<Option<Step>> {
    let Some(manager) = state.manager else {
        if config.state == Want::Absent {
            // Without the manager, nothing it manages can be installed.
            return Ok(None);
        }
        return Err(ProviderError::permanent(match config.manager.fixed() {
            Some(m) => format!("the package manager `{}` is not available on the target", m.as_str()),
            None => "no supported package manager on the target (looked for apt-get with dpkg-query, dnf, yum, zypper and apk)".to_owned(),
        }));
    };
    let none = Package::default();
    let mut changes = Vec::new();
    let mut unknown = Vec::new();
    for name in config.packages() {
        let p = state.package(&name).unwrap_or(&none);
        let Some(change) = change_for(manager, config, &name, p) else {
            continue;
        };
        if change.action != Action::Remove && !in_index(manager, &change, p) {
            unknown.push(match &change.version {
                Some(v) => format!("{name} {v}"),
                None => name.clone(),
            });
        }
        changes.push(change);
    }
    if changes.is_empty() {
        return Ok(None);
    }
    let installs = changes.iter().any(|c| c.action != Action::Remove);
    let refresh = match config.update_cache {
        Some(true) => installs,
        None => !unknown.is_empty(),
        Some(false) if !unknown.is_empty() => {
            return Err(ProviderError::permanent(format!(
                "{} knows no installable version of {} (update_cache is false, so the package index was not refreshed)",
                manager.as_str(),
                unknown.join(", ")
            )));
        }
        Some(false) => false,
    };
    let kind = if changes.iter().all(|c| c.action == Action::Install) {
        "create"
    } else if changes.iter().all(|c| c.action == Action::Remove) {
        "delete"
    } else {
        "update"
    };
    let mut summary = summary(&changes);
    if refresh {
        summary.push_str(&format!(" (after {})", manager.refresh_label()));
    }
    Ok(Some(Step {
        kind,
        summary,
        payload: Payload {
            manager,
            refresh,
            changes,
        },
    }))
}

fn change_for(m: Manager, config: &Config, name: &str, p: &Package) -> Option<Change> {
    let change =
        |action, version: Option<&String>, from: Option<&String>, to: Option<&String>| Change {
            action,
            name: name.to_owned(),
            version: version.cloned(),
            from: from.cloned(),
            to: to.cloned(),
        };
    match (config.state, &p.installed, &config.version) {
        (Want::Absent, Some(have), _) => Some(change(Action::Remove, None, Some(have), None)),
        (Want::Absent, None, _) => None,
        (_, None, Some(want)) => Some(change(Action::Install, Some(want), None, Some(want))),
        (_, None, None) => Some(change(Action::Install, None, None, p.candidate.as_ref())),
        (Want::Present, Some(have), Some(want)) => {
            if m.matches(have, want) {
                return None;
            }
            let action = match m.order(have, want) {
                Some(Ordering::Less) => Action::Upgrade,
                Some(Ordering::Greater) => Action::Downgrade,
                _ => Action::Change,
            };
            Some(change(action, Some(want), Some(have), Some(want)))
        }
        (Want::Present, Some(_), None) => None,
        (Want::Latest, Some(have), _) => {
            let to = p.candidate.as_ref()?;
            // Never downgrade for `latest`: an installed version newer than any offered one
            // (built locally, or from a removed repository) is the latest there is.
            match m.order(have, to) {
                Some(Ordering::Less) => Some(change(Action::Upgrade, None, Some(have), Some(to))),
                None if have != to => Some(change(Action::Upgrade, None, Some(have), Some(to))),
                _ => None,
            }
        }
    }
}

/// Whether the manager's index offers what `change` installs.
fn in_index(m: Manager, change: &Change, p: &Package) -> bool {
    match &change.version {
        Some(want) if m.lists_versions() => p
            .versions
            .iter()
            .chain(&p.candidate)
            .any(|v| m.matches(v, want)),
        _ => p.candidate.is_some(),
    }
}

/// `install a 1.0, b; upgrade c 1.0 → 2.0; remove d`.
fn summary(changes: &[Change]) -> String {
    let mut parts = Vec::new();
    for (action, verb) in [
        (Action::Install, "install"),
        (Action::Upgrade, "upgrade"),
        (Action::Downgrade, "downgrade"),
        (Action::Change, "change"),
        (Action::Remove, "remove"),
    ] {
        let items: Vec<String> = changes
            .iter()
            .filter(|c| c.action == action)
            .map(|c| match (action, &c.from, &c.to) {
                (Action::Remove, _, _) => c.name.clone(),
                (_, Some(from), Some(to)) => format!("{} {from} → {to}", c.name),
                (_, None, Some(to)) => format!("{} {to}", c.name),
                _ => c.name.clone(),
            })
            .collect();
        if !items.is_empty() {
            parts.push(format!("{verb} {}", items.join(", ")));
        }
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::config::PACKAGE;

    fn diff(config: Value, state: Value) -> Result<Vec<Operation>> {
        plan(
            &Resource {
                id: "p".into(),
                type_name: PACKAGE.into(),
                config: config.to_string(),
            },
            &Actual {
                id: "p".into(),
                state: state.to_string(),
            },
        )
    }

    fn one(config: Value, state: Value) -> (String, String, Value) {
        let ops = diff(config.clone(), state.clone()).unwrap();
        assert_eq!(ops.len(), 1, "{config} {state}: {ops:?}");
        let payload = serde_json::from_str(&ops[0].payload).unwrap();
        (ops[0].kind.clone(), ops[0].summary.clone(), payload)
    }

    fn apt(packages: Value) -> Value {
        json!({"manager": "apt", "packages": packages})
    }

    #[test]
    fn install_missing_and_nothing_when_installed() {
        let (kind, summary, payload) = one(
            json!({"name": "nginx"}),
            apt(json!([{"name": "nginx", "installed": null, "candidate": "1.24.0-1"}])),
        );
        assert_eq!(
            (kind.as_str(), summary.as_str()),
            ("create", "install nginx 1.24.0-1")
        );
        assert_eq!(
            payload,
            json!({"manager": "apt", "refresh": false, "changes": [{"action": "install", "name": "nginx", "to": "1.24.0-1"}]})
        );
        let ops = diff(
            json!({"name": "nginx"}),
            apt(json!([{"name": "nginx", "installed": "1.22.1-9", "candidate": null}])),
        )
        .unwrap();
        assert!(ops.is_empty());
    }

    #[test]
    fn latest_upgrades_only_to_newer() {
        let (kind, summary, _) = one(
            json!({"name": "nginx", "state": "latest"}),
            apt(json!([{"name": "nginx", "installed": "1.22", "candidate": "1.24"}])),
        );
        assert_eq!(
            (kind.as_str(), summary.as_str()),
            ("update", "upgrade nginx 1.22 → 1.24")
        );
        for candidate in [json!("1.22"), json!("1.20"), json!(null)] {
            let ops = diff(
                json!({"name": "nginx", "state": "latest"}),
                apt(json!([{"name": "nginx", "installed": "1.22", "candidate": candidate}])),
            )
            .unwrap();
            assert!(ops.is_empty(), "{candidate}");
        }
    }

    #[test]
    fn pinned_versions_upgrade_downgrade_or_match() {
        let state = |installed: Value| {
            apt(
                json!([{"name": "nginx", "installed": installed, "candidate": "2.0", "versions": ["2.0", "1.0"]}]),
            )
        };
        let (_, summary, payload) = one(
            json!({"name": "nginx", "version": "1.0"}),
            state(json!("2.0")),
        );
        assert_eq!(summary, "downgrade nginx 2.0 → 1.0");
        assert_eq!(payload["changes"][0]["version"], "1.0");
        let (_, summary, _) = one(
            json!({"name": "nginx", "version": "2.0"}),
            state(json!("1.0")),
        );
        assert_eq!(summary, "upgrade nginx 1.0 → 2.0");
        let (kind, summary, _) = one(
            json!({"name": "nginx", "version": "1.0"}),
            state(json!(null)),
        );
        assert_eq!(
            (kind.as_str(), summary.as_str()),
            ("create", "install nginx 1.0")
        );
        assert!(
            diff(
                json!({"name": "nginx", "version": "1.0"}),
                state(json!("1.0"))
            )
            .unwrap()
            .is_empty()
        );
        // rpm: a version without its release matches.
        let rpm = json!({"manager": "dnf", "packages": [{"name": "nginx", "installed": "1:1.20.1-10.el9", "candidate": null}]});
        assert!(
            diff(json!({"name": "nginx", "version": "1:1.20.1"}), rpm)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn names_are_one_operation() {
        let (kind, summary, payload) = one(
            json!({"name": "tools", "names": ["curl", "jq", "htop"], "state": "latest"}),
            apt(json!([
                {"name": "curl", "installed": null, "candidate": "7.88"},
                {"name": "jq", "installed": "1.6", "candidate": "1.7"},
                {"name": "htop", "installed": "3.2", "candidate": "3.2"},
            ])),
        );
        assert_eq!(kind, "update");
        assert_eq!(summary, "install curl 7.88; upgrade jq 1.6 → 1.7");
        assert_eq!(payload["changes"].as_array().unwrap().len(), 2);
        let (kind, summary, _) = one(
            json!({"name": "old", "names": ["telnet", "ftp", "rsh"], "state": "absent"}),
            apt(json!([
                {"name": "telnet", "installed": "0.17", "candidate": null},
                {"name": "ftp", "installed": null, "candidate": null},
                {"name": "rsh", "installed": "0.17", "candidate": null},
            ])),
        );
        assert_eq!(
            (kind.as_str(), summary.as_str()),
            ("delete", "remove telnet, rsh")
        );
    }

    #[test]
    fn refresh_rules() {
        let missing = apt(json!([{"name": "x", "installed": null, "candidate": null}]));
        let known = apt(json!([{"name": "x", "installed": null, "candidate": "1.0"}]));
        let (_, summary, payload) = one(json!({"name": "x"}), missing.clone());
        assert_eq!(summary, "install x (after apt-get update)");
        assert_eq!(payload["refresh"], true);
        let (_, _, payload) = one(json!({"name": "x"}), known.clone());
        assert_eq!(payload["refresh"], false);
        let (_, summary, payload) = one(json!({"name": "x", "update_cache": true}), known.clone());
        assert_eq!(summary, "install x 1.0 (after apt-get update)");
        assert_eq!(payload["refresh"], true);
        let e = diff(json!({"name": "x", "update_cache": false}), missing).unwrap_err();
        assert_eq!(e.class, froyo_provider_sdk::ErrorClass::Permanent);
        assert_eq!(
            e.message,
            "p: apt knows no installable version of x (update_cache is false, so the package index was not refreshed)"
        );
        // A pinned version the index does not list needs a refresh too.
        let (_, _, payload) = one(json!({"name": "x", "version": "2.0"}), known);
        assert_eq!(payload["refresh"], true);
        // Removing never refreshes.
        let (_, _, payload) = one(
            json!({"name": "x", "state": "absent", "update_cache": true}),
            apt(json!([{"name": "x", "installed": "1.0", "candidate": null}])),
        );
        assert_eq!(payload["refresh"], false);
    }

    #[test]
    fn no_manager() {
        let none = json!({"manager": null, "packages": [{"name": "x", "installed": null, "candidate": null}]});
        let e = diff(json!({"name": "x"}), none.clone()).unwrap_err();
        assert!(e.message.contains("no supported package manager"), "{e}");
        let e = diff(json!({"name": "x", "manager": "zypper"}), none.clone()).unwrap_err();
        assert!(e.message.contains("`zypper` is not available"), "{e}");
        assert!(
            diff(json!({"name": "x", "state": "absent"}), none)
                .unwrap()
                .is_empty()
        );
    }
}
