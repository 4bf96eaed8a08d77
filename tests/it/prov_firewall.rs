//! `linux.firewall` against real nftables, entirely inside a network namespace this test
//! creates (the host's own firewall is never touched): the runner is started inside the
//! namespace, rules are created, read back with `nft -j`, a hand edit is found and fixed,
//! and real TCP connections on the namespace's loopback go through, are refused
//! (`reject`) and time out (`deny`).

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use froyo::provider_host::{Limits, ProviderHost, Resource};
use froyo::transport::Session;
use serde_json::{Value, json};

use crate::netns::Netns;
use crate::providers::{converge, validated};

const RULE: &str = "linux.firewall::rule";
const PROVIDER: &str = "linux.firewall";

impl Netns {
    fn nft_json(&self) -> Value {
        serde_json::from_str(&self.exec(&["nft", "-j", "list", "table", "inet", "froyo"])).unwrap()
    }

    /// `(chain, handle, comment)` of every rule in froyo's table.
    fn rules(&self) -> Vec<(String, u64, String)> {
        self.nft_json()["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i.get("rule"))
            .map(|r| {
                (
                    r["chain"].as_str().unwrap().to_owned(),
                    r["handle"].as_u64().unwrap(),
                    r["comment"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    fn handle(&self, comment: &str) -> u64 {
        self.rules()
            .into_iter()
            .find(|r| r.2 == comment)
            .unwrap_or_else(|| panic!("no rule {comment}"))
            .1
    }
}

/// Kills the runner when the session is dropped.
struct Child(Mutex<tokio::process::Child>);

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(mut c) = self.0.lock() {
            let _ = c.start_kill();
        }
    }
}

/// A runner session inside the namespace: the runner binary in a private file, started
/// with `ip netns exec` like the local transport starts it.
fn netns_session(ns: &Netns, dir: &Path) -> (tokio::runtime::Runtime, Arc<Session>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let path = dir.join("runner");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(&path)
        .unwrap();
    f.write_all(froyo::transport::runner().0).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let session = rt.block_on(async {
        let mut cmd = tokio::process::Command::new("ip");
        cmd.args(["netns", "exec", &ns.name])
            .arg(&path)
            .arg("--unlink")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .kill_on_drop(true);
        // Another test thread may fork while the file was open for writing ("text file
        // busy"); that passes quickly.
        let mut child = None;
        for _ in 0..20 {
            match cmd.spawn() {
                Ok(c) => {
                    child = Some(c);
                    break;
                }
                Err(e) if e.raw_os_error() == Some(26) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("cannot start the runner: {e}"),
            }
        }
        let mut child = child.expect("the runner stayed busy");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        Session::start(
            "netns",
            Box::new(stdout),
            Box::new(stdin),
            Box::new(Child(Mutex::new(child))),
            Duration::from_secs(30),
        )
        .await
        .unwrap()
    });
    (rt, Arc::new(session))
}

fn rule(name: &str, config: Value) -> Resource {
    let mut config = config;
    config["name"] = json!(name);
    validated(RULE, name, config)
}

#[test]
fn linux_firewall_converges_nftables_inside_a_network_namespace() {
    let id = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&id.stdout).trim(),
        "0",
        "this test needs root (network namespaces, nftables)"
    );
    assert!(
        Command::new("nft").arg("--version").output().is_ok(),
        "this test needs nft (apt-get install nftables)"
    );
    let ns = Netns::new("fw-it");
    // Someone else's table in the namespace: froyo must leave it alone.
    ns.exec(&["nft", "add", "table", "inet", "other"]);
    ns.exec(&[
        "nft", "add", "chain", "inet", "other", "c", "{", "type", "filter", "hook", "input",
        "priority", "10", ";", "}",
    ]);
    ns.exec(&[
        "nft", "add", "rule", "inet", "other", "c", "tcp", "dport", "9", "accept",
    ]);

    let dir = tempfile::tempdir().unwrap();
    let (rt, session) = netns_session(&ns, dir.path());
    let mut host = ProviderHost::builtin(Limits::default(), None).unwrap();
    host.runtime = Some(rt.handle().clone());

    let rules = vec![
        rule("ssh-office", json!({"port": 22, "source": "10.0.0.0/8"})),
        rule(
            "media",
            json!({"port": "8000-8100", "proto": "udp", "source": "2001:db8::/32", "action": "deny"}),
        ),
        rule("ping", json!({"proto": "icmp"})),
        rule(
            "no-web-out",
            json!({"port": 443, "direction": "out", "source": "192.0.2.7", "action": "reject"}),
        ),
    ];
    assert_eq!(
        converge(&host, PROVIDER, &session, &rules),
        [
            "create ssh-office: allow tcp/22 from 10.0.0.0/8 (in)",
            "create media: deny udp/8000-8100 from 2001:db8::/32 (in)",
            "create ping: allow icmp from any (in)",
            "create no-web-out: reject tcp/443 to 192.0.2.7 (out)",
        ]
    );
    let text = ns.exec(&["nft", "list", "table", "inet", "froyo"]);
    for line in [
        "ip saddr 10.0.0.0/8 tcp dport 22 accept comment \"froyo:ssh-office\"",
        "ip6 saddr 2001:db8::/32 udp dport 8000-8100 drop comment \"froyo:media\"",
        "meta l4proto { icmp, ipv6-icmp } accept comment \"froyo:ping\"",
        "ip daddr 192.0.2.7 tcp dport 443 reject with tcp reset comment \"froyo:no-web-out\"",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    let comments: Vec<_> = ns.rules().into_iter().map(|r| (r.0, r.2)).collect();
    assert_eq!(
        comments,
        [
            ("input".to_owned(), "froyo:ssh-office".to_owned()),
            ("input".to_owned(), "froyo:media".to_owned()),
            ("input".to_owned(), "froyo:ping".to_owned()),
            ("output".to_owned(), "froyo:no-web-out".to_owned()),
        ]
    );
    // Read again: nothing to do.
    assert_eq!(
        converge(&host, PROVIDER, &session, &rules),
        Vec::<String>::new()
    );

    // A hand edit (another port) is detected and the rule replaced in place.
    let handle = ns.handle("froyo:ssh-office");
    ns.exec(&[
        "nft",
        "replace",
        "rule",
        "inet",
        "froyo",
        "input",
        "handle",
        &handle.to_string(),
        "ip",
        "saddr",
        "10.0.0.0/8",
        "tcp",
        "dport",
        "2222",
        "accept",
        "comment",
        "\"froyo:ssh-office\"",
    ]);
    assert_eq!(
        converge(&host, PROVIDER, &session, &rules),
        [
            "update ssh-office: allow tcp/22 from 10.0.0.0/8 (in), was allow tcp/2222 from 10.0.0.0/8 (in)"
        ]
    );
    assert_eq!(
        ns.handle("froyo:ssh-office"),
        handle,
        "replaced, not re-added"
    );
    assert!(
        ns.exec(&["nft", "list", "table", "inet", "froyo"])
            .contains("ip saddr 10.0.0.0/8 tcp dport 22 accept comment \"froyo:ssh-office\"")
    );
    // A statement froyo never writes (a counter) counts as a hand edit too.
    let handle = ns.handle("froyo:ping");
    ns.exec(&[
        "nft",
        "replace",
        "rule",
        "inet",
        "froyo",
        "input",
        "handle",
        &handle.to_string(),
        "meta",
        "l4proto",
        "{",
        "icmp,",
        "ipv6-icmp",
        "}",
        "counter",
        "accept",
        "comment",
        "\"froyo:ping\"",
    ]);
    let fixed = converge(&host, PROVIDER, &session, &rules);
    assert_eq!(fixed.len(), 1, "{fixed:?}");
    assert!(
        fixed[0].starts_with("update ping: allow icmp from any (in), was a hand-edited rule (froyo does not write the statement {\"counter\""),
        "{fixed:?}"
    );
    assert_eq!(
        converge(&host, PROVIDER, &session, &rules),
        Vec::<String>::new()
    );

    // Real traffic on the namespace's loopback. The kernel completes handshakes for the
    // listen backlog, so no accept loop is needed.
    let listener: TcpListener = ns.run(|| TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = listener.local_addr().unwrap();
    let port = addr.port();
    ns.connect(addr)
        .expect("reachable before any rule on its port");

    let block = |action: &str| vec![rule("block-app", json!({"port": port, "action": action}))];
    assert_eq!(
        converge(&host, PROVIDER, &session, &block("reject")),
        [format!("create block-app: reject tcp/{port} from any (in)")]
    );
    let e = ns.connect(addr).expect_err("rejected");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");

    assert_eq!(
        converge(&host, PROVIDER, &session, &block("deny")),
        [format!(
            "update block-app: deny tcp/{port} from any (in), was reject tcp/{port} from any (in)"
        )]
    );
    let e = ns.connect(addr).expect_err("dropped");
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");

    // destroy deletes the rule by handle; a second destroy has nothing to do.
    let out = host
        .destroy(PROVIDER, Some(session.clone()), &block("deny")[0])
        .unwrap();
    assert!(out.changed);
    ns.connect(addr).expect("reachable again after destroy");
    let out = host
        .destroy(PROVIDER, Some(session.clone()), &block("deny")[0])
        .unwrap();
    assert!(!out.changed);
    assert!(!ns.rules().iter().any(|r| r.2 == "froyo:block-app"));
    drop(listener);

    // The other table is as it was.
    assert!(
        ns.exec(&["nft", "list", "table", "inet", "other"])
            .contains("tcp dport 9 accept")
    );
}
