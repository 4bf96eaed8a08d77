//! The actual state of a service, as `read` reports it and `diff` reads it back. It
//! records the init system and the unit's native name so that `diff` (pure) can plan
//! commands for the right tool and `apply` needs no second detection.

use froyo_provider_sdk::{ProviderError, Result};
use serde::{Deserialize, Serialize};

use crate::config::Init;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub init: Init,
    /// The unit's name for `init`: `nginx.service` for systemd, `nginx` otherwise.
    pub name: String,
    /// Whether the init system knows the unit at all.
    pub exists: bool,
    /// `None` when the init system cannot tell (an init script whose `status` answers
    /// "unknown" or is not implemented).
    pub running: Option<bool>,
    /// What the init system said about running, for messages: `active`, `status exit 3`.
    pub status: String,
    /// Whether it starts at boot; `None` when this cannot be managed (a static or
    /// generated systemd unit).
    pub enabled: Option<bool>,
    /// What the init system said about boot, for messages: `enabled`, `static`, `masked`.
    pub boot: String,
    /// systemd: the unit is masked (it can be neither started nor enabled).
    #[serde(default)]
    pub masked: bool,
    /// The service implements `reload`.
    #[serde(default)]
    pub can_reload: bool,
    /// OpenRC: the runlevels the service is in, so disabling removes it from each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runlevels: Vec<String>,
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
}
