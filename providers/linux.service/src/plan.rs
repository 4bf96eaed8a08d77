//! `diff`: pure. Compares the wanted state with what `read` found and plans one op per
//! change (`start nginx`, `enable nginx at boot`), or, for a handler (`action` set), one
//! `run` op that restarts or reloads; whether a handler runs at all is the engine's call.
//!
//! A unit the init system does not know is refused here, not in `read` (one missing
//! unit must not fail the whole batch) nor in `apply` (a typo such as `ngnix` is then
//! reported by `froyo plan`, before anything on the host has changed).

use froyo_provider_sdk::{Actual, Operation, ProviderError, Resource, Result};
use serde::{Deserialize, Serialize};

use crate::config::{Action, Init, ServiceConfig, Wanted};
use crate::state::State;

/// One command `apply` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Start,
    Stop,
    Enable,
    Disable,
    Restart,
    Reload,
}

/// What `apply` needs: the init system and native name from `read`, so it detects
/// nothing again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub init: Init,
    pub name: String,
    pub step: Step,
    /// `systemctl daemon-reload` first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub daemon_reload: bool,
    /// Only when the service runs (a reload handler: a stopped service reads its new
    /// configuration when it starts, so there is nothing to do).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub if_running: bool,
    /// OpenRC `disable`: the runlevels to remove the service from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runlevels: Vec<String>,
}

pub fn plan(desired: &Resource, actual: &Actual) -> Result<Vec<Operation>> {
    let config = ServiceConfig::parse(desired)?;
    let state = State::parse(&actual.state).map_err(|e| e.context(&desired.id))?;
    let steps = steps(&config, &state).map_err(|e| e.context(&desired.id))?;
    Ok(steps
        .into_iter()
        .map(|(summary, payload)| Operation {
            id: desired.id.clone(),
            type_name: desired.type_name.clone(),
            kind: if config.action.is_some() {
                "run"
            } else {
                "update"
            }
            .into(),
            summary,
            diff: None,
            // Plain strings and enums: serializing cannot fail.
            payload: serde_json::to_string(&payload).unwrap_or_default(),
        })
        .collect())
}

/// The summary and payload of each op that brings `s` to `c`.
pub fn steps(c: &ServiceConfig, s: &State) -> Result<Vec<(String, Payload)>> {
    let unit = c.unit.as_str();
    if !s.exists {
        let why = match s.init {
            Init::Systemd => format!("systemd has no unit {} (LoadState=not-found)", s.name),
            Init::Openrc => format!("OpenRC has no service {} (rc-service -e)", s.name),
            Init::Sysvinit => format!("there is no executable /etc/init.d/{}", s.name),
        };
        return Err(ProviderError::permanent(format!(
            "service `{unit}` does not exist on the target: {why}; install what provides it first and require() that resource"
        )));
    }
    let payload = |step| Payload {
        init: s.init,
        name: s.name.clone(),
        step,
        daemon_reload: false,
        if_running: false,
        runlevels: Vec::new(),
    };
    let refuse_masked = |what: &str| {
        if s.masked {
            Err(ProviderError::permanent(format!(
                "{} is masked, so it cannot be {what}: unmask it first (systemctl unmask {})",
                s.name, s.name
            )))
        } else {
            Ok(())
        }
    };
    let mut ops = Vec::new();
    match c.action {
        Some(Action::Restart) => {
            refuse_masked("restarted")?;
            ops.push((format!("restart {unit}"), payload(Step::Restart)));
        }
        // A service that cannot reload is restarted instead, and only if it runs, as
        // `systemctl try-reload-or-restart` does: the handler's point is that the new
        // configuration is in use afterwards.
        Some(Action::Reload) if s.can_reload => ops.push((
            format!("reload {unit}"),
            Payload {
                if_running: true,
                ..payload(Step::Reload)
            },
        )),
        Some(Action::Reload) => ops.push((
            format!("restart {unit} (it cannot reload)"),
            Payload {
                if_running: true,
                ..payload(Step::Restart)
            },
        )),
        None => {
            let running = s.running.ok_or_else(|| {
                ProviderError::permanent(format!(
                    "cannot tell whether {unit} runs: `/etc/init.d/{} status` answered {} (LSB: unknown), so its state cannot be managed",
                    s.name, s.status
                ))
            })?;
            match (c.state, running) {
                (Wanted::Running, false) => {
                    refuse_masked("started")?;
                    ops.push((format!("start {unit}"), payload(Step::Start)));
                }
                (Wanted::Stopped, true) => ops.push((format!("stop {unit}"), payload(Step::Stop))),
                _ => {}
            }
            match (c.enabled, s.enabled) {
                (Some(true), Some(false)) => {
                    refuse_masked("enabled")?;
                    ops.push((format!("enable {unit} at boot"), payload(Step::Enable)));
                }
                (Some(false), Some(true)) => ops.push((
                    format!("disable {unit} at boot"),
                    Payload {
                        runlevels: s.runlevels.clone(),
                        ..payload(Step::Disable)
                    },
                )),
                (Some(true), None) => {
                    return Err(ProviderError::permanent(format!(
                        "{} cannot be enabled at boot: systemd says it is `{}` (started by other units, not by itself); leave `enabled` out",
                        s.name, s.boot
                    )));
                }
                // Not managed, already right, or (`enabled = False` on a static unit)
                // nothing that could start it at boot by itself.
                _ => {}
            }
        }
    }
    if c.daemon_reload == Some(true)
        && s.init == Init::Systemd
        && let Some((summary, first)) = ops.first_mut()
    {
        first.daemon_reload = true;
        summary.push_str(" (after systemctl daemon-reload)");
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::config::SERVICE;

    fn state(init: Init, running: Option<bool>, enabled: Option<bool>) -> State {
        State {
            init,
            name: crate::config::native_name(init, "nginx"),
            exists: true,
            running,
            status: "x".into(),
            enabled,
            boot: "static".into(),
            masked: false,
            can_reload: true,
            runlevels: Vec::new(),
        }
    }

    fn diff(config: Value, s: &State) -> Result<Vec<Operation>> {
        plan(
            &Resource {
                id: "nginx".into(),
                type_name: SERVICE.into(),
                config: config.to_string(),
            },
            &Actual {
                id: "nginx".into(),
                state: s.to_json(),
            },
        )
    }

    fn summaries(ops: &[Operation]) -> Vec<String> {
        ops.iter()
            .map(|o| format!("{} {}", o.kind, o.summary))
            .collect()
    }

    fn payload(op: &Operation) -> Value {
        serde_json::from_str(&op.payload).unwrap()
    }

    #[test]
    fn converged_services_plan_nothing() {
        let s = state(Init::Systemd, Some(true), Some(true));
        assert!(
            diff(
                json!({"unit": "nginx", "state": "running", "enabled": true}),
                &s
            )
            .unwrap()
            .is_empty()
        );
        // `enabled` left out is not managed.
        let s = state(Init::Sysvinit, Some(false), Some(true));
        assert!(
            diff(json!({"unit": "nginx", "state": "stopped"}), &s)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn start_and_enable_are_separate_ops() {
        let s = state(Init::Systemd, Some(false), Some(false));
        let ops = diff(
            json!({"unit": "nginx", "state": "running", "enabled": true}),
            &s,
        )
        .unwrap();
        assert_eq!(
            summaries(&ops),
            ["update start nginx", "update enable nginx at boot"]
        );
        assert_eq!(
            payload(&ops[0]),
            json!({"init": "systemd", "name": "nginx.service", "step": "start"})
        );
        assert_eq!(payload(&ops[1])["step"], "enable");
        let s = state(Init::Openrc, Some(true), Some(true));
        let s = State {
            runlevels: vec!["default".into(), "boot".into()],
            ..s
        };
        let ops = diff(
            json!({"unit": "nginx", "state": "stopped", "enabled": false}),
            &s,
        )
        .unwrap();
        assert_eq!(
            summaries(&ops),
            ["update stop nginx", "update disable nginx at boot"]
        );
        assert_eq!(
            payload(&ops[1]),
            json!({"init": "openrc", "name": "nginx", "step": "disable", "runlevels": ["default", "boot"]})
        );
    }

    #[test]
    fn daemon_reload_goes_before_the_first_change_on_systemd_only() {
        let config =
            json!({"unit": "nginx", "state": "running", "enabled": true, "daemon_reload": true});
        let ops = diff(
            config.clone(),
            &state(Init::Systemd, Some(false), Some(false)),
        )
        .unwrap();
        assert_eq!(
            summaries(&ops),
            [
                "update start nginx (after systemctl daemon-reload)",
                "update enable nginx at boot"
            ]
        );
        assert_eq!(payload(&ops[0])["daemon_reload"], true);
        assert_eq!(payload(&ops[1]).get("daemon_reload"), None);
        // Nothing to change: no daemon-reload either, or the plan would never converge.
        assert!(
            diff(
                config.clone(),
                &state(Init::Systemd, Some(true), Some(true))
            )
            .unwrap()
            .is_empty()
        );
        let ops = diff(config, &state(Init::Sysvinit, Some(false), Some(true))).unwrap();
        assert_eq!(summaries(&ops), ["update start nginx"]);
    }

    #[test]
    fn handlers_plan_one_run_op_whatever_the_state() {
        let s = state(Init::Systemd, Some(true), Some(true));
        let ops = diff(
            json!({"unit": "nginx", "state": "running", "action": "restart"}),
            &s,
        )
        .unwrap();
        assert_eq!(summaries(&ops), ["run restart nginx"]);
        assert_eq!(
            payload(&ops[0]),
            json!({"init": "systemd", "name": "nginx.service", "step": "restart"})
        );
        let ops = diff(
            json!({"unit": "nginx", "state": "running", "action": "reload"}),
            &s,
        )
        .unwrap();
        assert_eq!(summaries(&ops), ["run reload nginx"]);
        assert_eq!(payload(&ops[0])["if_running"], true);
        // A handler on a stopped service still plans its op; apply decides on the spot.
        let stopped = state(Init::Sysvinit, Some(false), Some(false));
        let ops = diff(
            json!({"unit": "nginx", "state": "running", "action": "restart"}),
            &stopped,
        )
        .unwrap();
        assert_eq!(summaries(&ops), ["run restart nginx"]);
        // Even a status that cannot be told does not matter to a handler.
        let unknown = state(Init::Sysvinit, None, Some(false));
        assert_eq!(
            diff(json!({"unit": "nginx", "action": "restart"}), &unknown)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn reload_without_reload_support_restarts_if_running() {
        let s = State {
            can_reload: false,
            ..state(Init::Sysvinit, Some(true), Some(true))
        };
        let ops = diff(json!({"unit": "nginx", "action": "reload"}), &s).unwrap();
        assert_eq!(summaries(&ops), ["run restart nginx (it cannot reload)"]);
        assert_eq!(
            payload(&ops[0]),
            json!({"init": "sysvinit", "name": "nginx", "step": "restart", "if_running": true})
        );
    }

    #[test]
    fn refusals_name_the_unit_and_say_why() {
        let missing = State {
            exists: false,
            ..state(Init::Systemd, Some(false), None)
        };
        let e = diff(json!({"unit": "ngnix", "state": "running"}), &missing).unwrap_err();
        assert_eq!(e.class, froyo_provider_sdk::ErrorClass::Permanent);
        assert!(
            e.message.starts_with("nginx: service `ngnix` does not exist on the target: systemd has no unit nginx.service"),
            "{e}"
        );
        // Handlers too: a typo in restart("ngnix") shows at plan time.
        assert!(diff(json!({"unit": "ngnix", "action": "restart"}), &missing).is_err());
        let missing = State {
            exists: false,
            ..state(Init::Sysvinit, Some(false), Some(false))
        };
        let e = diff(json!({"unit": "nginx"}), &missing).unwrap_err();
        assert!(e.message.contains("no executable /etc/init.d/nginx"), "{e}");

        let e = diff(
            json!({"unit": "nginx"}),
            &state(Init::Sysvinit, None, Some(false)),
        )
        .unwrap_err();
        assert!(e.message.contains("cannot tell whether nginx runs"), "{e}");

        let e = diff(
            json!({"unit": "nginx", "enabled": true}),
            &state(Init::Systemd, Some(true), None),
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("cannot be enabled at boot: systemd says it is `static`"),
            "{e}"
        );
        // Not enabling a static unit is already true.
        assert!(
            diff(
                json!({"unit": "nginx", "enabled": false}),
                &state(Init::Systemd, Some(true), None)
            )
            .unwrap()
            .is_empty()
        );

        let masked = State {
            masked: true,
            ..state(Init::Systemd, Some(false), Some(false))
        };
        let e = diff(json!({"unit": "nginx"}), &masked).unwrap_err();
        assert!(
            e.message
                .contains("nginx.service is masked, so it cannot be started"),
            "{e}"
        );
        assert!(
            diff(
                json!({"unit": "nginx", "state": "stopped", "enabled": false}),
                &masked
            )
            .unwrap()
            .is_empty()
        );
        let e = plan(
            &Resource {
                id: "nginx".into(),
                type_name: SERVICE.into(),
                config: json!({"unit": "nginx"}).to_string(),
            },
            &Actual {
                id: "nginx".into(),
                state: "null".into(),
            },
        )
        .unwrap_err();
        assert!(e.message.contains("malformed actual state"), "{e}");
    }
}
