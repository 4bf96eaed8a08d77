//! Fetching on the target: the runner has no HTTP client, so a download runs the
//! target's `curl` (or `wget` when there is no curl) through `exec`. Everything here is
//! pure (the commands, their stdin, how a failure is classified) and unit-tested.
//!
//! Header values may be secrets, so they never appear in an argv (which `ps` shows to
//! every user) nor in a message: curl reads its whole config (URL, output, headers) from
//! stdin (`--config -`); wget cannot read its config from a pipe, so the script copies
//! stdin into a `mktemp` file (mode 0600) for `--config` and removes it right after. Both
//! run under `umask 077`, so the temp download is private until `apply` sets its mode.

use std::collections::BTreeMap;

use froyo_provider_sdk::runner::{ExecArgs, ExecResult};
use froyo_provider_sdk::shell::{quote, tail};
use froyo_provider_sdk::{ErrorClass, ProviderError, Result};

/// Seconds allowed to open a connection; the transfer itself is bounded by the exec
/// timeout (10 minutes).
const CONNECT_TIMEOUT_SECS: u32 = 30;
/// Redirects followed, as browsers and package managers do for release downloads.
const MAX_REDIRECTS: u32 = 10;

/// The program that fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetcher {
    Curl,
    Wget,
}

impl Fetcher {
    pub fn name(self) -> &'static str {
        match self {
            Fetcher::Curl => "curl",
            Fetcher::Wget => "wget",
        }
    }
}

/// Prints the path of curl and of wget, each when installed.
pub fn detect_args() -> ExecArgs {
    ExecArgs::shell("command -v curl; command -v wget; true")
}

/// curl when [`detect_args`] found it, else wget; neither is a permanent error.
pub fn choose(stdout: &str) -> Result<Fetcher> {
    let found = |name: &str| {
        stdout
            .lines()
            .any(|l| l.trim().rsplit('/').next() == Some(name))
    };
    if found("curl") {
        Ok(Fetcher::Curl)
    } else if found("wget") {
        Ok(Fetcher::Wget)
    } else {
        Err(ProviderError::permanent(
            "neither curl nor wget is installed on the target: install one of them (for example with linux.pkg::package) before downloading",
        ))
    }
}

/// The exec that fetches `url` into `temp` (removing `temp` again when it fails).
pub fn fetch_args(
    fetcher: Fetcher,
    url: &str,
    temp: &str,
    headers: &BTreeMap<String, String>,
) -> ExecArgs {
    let on_failure = format!("[ $rc -eq 0 ] || rm -f -- {}; exit $rc", quote(temp));
    let (script, stdin) = match fetcher {
        // `-q` first: no ~/.curlrc changes what this does.
        Fetcher::Curl => (
            format!("umask 077; curl -q --config -; rc=$?; {on_failure}"),
            curl_config(url, temp, headers),
        ),
        Fetcher::Wget => (
            format!(
                "umask 077; cfg=$(mktemp) || exit 1; cat > \"$cfg\"; wget --config=\"$cfg\" -nv -O {} -- {}; rc=$?; rm -f -- \"$cfg\"; {on_failure}",
                quote(temp),
                quote(url),
            ),
            wget_config(headers),
        ),
    };
    ExecArgs {
        stdin: Some(stdin),
        ..ExecArgs::shell(script)
    }
}

/// A string in a curl config file: double-quoted, with `\` and `"` escaped (the config
/// checks refused line breaks and control characters).
fn curl_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// curl's config: `--fail` so an HTTP error is an exit code, the status on stdout
/// (`--write-out`) to classify it, redirects only to http(s).
pub fn curl_config(url: &str, temp: &str, headers: &BTreeMap<String, String>) -> String {
    let mut config = format!(
        "url = {}\noutput = {}\nfail\nsilent\nshow-error\nlocation\nmax-redirs = {MAX_REDIRECTS}\nproto-redir = \"=http,https\"\nconnect-timeout = {CONNECT_TIMEOUT_SECS}\nwrite-out = \"%{{http_code}}\"\n",
        curl_string(url),
        curl_string(temp)
    );
    for (name, value) in headers {
        config.push_str(&format!(
            "header = {}\n",
            curl_string(&format!("{name}: {value}"))
        ));
    }
    config
}

/// wget's config (wgetrc syntax): one try (the engine retries by error class), the same
/// limits as curl, the headers.
pub fn wget_config(headers: &BTreeMap<String, String>) -> String {
    let mut config = format!(
        "tries = 1\nconnect_timeout = {CONNECT_TIMEOUT_SECS}\nmax_redirect = {MAX_REDIRECTS}\n"
    );
    for (name, value) in headers {
        config.push_str(&format!("header = {name}: {value}\n"));
    }
    config
}

/// The error for a failed fetch, classed so the engine retries what may pass later:
/// an HTTP 5xx, 408, a refused or dropped connection, a timeout or an unresolved name are
/// transient, 429 is throttled, other 4xx and TLS or local problems are permanent.
/// Header values are cut out of the tool's output, should it ever echo one.
pub fn failure(
    fetcher: Fetcher,
    url: &str,
    result: &ExecResult,
    headers: &BTreeMap<String, String>,
) -> ProviderError {
    let output = tail(&result.stderr, 1000).trim();
    let status = match fetcher {
        Fetcher::Curl => result
            .stdout
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|s| *s >= 400),
        Fetcher::Wget => wget_status(&result.stderr),
    };
    let (class, what) = match (status, fetcher, result.rc) {
        (Some(429), _, _) => (
            ErrorClass::Throttled,
            "HTTP status 429 (too many requests)".to_owned(),
        ),
        (Some(408), _, _) => (ErrorClass::Transient, "HTTP status 408".to_owned()),
        (Some(s), _, _) if s >= 500 => (ErrorClass::Transient, format!("HTTP status {s}")),
        (Some(s), _, _) => (ErrorClass::Permanent, format!("HTTP status {s}")),
        (None, Fetcher::Curl, Some(6)) => {
            (ErrorClass::Transient, "cannot resolve the host".to_owned())
        }
        (None, Fetcher::Curl, Some(7)) => (ErrorClass::Transient, "cannot connect".to_owned()),
        (None, Fetcher::Curl, Some(28)) => (ErrorClass::Transient, "timed out".to_owned()),
        (None, Fetcher::Curl, Some(18 | 52 | 55 | 56 | 92)) => {
            (ErrorClass::Transient, "the transfer was cut".to_owned())
        }
        (None, Fetcher::Wget, Some(4)) => (ErrorClass::Transient, "network failure".to_owned()),
        (None, _, None) => (ErrorClass::Transient, "killed".to_owned()),
        (None, _, Some(rc)) => (
            ErrorClass::Permanent,
            format!("{} exited {rc}", fetcher.name()),
        ),
    };
    let mut message = format!("downloading {url} failed: {what}");
    if !output.is_empty() {
        message.push_str(&format!(" ({output})"));
    }
    ProviderError::new(class, redact(&message, headers))
}

/// The status of wget's `ERROR 404: Not Found.` line.
fn wget_status(stderr: &str) -> Option<u16> {
    stderr.lines().find_map(|line| {
        let rest = &line[line.find("ERROR ")? + 6..];
        rest.get(..3)?
            .parse()
            .ok()
            .filter(|s| (400..600).contains(s))
    })
}

/// `text` with every header value of 4 or more characters replaced by `<redacted>`
/// (shorter ones are no secret, and cutting them would garble the message).
pub fn redact(text: &str, headers: &BTreeMap<String, String>) -> String {
    headers
        .values()
        .filter(|v| v.trim().chars().count() >= 4)
        .fold(text.to_owned(), |t, v| t.replace(v.trim(), "<redacted>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> BTreeMap<String, String> {
        [
            ("Authorization".to_owned(), "Bearer s3cr\"et\\x".to_owned()),
            ("X-Trace".to_owned(), "1".to_owned()),
        ]
        .into()
    }

    fn result(rc: i32, stdout: &str, stderr: &str) -> ExecResult {
        ExecResult {
            rc: Some(rc),
            signal: None,
            stdout: stdout.into(),
            stderr: stderr.into(),
            truncated: false,
            duration_ms: 1,
        }
    }

    #[test]
    fn curl_gets_everything_on_stdin_and_nothing_secret_in_argv() {
        let args = fetch_args(
            Fetcher::Curl,
            "https://e.org/a b",
            "/opt/.x.froyo-download",
            &headers(),
        );
        let script = args.shell.clone().unwrap();
        assert_eq!(
            script,
            "umask 077; curl -q --config -; rc=$?; [ $rc -eq 0 ] || rm -f -- /opt/.x.froyo-download; exit $rc"
        );
        assert!(!script.contains("s3cr"));
        assert_eq!(
            args.stdin.unwrap(),
            "url = \"https://e.org/a b\"\noutput = \"/opt/.x.froyo-download\"\nfail\nsilent\nshow-error\nlocation\n\
             max-redirs = 10\nproto-redir = \"=http,https\"\nconnect-timeout = 30\nwrite-out = \"%{http_code}\"\n\
             header = \"Authorization: Bearer s3cr\\\"et\\\\x\"\nheader = \"X-Trace: 1\"\n"
        );
    }

    #[test]
    fn wget_reads_headers_from_a_private_temp_config() {
        let args = fetch_args(
            Fetcher::Wget,
            "https://e.org/x",
            "/opt/.x.froyo-download",
            &headers(),
        );
        let script = args.shell.clone().unwrap();
        assert_eq!(
            script,
            "umask 077; cfg=$(mktemp) || exit 1; cat > \"$cfg\"; wget --config=\"$cfg\" -nv -O /opt/.x.froyo-download -- https://e.org/x; \
             rc=$?; rm -f -- \"$cfg\"; [ $rc -eq 0 ] || rm -f -- /opt/.x.froyo-download; exit $rc"
        );
        assert!(!script.contains("s3cr"));
        assert_eq!(
            args.stdin.unwrap(),
            "tries = 1\nconnect_timeout = 30\nmax_redirect = 10\nheader = Authorization: Bearer s3cr\"et\\x\nheader = X-Trace: 1\n"
        );
    }

    #[test]
    fn curl_is_preferred_and_neither_is_a_clear_error() {
        assert_eq!(
            choose("/usr/bin/curl\n/usr/bin/wget\n").unwrap(),
            Fetcher::Curl
        );
        assert_eq!(choose("/usr/bin/wget\n").unwrap(), Fetcher::Wget);
        let e = choose("").unwrap_err();
        assert_eq!(e.class, ErrorClass::Permanent);
        assert!(e.message.starts_with("neither curl nor wget is installed"));
        assert!(choose("/usr/bin/curly\n").is_err());
    }

    #[test]
    fn failures_are_classed_by_status_and_exit_code() {
        let url = "https://e.org/x";
        let curl = |rc, out: &str, err: &str| {
            failure(Fetcher::Curl, url, &result(rc, out, err), &headers())
        };
        let e = curl(
            22,
            "404",
            "curl: (22) The requested URL returned error: 404\n",
        );
        assert_eq!(e.class, ErrorClass::Permanent);
        assert_eq!(
            e.message,
            "downloading https://e.org/x failed: HTTP status 404 (curl: (22) The requested URL returned error: 404)"
        );
        assert_eq!(curl(22, "503", "").class, ErrorClass::Transient);
        assert_eq!(curl(22, "429", "").class, ErrorClass::Throttled);
        assert_eq!(curl(22, "408", "").class, ErrorClass::Transient);
        let e = curl(
            7,
            "000",
            "curl: (7) Failed to connect to e.org port 443: Connection refused",
        );
        assert_eq!(e.class, ErrorClass::Transient);
        assert!(
            e.message.contains("failed: cannot connect (curl: (7)"),
            "{}",
            e.message
        );
        assert_eq!(curl(6, "000", "").class, ErrorClass::Transient);
        assert_eq!(curl(28, "000", "").class, ErrorClass::Transient);
        let e = curl(60, "000", "curl: (60) SSL certificate problem");
        assert_eq!(e.class, ErrorClass::Permanent);
        assert!(e.message.contains("curl exited 60"), "{}", e.message);

        let wget = |rc, err: &str| failure(Fetcher::Wget, url, &result(rc, "", err), &headers());
        let e = wget(
            8,
            "https://e.org/x:\n2026-01-01 00:00:00 ERROR 404: Not Found.\n",
        );
        assert_eq!(
            (e.class, e.message.contains("HTTP status 404")),
            (ErrorClass::Permanent, true)
        );
        assert_eq!(
            wget(8, "ERROR 502: Bad Gateway.").class,
            ErrorClass::Transient
        );
        assert_eq!(
            wget(4, "failed: Connection refused.").class,
            ErrorClass::Transient
        );
        assert_eq!(wget(5, "").class, ErrorClass::Permanent);
    }

    #[test]
    fn header_values_are_redacted_from_messages() {
        let e = failure(
            Fetcher::Curl,
            "https://e.org/x",
            &result(22, "401", "server said: Bearer s3cr\"et\\x is wrong"),
            &headers(),
        );
        assert!(!e.message.contains("s3cr"), "{}", e.message);
        assert!(
            e.message.contains("server said: <redacted> is wrong"),
            "{}",
            e.message
        );
        // One-character values are left alone: the `1` of `401` stays.
        assert!(e.message.contains("HTTP status 401"));
    }
}
