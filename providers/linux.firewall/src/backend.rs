//! Which firewall manager the target uses, and froyo's rules as that manager reports
//! them, in ONE `exec` per batch: a small shell script detects ufw or firewalld when
//! either is active (their rules would fight ours), otherwise lists froyo's nftables
//! table. Interpreting its output is pure, so it is tested on recorded results.

use froyo_provider_sdk::runner::{ExecArgs, ExecResult};
use froyo_provider_sdk::shell;
use froyo_provider_sdk::{ProviderError, Result};

use crate::nft::{self, Found};

/// Detects the active manager and prints `froyo-backend NAME` first; for nftables it then
/// becomes `nft -j list table inet froyo`, so the exit status and stderr are nft's own.
/// ufw counts only when `ufw status` says active (its service also runs when it is
/// disabled), firewalld only when `firewall-cmd --state` says running.
pub const DETECT_AND_LIST: &str = "\
if command -v ufw >/dev/null 2>&1 && ufw status 2>/dev/null | grep -q '^Status: active'; then echo 'froyo-backend ufw'; exit 0; fi
if command -v firewall-cmd >/dev/null 2>&1 && firewall-cmd --state >/dev/null 2>&1; then echo 'froyo-backend firewalld'; exit 0; fi
if ! command -v nft >/dev/null 2>&1; then echo 'froyo-backend none'; exit 0; fi
echo 'froyo-backend nftables'
exec nft -j list table inet froyo
";

/// Long enough for a slow `firewall-cmd` over D-Bus, short enough not to hang a plan.
const TIMEOUT_MS: u64 = 60_000;

pub fn detect_and_list_args() -> ExecArgs {
    ExecArgs {
        timeout_ms: Some(TIMEOUT_MS),
        ..ExecArgs::shell(DETECT_AND_LIST)
    }
}

/// The `nft -f -` call that runs `script` as one transaction.
pub fn script_args(script: &str) -> ExecArgs {
    ExecArgs {
        stdin: Some(script.to_owned()),
        timeout_ms: Some(TIMEOUT_MS),
        ..ExecArgs::argv(["nft", "-f", "-"])
    }
}

/// froyo's rules from the result of [`DETECT_AND_LIST`]; a missing table means none. Any
/// other manager than nftables is a permanent error that names it.
pub fn parse_detect_and_list(result: &ExecResult) -> Result<Vec<Found>> {
    let (first, rest) = result
        .stdout
        .split_once('\n')
        .unwrap_or((result.stdout.as_str(), ""));
    let Some(backend) = first.strip_prefix("froyo-backend ") else {
        shell::check(result.clone(), "detecting the firewall backend")?;
        return Err(ProviderError::permanent(format!(
            "detecting the firewall backend: unexpected output {:?}",
            shell::tail(&result.stdout, 200)
        )));
    };
    match backend.trim() {
        "nftables" => {}
        "none" => {
            return Err(ProviderError::permanent(
                "no firewall backend on the target: `nft` is not installed (linux.firewall \
                 needs nftables: install the `nftables` package)",
            ));
        }
        other => {
            return Err(ProviderError::permanent(format!(
                "the target's firewall is managed by {other}, which is active; linux.firewall \
                 only supports nftables yet, and rules of its own next to {other}'s would \
                 fight them: manage this rule with {other}, or disable {other} to let froyo \
                 use nftables"
            )));
        }
    }
    if !result.success() {
        if result.stderr.contains("No such file or directory") {
            // `list table` of a table that does not exist: froyo has written no rule yet.
            return Ok(Vec::new());
        }
        return Err(nft_error(result, "nft -j list table inet froyo"));
    }
    nft::parse_listing(rest).map_err(ProviderError::permanent)
}

/// An nft failure with its own message; a permission problem says what is needed.
pub fn nft_error(result: &ExecResult, what: &str) -> ProviderError {
    let e = match shell::check(result.clone(), what) {
        Ok(_) => return ProviderError::permanent(format!("{what}: failed")),
        Err(e) => e,
    };
    if result.stderr.contains("Operation not permitted") {
        return ProviderError::permanent(format!(
            "{}; changing the firewall needs root (CAP_NET_ADMIN): run the resource with become",
            e.message
        ));
    }
    e
}

#[cfg(test)]
mod tests {
    use froyo_provider_sdk::ErrorClass;

    use super::*;

    pub(crate) fn result(rc: i32, stdout: &str, stderr: &str) -> ExecResult {
        ExecResult {
            rc: Some(rc),
            signal: None,
            stdout: stdout.into(),
            stderr: stderr.into(),
            truncated: false,
            duration_ms: 2,
        }
    }

    #[test]
    fn lists_rules_and_treats_a_missing_table_as_none() {
        let listing = format!("froyo-backend nftables\n{}", crate::nft::tests::LISTING);
        let found = parse_detect_and_list(&result(0, &listing, "")).unwrap();
        assert_eq!(found.len(), 10);
        let missing = result(
            1,
            "froyo-backend nftables\n",
            "Error: No such file or directory\nlist table inet froyo\n                 ^^^^^\n",
        );
        assert_eq!(parse_detect_and_list(&missing).unwrap(), Vec::new());
    }

    #[test]
    fn other_managers_and_failures_are_permanent_errors() {
        for manager in ["ufw", "firewalld"] {
            let e = parse_detect_and_list(&result(0, &format!("froyo-backend {manager}\n"), ""))
                .unwrap_err();
            assert_eq!(e.class, ErrorClass::Permanent);
            assert!(
                e.message
                    .starts_with(&format!("the target's firewall is managed by {manager}")),
                "{}",
                e.message
            );
            assert!(
                e.message.contains("only supports nftables"),
                "{}",
                e.message
            );
        }
        let e = parse_detect_and_list(&result(0, "froyo-backend none\n", "")).unwrap_err();
        assert!(
            e.message.contains("`nft` is not installed"),
            "{}",
            e.message
        );
        let e = parse_detect_and_list(&result(
            1,
            "froyo-backend nftables\n",
            "Error: Could not process rule: Operation not permitted\n",
        ))
        .unwrap_err();
        assert!(e.message.contains("needs root"), "{}", e.message);
        let e = parse_detect_and_list(&result(2, "", "sh: 1: syntax error\n")).unwrap_err();
        assert_eq!(
            e.message,
            "detecting the firewall backend: exit status 2: sh: 1: syntax error"
        );
        let e = parse_detect_and_list(&result(0, "froyo-backend nftables\n{", "")).unwrap_err();
        assert!(e.message.contains("invalid JSON"), "{}", e.message);
    }

    #[test]
    fn the_detection_script_runs_under_sh() {
        // The script is shell code the unit tests cannot otherwise check: let the host's
        // sh parse it (`-n`: syntax only, nothing runs).
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", DETECT_AND_LIST])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(script_args("x\n").stdin.as_deref(), Some("x\n"));
        assert_eq!(script_args("x").argv.unwrap(), ["nft", "-f", "-"]);
    }
}
