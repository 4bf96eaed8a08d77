//! `examples/webserver.star` applied for real: nginx's site file rendered from its
//! template and checked with `nginx -t`, the service started and enabled under sysvinit,
//! the reload handler run — then a second apply with nothing to do.
//!
//! nginx listens on every interface, so froyo runs in a network namespace of the test's
//! own (`unshare --net`), which nginx stays in. Because that namespace has no way out,
//! the test installs the nginx package itself beforehand (apt, from Debian's mirrors,
//! with a `policy-rc.d` that keeps the package from starting it outside the namespace);
//! the playbook's `package("nginx")` then finds it installed. Installing packages for
//! real is covered by the `linux.pkg` tests.

use std::path::Path;
use std::process::Command;

use crate::{Run, repo};

const POLICY: &str = "/usr/sbin/policy-rc.d";

fn sh(script: &str) -> std::process::Output {
    Command::new("sh").arg("-c").arg(script).output().unwrap()
}

/// Runs `froyo ARGS` in `cwd` inside the network namespace of process `ns_pid` (or a new
/// one with `lo` up when `None`).
fn froyo_in_netns(cwd: &Path, ns_pid: Option<u32>, args: &str) -> Run {
    let bin = env!("CARGO_BIN_EXE_froyo");
    let cmd = match ns_pid {
        None => format!("unshare --net sh -c 'ip link set lo up && exec {bin} {args}'"),
        Some(pid) => format!("nsenter --net=/proc/{pid}/ns/net {bin} {args}"),
    };
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn nginx_pid() -> Option<u32> {
    std::fs::read_to_string("/run/nginx.pid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

/// Stops nginx by its master's PID and undoes what the test set up.
struct Cleanup {
    made_policy: bool,
    /// The test installed nginx itself, so it removes it again (the quick-start test in
    /// `cue.rs` installs a package of that name of its own and needs it absent).
    installed_nginx: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = nginx_pid() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            for _ in 0..50 {
                if nginx_pid().is_none() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        let _ = std::fs::remove_file("/etc/nginx/conf.d/site.conf");
        let _ = sh("update-rc.d -f nginx remove >/dev/null 2>&1");
        if self.installed_nginx {
            let _ = sh(
                "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q nginx nginx-common >/dev/null 2>&1",
            );
        }
        if self.made_policy {
            let _ = std::fs::remove_file(POLICY);
        }
    }
}

#[test]
fn the_webserver_example_applies_for_real() {
    let _dpkg = crate::prov_pkg::DPKG
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let made_policy = !Path::new(POLICY).exists();
    if made_policy {
        std::fs::write(
            POLICY,
            "#!/bin/sh\n# froyo test: start no service\nexit 101\n",
        )
        .unwrap();
        sh(&format!("chmod 755 {POLICY}"));
    }
    let mut cleanup = Cleanup {
        made_policy,
        installed_nginx: false,
    };
    if nginx_pid().is_some() {
        panic!("an nginx is already running on this machine; the test will not touch it");
    }
    let installed =
        sh("dpkg-query -W -f='${Status}' nginx 2>/dev/null | grep -q 'install ok installed'");
    if !installed.status.success() {
        let out = sh(
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >/dev/null 2>&1 \
                      || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx; }",
        );
        cleanup.installed_nginx = true;
        assert!(
            out.status.success(),
            "installing nginx failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("examples/webserver.star"),
        dir.path().join("webserver.star"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("templates")).unwrap();
    std::fs::copy(
        repo().join("examples/templates/site.conf.j2"),
        dir.path().join("templates/site.conf.j2"),
    )
    .unwrap();

    let first = froyo_in_netns(dir.path(), None, "apply --yes webserver.star");
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let site = std::fs::read_to_string("/etc/nginx/conf.d/site.conf").unwrap();
    assert!(
        site.contains("listen 80;") && site.contains("server_name localhost;"),
        "{site}"
    );
    let pid = nginx_pid().expect("nginx runs after the apply");
    assert!(
        std::fs::read_dir("/etc/rc2.d").unwrap().flatten().any(|e| e
            .file_name()
            .to_string_lossy()
            .ends_with("nginx")
            && e.file_name().to_string_lossy().starts_with('S')),
        "nginx is enabled at boot"
    );
    assert!(
        first
            .stderr
            .contains("linux.service::service[nginx:reload] changed"),
        "the reload handler ran after the site changed: {}",
        first.stderr
    );
    // nginx answers inside the namespace.
    let curl = sh(&format!(
        "nsenter --net=/proc/{pid}/ns/net curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1/"
    ));
    let code = String::from_utf8_lossy(&curl.stdout).into_owned();
    assert!(
        code == "200" || code == "403" || code == "404",
        "nginx did not answer: {code:?}"
    );

    let second = froyo_in_netns(dir.path(), Some(pid), "apply --yes webserver.star");
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    assert!(second.stdout.contains("= 4 unchanged"), "{}", second.stdout);
    assert_eq!(nginx_pid(), Some(pid), "nothing restarted nginx");
}
