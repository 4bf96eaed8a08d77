//! Unpacking on the target: the shell scripts `apply` runs through `exec` to unpack an
//! archive (`tar`, `unzip`), re-own its files and move a verified download into place.
//! Pure string building, unit-tested here and run for real by the integration tests.
//!
//! Every path is quoted with the SDK's POSIX quoting; every script fails as a whole
//! (`&&` chains, explicit exit codes) so `apply` never writes a marker for a half-done
//! unpack.

use froyo_provider_sdk::shell::quote;

use crate::config::{Format, split_path};

/// What to unpack where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpack<'a> {
    pub format: Format,
    pub src: &'a str,
    pub dest: &'a str,
    pub strip_components: u32,
    /// Removed before unpacking, so a failed unpack never looks done.
    pub marker: &'a str,
    /// `owner:group`, `owner` or `:group`, applied to dest and everything in it.
    pub chown: Option<&'a str>,
}

/// Moves each argument after the first into the directory named first: a directory
/// merges into an existing one (`cp -a`, then the temp tree is removed as a whole), a
/// symlink in the way is replaced, anything else is replaced by `mv -f`. A file never
/// replaces a directory, and nothing is ever moved *into* a same-named directory.
const MERGE: &str = r#"dest=$1; shift
for e in "$@"; do
  t="$dest/${e##*/}"
  if [ -L "$t" ]; then rm -f -- "$t" || exit 1; fi
  if [ -d "$e" ] && [ ! -L "$e" ] && [ -d "$t" ]; then
    cp -a -- "$e/." "$t/" || exit 1
  elif [ -d "$t" ]; then
    echo "cannot replace the directory $t with a file" >&2; exit 1
  else
    mv -f -- "$e" "$t" || exit 1
  fi
done"#;

/// Fails with a clear message when `tool` is not installed.
fn require(tool: &str, why: &str) -> String {
    format!(
        "command -v {tool} >/dev/null 2>&1 || {{ echo '{tool} is not installed on the target: it is needed for {why}' >&2; exit 127; }}"
    )
}

/// The script that unpacks an archive into dest (created when missing) and re-owns it.
///
/// tar runs with `--no-same-owner`: files belong to the runner's user (or to `owner`),
/// never to whatever uids the archive's author had, which root's tar would otherwise
/// restore. unzip has no `--strip-components`, so with stripping the zip is unpacked
/// into a temp directory beside dest (same filesystem: moves are renames) and the
/// entries at the stripped depth are merged into dest; entries above that depth are
/// dropped, as tar drops them. unzip's exit code 1 is "warnings only" and counts as done.
pub fn extract_script(u: &Unpack) -> String {
    let (src, dest, marker) = (quote(u.src), quote(u.dest), quote(u.marker));
    let prepare = format!("mkdir -p -- {dest} && rm -f -- {marker}");
    let mut script = match u.format {
        Format::TarGz | Format::Tar => {
            let mut tar = format!("tar -x -f {src} -C {dest} --no-same-owner");
            if u.format == Format::TarGz {
                tar.push_str(" -z");
            }
            if u.strip_components > 0 {
                tar.push_str(&format!(" --strip-components={}", u.strip_components));
            }
            format!("{}\n{prepare} && {tar}", require("tar", "tar archives"))
        }
        Format::Zip if u.strip_components == 0 => format!(
            "{}\n{prepare} && {{ unzip -o -q {src} -d {dest}; [ $? -le 1 ]; }}",
            require("unzip", "zip archives")
        ),
        Format::Zip => {
            let (parent, name) = split_path(u.dest);
            let temp = quote(&format!(
                "{}/.{name}.froyo-unzip",
                parent.trim_end_matches('/')
            ));
            let depth = u.strip_components + 1;
            format!(
                "{}\n{prepare} && rm -rf -- {temp} && mkdir -- {temp} && {{ unzip -o -q {src} -d {temp}; [ $? -le 1 ]; }} \
                 && find {temp} -mindepth {depth} -maxdepth {depth} -exec sh -c {} sh {dest} {{}} +\n\
                 rc=$?; rm -rf -- {temp}; [ $rc -eq 0 ]",
                require("unzip", "zip archives"),
                quote(MERGE)
            )
        }
    };
    if let Some(spec) = u.chown {
        script.push_str(&format!(" && {}", reown_command(spec, u.dest)));
    }
    script
}

/// `chown -R` of dest and everything in it; `-h` changes symlinks themselves and never
/// follows them out of the tree, `DEST/.` is the directory even when dest is a symlink.
pub fn reown_command(spec: &str, dest: &str) -> String {
    format!(
        "chown -R -h {} -- {}",
        quote(spec),
        quote(&format!("{}/.", dest.trim_end_matches('/')))
    )
}

/// Sets a verified download's mode and owner while it is still the private temp file,
/// then renames it over dest. A symlink at dest is removed first: `mv` onto a symlink to
/// a directory would move the file into that directory.
pub fn install_script(
    temp: &str,
    dest: &str,
    mode: Option<&str>,
    chown: Option<&str>,
    dest_is_symlink: bool,
) -> String {
    let (temp, dest) = (quote(temp), quote(dest));
    let mut steps = Vec::new();
    if let Some(mode) = mode {
        steps.push(format!("chmod {} -- {temp}", quote(mode)));
    }
    if let Some(spec) = chown {
        steps.push(format!("chown {} -- {temp}", quote(spec)));
    }
    if dest_is_symlink {
        steps.push(format!("rm -f -- {dest}"));
    }
    steps.push(format!("mv -f -- {temp} {dest}"));
    steps.join(" && ")
}

/// chmod and chown of a file already in place.
pub fn metadata_script(dest: &str, mode: Option<&str>, chown: Option<&str>) -> Option<String> {
    let dest = quote(dest);
    let mut steps = Vec::new();
    if let Some(mode) = mode {
        steps.push(format!("chmod {} -- {dest}", quote(mode)));
    }
    if let Some(spec) = chown {
        steps.push(format!("chown {} -- {dest}", quote(spec)));
    }
    (!steps.is_empty()).then(|| steps.join(" && "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack(format: Format, strip: u32, chown: Option<&'static str>) -> Unpack<'static> {
        Unpack {
            format,
            src: "/srv/app 1.tar.gz",
            dest: "/opt/app",
            strip_components: strip,
            marker: "/opt/app/.froyo-extract",
            chown,
        }
    }

    #[test]
    fn tar_commands() {
        assert_eq!(
            extract_script(&unpack(Format::TarGz, 1, Some("app:app"))),
            "command -v tar >/dev/null 2>&1 || { echo 'tar is not installed on the target: it is needed for tar archives' >&2; exit 127; }\n\
             mkdir -p -- /opt/app && rm -f -- /opt/app/.froyo-extract && \
             tar -x -f '/srv/app 1.tar.gz' -C /opt/app --no-same-owner -z --strip-components=1 \
             && chown -R -h app:app -- /opt/app/."
        );
        let plain = extract_script(&unpack(Format::Tar, 0, None));
        assert!(
            plain.ends_with("tar -x -f '/srv/app 1.tar.gz' -C /opt/app --no-same-owner"),
            "{plain}"
        );
    }

    #[test]
    fn zip_commands_with_and_without_stripping() {
        let flat = extract_script(&unpack(Format::Zip, 0, None));
        assert!(flat.starts_with("command -v unzip "), "{flat}");
        assert!(
            flat.ends_with("mkdir -p -- /opt/app && rm -f -- /opt/app/.froyo-extract && { unzip -o -q '/srv/app 1.tar.gz' -d /opt/app; [ $? -le 1 ]; }"),
            "{flat}"
        );
        let stripped = extract_script(&unpack(Format::Zip, 2, Some(":www")));
        assert!(
            stripped.contains(
                "rm -rf -- /opt/.app.froyo-unzip && mkdir -- /opt/.app.froyo-unzip && { unzip -o -q '/srv/app 1.tar.gz' -d /opt/.app.froyo-unzip; [ $? -le 1 ]; } \
                 && find /opt/.app.froyo-unzip -mindepth 3 -maxdepth 3 -exec sh -c 'dest=$1; shift\n"
            ),
            "{stripped}"
        );
        assert!(
            stripped.ends_with(
                "done' sh /opt/app {} +\nrc=$?; rm -rf -- /opt/.app.froyo-unzip; [ $rc -eq 0 ] && chown -R -h :www -- /opt/app/."
            ),
            "{stripped}"
        );
    }

    #[test]
    fn installing_and_fixing_metadata() {
        assert_eq!(
            install_script(
                "/opt/.x.froyo-download",
                "/opt/x",
                Some("0644"),
                Some("0:0"),
                false
            ),
            "chmod 0644 -- /opt/.x.froyo-download && chown 0:0 -- /opt/.x.froyo-download && mv -f -- /opt/.x.froyo-download /opt/x"
        );
        assert_eq!(
            install_script("/t", "/my x", None, None, true),
            "rm -f -- '/my x' && mv -f -- /t '/my x'"
        );
        assert_eq!(
            metadata_script("/opt/x", Some("0600"), Some("app")).as_deref(),
            Some("chmod 0600 -- /opt/x && chown app -- /opt/x")
        );
        assert_eq!(metadata_script("/opt/x", None, None), None);
    }
}
