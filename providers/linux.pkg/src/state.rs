//! The actual state of a package resource, as `read` reports it and `diff` reads it back:
//! `{"manager": "apt"|…|null, "packages": [{"name", "installed", "candidate", "versions"}]}`.
//! `manager` is null when the chosen (or any, for `auto`) package manager is missing on
//! the target. `installed` is the installed version or null; `candidate` the version the
//! manager would install or upgrade to (null when it knows none, or was not asked);
//! `versions` every version it knows, where the manager lists them.

use froyo_provider_sdk::{ProviderError, Result};
use serde::{Deserialize, Serialize};

use crate::config::Manager;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub manager: Option<Manager>,
    pub packages: Vec<Package>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub installed: Option<String>,
    pub candidate: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
}

impl State {
    pub fn parse(json: &str) -> Result<State> {
        serde_json::from_str(json)
            .map_err(|e| ProviderError::permanent(format!("malformed actual state: {e}")))
    }

    pub fn to_json(&self) -> String {
        // Plain fields: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "null".to_owned())
    }

    pub fn package(&self, name: &str) -> Option<&Package> {
        self.packages.iter().find(|p| p.name == name)
    }
}

/// What one manager query found about one name (a package name, or `name:arch` /
/// `name.arch` as the user may have written it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    pub installed: Option<String>,
    pub candidate: Option<String>,
    pub versions: Vec<String>,
}
