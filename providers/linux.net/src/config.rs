//! The configs of `linux.net::download` and `linux.archive::extract`, as `schema.cue`
//! defines them (the engine has filled the defaults), plus the checks the schema cannot
//! express (header names and values that would break a request line) and the rules for
//! comparing modes and owners with what is on the target.

use std::collections::BTreeMap;

use froyo_provider_sdk::{ProviderError, Resource, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const DOWNLOAD: &str = "linux.net::download";
pub const EXTRACT: &str = "linux.archive::extract";

/// `#Download`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadConfig {
    pub dest: String,
    pub url: String,
    pub sha256: String,
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Values may be secrets: never shown in a summary, an error or a log.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// `#Extract`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractConfig {
    pub dest: String,
    pub src: String,
    pub format: Option<Format>,
    #[serde(default)]
    pub strip_components: u32,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub creates: Option<String>,
}

/// An archive format. `tgz` and `tar.gz` are one format: switching between the two
/// spellings does not unpack the archive again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    #[serde(rename = "tar.gz", alias = "tgz")]
    TarGz,
    #[serde(rename = "tar")]
    Tar,
    #[serde(rename = "zip")]
    Zip,
}

impl Format {
    /// The canonical name, as the marker records it.
    pub fn name(self) -> &'static str {
        match self {
            Format::TarGz => "tar.gz",
            Format::Tar => "tar",
            Format::Zip => "zip",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "tar.gz" | "tgz" => Some(Format::TarGz),
            "tar" => Some(Format::Tar),
            "zip" => Some(Format::Zip),
            _ => None,
        }
    }

    /// The format a file name implies (`.tar.gz`, `.tgz`, `.tar`, `.zip`, any case).
    pub fn guess(path: &str) -> Option<Format> {
        let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
        if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Format::TarGz)
        } else if name.ends_with(".tar") {
            Some(Format::Tar)
        } else if name.ends_with(".zip") {
            Some(Format::Zip)
        } else {
            None
        }
    }
}

impl ExtractConfig {
    /// The given format, else the one src's name implies; a name that implies none is a
    /// permanent error asking for `format`.
    pub fn format(&self) -> Result<Format> {
        self.format.or_else(|| Format::guess(&self.src)).ok_or_else(|| {
            ProviderError::permanent(format!(
                "cannot tell the archive format from the name `{}`: set format to \"tar.gz\", \"tgz\", \"tar\" or \"zip\"",
                self.src
            ))
        })
    }
}

/// A resource's config, by type.
#[derive(Debug, Clone)]
pub enum Config {
    Download(DownloadConfig),
    Extract(ExtractConfig),
}

impl Config {
    pub fn parse(resource: &Resource) -> Result<Config> {
        let config = match resource.type_name.as_str() {
            DOWNLOAD => {
                let c: DownloadConfig = resource.config()?;
                check_download(&c).map_err(|e| e.context(&resource.id))?;
                Config::Download(c)
            }
            EXTRACT => {
                let c: ExtractConfig = resource.config()?;
                check_absolute("dest", &c.dest)
                    .and_then(|()| check_absolute("src", &c.src))
                    .and_then(|()| {
                        c.creates
                            .as_deref()
                            .map_or(Ok(()), |p| check_absolute("creates", p))
                    })
                    .and_then(|()| c.format().map(|_| ()))
                    .map_err(|e| e.context(&resource.id))?;
                Config::Extract(c)
            }
            other => {
                return Err(ProviderError::permanent(format!(
                    "linux.net has no type `{other}` (it has {DOWNLOAD} and {EXTRACT})"
                )));
            }
        };
        Ok(config)
    }
}

fn check_absolute(field: &str, path: &str) -> Result<()> {
    if path.starts_with('/') && !path.trim_end_matches('/').is_empty() {
        Ok(())
    } else {
        Err(ProviderError::permanent(format!(
            "{field} `{path}` is not an absolute path below /"
        )))
    }
}

/// What the schema cannot say: the URL and headers go into a curl config file and
/// request lines, where a line break or a control character would inject options or
/// headers. A bad header value is reported by its header's name only.
fn check_download(c: &DownloadConfig) -> Result<()> {
    check_absolute("dest", &c.dest)?;
    if !(c.url.starts_with("http://") || c.url.starts_with("https://"))
        || c.url
            .chars()
            .any(|ch| ch.is_control() || ch.is_whitespace())
    {
        return Err(ProviderError::permanent(format!(
            "url `{}` is not an http:// or https:// URL without spaces or control characters",
            c.url.escape_debug()
        )));
    }
    if !is_sha256(&c.sha256) {
        return Err(ProviderError::permanent(
            "sha256 must be 64 lowercase hex digits",
        ));
    }
    for (name, value) in &c.headers {
        let token = !name.is_empty()
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(ch));
        if !token {
            return Err(ProviderError::permanent(format!(
                "header name `{}` is not a valid HTTP header name",
                name.escape_debug()
            )));
        }
        if value.chars().any(|ch| ch.is_control()) {
            return Err(ProviderError::permanent(format!(
                "the value of header `{name}` contains a line break or another control character"
            )));
        }
    }
    Ok(())
}

pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A digest as plans show it: its first 12 hex digits.
pub fn short(sha256: &str) -> String {
    match sha256.get(..12) {
        Some(head) if sha256.len() > 12 => format!("{head}…"),
        _ => sha256.to_owned(),
    }
}

/// `path`'s directory and file name (`/opt/x.tgz` → `/opt`, `x.tgz`; `/x` → `/`, `x`).
pub fn split_path(path: &str) -> (&str, &str) {
    let path = path.trim_end_matches('/');
    match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
        None => ("/", path),
    }
}

/// The file a download is fetched into before it is verified: beside dest, so the final
/// `mv` is a rename within one filesystem (atomic), and with a fixed name, so a temp file
/// left by an interrupted run is overwritten by the next one instead of piling up.
pub fn download_temp(dest: &str) -> String {
    let (dir, name) = split_path(dest);
    format!("{}/.{name}.froyo-download", dir.trim_end_matches('/'))
}

pub use froyo_provider_sdk::meta::{normalize_mode, same_mode, same_principal};

/// `owner:group`, `owner` or `:group` for chown; `None` when neither is given.
pub fn chown_spec(owner: Option<&str>, group: Option<&str>) -> Option<String> {
    match (owner, group) {
        (None, None) => None,
        (Some(o), None) => Some(o.to_owned()),
        (None, Some(g)) => Some(format!(":{g}")),
        (Some(o), Some(g)) => Some(format!("{o}:{g}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn parse(type_name: &str, config: Value) -> Result<Config> {
        Config::parse(&Resource {
            id: "r".into(),
            type_name: type_name.into(),
            config: config.to_string(),
        })
    }

    const SHA: &str = "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4";

    #[test]
    fn formats_are_guessed_from_the_name() {
        assert_eq!(Format::guess("/tmp/app-1.0.tar.gz"), Some(Format::TarGz));
        assert_eq!(Format::guess("/tmp/APP.TGZ"), Some(Format::TarGz));
        assert_eq!(Format::guess("/tmp/a.tar"), Some(Format::Tar));
        assert_eq!(Format::guess("/tmp/a.zip"), Some(Format::Zip));
        assert_eq!(Format::guess("/tmp/a.tar.xz"), None);
        assert_eq!(Format::guess("/tmp/zip"), None);
        assert_eq!(Format::guess("/tmp/a.zip/b"), None);
        assert_eq!(Format::from_name("tgz"), Some(Format::TarGz));
        assert_eq!(
            Format::from_name("tar.gz").map(Format::name),
            Some("tar.gz")
        );
    }

    #[test]
    fn extract_configs_take_a_format_or_a_telling_name() {
        let Config::Extract(c) = parse(
            EXTRACT,
            json!({"dest": "/opt/a", "src": "/tmp/a.bin", "format": "tgz", "strip_components": 1}),
        )
        .unwrap() else {
            panic!("not an extract")
        };
        assert_eq!(c.format().unwrap(), Format::TarGz);
        let e = parse(
            EXTRACT,
            json!({"dest": "/opt/a", "src": "/tmp/a.bin", "strip_components": 0}),
        )
        .unwrap_err();
        assert!(
            e.message
                .starts_with("r: cannot tell the archive format from the name `/tmp/a.bin`"),
            "{}",
            e.message
        );
        let e = parse(EXTRACT, json!({"dest": "/", "src": "/a.zip"})).unwrap_err();
        assert!(
            e.message
                .contains("dest `/` is not an absolute path below /"),
            "{}",
            e.message
        );
    }

    #[test]
    fn header_problems_never_show_the_value() {
        let bad = parse(
            DOWNLOAD,
            json!({"dest": "/x", "url": "https://e.org/x", "sha256": SHA,
                   "headers": {"Authorization": "Bearer s3cret\r\nX-Evil: 1"}}),
        )
        .unwrap_err();
        assert_eq!(
            bad.message,
            "r: the value of header `Authorization` contains a line break or another control character"
        );
        assert!(!bad.message.contains("s3cret"));
        let e = parse(
            DOWNLOAD,
            json!({"dest": "/x", "url": "https://e.org/x", "sha256": SHA, "headers": {"Bad Name": "v"}}),
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("`Bad Name` is not a valid HTTP header name")
        );
        let e = parse(
            DOWNLOAD,
            json!({"dest": "/x", "url": "https://e.org/x\nnext", "sha256": SHA}),
        )
        .unwrap_err();
        assert!(
            e.message.contains("is not an http:// or https:// URL"),
            "{}",
            e.message
        );
        assert!(
            parse(
                DOWNLOAD,
                json!({"dest": "/x", "url": "ftp://e.org/x", "sha256": SHA})
            )
            .is_err()
        );
        assert!(
            parse(
                DOWNLOAD,
                json!({"dest": "/x", "url": "https://e.org/x", "sha256": "AB"})
            )
            .is_err()
        );
        assert!(
            parse(
                DOWNLOAD,
                json!({"dest": "/x", "url": "https://e.org/x", "sha256": SHA})
            )
            .is_ok()
        );
        assert!(parse("linux.net::other", json!({})).is_err());
    }

    #[test]
    fn paths_digests_and_principals() {
        assert_eq!(split_path("/opt/x.tgz"), ("/opt", "x.tgz"));
        assert_eq!(split_path("/x"), ("/", "x"));
        assert_eq!(download_temp("/opt/x.tgz"), "/opt/.x.tgz.froyo-download");
        assert_eq!(download_temp("/x"), "/.x.froyo-download");
        assert_eq!(sha256_hex(b"hi\n"), SHA);
        assert_eq!(short(SHA), "98ea6e4f216f…");
        assert!(is_sha256(SHA) && !is_sha256(&SHA.to_uppercase()) && !is_sha256("ab"));
        assert!(same_mode("644", Some("0644")) && !same_mode("0600", Some("0644")));
        assert_eq!(normalize_mode("755").as_deref(), Some("0755"));
        assert!(same_principal("0", Some("root"), Some(0)));
        assert!(!same_principal("app", Some("root"), Some(0)));
        assert_eq!(chown_spec(Some("a"), Some("b")).as_deref(), Some("a:b"));
        assert_eq!(chown_spec(None, Some("b")).as_deref(), Some(":b"));
        assert_eq!(chown_spec(None, None), None);
    }
}
