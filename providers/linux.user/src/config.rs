//! The configs of the three types, as `schema.cue` defines them (the engine has filled
//! the defaults). Fields left out are not managed.

use froyo_provider_sdk::{ProviderError, Resource, Result};
use serde::Deserialize;
use serde_json::Value;

pub const USER: &str = "linux.user::user";
pub const GROUP: &str = "linux.user::group";
pub const AUTHORIZED_KEYS: &str = "linux.user::authorized_keys";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    #[default]
    Present,
    Absent,
}

/// `#User`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub uid: Option<u32>,
    pub group: Option<String>,
    pub groups: Option<Vec<String>>,
    pub shell: Option<String>,
    pub home: Option<String>,
    #[serde(default)]
    pub system: bool,
    #[serde(default)]
    pub state: Presence,
    pub password_hash: Option<String>,
}

/// `#Group`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub name: String,
    pub gid: Option<u32>,
    #[serde(default)]
    pub system: bool,
    #[serde(default)]
    pub state: Presence,
}

/// `#AuthorizedKeys`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    pub user: String,
    pub keys: Vec<String>,
    #[serde(default = "yes")]
    pub exclusive: bool,
}

fn yes() -> bool {
    true
}

/// A resource's config, by type.
#[derive(Debug, Clone)]
pub enum Config {
    User(UserConfig),
    Group(GroupConfig),
    Keys(KeysConfig),
}

impl Config {
    pub fn parse(resource: &Resource) -> Result<Config> {
        let invalid =
            |e: serde_json::Error| ProviderError::permanent(format!("invalid config: {e}"));
        let value: Value = serde_json::from_str(&resource.config).map_err(invalid)?;
        reject_secrets(&value)?;
        match resource.type_name.as_str() {
            USER => Ok(Config::User(
                serde_json::from_value(value).map_err(invalid)?,
            )),
            GROUP => Ok(Config::Group(
                serde_json::from_value(value).map_err(invalid)?,
            )),
            AUTHORIZED_KEYS => Ok(Config::Keys(
                serde_json::from_value(value).map_err(invalid)?,
            )),
            other => Err(ProviderError::permanent(format!(
                "unknown resource type `{other}` for linux.user"
            ))),
        }
    }
}

/// `$secret` markers anywhere in a config are refused until the engine resolves them.
pub fn reject_secrets(value: &Value) -> Result<()> {
    match value {
        Value::Object(map) if map.contains_key("$secret") => Err(ProviderError::permanent(
            "a value comes from a secret: secrets are resolved by the engine, which does not pass them to linux.user yet",
        )),
        Value::Object(map) => map.values().try_for_each(reject_secrets),
        Value::Array(items) => items.iter().try_for_each(reject_secrets),
        _ => Ok(()),
    }
}
