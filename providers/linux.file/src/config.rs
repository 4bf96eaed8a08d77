//! The configs of the three types, as `schema.cue` defines them (the engine has filled
//! the defaults), and the rules for comparing their values with what is on the target.

use froyo_provider_sdk::{ProviderError, Resource, Result};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const FILE: &str = "linux.file::file";
pub const DIRECTORY: &str = "linux.file::directory";
pub const SYMLINK: &str = "linux.file::symlink";
pub const LINE: &str = "linux.file::line";
pub const BLOCK: &str = "linux.file::block";

/// `#File`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub path: String,
    /// A string, a `$content` marker or a `$secret` marker; see [`DesiredContent::parse`].
    pub content: Option<Value>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<String>,
    #[serde(default)]
    pub state: FileState,
    pub validate: Option<String>,
    #[serde(default)]
    pub backup: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    #[default]
    File,
    Absent,
}

/// `#Directory`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    pub path: String,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<String>,
    #[serde(default)]
    pub state: DirectoryState,
    #[serde(default)]
    pub recurse: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryState {
    #[default]
    Directory,
    Absent,
}

/// `#Symlink`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymlinkConfig {
    pub path: String,
    pub target: String,
    #[serde(default)]
    pub state: SymlinkState,
    pub owner: Option<String>,
    pub group: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SymlinkState {
    #[default]
    Link,
    Absent,
}

/// A resource's config, by type.
#[derive(Debug, Clone)]
pub enum Config {
    File(FileConfig),
    Directory(DirectoryConfig),
    Symlink(SymlinkConfig),
    Line(crate::line::LineConfig),
    Block(crate::block::BlockConfig),
}

impl Config {
    pub fn parse(resource: &Resource) -> Result<Config> {
        let config = match resource.type_name.as_str() {
            FILE => Config::File(resource.config()?),
            DIRECTORY => Config::Directory(resource.config()?),
            SYMLINK => Config::Symlink(resource.config()?),
            LINE => Config::Line(resource.config()?),
            BLOCK => Config::Block(resource.config()?),
            other => {
                return Err(ProviderError::permanent(format!(
                    "linux.file has no type `{other}` (it has {FILE}, {DIRECTORY}, {SYMLINK}, {LINE} and {BLOCK})"
                )));
            }
        };
        if !config.path().starts_with('/') {
            return Err(ProviderError::permanent(format!(
                "`{}`: path `{}` is not absolute",
                resource.id,
                config.path()
            )));
        }
        Ok(config)
    }

    pub fn path(&self) -> &str {
        match self {
            Config::File(c) => &c.path,
            Config::Directory(c) => &c.path,
            Config::Symlink(c) => &c.path,
            Config::Line(c) => &c.path,
            Config::Block(c) => &c.path,
        }
    }
}

/// A file's desired content, once its config value is understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredContent {
    pub text: String,
    /// Never shown in a plan, a diff or an actual state.
    pub sensitive: bool,
}

/// The body of a `$content` marker (`template()` or `asset()` in Starlark).
#[derive(Debug, Deserialize)]
struct ContentMarker {
    source: Option<String>,
    path: Option<String>,
    /// The rendered text; missing for a binary asset or a template rendered at apply time.
    text: Option<String>,
    #[serde(default)]
    sensitive: bool,
}

impl DesiredContent {
    /// Understands a config's `content`: a string, or a `$content` marker whose text is
    /// known. A `$content` without text (a binary asset, a template rendered at apply
    /// time) and a `$secret` are permanent errors until the engine resolves them before
    /// calling providers.
    pub fn parse(value: &Value) -> Result<DesiredContent> {
        match value {
            Value::String(text) => Ok(DesiredContent {
                text: text.clone(),
                sensitive: false,
            }),
            Value::Object(map) if map.len() == 1 && map.contains_key("$content") => {
                let marker: ContentMarker = serde_json::from_value(map["$content"].clone())
                    .map_err(|e| {
                        ProviderError::permanent(format!("malformed $content marker: {e}"))
                    })?;
                match marker.text {
                    Some(text) => Ok(DesiredContent {
                        text,
                        sensitive: marker.sensitive,
                    }),
                    None => Err(ProviderError::permanent(format!(
                        "content is only known at apply time ({} `{}`), which linux.file does not support yet",
                        marker.source.as_deref().unwrap_or("content"),
                        marker.path.as_deref().unwrap_or("?")
                    ))),
                }
            }
            Value::Object(map) if map.contains_key("$secret") => Err(ProviderError::permanent(
                "content comes from a secret: secrets are resolved by the engine, which does not pass them to linux.file yet",
            )),
            _ => Err(ProviderError::permanent(
                "content must be a string or a $content marker (from template() or asset())",
            )),
        }
    }

    /// Lowercase hex sha256 of the text, as the runner reports it.
    pub fn sha256(&self) -> String {
        sha256_hex(self.text.as_bytes())
    }
}

impl FileConfig {
    /// The desired content, when the content is managed.
    pub fn desired_content(&self) -> Result<Option<DesiredContent>> {
        self.content
            .as_ref()
            .map(DesiredContent::parse)
            .transpose()
            .map_err(|e| e.context(format_args!("content of {}", self.path)))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
        hex.push(char::from_digit((b & 0xf) as u32, 16).unwrap_or('0'));
    }
    hex
}

pub use froyo_provider_sdk::meta::{normalize_mode, same_mode, same_principal};

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn content_forms() {
        let text = DesiredContent::parse(&json!("hi\n")).unwrap();
        assert_eq!(
            text,
            DesiredContent {
                text: "hi\n".into(),
                sensitive: false
            }
        );
        assert_eq!(
            text.sha256(),
            "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4"
        );
        let marker = json!({"$content": {"source": "template", "path": "t/a.j2", "sha256": "x", "text": "a", "sensitive": true}});
        assert_eq!(
            DesiredContent::parse(&marker).unwrap(),
            DesiredContent {
                text: "a".into(),
                sensitive: true
            }
        );
        let deferred = json!({"$content": {"source": "template", "path": "t/a.j2", "sha256": "x", "template": "{{ x }}", "vars": {}}});
        let e = DesiredContent::parse(&deferred).unwrap_err();
        assert!(
            e.message.starts_with("content is only known at apply time"),
            "{}",
            e.message
        );
        let e = DesiredContent::parse(&json!({"$secret": "env://X"})).unwrap_err();
        assert!(
            e.message.contains("secrets are resolved by the engine"),
            "{}",
            e.message
        );
    }
}
