//! The config of `linux.pkg::package`, as `schema.cue` defines it (the engine has filled
//! the defaults and checked the cross-field rules). Names and versions are also checked
//! here against the characters package managers allow, because they end up as words of
//! the shell script `read` runs.

use froyo_provider_sdk::{ProviderError, Resource, Result};
use serde::{Deserialize, Serialize};

pub const PACKAGE: &str = "linux.pkg::package";

/// `#Package`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub name: String,
    pub names: Option<Vec<String>>,
    pub version: Option<String>,
    #[serde(default)]
    pub state: Want,
    #[serde(default)]
    pub manager: ManagerChoice,
    pub update_cache: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Want {
    #[default]
    Present,
    Absent,
    Latest,
}

/// A concrete package manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Manager {
    Apt,
    Dnf,
    Yum,
    Zypper,
    Apk,
}

impl Manager {
    /// In the order `auto` tries them.
    pub const ALL: [Manager; 5] = [
        Manager::Apt,
        Manager::Dnf,
        Manager::Yum,
        Manager::Zypper,
        Manager::Apk,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Manager::Apt => "apt",
            Manager::Dnf => "dnf",
            Manager::Yum => "yum",
            Manager::Zypper => "zypper",
            Manager::Apk => "apk",
        }
    }

    pub fn parse(s: &str) -> Option<Manager> {
        Manager::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// `manager`: one of the managers, or `auto` (detected on the target by `read`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManagerChoice {
    #[default]
    Auto,
    Apt,
    Dnf,
    Yum,
    Zypper,
    Apk,
}

impl ManagerChoice {
    pub fn fixed(self) -> Option<Manager> {
        match self {
            ManagerChoice::Auto => None,
            ManagerChoice::Apt => Some(Manager::Apt),
            ManagerChoice::Dnf => Some(Manager::Dnf),
            ManagerChoice::Yum => Some(Manager::Yum),
            ManagerChoice::Zypper => Some(Manager::Zypper),
            ManagerChoice::Apk => Some(Manager::Apk),
        }
    }
}

impl Config {
    pub fn parse(resource: &Resource) -> Result<Config> {
        if resource.type_name != PACKAGE {
            return Err(ProviderError::permanent(format!(
                "unknown resource type `{}` for linux.pkg",
                resource.type_name
            )));
        }
        let config: Config = serde_json::from_str(&resource.config).map_err(|e| {
            ProviderError::permanent(format!("invalid config for `{}`: {e}", resource.id))
        })?;
        config.check()?;
        Ok(config)
    }

    /// The packages managed: `names` when given (each once, in order), else `name`.
    pub fn packages(&self) -> Vec<String> {
        match &self.names {
            Some(names) => {
                let mut seen = std::collections::HashSet::new();
                names
                    .iter()
                    .filter(|n| seen.insert(n.as_str()))
                    .cloned()
                    .collect()
            }
            None => vec![self.name.clone()],
        }
    }

    /// The schema's rules again (a config may come from elsewhere than the engine), plus
    /// the character sets that keep names and versions plain shell words.
    fn check(&self) -> Result<()> {
        if self.names.as_ref().is_some_and(Vec::is_empty) {
            return Err(ProviderError::permanent(
                "names must list at least one package",
            ));
        }
        if self.version.is_some() && (self.names.is_some() || self.state != Want::Present) {
            return Err(ProviderError::permanent(
                "version applies to a single package with state \"present\"",
            ));
        }
        for name in self.packages() {
            if !valid_name(&name) {
                return Err(ProviderError::permanent(format!(
                    "`{name}` is not a package name: names start with a letter, digit or `_` and contain only letters, digits and `+._:@-`"
                )));
            }
        }
        if let Some(version) = &self.version
            && !valid_version(version)
        {
            return Err(ProviderError::permanent(format!(
                "`{version}` is not a package version: versions contain only letters, digits and `+._:~^-`"
            )));
        }
        Ok(())
    }
}

pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "+._:@-".contains(c))
}

fn valid_version(version: &str) -> bool {
    version
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+._:~^-".contains(c))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(config: serde_json::Value) -> Result<Config> {
        Config::parse(&Resource {
            id: "p".into(),
            type_name: PACKAGE.into(),
            config: config.to_string(),
        })
    }

    #[test]
    fn defaults_and_names() {
        let c = parse(json!({"name": "nginx"})).unwrap();
        assert_eq!(c.state, Want::Present);
        assert_eq!(c.manager, ManagerChoice::Auto);
        assert_eq!(c.packages(), ["nginx"]);
        let c = parse(json!({"name": "web", "names": ["nginx", "libc6:i386", "g++", "nginx"], "state": "latest", "manager": "apt"}))
            .unwrap();
        assert_eq!(c.packages(), ["nginx", "libc6:i386", "g++"]);
        assert_eq!(c.manager.fixed(), Some(Manager::Apt));
    }

    #[test]
    fn unsafe_words_and_broken_rules_are_refused() {
        for bad in [
            json!({"name": "a;rm -rf /"}),
            json!({"name": "-o"}),
            json!({"name": "x", "names": ["ok", "*"]}),
            json!({"name": "x", "version": "1.0 || true"}),
            json!({"name": "x", "names": []}),
            json!({"name": "x", "version": "1", "state": "latest"}),
            json!({"name": "x", "colour": "red"}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
        assert!(parse(json!({"name": "x", "version": "1:2.3~rc1-1+deb12u1"})).is_ok());
    }
}
