//! `apply`: runs one planned step with the init system's own tool (`systemctl`,
//! `rc-service`/`rc-update`, `/etc/init.d/NAME` with `update-rc.d` or `chkconfig`). A
//! failure is a permanent error with the tool's output. `destroy` changes nothing: a
//! service that is no longer declared is left as it is, because stopping or disabling
//! it is a decision the playbook should state (`state = "stopped"`).

use froyo_provider_sdk::runner::{self, ExecArgs, ExecResult};
use froyo_provider_sdk::shell::{check, quote};
use froyo_provider_sdk::{ApplyResult, Operation, ProviderError, Resource, Result};
use serde_json::json;

use crate::config::Init;
use crate::plan::{Payload, Step};

/// What the script prints when an `if_running` step finds the service stopped.
const NOT_RUNNING: &str = "@not-running";

pub fn apply(op: &Operation) -> Result<ApplyResult> {
    let payload: Payload = serde_json::from_str(&op.payload)
        .map_err(|e| ProviderError::permanent(format!("{}: malformed payload: {e}", op.id)))?;
    let result = runner::exec(&ExecArgs::shell(script(&payload))).map_err(|e| e.context(&op.id))?;
    outcome(&payload, result).map_err(|e| e.context(&op.id))
}

pub fn destroy(_resource: &Resource) -> Result<ApplyResult> {
    Ok(ApplyResult {
        changed: false,
        output: json!({"note": "a service that is no longer declared is left as it is"})
            .to_string(),
    })
}

/// The command line of `step` for the init system, as the error messages show it.
pub fn command(p: &Payload) -> String {
    let n = quote(&p.name);
    let verb = match p.step {
        Step::Start => "start",
        Step::Stop => "stop",
        Step::Enable => "enable",
        Step::Disable => "disable",
        Step::Restart => "restart",
        Step::Reload => "reload",
    };
    match (p.init, p.step) {
        (Init::Systemd, _) => format!("systemctl {verb} -- {n}"),
        (Init::Openrc, Step::Enable) => format!("rc-update add {n} default"),
        (Init::Openrc, Step::Disable) => {
            let mut line = format!("rc-update del {n}");
            for level in &p.runlevels {
                line.push(' ');
                line.push_str(&quote(level));
            }
            line
        }
        (Init::Openrc, _) => format!("rc-service {n} {verb}"),
        // `defaults` creates the links from the LSB header when there are none yet;
        // `enable` then turns K links left by an earlier `disable` back into S links.
        (Init::Sysvinit, Step::Enable) => format!(
            "if command -v update-rc.d >/dev/null 2>&1; then update-rc.d {n} defaults && update-rc.d {n} enable; \
             elif command -v chkconfig >/dev/null 2>&1; then chkconfig --add {n} && chkconfig {n} on; \
             else echo 'neither update-rc.d nor chkconfig is installed' >&2; exit 127; fi"
        ),
        (Init::Sysvinit, Step::Disable) => format!(
            "if command -v update-rc.d >/dev/null 2>&1; then update-rc.d {n} disable; \
             elif command -v chkconfig >/dev/null 2>&1; then chkconfig {n} off; \
             else echo 'neither update-rc.d nor chkconfig is installed' >&2; exit 127; fi"
        ),
        (Init::Sysvinit, _) => format!("/etc/init.d/{n} {verb}"),
    }
}

/// The whole script: optional daemon-reload, the "only if it runs" check, the command.
pub fn script(p: &Payload) -> String {
    let n = quote(&p.name);
    let mut script = String::new();
    if p.daemon_reload && p.init == Init::Systemd {
        script.push_str("systemctl daemon-reload || exit $?\n");
    }
    if p.init == Init::Sysvinit {
        // The script may have gone since the plan; say so plainly instead of
        // `/etc/init.d/x: not found` from the shell.
        script.push_str(&format!(
            "[ -x /etc/init.d/{n} ] || {{ echo 'service '{n}' does not exist on the target: there is no executable /etc/init.d/'{n} >&2; exit 1; }}\n"
        ));
    }
    if p.if_running {
        let running = match p.init {
            Init::Systemd => format!("systemctl is-active --quiet -- {n}"),
            Init::Openrc => format!("rc-service {n} status"),
            Init::Sysvinit => format!("/etc/init.d/{n} status"),
        };
        script.push_str(&format!(
            "if ! {running} </dev/null >/dev/null 2>&1; then echo {NOT_RUNNING}; exit 0; fi\n"
        ));
    }
    script.push_str(&command(p));
    script.push('\n');
    script
}

/// The result of the script: an error with the tool's output unless it exited 0;
/// unchanged when an `if_running` step found the service stopped.
pub fn outcome(p: &Payload, result: ExecResult) -> Result<ApplyResult> {
    let command = command(p);
    let result = check(result, &shown(p, &command))?;
    if p.if_running && result.stdout.lines().any(|l| l == NOT_RUNNING) {
        return Ok(ApplyResult {
            changed: false,
            output: json!({"command": command, "skipped": format!("{} is not running", p.name)})
                .to_string(),
        });
    }
    Ok(ApplyResult {
        changed: true,
        output: json!({"command": command, "stdout": result.stdout, "stderr": result.stderr})
            .to_string(),
    })
}

/// The command as error messages show it: the sysvinit enable/disable scripts, with
/// their fallback to chkconfig, are too long for that.
fn shown(p: &Payload, command: &str) -> String {
    let n = quote(&p.name);
    match (p.init, p.step) {
        (Init::Sysvinit, Step::Enable) => {
            format!("`update-rc.d {n} defaults && update-rc.d {n} enable` (or chkconfig)")
        }
        (Init::Sysvinit, Step::Disable) => format!("`update-rc.d {n} disable` (or chkconfig)"),
        _ => format!("`{command}`"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn payload(init: Init, step: Step) -> Payload {
        Payload {
            init,
            name: match init {
                Init::Systemd => "nginx.service".into(),
                _ => "nginx".into(),
            },
            step,
            daemon_reload: false,
            if_running: false,
            runlevels: Vec::new(),
        }
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
    fn commands_per_init_system() {
        assert_eq!(
            command(&payload(Init::Systemd, Step::Start)),
            "systemctl start -- nginx.service"
        );
        assert_eq!(
            command(&payload(Init::Systemd, Step::Disable)),
            "systemctl disable -- nginx.service"
        );
        assert_eq!(
            command(&payload(Init::Openrc, Step::Reload)),
            "rc-service nginx reload"
        );
        assert_eq!(
            command(&payload(Init::Openrc, Step::Enable)),
            "rc-update add nginx default"
        );
        let p = Payload {
            runlevels: vec!["default".into(), "boot".into()],
            ..payload(Init::Openrc, Step::Disable)
        };
        assert_eq!(command(&p), "rc-update del nginx default boot");
        assert_eq!(
            command(&payload(Init::Sysvinit, Step::Stop)),
            "/etc/init.d/nginx stop"
        );
        let enable = command(&payload(Init::Sysvinit, Step::Enable));
        assert!(
            enable.starts_with("if command -v update-rc.d >/dev/null 2>&1; then update-rc.d nginx defaults && update-rc.d nginx enable;")
                && enable.contains("chkconfig --add nginx && chkconfig nginx on"),
            "{enable}"
        );
    }

    #[test]
    fn scripts_add_daemon_reload_and_the_running_check() {
        let p = Payload {
            daemon_reload: true,
            ..payload(Init::Systemd, Step::Restart)
        };
        assert_eq!(
            script(&p),
            "systemctl daemon-reload || exit $?\nsystemctl restart -- nginx.service\n"
        );
        let p = Payload {
            if_running: true,
            ..payload(Init::Systemd, Step::Reload)
        };
        assert_eq!(
            script(&p),
            "if ! systemctl is-active --quiet -- nginx.service </dev/null >/dev/null 2>&1; then echo @not-running; exit 0; fi\nsystemctl reload -- nginx.service\n"
        );
        // daemon-reload means nothing without systemd.
        let p = Payload {
            daemon_reload: true,
            ..payload(Init::Openrc, Step::Start)
        };
        assert_eq!(script(&p), "rc-service nginx start\n");
    }

    #[test]
    fn the_sysvinit_script_checks_that_the_service_exists() {
        let s = script(&payload(Init::Sysvinit, Step::Start));
        assert_eq!(
            s,
            "[ -x /etc/init.d/nginx ] || { echo 'service 'nginx' does not exist on the target: there is no executable /etc/init.d/'nginx >&2; exit 1; }\n/etc/init.d/nginx start\n"
        );
        // The check really works (and the shell accepts the script).
        let p = Payload {
            name: "froyo-unit-test-surely-missing".into(),
            ..payload(Init::Sysvinit, Step::Start)
        };
        let out = std::process::Command::new("sh")
            .args(["-c", &script(&p)])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("there is no executable /etc/init.d/froyo-unit-test-surely-missing")
        );
    }

    #[test]
    fn outcomes() {
        let p = payload(Init::Systemd, Step::Start);
        let r = outcome(&p, result(0, "", "")).unwrap();
        assert!(r.changed);
        let out: Value = serde_json::from_str(&r.output).unwrap();
        assert_eq!(out["command"], "systemctl start -- nginx.service");
        let e = outcome(
            &p,
            result(
                5,
                "",
                "Failed to start nginx.service: Unit nginx.service not found.\n",
            ),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "`systemctl start -- nginx.service`: exit status 5: Failed to start nginx.service: Unit nginx.service not found."
        );
        let p = Payload {
            if_running: true,
            ..payload(Init::Sysvinit, Step::Reload)
        };
        let r = outcome(&p, result(0, "@not-running\n", "")).unwrap();
        assert!(!r.changed);
        let out: Value = serde_json::from_str(&r.output).unwrap();
        assert_eq!(out["skipped"], "nginx is not running");
        let e = outcome(
            &payload(Init::Sysvinit, Step::Enable),
            result(1, "", "update-rc.d: error: x\n"),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "`update-rc.d nginx defaults && update-rc.d nginx enable` (or chkconfig): exit status 1: update-rc.d: error: x"
        );
    }
}
