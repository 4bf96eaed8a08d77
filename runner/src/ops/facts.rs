//! `facts.collect`: the host facts playbooks read as `host.facts.*` (LANGUAGE.md §6),
//! gathered from `/proc`, `/sys` and `/etc` directly, and from `ip` and the package
//! manager where the kernel files are not enough.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::Ipv6Addr;

use serde_json::{Map, Value};

use crate::error::OpError;
use crate::host::Host;
use crate::ops::Ctx;
use crate::ops::exec::run_tool;
use crate::protocol::ops::{FactsArgs, HwCpu, IfaceAddr, NetIface, OsBasic, PkgEntry};

/// The fact names `facts.collect` knows.
pub const FACTS: &[&str] = &["os.basic", "hw.cpu", "net.ifaces", "pkg.manifest"];

/// `facts.collect`: an object keyed by fact name.
pub fn collect(ctx: &Ctx, args: FactsArgs) -> Result<Value, OpError> {
    if let Some(bad) = args.facts.iter().find(|f| !FACTS.contains(&f.as_str())) {
        return Err(OpError::permanent(format!(
            "unknown fact `{bad}`; known facts: {}",
            FACTS.join(", ")
        )));
    }
    let wanted: Vec<&str> = if args.facts.is_empty() {
        FACTS.to_vec()
    } else {
        args.facts.iter().map(String::as_str).collect()
    };
    let mut out = Map::new();
    for name in wanted {
        let value = match name {
            "os.basic" => to_value(os_basic(ctx.host)),
            "hw.cpu" => to_value(hw_cpu(ctx.host)),
            "net.ifaces" => to_value(net_ifaces(ctx)),
            _ => to_value(pkg_manifest(ctx)?),
        };
        out.insert(name.to_string(), value);
    }
    Ok(Value::Object(out))
}

fn to_value(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn read_trim(host: &Host, path: &str) -> Option<String> {
    fs::read_to_string(host.path(path))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Parses os-release `KEY=value` lines, unquoting values.
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let (k, v) = line.trim().split_once('=')?;
            if k.starts_with('#') {
                return None;
            }
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.to_string(), v.replace("\\\"", "\"")))
        })
        .collect()
}

/// The distribution family from os-release `ID` and `ID_LIKE`.
pub fn family(id: &str, id_like: &str) -> &'static str {
    for word in std::iter::once(id).chain(id_like.split_whitespace()) {
        let fam = match word {
            "debian" | "ubuntu" | "raspbian" | "linuxmint" | "pop" | "kali" | "devuan" => "debian",
            "rhel" | "centos" | "fedora" | "rocky" | "almalinux" | "ol" | "amzn" | "scientific" => {
                "rhel"
            }
            "alpine" => "alpine",
            "arch" | "archlinux" | "manjaro" | "endeavouros" => "arch",
            w if w == "suse" || w == "sles" || w.starts_with("opensuse") => "suse",
            _ => continue,
        };
        return fam;
    }
    "unknown"
}

fn os_basic(host: &Host) -> OsBasic {
    let release = read_trim(host, "/etc/os-release")
        .or_else(|| read_trim(host, "/usr/lib/os-release"))
        .map(|t| parse_os_release(&t))
        .unwrap_or_default();
    let get = |k: &str| release.get(k).filter(|v| !v.is_empty()).cloned();
    OsBasic {
        family: family(
            &get("ID").unwrap_or_default(),
            &get("ID_LIKE").unwrap_or_default(),
        )
        .to_string(),
        distro: get("ID"),
        version: get("VERSION_ID"),
        codename: get("VERSION_CODENAME"),
        arch: read_trim(host, "/proc/sys/kernel/arch")
            .unwrap_or_else(|| std::env::consts::ARCH.to_string()),
        kernel: read_trim(host, "/proc/sys/kernel/osrelease").unwrap_or_default(),
        hostname: read_trim(host, "/proc/sys/kernel/hostname").unwrap_or_default(),
        init: init_system(host).to_string(),
    }
}

fn init_system(host: &Host) -> &'static str {
    let comm = read_trim(host, "/proc/1/comm").unwrap_or_default();
    if comm == "systemd" || host.path("/run/systemd/system").is_dir() {
        "systemd"
    } else if comm == "openrc-init"
        || host.path("/run/openrc").is_dir()
        || host.which("openrc").is_some()
    {
        "openrc"
    } else if comm == "init" || host.path("/etc/inittab").exists() {
        "sysvinit"
    } else {
        "unknown"
    }
}

/// Parses `/proc/cpuinfo`: logical processors, physical cores and the model name.
pub fn parse_cpuinfo(text: &str) -> (u32, u32, Option<String>) {
    let mut threads = 0u32;
    let mut cores = BTreeSet::new();
    let mut model = None;
    let mut package = String::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "processor" => threads += 1,
            "physical id" => package = v.to_string(),
            "core id" => {
                cores.insert((package.clone(), v.to_string()));
            }
            "model name" | "Model" | "cpu model" | "Hardware"
                if model.is_none() && !v.is_empty() =>
            {
                model = Some(v.to_string());
            }
            _ => {}
        }
    }
    let count = if cores.is_empty() {
        threads
    } else {
        cores.len() as u32
    };
    (count, threads, model)
}

fn hw_cpu(host: &Host) -> HwCpu {
    let (mut count, mut threads, model) =
        parse_cpuinfo(&read_trim(host, "/proc/cpuinfo").unwrap_or_default());
    if threads == 0 {
        threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    }
    if count == 0 {
        count = threads;
    }
    HwCpu {
        count,
        threads,
        model,
    }
}

fn net_ifaces(ctx: &Ctx) -> Vec<NetIface> {
    let host = ctx.host;
    let mut names: Vec<String> = fs::read_dir(host.path("/sys/class/net"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut addrs = ip_addrs(ctx).unwrap_or_else(|| proc_inet6(host));
    names
        .into_iter()
        .map(|name| {
            let sys = |f: &str| read_trim(host, &format!("/sys/class/net/{name}/{f}"));
            let flags =
                sys("flags").and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok());
            NetIface {
                mac: sys("address").filter(|m| !m.is_empty()),
                up: flags.is_some_and(|f| f & 1 != 0),
                addrs: addrs.remove(&name).unwrap_or_default(),
                name,
            }
        })
        .collect()
}

/// Addresses per interface from `ip -j addr`, when `ip` exists and its JSON parses.
fn ip_addrs(ctx: &Ctx) -> Option<BTreeMap<String, Vec<IfaceAddr>>> {
    let ip = ctx.host.which("ip")?;
    let out = run_tool(&ip, &["-j", "addr"], ctx.cancel).ok()?;
    if !out.status.success() {
        return None;
    }
    parse_ip_json(&out.stdout)
}

pub fn parse_ip_json(json: &[u8]) -> Option<BTreeMap<String, Vec<IfaceAddr>>> {
    let list: Vec<Value> = serde_json::from_slice(json).ok()?;
    let mut map = BTreeMap::new();
    for iface in list {
        let Some(name) = iface.get("ifname").and_then(Value::as_str) else {
            continue;
        };
        let addrs = iface
            .get("addr_info")
            .and_then(Value::as_array)
            .map(|infos| {
                infos
                    .iter()
                    .filter_map(|a| {
                        Some(IfaceAddr {
                            ip: a.get("local")?.as_str()?.to_string(),
                            prefix: u8::try_from(a.get("prefixlen")?.as_u64()?).ok()?,
                            family: a
                                .get("family")?
                                .as_str()
                                .filter(|f| *f == "inet" || *f == "inet6")?
                                .to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        map.insert(name.to_string(), addrs);
    }
    Some(map)
}

/// IPv6 addresses from `/proc/net/if_inet6`; without `ip` there is no simple kernel
/// file listing IPv4 addresses, so those stay empty.
fn proc_inet6(host: &Host) -> BTreeMap<String, Vec<IfaceAddr>> {
    parse_if_inet6(&read_trim(host, "/proc/net/if_inet6").unwrap_or_default())
}

pub fn parse_if_inet6(text: &str) -> BTreeMap<String, Vec<IfaceAddr>> {
    let mut map: BTreeMap<String, Vec<IfaceAddr>> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        let (Ok(bits), Ok(prefix)) = (u128::from_str_radix(f[0], 16), u8::from_str_radix(f[2], 16))
        else {
            continue;
        };
        map.entry(f[5].to_string()).or_default().push(IfaceAddr {
            ip: Ipv6Addr::from(bits).to_string(),
            prefix,
            family: "inet6".into(),
        });
    }
    map
}

fn pkg_manifest(ctx: &Ctx) -> Result<BTreeMap<String, PkgEntry>, OpError> {
    let host = ctx.host;
    let tool = |name: &str, args: &[&str]| -> Result<Option<String>, OpError> {
        let Some(program) = host.which(name) else {
            return Ok(None);
        };
        let out = run_tool(&program, args, ctx.cancel)?;
        if !out.status.success() {
            return Err(OpError::permanent(format!(
                "`{name}` failed: {}",
                out.combined()
            )));
        }
        Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
    };
    if let Some(text) = tool(
        "dpkg-query",
        &[
            "-W",
            "-f",
            "${Package}\t${Version}\t${Architecture}\t${db:Status-Status}\n",
        ],
    )? {
        return Ok(parse_tabbed(&text, true));
    }
    if let Some(text) = tool(
        "rpm",
        &[
            "-qa",
            "--qf",
            "%{NAME}\t%|EPOCH?{%{EPOCH}:}|%{VERSION}-%{RELEASE}\t%{ARCH}\n",
        ],
    )? {
        return Ok(parse_tabbed(&text, false));
    }
    if let Some(text) = tool("apk", &["info", "-v"])? {
        return Ok(parse_apk(&text));
    }
    Ok(BTreeMap::new())
}

/// Parses `name\tversion\tarch[\tstatus]` lines. With `dpkg_status`, only packages
/// whose status is `installed` count (dpkg also lists removed ones with leftover
/// config files). A second architecture of a package is keyed `name:arch`.
pub fn parse_tabbed(text: &str, dpkg_status: bool) -> BTreeMap<String, PkgEntry> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 3 || f[0].is_empty() || (dpkg_status && f.get(3) != Some(&"installed")) {
            continue;
        }
        let arch = Some(f[2].to_string()).filter(|a| !a.is_empty() && a != "(none)");
        let entry = PkgEntry {
            version: f[1].to_string(),
            arch: arch.clone(),
        };
        let key = if map.contains_key(f[0]) {
            format!("{}:{}", f[0], arch.unwrap_or_default())
        } else {
            f[0].to_string()
        };
        map.insert(key, entry);
    }
    map
}

/// Parses `apk info -v` lines such as `musl-1.2.4-r2`: the version is the last two
/// dash-separated parts.
pub fn parse_apk(text: &str) -> BTreeMap<String, PkgEntry> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rel = line.rfind('-')?;
            let ver = line[..rel].rfind('-')?;
            Some((
                line[..ver].to_string(),
                PkgEntry {
                    version: line[ver + 1..].to_string(),
                    arch: None,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_from_id_and_id_like() {
        let cases = [
            ("debian", "", "debian"),
            ("ubuntu", "debian", "debian"),
            ("rocky", "rhel centos fedora", "rhel"),
            ("amzn", "centos rhel fedora", "rhel"),
            ("alpine", "", "alpine"),
            ("manjaro", "arch", "arch"),
            ("opensuse-leap", "suse opensuse", "suse"),
            ("nixos", "", "unknown"),
            ("weird", "ubuntu", "debian"),
        ];
        for (id, like, fam) in cases {
            assert_eq!(family(id, like), fam, "{id} / {like}");
        }
    }

    #[test]
    fn os_release_values_are_unquoted() {
        let rel = parse_os_release(
            "ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\n# c\nVERSION_CODENAME=noble\nNAME='X Y'\n",
        );
        assert_eq!(rel.get("VERSION_ID").map(String::as_str), Some("24.04"));
        assert_eq!(rel.get("NAME").map(String::as_str), Some("X Y"));
        assert_eq!(
            rel.get("VERSION_CODENAME").map(String::as_str),
            Some("noble")
        );
    }

    #[test]
    fn cpuinfo_counts_cores_and_threads() {
        let text = "processor\t: 0\nmodel name\t: Ryzen\nphysical id\t: 0\ncore id\t: 0\n\n\
                    processor\t: 1\nmodel name\t: Ryzen\nphysical id\t: 0\ncore id\t: 0\n\n\
                    processor\t: 2\nmodel name\t: Ryzen\nphysical id\t: 0\ncore id\t: 1\n";
        assert_eq!(parse_cpuinfo(text), (2, 3, Some("Ryzen".into())));
        assert_eq!(
            parse_cpuinfo("processor : 0\nprocessor : 1\n"),
            (2, 2, None)
        );
    }

    #[test]
    fn ip_json_and_if_inet6_parse() {
        let json = br#"[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8},{"family":"inet6","local":"::1","prefixlen":128}]},{"ifname":"eth0"}]"#;
        let map = parse_ip_json(json).expect("parses");
        assert_eq!(map["lo"].len(), 2);
        assert_eq!(
            map["lo"][0],
            IfaceAddr {
                ip: "127.0.0.1".into(),
                prefix: 8,
                family: "inet".into()
            }
        );
        assert!(map["eth0"].is_empty());
        let v6 = parse_if_inet6(
            "00000000000000000000000000000001 01 80 10 80       lo\nfe800000000000000000000000000001 02 40 20 80 eth0\n",
        );
        assert_eq!(v6["lo"][0].ip, "::1");
        assert_eq!(
            v6["eth0"][0],
            IfaceAddr {
                ip: "fe80::1".into(),
                prefix: 64,
                family: "inet6".into()
            }
        );
    }

    #[test]
    fn package_lists_parse() {
        let dpkg = parse_tabbed(
            "bash\t5.2-1\tamd64\tinstalled\nold\t1.0\tamd64\tconfig-files\nlibc6\t2.36\tamd64\tinstalled\nlibc6\t2.36\ti386\tinstalled\n",
            true,
        );
        assert_eq!(dpkg.len(), 3);
        assert_eq!(dpkg["libc6:i386"].arch.as_deref(), Some("i386"));
        assert!(!dpkg.contains_key("old"));
        let apk = parse_apk("musl-1.2.4-r2\nca-certificates-bundle-20230506-r0\n");
        assert_eq!(apk["ca-certificates-bundle"].version, "20230506-r0");
        assert_eq!(apk["musl"].version, "1.2.4-r2");
    }
}
