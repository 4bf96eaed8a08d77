//! The actual state of one rule as `read` reports it and `diff` reads it back: `null` when
//! the target has no rule named after it, else `{"rules": [...]}` with every rule that
//! carries its comment (normally one; duplicates are shown so `diff` can remove them).

use froyo_provider_sdk::{ProviderError, Result};
use serde::{Deserialize, Serialize};

use crate::nft::Found;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub rules: Vec<Found>,
}

impl State {
    /// `None` for an absent rule (`null`).
    pub fn parse(json: &str) -> Result<Option<State>> {
        serde_json::from_str(json)
            .map_err(|e| ProviderError::permanent(format!("malformed actual state: {e}")))
    }

    /// `null` when `rules` is empty.
    pub fn to_json(rules: Vec<Found>) -> String {
        if rules.is_empty() {
            return "null".into();
        }
        // Plain fields: serializing cannot fail.
        serde_json::to_string(&State { rules }).unwrap_or_else(|_| "null".to_owned())
    }
}
