//! The config of `linux.service::service`, as `schema.cue` defines it (the engine has
//! filled the defaults), and the unit name each init system expects.

use froyo_provider_sdk::{ProviderError, Resource, Result};
use serde::{Deserialize, Serialize};

pub const SERVICE: &str = "linux.service::service";

/// `#Service`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub unit: String,
    #[serde(default)]
    pub state: Wanted,
    pub enabled: Option<bool>,
    pub action: Option<Action>,
    pub daemon_reload: Option<bool>,
}

/// `state`: whether the service should run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wanted {
    #[default]
    Running,
    Stopped,
}

/// `action`: what a handler does when notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Restart,
    Reload,
}

/// The init system that manages services on the target, as `read` detected it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    Systemd,
    Openrc,
    Sysvinit,
}

impl ServiceConfig {
    pub fn parse(resource: &Resource) -> Result<ServiceConfig> {
        if resource.type_name != SERVICE {
            return Err(ProviderError::permanent(format!(
                "unknown resource type `{}` for linux.service",
                resource.type_name
            )));
        }
        let config: ServiceConfig = serde_json::from_str(&resource.config).map_err(|e| {
            ProviderError::permanent(format!("invalid config for `{}`: {e}", resource.id))
        })?;
        check_unit(&config.unit)?;
        Ok(config)
    }
}

/// A unit name goes into shell words and into `/etc/init.d/NAME`, so anything that is
/// not a plain name (a path, whitespace, an option) is refused before it reaches the
/// target.
fn check_unit(unit: &str) -> Result<()> {
    let bad = unit.is_empty()
        || unit == "."
        || unit == ".."
        || unit.starts_with('-')
        || unit
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(ProviderError::permanent(format!(
            "`{unit}` is not a service name: a unit name has no `/`, no whitespace and does not start with `-`"
        )));
    }
    Ok(())
}

/// Unit types systemd knows; a name without one of these suffixes is a service.
const SYSTEMD_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".path",
    ".timer",
    ".slice",
    ".scope",
];

/// `nginx` → `nginx.service`; a name with a unit type suffix is kept. A dot alone is not
/// a suffix (`php8.2-fpm` is `php8.2-fpm.service`).
pub fn systemd_name(unit: &str) -> String {
    if SYSTEMD_SUFFIXES.iter().any(|s| unit.ends_with(s)) {
        unit.to_owned()
    } else {
        format!("{unit}.service")
    }
}

/// `nginx.service` → `nginx`: sysvinit and OpenRC name their scripts without the suffix.
pub fn script_name(unit: &str) -> &str {
    unit.strip_suffix(".service").unwrap_or(unit)
}

/// The name `unit` has under `init`.
pub fn native_name(init: Init, unit: &str) -> String {
    match init {
        Init::Systemd => systemd_name(unit),
        Init::Openrc | Init::Sysvinit => script_name(unit).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(config: serde_json::Value) -> Result<ServiceConfig> {
        ServiceConfig::parse(&Resource {
            id: "s".into(),
            type_name: SERVICE.into(),
            config: config.to_string(),
        })
    }

    #[test]
    fn names_per_init_system() {
        assert_eq!(systemd_name("nginx"), "nginx.service");
        assert_eq!(systemd_name("nginx.service"), "nginx.service");
        assert_eq!(systemd_name("php8.2-fpm"), "php8.2-fpm.service");
        assert_eq!(systemd_name("getty@tty1"), "getty@tty1.service");
        assert_eq!(systemd_name("certbot.timer"), "certbot.timer");
        assert_eq!(script_name("nginx.service"), "nginx");
        assert_eq!(script_name("nginx"), "nginx");
        assert_eq!(native_name(Init::Sysvinit, "ssh.service"), "ssh");
        assert_eq!(native_name(Init::Openrc, "sshd"), "sshd");
        assert_eq!(native_name(Init::Systemd, "ssh"), "ssh.service");
    }

    #[test]
    fn parses_configs_and_refuses_names_that_are_not_names() {
        let c = parse(json!({"unit": "nginx", "state": "stopped", "enabled": true})).unwrap();
        assert_eq!(c.state, Wanted::Stopped);
        assert_eq!(c.enabled, Some(true));
        let c = parse(json!({"unit": "nginx", "action": "reload"})).unwrap();
        assert_eq!((c.state, c.action), (Wanted::Running, Some(Action::Reload)));
        for bad in ["../../bin/sh", "a b", "-x", "", ".."] {
            let e = parse(json!({"unit": bad})).unwrap_err();
            assert!(e.message.contains("is not a service name"), "{bad}: {e}");
        }
        let e = parse(json!({"unit": "x", "restart": true})).unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
    }
}
