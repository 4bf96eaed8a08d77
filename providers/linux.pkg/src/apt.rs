//! apt/dpkg: the read query (`dpkg-query` for what is installed, `apt-cache policy` for
//! candidates and known versions) and the parsing of their output.

use crate::Found;
use crate::state::Info;

/// `q_apt ALL ALWAYS UNLESS_INSTALLED`: prints the `installed` section, then the
/// `policy` section for the names that need a candidate. dpkg-query exits 1 when a name
/// is unknown to it, which only means "not installed" here.
pub const QUERY: &str = r#"q_apt() {
  if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo '@@froyo apt missing'; return 0
  fi
  inst=$(dpkg-query -W -f='${Package}\t${Architecture}\t${db:Status-Abbrev}\t${Version}\n' $1 2>/dev/null)
  echo '@@froyo apt installed'
  [ -z "$inst" ] || printf '%s\n' "$inst"
  have=" $(printf '%s\n' "$inst" | awk -F'\t' '$3 ~ /^.[iWt]/ {printf "%s %s:%s ", $1, $1, $2}')"
  need_of "$have" "$2" "$3"
  if [ -n "$need" ]; then
    echo '@@froyo apt policy'
    apt-cache policy $need
  fi
}
"#;

/// A dpkg status counts as installed when the package is unpacked and configured, also
/// while triggers are pending (`W`, `t`); half-installed packages and left-over conffiles
/// (`c`) do not.
fn installed_status(abbrev: &str) -> bool {
    matches!(abbrev.as_bytes().get(1), Some(b'i' | b'W' | b't'))
}

/// `installed`: `Package\tArchitecture\tStatus-Abbrev\tVersion` lines.
pub fn parse_installed(text: &str, found: &mut Found) {
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, arch, status, version] = fields[..] else {
            continue;
        };
        if !installed_status(status) {
            continue;
        }
        for key in [name.to_owned(), format!("{name}:{arch}")] {
            let info = found.entry(key).or_default();
            // The first row wins: dpkg lists the native architecture first.
            if info.installed.is_none() {
                info.installed = Some(version.to_owned());
            }
        }
    }
}

/// `policy`: `apt-cache policy` blocks. A name apt does not know has no block at all; one
/// it knows without a version to install says `Candidate: (none)`.
pub fn parse_policy(text: &str, found: &mut Found) {
    let mut current: Option<String> = None;
    for line in text.lines() {
        if !line.starts_with(' ') {
            current = line.strip_suffix(':').map(str::to_owned);
            if let Some(name) = &current {
                found.entry(name.clone()).or_default();
            }
            continue;
        }
        let Some(name) = &current else { continue };
        let info: &mut Info = found.entry(name.clone()).or_default();
        let trimmed = line.trim();
        if let Some(candidate) = trimmed.strip_prefix("Candidate:") {
            let candidate = candidate.trim();
            info.candidate = (candidate != "(none)").then(|| candidate.to_owned());
        } else if let Some(rest) = line.strip_prefix(" *** ") {
            push_version(info, rest);
        } else if line.starts_with("     ") && !line.starts_with("      ") {
            // Version lines are indented by five, their sources by eight.
            push_version(info, line.trim());
        }
    }
}

fn push_version(info: &mut Info, line: &str) {
    if let Some(version) = line.split_whitespace().next()
        && !info.versions.iter().any(|v| v == version)
    {
        info.versions.push(version.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dpkg-query -W -f=… nginx nginx-common curl libc6 froyo-nope` on Debian 12, with
    /// curl removed but its conffiles left (`rc`).
    const INSTALLED: &str = "nginx\tamd64\tii \t1.22.1-9\n\
        nginx-common\tall\tii \t1.22.1-9\n\
        curl\tamd64\trc \t7.88.1-10+deb12u5\n\
        libc6\tamd64\tii \t2.36-9+deb12u4\n\
        libc6\ti386\tii \t2.36-9+deb12u4\n";

    /// `apt-cache policy nginx curl froyo-nope virtual-mail-transport` (the unknown name
    /// has no block; a purely virtual package has no candidate).
    const POLICY: &str = "nginx:
  Installed: 1.22.1-9
  Candidate: 1.22.1-9+deb12u1
  Version table:
     1.22.1-9+deb12u1 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
 *** 1.22.1-9 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
curl:
  Installed: (none)
  Candidate: 7.88.1-10+deb12u8
  Version table:
     7.88.1-10+deb12u8 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
     7.88.1-10+deb12u5 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
virtual-mail-transport:
  Installed: (none)
  Candidate: (none)
  Version table:
";

    #[test]
    fn installed_rows_by_name_and_by_arch() {
        let mut found = Found::new();
        parse_installed(INSTALLED, &mut found);
        assert_eq!(found["nginx"].installed.as_deref(), Some("1.22.1-9"));
        assert_eq!(found["nginx:amd64"].installed.as_deref(), Some("1.22.1-9"));
        assert_eq!(
            found["libc6:i386"].installed.as_deref(),
            Some("2.36-9+deb12u4")
        );
        assert!(
            !found.contains_key("curl"),
            "conffiles only is not installed"
        );
        assert!(!found.contains_key("froyo-nope"));
    }

    #[test]
    fn policy_candidates_and_version_tables() {
        let mut found = Found::new();
        parse_policy(POLICY, &mut found);
        let nginx = &found["nginx"];
        assert_eq!(nginx.candidate.as_deref(), Some("1.22.1-9+deb12u1"));
        assert_eq!(nginx.versions, ["1.22.1-9+deb12u1", "1.22.1-9"]);
        assert_eq!(
            found["curl"].candidate.as_deref(),
            Some("7.88.1-10+deb12u8")
        );
        assert_eq!(found["curl"].versions.len(), 2);
        assert_eq!(found["virtual-mail-transport"].candidate, None);
        assert!(!found.contains_key("froyo-nope"));
    }
}
