//! `read`: the state of every service of the batch in ONE `exec`. A shell script detects
//! the init system the way the runner's `os.basic.init` fact does (systemd when
//! `/run/systemd/system` exists, then OpenRC, then sysvinit's `/etc/init.d`) and prints
//! what that init system says of each unit; [`parse`] turns the output into states.
//!
//! Output: a first line `@init systemd|openrc|sysvinit|unknown`, then
//! - systemd: `systemctl show -p Id,LoadState,ActiveState,UnitFileState,CanReload`
//!   (one block per unit, in argument order, blocks separated by a blank line), then one
//!   `@is-enabled WORD` per unit (it also answers for units that systemd-sysv-generator
//!   wraps around init scripts, where `UnitFileState` only says `generated`);
//! - OpenRC: `@rc-update` followed by `rc-update show`, then `@unit NAME EXISTS RC - RELOAD`;
//! - sysvinit: `@unit NAME EXISTS RC ENABLED RELOAD` (RC: exit status of `status`, LSB
//!   codes; ENABLED: an `S??NAME` link in `/etc/rc[2345].d`).
//!
//! A unit that does not exist is reported as such (`exists: false`), not as an error: one
//! missing unit must not fail the read of the whole batch; `diff` refuses it.

use froyo_provider_sdk::runner::{self, ExecArgs, ExecResult};
use froyo_provider_sdk::shell::{check, join, quote};
use froyo_provider_sdk::{Actual, ProviderError, Resource, Result};

use crate::config::{Init, ServiceConfig, script_name, systemd_name};
use crate::state::State;

/// The runner op `read` uses, so its parsing can be tested on recorded outputs (systemd
/// and OpenRC cannot run in the test container; sysvinit is also covered for real by the
/// integration test).
pub trait Ops {
    fn exec(&mut self, args: &ExecArgs) -> Result<ExecResult>;
}

struct Live;

impl Ops for Live {
    fn exec(&mut self, args: &ExecArgs) -> Result<ExecResult> {
        runner::exec(args)
    }
}

/// A read runs `status` of every init script of the batch; a hung one must not hold the
/// whole run for the runner's default of ten minutes.
const READ_TIMEOUT_MS: u64 = 120_000;

pub fn read(resources: Vec<Resource>) -> Result<Vec<Actual>> {
    read_with(&mut Live, resources)
}

pub fn read_with(ops: &mut impl Ops, resources: Vec<Resource>) -> Result<Vec<Actual>> {
    let configs = resources
        .iter()
        .map(|r| ServiceConfig::parse(r).map_err(|e| e.context(&r.id)))
        .collect::<Result<Vec<_>>>()?;
    if configs.is_empty() {
        return Ok(Vec::new());
    }
    let units: Vec<&str> = configs.iter().map(|c| c.unit.as_str()).collect();
    let mut args = ExecArgs::shell(script(&units));
    args.timeout_ms = Some(READ_TIMEOUT_MS);
    let result = check(ops.exec(&args)?, "reading service states")?;
    let states = parse(&result.stdout, &units)?;
    Ok(resources
        .iter()
        .zip(states)
        .map(|(r, s)| Actual {
            id: r.id.clone(),
            state: s.to_json(),
        })
        .collect())
}

/// Matches a `case` label that includes `reload` (`reload)`, `reload|force-reload)`), not
/// `force-reload)` alone, which LSB requires of every script and which may only restart.
const SYSV_RELOAD: &str = r"^[[:space:]]*\(?([a-z-]+\|)*reload(\|[a-z-]+)*\)";
/// OpenRC services offer reload only as an extra command.
const OPENRC_RELOAD: &str = r"^[[:space:]]*extra_(started_)?commands=.*reload";

/// The read script for `units` (names as configured; each branch uses its init system's
/// form of them).
pub fn script(units: &[&str]) -> String {
    let systemd = join(&units.iter().map(|u| systemd_name(u)).collect::<Vec<_>>());
    let scripts = join(&units.iter().map(|u| script_name(u)).collect::<Vec<_>>());
    format!(
        r#"if [ -d /run/systemd/system ]; then
  echo '@init systemd'
  set -- {systemd}
  systemctl show -p Id,LoadState,ActiveState,UnitFileState,CanReload -- "$@" || echo "@failed $?"
  for u in "$@"; do echo "@is-enabled $(systemctl is-enabled -- "$u" 2>/dev/null)"; done
elif [ -d /run/openrc ] || command -v openrc >/dev/null 2>&1; then
  echo '@init openrc'
  set -- {scripts}
  echo '@rc-update'
  rc-update show 2>/dev/null
  for u in "$@"; do
    if rc-service -e "$u" >/dev/null 2>&1; then
      rc-service "$u" status </dev/null >/dev/null 2>&1; rc=$?
      r=0; grep -Eq {openrc_reload} "/etc/init.d/$u" 2>/dev/null && r=1
      echo "@unit $u 1 $rc - $r"
    else
      echo "@unit $u 0 - - 0"
    fi
  done
elif [ -d /etc/init.d ]; then
  echo '@init sysvinit'
  set -- {scripts}
  for u in "$@"; do
    f="/etc/init.d/$u"
    if [ -f "$f" ] && [ -x "$f" ]; then
      "$f" status </dev/null >/dev/null 2>&1; rc=$?
      e=0
      for l in /etc/rc[2345].d/S??"$u"; do if [ -L "$l" ] || [ -e "$l" ]; then e=1; fi; done
      r=0; grep -Eq {sysv_reload} "$f" && r=1
      echo "@unit $u 1 $rc $e $r"
    else
      echo "@unit $u 0 - 0 0"
    fi
  done
else
  echo '@init unknown'
fi
"#,
        openrc_reload = quote(OPENRC_RELOAD),
        sysv_reload = quote(SYSV_RELOAD),
    )
}

/// The states of `units` (as configured, in order) from the read script's output.
pub fn parse(stdout: &str, units: &[&str]) -> Result<Vec<State>> {
    let mut lines = stdout.lines();
    let init = match lines.next().map(str::trim) {
        Some("@init systemd") => Init::Systemd,
        Some("@init openrc") => Init::Openrc,
        Some("@init sysvinit") => Init::Sysvinit,
        Some("@init unknown") => {
            return Err(ProviderError::permanent(
                "no supported init system on the target: systemd does not run (no /run/systemd/system), OpenRC is not installed and there is no /etc/init.d",
            ));
        }
        other => {
            return Err(ProviderError::permanent(format!(
                "unexpected output from the service read script: {other:?}"
            )));
        }
    };
    let rest: Vec<&str> = lines.collect();
    match init {
        Init::Systemd => parse_systemd(&rest, units),
        Init::Openrc | Init::Sysvinit => parse_scripts(init, &rest, units),
    }
}

fn malformed(what: impl std::fmt::Display) -> ProviderError {
    ProviderError::permanent(format!(
        "unexpected output from the service read script: {what}"
    ))
}

fn parse_systemd(lines: &[&str], units: &[&str]) -> Result<Vec<State>> {
    let (show, tail): (Vec<&str>, Vec<&str>) = {
        let split = lines
            .iter()
            .position(|l| l.starts_with('@'))
            .unwrap_or(lines.len());
        (lines[..split].to_vec(), lines[split..].to_vec())
    };
    if let Some(failed) = tail.iter().find_map(|l| l.strip_prefix("@failed ")) {
        return Err(ProviderError::permanent(format!(
            "systemctl show exited {failed}: {}",
            show.join("\n").trim()
        )));
    }
    // Blocks come in argument order; matching by position (not by `Id`) keeps aliases
    // right: `systemctl show sshd.service` answers with `Id=ssh.service`.
    let mut blocks: Vec<Vec<(&str, &str)>> = Vec::new();
    let mut current = Vec::new();
    for line in show {
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
            }
        } else if let Some((k, v)) = line.split_once('=') {
            current.push((k, v));
        } else {
            return Err(malformed(format!("`{line}` in systemctl show output")));
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    let words: Vec<&str> = tail
        .iter()
        .filter_map(|l| l.strip_prefix("@is-enabled"))
        .map(str::trim)
        .collect();
    if blocks.len() != units.len() || words.len() != units.len() {
        return Err(malformed(format!(
            "{} units asked, systemctl answered for {} (show) and {} (is-enabled)",
            units.len(),
            blocks.len(),
            words.len()
        )));
    }
    Ok(units
        .iter()
        .zip(blocks)
        .zip(words)
        .map(|((unit, block), word)| systemd_state(unit, &block, word))
        .collect())
}

fn systemd_state(unit: &str, block: &[(&str, &str)], is_enabled: &str) -> State {
    let get = |key: &str| {
        block
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .unwrap_or_default()
    };
    let load = get("LoadState");
    let active = get("ActiveState");
    // `is-enabled` knows about init scripts wrapped by systemd-sysv-generator, where
    // `UnitFileState` only says `generated`; fall back to `UnitFileState` when it said
    // nothing.
    let boot = if is_enabled.is_empty() {
        get("UnitFileState")
    } else {
        is_enabled
    };
    let masked = load == "masked" || boot.starts_with("masked");
    let enabled = match boot {
        "enabled" | "enabled-runtime" => Some(true),
        "disabled" | "linked" | "linked-runtime" | "masked" | "masked-runtime" => Some(false),
        // static, indirect, generated, transient, alias: nothing `enable` could change.
        _ => None,
    };
    State {
        init: Init::Systemd,
        name: systemd_name(unit),
        // A unit whose file was removed while it runs is `not-found` but still active.
        exists: load != "not-found" || !matches!(active, "inactive" | ""),
        running: Some(matches!(active, "active" | "reloading" | "activating")),
        status: active.to_owned(),
        enabled,
        boot: if boot.is_empty() { "unknown" } else { boot }.to_owned(),
        masked,
        can_reload: get("CanReload") == "yes",
        runlevels: Vec::new(),
    }
}

fn parse_scripts(init: Init, lines: &[&str], units: &[&str]) -> Result<Vec<State>> {
    // `rc-update show`: `  nginx | default boot` for each service in a runlevel.
    let mut runlevels: Vec<(&str, Vec<String>)> = Vec::new();
    let mut unit_lines = Vec::new();
    let mut in_rc_update = false;
    for line in lines {
        if *line == "@rc-update" {
            in_rc_update = true;
        } else if let Some(rest) = line.strip_prefix("@unit ") {
            in_rc_update = false;
            unit_lines.push(rest);
        } else if in_rc_update {
            if let Some((name, levels)) = line.split_once('|') {
                let levels: Vec<String> = levels.split_whitespace().map(str::to_owned).collect();
                if !levels.is_empty() {
                    runlevels.push((name.trim(), levels));
                }
            }
        } else if !line.trim().is_empty() {
            return Err(malformed(format!("`{line}`")));
        }
    }
    if unit_lines.len() != units.len() {
        return Err(malformed(format!(
            "{} units asked, {} answered",
            units.len(),
            unit_lines.len()
        )));
    }
    units
        .iter()
        .zip(unit_lines)
        .map(|(unit, line)| {
            let name = script_name(unit);
            let fields: Vec<&str> = line.split(' ').collect();
            let [got, exists, rc, enabled, reload] = fields[..] else {
                return Err(malformed(format!("`@unit {line}`")));
            };
            if got != name {
                return Err(malformed(format!("asked about {name}, got {got}")));
            }
            let rc: Option<i32> = rc.parse().ok();
            let running = match (init, rc) {
                (_, Some(0)) => Some(true),
                // OpenRC: 3 is stopped; other codes (crashed, inactive) are not running
                // either, and `start` is what brings them back.
                (Init::Openrc, Some(_)) => Some(false),
                // LSB: 1 dead with a pid file, 2 dead with a lock file, 3 not running;
                // 4 and anything else is "unknown".
                (_, Some(1..=3)) => Some(false),
                _ => None,
            };
            let levels = runlevels
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, l)| l.clone())
                .unwrap_or_default();
            let (enabled, boot) = match init {
                Init::Openrc if levels.is_empty() => (false, "in no runlevel".to_owned()),
                Init::Openrc => (true, format!("runlevels {}", levels.join(" "))),
                _ if enabled == "1" => (true, "S link in /etc/rc[2345].d".to_owned()),
                _ => (false, "no S link in /etc/rc[2345].d".to_owned()),
            };
            Ok(State {
                init,
                name: name.to_owned(),
                exists: exists == "1",
                running,
                status: match rc {
                    Some(rc) => format!("status exit {rc}"),
                    None => "unknown".to_owned(),
                },
                enabled: Some(enabled),
                boot,
                masked: false,
                can_reload: reload == "1",
                runlevels: levels,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::SERVICE;

    /// Answers every exec with one recorded output.
    struct Recorded {
        stdout: &'static str,
        scripts: Vec<String>,
    }

    impl Ops for Recorded {
        fn exec(&mut self, args: &ExecArgs) -> Result<ExecResult> {
            self.scripts.push(args.shell.clone().unwrap_or_default());
            Ok(ExecResult {
                rc: Some(0),
                signal: None,
                stdout: self.stdout.into(),
                stderr: String::new(),
                truncated: false,
                duration_ms: 5,
            })
        }
    }

    fn resource(unit: &str) -> Resource {
        Resource {
            id: unit.into(),
            type_name: SERVICE.into(),
            config: json!({"unit": unit, "state": "running"}).to_string(),
        }
    }

    /// In the format of systemd 252 (Debian 12); systemd cannot run as PID 1 in the
    /// test container, so this is written after its output rather than recorded here:
    /// nginx running and enabled, an alias (`sshd` → `ssh.service`), a missing unit, a
    /// static unit, a masked one and an init script wrapped by systemd-sysv-generator.
    const SYSTEMD: &str = "@init systemd
Id=nginx.service
LoadState=loaded
ActiveState=active
UnitFileState=enabled
CanReload=yes

Id=ssh.service
LoadState=loaded
ActiveState=inactive
UnitFileState=disabled
CanReload=yes

Id=nope.service
LoadState=not-found
ActiveState=inactive
UnitFileState=
CanReload=no

Id=systemd-journald.service
LoadState=loaded
ActiveState=active
UnitFileState=static
CanReload=no

Id=apache2.service
LoadState=masked
ActiveState=inactive
UnitFileState=masked
CanReload=no

Id=legacy.service
LoadState=loaded
ActiveState=failed
UnitFileState=generated
CanReload=no
@is-enabled enabled
@is-enabled disabled
@is-enabled
@is-enabled static
@is-enabled masked
@is-enabled enabled
";

    #[test]
    fn systemd_batch_in_one_exec() {
        let mut ops = Recorded {
            stdout: SYSTEMD,
            scripts: Vec::new(),
        };
        let units = [
            "nginx",
            "sshd",
            "nope",
            "systemd-journald.service",
            "apache2",
            "legacy",
        ];
        let actuals = read_with(&mut ops, units.iter().map(|u| resource(u)).collect()).unwrap();
        assert_eq!(ops.scripts.len(), 1);
        let script = &ops.scripts[0];
        assert!(
            script.contains(
                "set -- nginx.service sshd.service nope.service systemd-journald.service apache2.service legacy.service\n"
            ),
            "{script}"
        );
        assert!(
            script.contains("set -- nginx sshd nope systemd-journald apache2 legacy\n"),
            "{script}"
        );
        let states: Vec<State> = actuals
            .iter()
            .map(|a| State::parse(&a.state).unwrap())
            .collect();
        let s = &states[0];
        assert_eq!(
            (
                s.init,
                s.name.as_str(),
                s.exists,
                s.running,
                s.enabled,
                s.can_reload
            ),
            (
                Init::Systemd,
                "nginx.service",
                true,
                Some(true),
                Some(true),
                true
            )
        );
        assert_eq!(states[1].name, "sshd.service");
        assert_eq!(
            (states[1].running, states[1].enabled),
            (Some(false), Some(false))
        );
        assert!(!states[2].exists);
        assert_eq!(
            (states[3].enabled, states[3].boot.as_str()),
            (None, "static")
        );
        assert!(states[4].masked && states[4].exists);
        assert_eq!(states[4].enabled, Some(false));
        assert_eq!(
            (states[5].running, states[5].enabled),
            (Some(false), Some(true))
        );
        assert_eq!(states[5].status, "failed");
    }

    #[test]
    fn systemd_answers_that_do_not_add_up_are_errors() {
        let e = parse(
            "@init systemd\nId=a.service\nLoadState=loaded\n@is-enabled enabled\n",
            &["a", "b"],
        )
        .unwrap_err();
        assert!(e.message.contains("2 units asked"), "{e}");
        let e = parse(
            "@init systemd\nFailed to connect to bus\n@failed 1\n",
            &["a"],
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "systemctl show exited 1: Failed to connect to bus"
        );
    }

    /// In the format of OpenRC 0.52 (Alpine 3.19), which cannot run here either:
    /// `rc-update show` lists the services that are in a runlevel; nginx is started and
    /// in `default`, crond is stopped and in no runlevel, sshd crashed (32).
    const OPENRC: &str = "@init openrc
@rc-update
               acpid |      default
            bootmisc | boot
               nginx |      default
            hostname | boot
@unit nginx 1 0 - 1
@unit crond 1 3 - 0
@unit sshd 1 32 - 0
@unit nope 0 - - 0
";

    #[test]
    fn openrc_status_codes_and_runlevels() {
        let states = parse(OPENRC, &["nginx.service", "crond", "sshd", "nope"]).unwrap();
        assert_eq!(states[0].name, "nginx");
        assert_eq!(
            (states[0].running, states[0].enabled, states[0].can_reload),
            (Some(true), Some(true), true)
        );
        assert_eq!(states[0].runlevels, ["default"]);
        assert_eq!(
            (states[1].running, states[1].enabled),
            (Some(false), Some(false))
        );
        assert_eq!(
            (states[2].running, states[2].status.as_str()),
            (Some(false), "status exit 32")
        );
        assert!(!states[3].exists);
    }

    /// Recorded in this Debian 12 container (no systemd, no OpenRC) with `ssh
    /// dbus.service hwclock.sh postgresql nope`: three stopped services (LSB 3) with S01
    /// links in rc2.d, `hwclock.sh`, which has no `status` and exits 1 with its usage
    /// (read as "dead", LSB's meaning of 1), and a missing script.
    const SYSVINIT: &str = "@init sysvinit
@unit ssh 1 3 1 1
@unit dbus 1 3 1 1
@unit hwclock.sh 1 1 0 1
@unit postgresql 1 3 1 1
@unit nope 0 - 0 0
";

    #[test]
    fn sysvinit_lsb_status_codes_and_rc_links() {
        let states = parse(
            SYSVINIT,
            &["ssh", "dbus.service", "hwclock.sh", "postgresql", "nope"],
        )
        .unwrap();
        assert_eq!(
            (
                states[0].init,
                states[0].running,
                states[0].enabled,
                states[0].can_reload
            ),
            (Init::Sysvinit, Some(false), Some(true), true)
        );
        assert_eq!(
            (states[1].name.as_str(), states[1].status.as_str()),
            ("dbus", "status exit 3")
        );
        assert_eq!(
            (states[2].running, states[2].enabled),
            (Some(false), Some(false))
        );
        assert!(!states[4].exists);
        // Running (0) and LSB "unknown" (4, or anything outside 0-3).
        let states = parse(
            "@init sysvinit\n@unit a 1 0 1 0\n@unit b 1 4 0 0\n@unit c 1 150 0 0\n",
            &["a", "b", "c"],
        )
        .unwrap();
        assert_eq!(
            states.iter().map(|s| s.running).collect::<Vec<_>>(),
            [Some(true), None, None]
        );
        let e = parse("@init sysvinit\n@unit other 1 0 1 1\n", &["ssh"]).unwrap_err();
        assert!(e.message.contains("asked about ssh, got other"), "{e}");
        let e = parse("@init unknown\n", &["ssh"]).unwrap_err();
        assert!(e.message.contains("no supported init system"), "{e}");
    }

    #[test]
    fn reload_patterns_match_what_they_should() {
        // The patterns run in grep -E on the target; check them with the host's grep.
        let grep = |pattern: &str, text: &str| {
            use std::io::Write;
            let mut child = std::process::Command::new("grep")
                .args(["-Eq", pattern])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            child.wait().unwrap().success()
        };
        assert!(grep(SYSV_RELOAD, "  reload)\n"));
        assert!(grep(SYSV_RELOAD, "  reload|force-reload)\n"));
        assert!(grep(SYSV_RELOAD, "\tforce-reload|reload)\n"));
        assert!(!grep(SYSV_RELOAD, "  force-reload)\n"));
        assert!(!grep(SYSV_RELOAD, "  restart|force-reload)\n"));
        assert!(grep(OPENRC_RELOAD, "extra_started_commands=\"reload\"\n"));
        assert!(grep(
            OPENRC_RELOAD,
            "extra_commands=\"checkconfig reload\"\n"
        ));
        assert!(!grep(OPENRC_RELOAD, "extra_commands=\"checkconfig\"\n"));
    }
}
