//! `facts.collect` on this machine.

use serde_json::json;

use crate::harness::Runner;

#[test]
fn os_basic_and_hw_cpu_describe_this_machine() {
    let mut runner = Runner::start();
    let r = runner.ok(1, "facts.collect", json!({"facts": ["os.basic", "hw.cpu"]}));
    let os = &r["os.basic"];
    assert!(os["kernel"].as_str().is_some_and(|k| !k.is_empty()), "{os}");
    assert!(
        os["hostname"].as_str().is_some_and(|h| !h.is_empty()),
        "{os}"
    );
    assert_eq!(os["arch"], std::env::consts::ARCH);
    let family = os["family"].as_str().unwrap_or("");
    assert!(
        ["debian", "rhel", "alpine", "arch", "suse", "unknown"].contains(&family),
        "{os}"
    );
    assert!(
        ["systemd", "openrc", "sysvinit", "unknown"].contains(&os["init"].as_str().unwrap_or("")),
        "{os}"
    );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    assert_eq!(os["kernel"], kernel.trim());
    let cpu = &r["hw.cpu"];
    assert!(cpu["count"].as_u64().is_some_and(|c| c >= 1), "{cpu}");
    assert!(cpu["threads"].as_u64() >= cpu["count"].as_u64(), "{cpu}");
    assert_eq!(
        r.as_object().map(|o| o.len()),
        Some(2),
        "only the asked facts"
    );
}

#[test]
fn every_fact_by_default_with_loopback_and_packages() {
    let mut runner = Runner::start();
    let r = runner.ok(1, "facts.collect", json!({}));
    for name in froyo_runner::ops::facts::FACTS {
        assert!(r.get(name).is_some(), "missing {name}");
    }
    let ifaces = r["net.ifaces"].as_array().expect("a list");
    if let Some(lo) = ifaces.iter().find(|i| i["name"] == "lo") {
        assert_eq!(lo["up"], true, "{lo}");
    }
    // On a dpkg/rpm/apk system the manifest lists at least a libc or busybox.
    let pkgs = r["pkg.manifest"].as_object().expect("a map");
    if std::path::Path::new("/usr/bin/dpkg-query").exists() {
        assert!(pkgs.len() > 10, "{} packages", pkgs.len());
        let any = pkgs.values().next().expect("one");
        assert!(any["version"].is_string(), "{any}");
    }
}

#[test]
fn unknown_fact_is_permanent_and_lists_the_known_ones() {
    let mut runner = Runner::start();
    let (class, message) = runner.err(
        1,
        "facts.collect",
        json!({"facts": ["os.basic", "os.basics"]}),
    );
    assert_eq!(class, "permanent");
    assert_eq!(
        message,
        "unknown fact `os.basics`; known facts: os.basic, hw.cpu, net.ifaces, pkg.manifest"
    );
}
