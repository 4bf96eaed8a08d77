//! The actual state of a command, as `read` reports it and `diff` reads it back:
//! `{"done": bool, "guarded": bool, "reason": "..."}`. `done` means a guard says the
//! command need not run; `reason` says why it is or is not done.

use froyo_provider_sdk::{ProviderError, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub done: bool,
    pub guarded: bool,
    pub reason: String,
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
