//! apk (Alpine): the read query (`apk info -v` for what is installed, `apk search -e`
//! for the newest version the repositories offer) and the parsing of their output.
//!
//! apk does not run on the Debian machines this project is tested on, so the tests below
//! parse recorded outputs instead of live ones.

use crate::Found;

/// `q_apk ALL ALWAYS UNLESS_INSTALLED`. `apk info -v` lists every installed package as
/// `name-version-rN`; `apk search -e` prints the newest offered version of each name in
/// the same form.
pub const QUERY: &str = r#"q_apk() {
  if ! command -v apk >/dev/null 2>&1; then
    echo '@@froyo apk missing'; return 0
  fi
  inst=$(apk info -v 2>/dev/null)
  echo '@@froyo apk installed'
  [ -z "$inst" ] || printf '%s\n' "$inst"
  have=" $(printf '%s\n' "$inst" | awk '{n = split($0, p, "-"); s = p[1]; for (i = 2; i <= n - 2; i++) s = s "-" p[i]; printf "%s ", s}')"
  need_of "$have" "$2" "$3"
  if [ -n "$need" ]; then
    echo '@@froyo apk available'
    apk search -e $need
  fi
}
"#;

/// `name-1.2.3-r4` → (`name`, `1.2.3-r4`): the version is the last two dash-separated
/// parts, since names may contain dashes but versions end in `-rN`.
pub fn split(line: &str) -> Option<(&str, &str)> {
    let (rest, release) = line.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    (release.starts_with('r') && version.starts_with(|c: char| c.is_ascii_digit()))
        .then(|| (name, &line[name.len() + 1..]))
}

/// `installed`: `apk info -v` lines. Warnings and other noise do not split and are
/// skipped.
pub fn parse_installed(text: &str, found: &mut Found) {
    for (name, version) in text.lines().filter_map(|l| split(l.trim())) {
        found.entry(name.to_owned()).or_default().installed = Some(version.to_owned());
    }
}

/// `available`: `apk search -e` lines; the first line of a name is its newest version.
pub fn parse_search(text: &str, found: &mut Found) {
    for (name, version) in text.lines().filter_map(|l| split(l.trim())) {
        let info = found.entry(name.to_owned()).or_default();
        if !info.versions.iter().any(|v| v == version) {
            info.versions.push(version.to_owned());
        }
    }
}

/// After both sections: the offered version, else the installed one.
pub fn settle(found: &mut Found) {
    for info in found.values_mut() {
        info.candidate = info.versions.first().or(info.installed.as_ref()).cloned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Part of `apk info -v` on Alpine 3.19.
    const INFO: &str = "WARNING: opening /var/cache/apk: No such file or directory
musl-1.2.4_git20230717-r4
busybox-1.36.1-r15
nginx-1.24.0-r15
py3-setuptools-rust-1.8.1-r0
ca-certificates-bundle-20230506-r0
";

    /// `apk search -e nginx py3-setuptools-rust htop`.
    const SEARCH: &str = "nginx-1.24.0-r16
py3-setuptools-rust-1.8.1-r0
htop-3.2.2-r1
";

    #[test]
    fn names_with_dashes_split_from_versions() {
        assert_eq!(
            split("py3-setuptools-rust-1.8.1-r0"),
            Some(("py3-setuptools-rust", "1.8.1-r0"))
        );
        assert_eq!(
            split("musl-1.2.4_git20230717-r4"),
            Some(("musl", "1.2.4_git20230717-r4"))
        );
        assert_eq!(
            split("WARNING: opening /var/cache/apk: No such file or directory"),
            None
        );
        assert_eq!(split("nginx"), None);
    }

    #[test]
    fn installed_and_offered_versions() {
        let mut found = Found::new();
        parse_installed(INFO, &mut found);
        parse_search(SEARCH, &mut found);
        settle(&mut found);
        assert_eq!(found.len(), 6, "{found:?}");
        let nginx = &found["nginx"];
        assert_eq!(nginx.installed.as_deref(), Some("1.24.0-r15"));
        assert_eq!(nginx.candidate.as_deref(), Some("1.24.0-r16"));
        assert_eq!(
            found["py3-setuptools-rust"].candidate.as_deref(),
            Some("1.8.1-r0")
        );
        assert_eq!(found["htop"].installed, None);
        assert_eq!(found["htop"].candidate.as_deref(), Some("3.2.2-r1"));
        assert_eq!(found["busybox"].candidate.as_deref(), Some("1.36.1-r15"));
    }
}
