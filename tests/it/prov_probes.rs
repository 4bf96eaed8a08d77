//! `probe.http` and `probe.tcp` against real sockets on loopback: a check passes, a wrong
//! status, a body that does not match and a closed port fail as transient errors (so the
//! engine can retry them), from the target (curl, the runner's `net.connect`) and from
//! the controller (the host's own HTTP and TCP imports).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use froyo::provider_host::{Limits, ProviderHost};
use serde_json::json;

use crate::providers::{converge, local_session, validated};

/// A loopback HTTP server: `/ok` answers 200 "ready v2", anything else 503. Stops when
/// the listener is dropped by the test's end (the thread is detached and blocks in
/// accept; the process exits after the tests).
fn serve() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            // Drain the headers.
            let mut h = String::new();
            while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                h.clear();
            }
            let (status, body) = if path == "/ok" {
                ("200 OK", "service ready v2\n")
            } else {
                ("503 Service Unavailable", "starting\n")
            };
            let mut s = &stream;
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn probes_pass_and_fail_from_the_target_and_the_controller() {
    let (rt, session) = local_session();
    let mut host = ProviderHost::builtin(Limits::default(), None).unwrap();
    host.runtime = Some(rt.handle().clone());
    let port = serve();
    let base = format!("http://127.0.0.1:{port}");
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };

    let http = |name: &str, path: &str, body: Option<&str>, from: &str| {
        let mut c = json!({"name": name, "url": format!("{base}{path}"), "run_from": from});
        if let Some(b) = body {
            c["expect_body"] = json!(b);
        }
        validated("probe.http::check", name, c)
    };
    let tcp = |name: &str, port: u16, from: &str| {
        validated(
            "probe.tcp::check",
            name,
            json!({"name": name, "host": "127.0.0.1", "port": port, "run_from": from}),
        )
    };

    // Passing checks: one `check` op each, every run (probes never settle), none changed.
    let good = vec![
        http("t", "/ok", Some(r"ready\s+v\d"), "target"),
        http("c", "/ok", None, "controller"),
    ];
    for _ in 0..2 {
        let ops = converge(&host, "probe.http", &session, &good);
        assert_eq!(ops.len(), 2, "{ops:?}");
        assert!(
            ops[0].starts_with("check t: GET http://127.0.0.1:"),
            "{ops:?}"
        );
    }
    let good_tcp = vec![tcp("t", port, "target"), tcp("c", port, "controller")];
    assert_eq!(converge(&host, "probe.tcp", &session, &good_tcp).len(), 2);

    // Failing checks: transient errors that say why.
    let fail = |provider: &str, r: froyo::provider_host::Resource| {
        let actual = host
            .read(provider, Some(session.clone()), std::slice::from_ref(&r))
            .unwrap();
        let op = host.diff(provider, &r, &actual[0]).unwrap().remove(0);
        assert_eq!(op.kind, "check");
        let err = host
            .apply(provider, Some(session.clone()), &op)
            .unwrap_err();
        assert_eq!(
            err.class,
            Some(froyo::provider_host::ErrorClass::Transient),
            "{err}"
        );
        err.message
    };
    for from in ["target", "controller"] {
        let m = fail("probe.http", http("s", "/starting", None, from));
        assert!(m.contains("status 503, expected 200"), "{from}: {m}");
        let m = fail("probe.http", http("b", "/ok", Some("v3"), from));
        assert!(m.contains("does not match /v3/"), "{from}: {m}");
        let m = fail("probe.tcp", tcp("x", closed, from));
        assert!(m.contains("refused"), "{from}: {m}");
    }
}
