//! dnf, yum and zypper: the read query (`rpm -q` for what is installed; `dnf`/`yum list
//! --showduplicates` or `zypper --xmlout search --details` for the versions the
//! repositories offer) and the parsing of their output. The candidate is the newest of
//! the installed and offered versions, by rpm's own ordering.
//!
//! These managers do not run on the Debian machines this project is tested on, so the
//! tests below parse recorded outputs instead of live ones.

use std::cmp::Ordering;

use crate::state::Info;
use crate::{Found, version};

/// `q_rpm TOOL ALL ALWAYS UNLESS_INSTALLED`: prints TOOL's `installed` section, then its
/// `available` section for the names that need a candidate. `rpm -q` prints "package x
/// is not installed" (no tabs) for a missing name and exits non-zero, which is fine here.
/// zypper gets `--no-refresh` so reading never refreshes its repositories.
pub const QUERY: &str = r#"q_rpm() {
  tool=$1
  if ! command -v "$tool" >/dev/null 2>&1 || ! command -v rpm >/dev/null 2>&1; then
    echo "@@froyo $tool missing"; return 0
  fi
  inst=$(rpm -q --qf '%{NAME}\t%{ARCH}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\n' $2 2>/dev/null)
  echo "@@froyo $tool installed"
  [ -z "$inst" ] || printf '%s\n' "$inst"
  have=" $(printf '%s\n' "$inst" | awk -F'\t' 'NF == 3 {printf "%s %s.%s ", $1, $1, $2}')"
  need_of "$have" "$3" "$4"
  if [ -n "$need" ]; then
    echo "@@froyo $tool available"
    case $tool in
      zypper) zypper --non-interactive --no-refresh --xmlout search --match-exact --details --type package $need ;;
      *) "$tool" -q list --showduplicates $need ;;
    esac
  fi
}
"#;

/// `installed`: `NAME\tARCH\tEVR` lines (the epoch only when the package has one).
pub fn parse_installed(text: &str, found: &mut Found) {
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, arch, evr] = fields[..] else {
            continue;
        };
        for key in [name.to_owned(), format!("{name}.{arch}")] {
            let info = found.entry(key).or_default();
            if info.installed.is_none() {
                info.installed = Some(evr.to_owned());
            }
        }
    }
}

/// `available` of dnf or yum: `list` tables under "Installed Packages" and "Available
/// Packages" headers (dnf5 writes them in lower case), rows `name.arch  evr  repo`. A
/// name too long for its column pushes the rest of the row onto the next line.
pub fn parse_list(text: &str, found: &mut Found) {
    let mut in_table = false;
    let mut pending: Option<String> = None;
    for line in text.lines() {
        let lower = line.trim().to_ascii_lowercase();
        if lower == "installed packages" || lower == "available packages" {
            in_table = true;
            pending = None;
            continue;
        }
        if !in_table || line.trim().is_empty() {
            continue;
        }
        let mut words: Vec<String> = pending.take().into_iter().collect();
        words.extend(line.split_whitespace().map(str::to_owned));
        match &words[..] {
            [alone] => pending = Some(alone.clone()),
            [name_arch, evr, ..] => {
                let Some((name, arch)) = name_arch.rsplit_once('.') else {
                    continue;
                };
                // yum marks an installed row's repo with `@`, but the version is the same.
                add_version(found, name, arch, evr);
            }
            [] => {}
        }
    }
}

/// `available` of zypper: one `<solvable …/>` element per line of `--xmlout search`.
pub fn parse_zypper(text: &str, found: &mut Found) {
    for line in text.lines() {
        let line = line.trim();
        if !line.starts_with("<solvable ") {
            continue;
        }
        let attr = |key: &str| -> Option<String> {
            let start = line.find(&format!(" {key}=\""))? + key.len() + 3;
            let end = line[start..].find('"')? + start;
            Some(unescape(&line[start..end]))
        };
        if attr("kind").as_deref().is_some_and(|k| k != "package") {
            continue;
        }
        let (Some(name), Some(edition)) = (attr("name"), attr("edition")) else {
            continue;
        };
        let arch = attr("arch").unwrap_or_default();
        add_version(found, &name, &arch, &edition);
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn add_version(found: &mut Found, name: &str, arch: &str, evr: &str) {
    for key in [name.to_owned(), format!("{name}.{arch}")] {
        let info = found.entry(key).or_default();
        if !info.versions.iter().any(|v| v == evr) {
            info.versions.push(evr.to_owned());
        }
    }
}

/// After both sections: the candidate is the newest known version.
pub fn settle(found: &mut Found) {
    for info in found.values_mut() {
        info.candidate = newest(info);
    }
}

fn newest(info: &Info) -> Option<String> {
    info.versions
        .iter()
        .chain(&info.installed)
        .max_by(|a, b| version::rpm(a, b).then(Ordering::Equal))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rpm -q --qf … nginx glibc froyo-nope` on Rocky Linux 9 (glibc in two arches).
    const RPM_Q: &str = "nginx\tx86_64\t2:1.20.1-14.el9_2.1\n\
        glibc\tx86_64\t2.34-83.el9_3.7\n\
        glibc\ti686\t2.34-83.el9_3.7\n\
        package froyo-nope is not installed\n";

    /// `dnf -q list --showduplicates nginx glibc htop-with-a-really-long-name-here` (a long
    /// name wraps its row).
    const DNF_LIST: &str = "Installed Packages
glibc.x86_64                      2.34-83.el9_3.7                     @baseos
nginx.x86_64                      2:1.20.1-14.el9_2.1                 @appstream
Available Packages
glibc.i686                        2.34-83.el9_3.7                     baseos
glibc.x86_64                      2.34-83.el9_3.7                     baseos
glibc.x86_64                      2.34-100.el9_4.2                    baseos
nginx.x86_64                      1:1.22.1-3.module+el9.2.0+1234+abcd appstream
nginx.x86_64                      2:1.20.1-14.el9_2.1                 appstream
htop-with-a-really-long-name-here.x86_64
                                  3.2.2-1.el9                         epel
";

    /// `yum -q list --showduplicates nginx` on CentOS 7.
    const YUM_LIST: &str = "Installed Packages
nginx.x86_64                      1:1.20.1-10.el7                     @epel
Available Packages
nginx.x86_64                      1:1.20.1-9.el7                      epel
nginx.x86_64                      1:1.20.1-10.el7                     epel
";

    /// `zypper --xmlout search --match-exact --details --type package nginx` on openSUSE
    /// Leap 15.5.
    const ZYPPER: &str = r#"<?xml version='1.0'?>
<stream>
<message type="info">Loading repository data...</message>
<message type="info">Reading installed packages...</message>
<search-result version="0.0">
<solvable-list>
<solvable status="installed" name="nginx" kind="package" edition="1.21.5-150400.3.3.1" arch="x86_64" repository="(System Packages)"/>
<solvable status="not-installed" name="nginx" kind="package" edition="1.21.5-150400.3.8.1" arch="x86_64" repository="Update repository with updates from SUSE Linux Enterprise 15"/>
<solvable status="not-installed" name="nginx" kind="srcpackage" edition="1.99-1" arch="noarch" repository="src"/>
<solvable status="not-installed" name="nginx" kind="package" edition="1.21.5-150400.1.8" arch="x86_64" repository="Main Repository"/>
</solvable-list>
</search-result>
</stream>
"#;

    /// zypper's answer when nothing matches (exit 104).
    const ZYPPER_NONE: &str = r#"<?xml version='1.0'?>
<stream>
<message type="info">No matching items found.</message>
</stream>
"#;

    #[test]
    fn rpm_installed_versions_with_epoch_and_arch() {
        let mut found = Found::new();
        parse_installed(RPM_Q, &mut found);
        assert_eq!(
            found["nginx"].installed.as_deref(),
            Some("2:1.20.1-14.el9_2.1")
        );
        assert_eq!(
            found["glibc.i686"].installed.as_deref(),
            Some("2.34-83.el9_3.7")
        );
        assert!(!found.contains_key("froyo-nope"));
    }

    #[test]
    fn dnf_list_gives_the_newest_version_as_candidate() {
        let mut found = Found::new();
        parse_installed(RPM_Q, &mut found);
        parse_list(DNF_LIST, &mut found);
        settle(&mut found);
        assert_eq!(
            found["glibc"].candidate.as_deref(),
            Some("2.34-100.el9_4.2")
        );
        assert_eq!(
            found["glibc.i686"].candidate.as_deref(),
            Some("2.34-83.el9_3.7")
        );
        // The epoch decides: 2:1.20 is newer than 1:1.22.
        assert_eq!(
            found["nginx"].candidate.as_deref(),
            Some("2:1.20.1-14.el9_2.1")
        );
        assert_eq!(found["nginx"].versions.len(), 2);
        let htop = &found["htop-with-a-really-long-name-here"];
        assert_eq!(htop.installed, None);
        assert_eq!(htop.candidate.as_deref(), Some("3.2.2-1.el9"));
    }

    #[test]
    fn yum_list_same_shape() {
        let mut found = Found::new();
        parse_list(YUM_LIST, &mut found);
        settle(&mut found);
        assert_eq!(found["nginx"].candidate.as_deref(), Some("1:1.20.1-10.el7"));
        assert_eq!(
            found["nginx.x86_64"].versions,
            ["1:1.20.1-10.el7", "1:1.20.1-9.el7"]
        );
    }

    #[test]
    fn zypper_solvables() {
        let mut found = Found::new();
        parse_zypper(ZYPPER, &mut found);
        settle(&mut found);
        let nginx = &found["nginx"];
        assert_eq!(nginx.candidate.as_deref(), Some("1.21.5-150400.3.8.1"));
        assert_eq!(nginx.versions.len(), 3, "{nginx:?}");
        assert!(
            !nginx.versions.contains(&"1.99-1".to_owned()),
            "source packages are skipped"
        );
        let mut none = Found::new();
        parse_zypper(ZYPPER_NONE, &mut none);
        assert!(none.is_empty());
    }
}
