//! `read`: ONE `exec` of a shell script for the whole batch. The script detects the
//! manager for `auto` resources (`command -v`, in the order the schema documents), asks
//! each manager in use what is installed and, only for the names that need it (state
//! `latest`, a pinned version, or `present` but not installed), which versions it could
//! install. Its output is sections headed `@@froyo MANAGER SECTION`, parsed here.

use std::collections::{BTreeMap, BTreeSet};

use froyo_provider_sdk::runner::{self, ExecArgs, ExecResult};
use froyo_provider_sdk::{Actual, ProviderError, Resource, Result, shell};

use crate::config::{Config, Manager, Want};
use crate::state::{Package, State};
use crate::{Found, apk, apt, rpm};

/// The runner op `read` uses, so its choices can be tested with a fake runner.
pub trait Ops {
    fn exec(&mut self, args: &ExecArgs) -> Result<ExecResult>;
}

pub struct Live;

impl Ops for Live {
    fn exec(&mut self, args: &ExecArgs) -> Result<ExecResult> {
        runner::exec(args)
    }
}

pub fn read(resources: Vec<Resource>) -> Result<Vec<Actual>> {
    read_with(&mut Live, resources)
}

/// The names one manager (or `auto`) is asked about: all of them for what is installed,
/// `always` for candidates in any case, `unless_installed` only when not installed.
#[derive(Debug, Default)]
struct Names {
    all: BTreeSet<String>,
    always: BTreeSet<String>,
    unless_installed: BTreeSet<String>,
}

impl Names {
    fn add(&mut self, config: &Config) {
        for name in config.packages() {
            match (config.state, &config.version) {
                (Want::Latest, _) | (Want::Present, Some(_)) => {
                    self.always.insert(name.clone());
                }
                (Want::Present, None) => {
                    self.unless_installed.insert(name.clone());
                }
                (Want::Absent, _) => {}
            }
            self.all.insert(name);
        }
    }

    /// `'a b' 'c' 'd'`: the function's three arguments. Names are plain words (checked
    /// by the config), so a space-separated list survives the shell's word splitting.
    fn args(&self) -> String {
        let join =
            |s: &BTreeSet<String>| shell::quote(&s.iter().cloned().collect::<Vec<_>>().join(" "));
        format!(
            "{} {} {}",
            join(&self.all),
            join(&self.always),
            join(&self.unless_installed)
        )
    }
}

const NEED_OF: &str = r#"need_of() {
  need=$2
  for n in $3; do
    case "$1" in *" $n "*) ;; *) need="$need $n" ;; esac
  done
}
"#;

fn call(m: Manager, names: &Names) -> String {
    match m {
        Manager::Apt => format!("q_apt {}", names.args()),
        Manager::Apk => format!("q_apk {}", names.args()),
        other => format!("q_rpm {} {}", other.as_str(), names.args()),
    }
}

/// The read script for a batch, or `None` when it has no resources.
pub fn script(configs: &[Config]) -> Option<String> {
    let mut fixed: BTreeMap<Manager, Names> = BTreeMap::new();
    let mut auto: Option<Names> = None;
    for c in configs {
        match c.manager.fixed() {
            Some(m) => fixed.entry(m).or_default().add(c),
            None => auto.get_or_insert_with(Names::default).add(c),
        }
    }
    if fixed.is_empty() && auto.is_none() {
        return None;
    }
    let mut uses: BTreeSet<&str> = BTreeSet::new();
    for m in fixed
        .keys()
        .copied()
        .chain(auto.is_some().then_some(Manager::ALL).into_iter().flatten())
    {
        uses.insert(match m {
            Manager::Apt => apt::QUERY,
            Manager::Apk => apk::QUERY,
            _ => rpm::QUERY,
        });
    }
    let mut s = String::from(NEED_OF);
    for q in uses {
        s.push_str(q);
    }
    if let Some(names) = &auto {
        s.push_str(
            "if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then auto=apt\n\
             elif command -v dnf >/dev/null 2>&1; then auto=dnf\n\
             elif command -v yum >/dev/null 2>&1; then auto=yum\n\
             elif command -v zypper >/dev/null 2>&1; then auto=zypper\n\
             elif command -v apk >/dev/null 2>&1; then auto=apk\n\
             else auto=none; fi\n\
             echo \"@@froyo auto $auto\"\n\
             case $auto in\n",
        );
        for m in Manager::ALL {
            s.push_str(&format!("  {}) {} ;;\n", m.as_str(), call(m, names)));
        }
        s.push_str("esac\n");
    }
    for (m, names) in &fixed {
        s.push_str(&call(*m, names));
        s.push('\n');
    }
    s.push_str("exit 0\n");
    Some(s)
}

/// What the script found: the manager `auto` chose (`Some(None)`: none found), the
/// managers that are missing, and each manager's findings by name.
#[derive(Debug, Default)]
pub struct Findings {
    pub auto: Option<Option<Manager>>,
    pub missing: BTreeSet<Manager>,
    pub found: BTreeMap<Manager, Found>,
}

pub fn parse(output: &str) -> Result<Findings> {
    let mut findings = Findings::default();
    let mut sections: BTreeMap<(Manager, String), String> = BTreeMap::new();
    let mut current: Option<(Manager, String)> = None;
    for line in output.lines() {
        if let Some(marker) = line.strip_prefix("@@froyo ") {
            let (who, what) = marker.split_once(' ').unwrap_or((marker, ""));
            current = None;
            if who == "auto" {
                findings.auto = Some(Manager::parse(what));
                continue;
            }
            let m = Manager::parse(who).ok_or_else(|| {
                ProviderError::permanent(format!("package query: unexpected marker `{line}`"))
            })?;
            findings.found.entry(m).or_default();
            if what == "missing" {
                findings.missing.insert(m);
            } else {
                current = Some((m, what.to_owned()));
                sections.entry((m, what.to_owned())).or_default();
            }
            continue;
        }
        if let Some(key) = &current {
            let text = sections.entry(key.clone()).or_default();
            text.push_str(line);
            text.push('\n');
        }
    }
    for ((m, section), text) in &sections {
        let found = findings.found.entry(*m).or_default();
        match (m, section.as_str()) {
            (Manager::Apt, "installed") => apt::parse_installed(text, found),
            (Manager::Apt, "policy") => apt::parse_policy(text, found),
            (Manager::Apk, "installed") => apk::parse_installed(text, found),
            (Manager::Apk, "available") => apk::parse_search(text, found),
            (_, "installed") => rpm::parse_installed(text, found),
            (Manager::Zypper, "available") => rpm::parse_zypper(text, found),
            (_, "available") => rpm::parse_list(text, found),
            _ => {}
        }
    }
    for (m, found) in findings.found.iter_mut() {
        match m {
            Manager::Apt => {}
            Manager::Apk => apk::settle(found),
            _ => rpm::settle(found),
        }
    }
    Ok(findings)
}

/// The state of one resource from the findings.
pub fn state_of(config: &Config, findings: &Findings) -> State {
    let manager = match config.manager.fixed() {
        Some(m) => Some(m),
        None => findings.auto.flatten(),
    }
    .filter(|m| !findings.missing.contains(m));
    let found = manager.and_then(|m| findings.found.get(&m));
    let packages = config
        .packages()
        .into_iter()
        .map(|name| {
            let info = found
                .and_then(|f| f.get(&name))
                .cloned()
                .unwrap_or_default();
            Package {
                name,
                installed: info.installed,
                candidate: info.candidate,
                versions: info.versions,
            }
        })
        .collect();
    State { manager, packages }
}

pub fn read_with(ops: &mut impl Ops, resources: Vec<Resource>) -> Result<Vec<Actual>> {
    let configs = resources
        .iter()
        .map(|r| Config::parse(r).map_err(|e| e.context(&r.id)))
        .collect::<Result<Vec<_>>>()?;
    let Some(script) = script(&configs) else {
        return Ok(Vec::new());
    };
    let result = ops.exec(&ExecArgs::shell(script))?;
    let result = shell::check(result, "package query")?;
    let findings = parse(&result.stdout)?;
    Ok(resources
        .iter()
        .zip(&configs)
        .map(|(r, c)| Actual {
            id: r.id.clone(),
            state: state_of(c, &findings).to_json(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::config::PACKAGE;

    fn resource(id: &str, config: Value) -> Resource {
        Resource {
            id: id.into(),
            type_name: PACKAGE.into(),
            config: config.to_string(),
        }
    }

    struct Fake {
        stdout: String,
        scripts: Vec<String>,
    }

    impl Ops for Fake {
        fn exec(&mut self, args: &ExecArgs) -> Result<ExecResult> {
            self.scripts.push(args.shell.clone().unwrap_or_default());
            Ok(ExecResult {
                rc: Some(0),
                signal: None,
                stdout: self.stdout.clone(),
                stderr: String::new(),
                truncated: false,
                duration_ms: 1,
            })
        }
    }

    #[test]
    fn one_script_for_the_batch_with_the_right_name_lists() {
        let configs: Vec<Config> = [
            json!({"name": "nginx"}),
            json!({"name": "web", "names": ["curl", "jq"], "state": "latest"}),
            json!({"name": "telnet", "state": "absent"}),
            json!({"name": "htop", "manager": "dnf", "version": "3.2.2"}),
        ]
        .into_iter()
        .map(|c| Config::parse(&resource("r", c)).unwrap())
        .collect();
        let s = script(&configs).unwrap();
        assert!(
            s.contains("  apt) q_apt 'curl jq nginx telnet' 'curl jq' nginx ;;\n"),
            "{s}"
        );
        assert!(
            s.contains("  zypper) q_rpm zypper 'curl jq nginx telnet' 'curl jq' nginx ;;\n"),
            "{s}"
        );
        assert!(s.ends_with("esac\nq_rpm dnf htop htop ''\nexit 0\n"), "{s}");
        assert!(s.contains("q_apt() {") && s.contains("q_rpm() {") && s.contains("q_apk() {"));
        let only_apt =
            [Config::parse(&resource("r", json!({"name": "x", "manager": "apt"}))).unwrap()];
        let s = script(&only_apt).unwrap();
        assert!(!s.contains("q_rpm() {") && !s.contains("auto"), "{s}");
        assert!(script(&[]).is_none());
    }

    #[test]
    fn states_from_recorded_output() {
        let stdout = "@@froyo auto apt
@@froyo apt installed
nginx\tamd64\tii \t1.22.1-9
telnet\tamd64\tii \t0.17+2.4-2+deb12u1
@@froyo apt policy
curl:
  Installed: (none)
  Candidate: 7.88.1-10+deb12u8
  Version table:
     7.88.1-10+deb12u8 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
@@froyo dnf missing
";
        let mut fake = Fake {
            stdout: stdout.into(),
            scripts: Vec::new(),
        };
        let actuals = read_with(
            &mut fake,
            vec![
                resource(
                    "a",
                    json!({"name": "web", "names": ["nginx", "curl", "froyo-nope"]}),
                ),
                resource("b", json!({"name": "telnet", "state": "absent"})),
                resource("c", json!({"name": "htop", "manager": "dnf"})),
            ],
        )
        .unwrap();
        assert_eq!(fake.scripts.len(), 1);
        let state = |i: usize| -> Value { serde_json::from_str(&actuals[i].state).unwrap() };
        assert_eq!(
            state(0),
            json!({"manager": "apt", "packages": [
                {"name": "nginx", "installed": "1.22.1-9", "candidate": null},
                {"name": "curl", "installed": null, "candidate": "7.88.1-10+deb12u8", "versions": ["7.88.1-10+deb12u8"]},
                {"name": "froyo-nope", "installed": null, "candidate": null},
            ]})
        );
        assert_eq!(state(1)["packages"][0]["installed"], "0.17+2.4-2+deb12u1");
        assert_eq!(
            state(2),
            json!({"manager": null, "packages": [{"name": "htop", "installed": null, "candidate": null}]})
        );
    }

    #[test]
    fn no_manager_found_and_a_failed_script() {
        let findings = parse("@@froyo auto none\n").unwrap();
        let c = Config::parse(&resource("r", json!({"name": "x"}))).unwrap();
        assert_eq!(state_of(&c, &findings).manager, None);
        assert!(parse("@@froyo pacman installed\n").is_err());
        let mut fake = Fake {
            stdout: String::new(),
            scripts: Vec::new(),
        };
        assert!(read_with(&mut fake, Vec::new()).unwrap().is_empty());
        assert!(fake.scripts.is_empty(), "no resources, no exec");
    }
}

#[cfg(test)]
mod shell_tests {
    use serde_json::json;

    use super::*;
    use crate::config::PACKAGE;

    /// Every manager's query function is valid POSIX shell (`sh -n`), also those that
    /// never run on the Debian machines the integration tests use.
    #[test]
    fn the_script_parses_as_shell() {
        let configs: Vec<Config> = ["auto", "apt", "dnf", "yum", "zypper", "apk"]
            .into_iter()
            .map(|m| {
                Config::parse(&Resource {
                    id: "r".into(),
                    type_name: PACKAGE.into(),
                    config:
                        json!({"name": "x", "names": ["a", "b"], "manager": m, "state": "latest"})
                            .to_string(),
                })
                .unwrap()
            })
            .collect();
        let s = script(&configs).unwrap();
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &s])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{s}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
