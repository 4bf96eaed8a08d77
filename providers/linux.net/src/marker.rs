//! The marker an extraction leaves in its dest: which archive content was unpacked there
//! and how, so an archive is unpacked again only when that changes.
//!
//! It lives inside dest as the dotfile [`MARKER_NAME`] rather than under a froyo state
//! directory on the target: it goes away with the directory (a wiped dest is unpacked
//! again, never mistaken for done), it needs no directory only root may create (a runner
//! without root that can unpack into dest can also write there), and one dest has one
//! extract resource (dest is the identity), so markers never collide.
//!
//! Its text is a pure function of what it records, so `read` compares the sha256 that
//! `file.stat` reports with the sha256 of the expected text and reads the marker only
//! when they differ (to say in the plan what changed).

use crate::config::{Format, sha256_hex};

/// The marker's file name inside dest.
pub const MARKER_NAME: &str = ".froyo-extract";

/// The marker of the extract into `dest`.
pub fn marker_path(dest: &str) -> String {
    format!("{}/{MARKER_NAME}", dest.trim_end_matches('/'))
}

/// What was unpacked into a directory. Owner and group are recorded so a change of them
/// alone re-owns the files instead of unpacking the archive again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Marker {
    /// The archive's sha256 when it was unpacked.
    pub sha256: String,
    pub format: Format,
    pub strip_components: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Marker {
    /// The file's text: comment lines, then `key value` lines in a fixed order.
    pub fn render(&self) -> String {
        let mut text = String::from(
            "# Written by froyo (linux.archive::extract): the archive last unpacked here.\n\
             # froyo unpacks it again when the archive changes or when this file is removed.\n",
        );
        text.push_str(&format!("sha256 {}\n", self.sha256));
        text.push_str(&format!("format {}\n", self.format.name()));
        text.push_str(&format!("strip_components {}\n", self.strip_components));
        if let Some(owner) = &self.owner {
            text.push_str(&format!("owner {owner}\n"));
        }
        if let Some(group) = &self.group {
            text.push_str(&format!("group {group}\n"));
        }
        text
    }

    /// The sha256 of [`Marker::render`], what `file.stat` reports for a current marker.
    pub fn sha256_of_text(&self) -> String {
        sha256_hex(self.render().as_bytes())
    }

    /// Reads a marker's text back; `None` when it is not one (hand-edited, truncated,
    /// written by a future version with a different meaning), which plans a new unpack.
    /// Unknown keys are skipped so a newer froyo may add some.
    pub fn parse(text: &str) -> Option<Marker> {
        let (mut sha256, mut format, mut strip, mut owner, mut group) =
            (None, None, None, None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once(' ')?;
            let value = value.trim();
            match key {
                "sha256" if crate::config::is_sha256(value) => sha256 = Some(value.to_owned()),
                "format" => format = Some(Format::from_name(value)?),
                "strip_components" => strip = Some(value.parse().ok()?),
                "owner" if !value.is_empty() => owner = Some(value.to_owned()),
                "group" if !value.is_empty() => group = Some(value.to_owned()),
                "sha256" | "owner" | "group" => return None,
                _ => {}
            }
        }
        Some(Marker {
            sha256: sha256?,
            format: format?,
            strip_components: strip?,
            owner,
            group,
        })
    }

    /// The same archive unpacked the same way: only owner or group may differ.
    pub fn same_unpack(&self, other: &Marker) -> bool {
        self.sha256 == other.sha256
            && self.format == other.format
            && self.strip_components == other.strip_components
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4";

    fn marker() -> Marker {
        Marker {
            sha256: SHA.into(),
            format: Format::TarGz,
            strip_components: 1,
            owner: Some("app".into()),
            group: None,
        }
    }

    #[test]
    fn render_and_parse_round_trip() {
        let text = marker().render();
        assert!(text.ends_with(&format!(
            "sha256 {SHA}\nformat tar.gz\nstrip_components 1\nowner app\n"
        )));
        assert_eq!(Marker::parse(&text), Some(marker()));
        assert_eq!(marker().sha256_of_text(), sha256_hex(text.as_bytes()));
        assert_eq!(marker_path("/opt/app/"), "/opt/app/.froyo-extract");
    }

    #[test]
    fn parsing_skips_comments_and_unknown_keys_and_refuses_broken_markers() {
        let text = format!("# x\n\nsha256 {SHA}\nformat tgz\nstrip_components 0\nlater_key 1\n");
        let m = Marker::parse(&text).unwrap();
        assert_eq!(
            (m.format, m.strip_components, m.owner),
            (Format::TarGz, 0, None)
        );
        assert_eq!(Marker::parse(""), None);
        assert_eq!(Marker::parse(&format!("sha256 {SHA}\nformat tar\n")), None);
        assert_eq!(
            Marker::parse("sha256 nothex\nformat tar\nstrip_components 0\n"),
            None
        );
        assert_eq!(
            Marker::parse(&format!("sha256 {SHA}\nformat rar\nstrip_components 0\n")),
            None
        );
        assert_eq!(
            Marker::parse(&format!("sha256 {SHA}\nformat zip\nstrip_components -1\n")),
            None
        );
        assert_eq!(Marker::parse("garbage"), None);
    }

    #[test]
    fn owner_changes_are_not_a_new_unpack() {
        let other = Marker {
            owner: Some("www-data".into()),
            ..marker()
        };
        assert!(marker().same_unpack(&other));
        assert_ne!(marker().sha256_of_text(), other.sha256_of_text());
        let restripped = Marker {
            strip_components: 0,
            ..marker()
        };
        assert!(!marker().same_unpack(&restripped));
    }
}
