//! `linux.net` end to end through the real component and the local runner: downloads
//! from a loopback HTTP server this file starts (a std `TcpListener` on 127.0.0.1:0 that
//! serves fixed paths and records every request), archives built with the real `tar`
//! and `zip`, files under a tempdir.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use froyo::provider_host::{ErrorClass, Limits, ProviderFailure, ProviderHost, Resource};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::providers::{converge, local_session, validated};

const PROVIDER: &str = "linux.net";
const TOKEN: &str = "tok-s3cret-4711";

/// One request the server saw: its path and headers (names lowercased).
#[derive(Debug, Clone)]
struct Request {
    path: String,
    headers: HashMap<String, String>,
}

/// A loopback HTTP/1.1 server: 200 with the body for a known path, 404 otherwise. One
/// connection at a time is plenty for these tests. Stopped (and its thread joined) on drop.
struct Server {
    addr: SocketAddr,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (files, requests, stop) = (files.clone(), requests.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        serve(conn, &files, &requests);
                    }
                }
            })
        };
        Server {
            addr,
            files,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn put(&self, path: &str, body: &[u8]) {
        self.files
            .lock()
            .unwrap()
            .insert(path.to_owned(), body.to_vec());
    }

    fn requests_for(&self, path: &str) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so the loop sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    mut conn: TcpStream,
    files: &Mutex<HashMap<String, Vec<u8>>>,
    requests: &Mutex<Vec<Request>>,
) {
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("/")
        .to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    requests.lock().unwrap().push(Request {
        path: path.clone(),
        headers,
    });
    let body = files.lock().unwrap().get(&path).cloned();
    let (status, body) = match body {
        Some(body) => ("200 OK", body),
        None => ("404 Not Found", b"not found\n".to_vec()),
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(&body);
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn host(rt: &tokio::runtime::Runtime) -> ProviderHost {
    let mut host = ProviderHost::builtin(Limits::default(), None).unwrap();
    host.runtime = Some(rt.handle().clone());
    host
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// read → diff → apply of one resource that must plan exactly one op and fail to apply.
fn apply_fails(
    host: &ProviderHost,
    session: &Arc<froyo::transport::Session>,
    r: &Resource,
) -> ProviderFailure {
    let actual = host
        .read(PROVIDER, Some(session.clone()), std::slice::from_ref(r))
        .unwrap();
    let ops = host.diff(PROVIDER, r, &actual[0]).unwrap();
    assert_eq!(ops.len(), 1, "{ops:?}");
    host.apply(PROVIDER, Some(session.clone()), &ops[0])
        .expect_err("apply should fail")
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_download_is_fetched_once_verified_and_sends_its_headers() {
    let server = Server::start();
    let body = b"hello froyo\n";
    server.put("/hello.txt", body);
    let (rt, session) = local_session();
    let host = host(&rt);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("hello.txt");
    let config = |sha: &str, mode: &str| {
        vec![validated(
            "linux.net::download",
            "hello",
            json!({"dest": p(&dest), "url": server.url("/hello.txt"), "sha256": sha, "mode": mode,
                   "headers": {"X-Froyo-Token": TOKEN}}),
        )]
    };

    let first = converge(&host, PROVIDER, &session, &config(&sha256(body), "0640"));
    assert_eq!(
        first,
        [format!(
            "create hello: download {} → {} (sha256 {}…)",
            server.url("/hello.txt"),
            p(&dest),
            &sha256(body)[..12]
        )]
    );
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert_eq!(mode(&dest), 0o640);
    let seen = server.requests_for("/hello.txt");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].headers.get("x-froyo-token").map(String::as_str),
        Some(TOKEN)
    );

    // Read again: nothing to do and no second request.
    assert!(converge(&host, PROVIDER, &session, &config(&sha256(body), "0640")).is_empty());
    assert_eq!(server.requests_for("/hello.txt").len(), 1);

    // Only the mode differs: fixed in place, still no request.
    let fixed = converge(&host, PROVIDER, &session, &config(&sha256(body), "600"));
    assert_eq!(fixed, ["update hello: mode 0640 → 0600"]);
    assert_eq!(mode(&dest), 0o600);
    assert_eq!(server.requests_for("/hello.txt").len(), 1);

    // New content upstream and a new checksum: fetched again, mode kept.
    let v2 = b"hello again\n";
    server.put("/hello.txt", v2);
    let again = converge(&host, PROVIDER, &session, &config(&sha256(v2), "0600"));
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(
        again[0].ends_with(&format!("was {}…)", &sha256(body)[..12])),
        "{again:?}"
    );
    assert!(!again[0].contains(TOKEN));
    assert_eq!(std::fs::read(&dest).unwrap(), v2);
    assert_eq!(mode(&dest), 0o600);
    assert_eq!(server.requests_for("/hello.txt").len(), 2);
    // No temp file is left beside dest.
    assert_eq!(names(dir.path()), ["hello.txt"]);
    drop(server);
}

#[test]
fn failed_downloads_are_clear_errors_and_leave_dest_alone() {
    let server = Server::start();
    server.put("/hello.txt", b"hello froyo\n");
    let (rt, session) = local_session();
    let host = host(&rt);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("app.bin");
    std::fs::write(&dest, "old\n").unwrap();
    let download = |url: String, sha: &str| {
        validated(
            "linux.net::download",
            "app",
            json!({"dest": p(&dest), "url": url, "sha256": sha, "headers": {"Authorization": TOKEN}}),
        )
    };

    // Served, but not the configured checksum: refused, dest untouched, no temp file.
    let wanted = sha256(b"something else\n");
    let e = apply_fails(
        &host,
        &session,
        &download(server.url("/hello.txt"), &wanted),
    );
    assert_eq!(e.class, Some(ErrorClass::Permanent), "{e}");
    assert!(
        e.message.contains(&format!(
            "sha256 mismatch for {}: expected {wanted}, got {}",
            server.url("/hello.txt"),
            sha256(b"hello froyo\n")
        )),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "old\n");
    assert_eq!(names(dir.path()), ["app.bin"]);

    // 404: permanent, says so, and never shows the header's value.
    let e = apply_fails(&host, &session, &download(server.url("/nope"), &wanted));
    assert_eq!(e.class, Some(ErrorClass::Permanent), "{e}");
    assert!(e.message.contains("HTTP status 404"), "{e}");
    assert!(!e.message.contains(TOKEN), "{e}");
    assert_eq!(server.requests_for("/nope").len(), 1);
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "old\n");
    assert_eq!(names(dir.path()), ["app.bin"]);

    // Nothing listening: transient, worth a retry.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let e = apply_fails(
        &host,
        &session,
        &download(format!("http://{closed}/x"), &wanted),
    );
    assert_eq!(e.class, Some(ErrorClass::Transient), "{e}");
    assert!(e.message.contains("cannot connect"), "{e}");
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "old\n");
    assert_eq!(names(dir.path()), ["app.bin"]);
    drop(server);
}

/// Runs `program args` in `cwd` and fails the test unless it exits 0.
fn run(cwd: &Path, program: &str, args: &[&str]) {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `name.tar.gz` and `name.zip` in `dir`, of a tree `top/{bin/app, README, sub/b.txt}`
/// whose README says `readme`.
fn build_archives(dir: &Path, readme: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let tree = dir.join("tree");
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(tree.join("top/bin")).unwrap();
    std::fs::create_dir_all(tree.join("top/sub")).unwrap();
    std::fs::write(tree.join("top/bin/app"), "#!/bin/sh\necho app\n").unwrap();
    std::fs::write(tree.join("top/README"), readme).unwrap();
    std::fs::write(tree.join("top/sub/b.txt"), "b\n").unwrap();
    let (tgz, zip) = (dir.join("app.tar.gz"), dir.join("app.zip"));
    let _ = std::fs::remove_file(&zip);
    run(&tree, "tar", &["-czf", &p(&tgz), "top"]);
    run(&tree, "zip", &["-qr", &p(&zip), "top"]);
    (tgz, zip)
}

#[test]
fn archives_are_unpacked_once_per_content_with_stripped_components() {
    let (rt, session) = local_session();
    let host = host(&rt);
    let dir = tempfile::tempdir().unwrap();
    let (tgz, zip) = build_archives(dir.path(), "v1\n");
    let (out_tar, out_zip) = (dir.path().join("out/tar"), dir.path().join("out/zip"));
    let resources = vec![
        validated(
            "linux.archive::extract",
            "tar",
            json!({"dest": p(&out_tar), "src": p(&tgz), "strip_components": 1}),
        ),
        validated(
            "linux.archive::extract",
            "zip",
            json!({"dest": p(&out_zip), "src": p(&zip), "strip_components": 1}),
        ),
    ];

    let first = converge(&host, PROVIDER, &session, &resources);
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first[0].starts_with("create tar: extract "), "{first:?}");
    assert!(
        first[1].ends_with("zip archive, strip_components 1)"),
        "{first:?}"
    );
    for out in [&out_tar, &out_zip] {
        assert_eq!(
            names(out),
            [".froyo-extract", "README", "bin", "sub"],
            "{}",
            out.display()
        );
        assert_eq!(std::fs::read_to_string(out.join("README")).unwrap(), "v1\n");
        assert_eq!(
            std::fs::read_to_string(out.join("bin/app")).unwrap(),
            "#!/bin/sh\necho app\n"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("sub/b.txt")).unwrap(),
            "b\n"
        );
    }
    // No temp directory is left beside the zip's dest.
    assert_eq!(names(&dir.path().join("out")), ["tar", "zip"]);

    // Read again: nothing to do. A hand edit inside dest survives, proving that nothing
    // was unpacked again.
    std::fs::write(out_tar.join("README"), "edited\n").unwrap();
    assert!(converge(&host, PROVIDER, &session, &resources).is_empty());
    assert_eq!(
        std::fs::read_to_string(out_tar.join("README")).unwrap(),
        "edited\n"
    );

    // New archive content: both unpacked again, over the old files.
    let old_sha = sha256(&std::fs::read(&tgz).unwrap());
    build_archives(dir.path(), "v2\n");
    let again = converge(&host, PROVIDER, &session, &resources);
    assert_eq!(again.len(), 2, "{again:?}");
    assert!(again[0].starts_with("update tar: extract "), "{again:?}");
    assert!(
        again[0].ends_with(&format!("was {}…)", &old_sha[..12])),
        "{again:?}"
    );
    for out in [&out_tar, &out_zip] {
        assert_eq!(std::fs::read_to_string(out.join("README")).unwrap(), "v2\n");
        assert_eq!(
            std::fs::read_to_string(out.join("sub/b.txt")).unwrap(),
            "b\n"
        );
    }
    assert!(converge(&host, PROVIDER, &session, &resources).is_empty());
    assert_eq!(names(&dir.path().join("out")), ["tar", "zip"]);
}

#[test]
fn a_download_and_its_extract_converge_in_one_run() {
    let server = Server::start();
    let (rt, session) = local_session();
    let host = host(&rt);
    let dir = tempfile::tempdir().unwrap();
    let (tgz, _) = build_archives(dir.path(), "served\n");
    let bytes = std::fs::read(&tgz).unwrap();
    server.put("/app.tar.gz", &bytes);
    let archive = dir.path().join("dl/app.tar.gz");
    let out = dir.path().join("opt/app");
    std::fs::create_dir_all(archive.parent().unwrap()).unwrap();
    let resources = vec![
        validated(
            "linux.net::download",
            "archive",
            json!({"dest": p(&archive), "url": server.url("/app.tar.gz"), "sha256": sha256(&bytes)}),
        ),
        validated(
            "linux.archive::extract",
            "app",
            json!({"dest": p(&out), "src": p(&archive), "strip_components": 1,
                   "creates": p(&out.join("bin/app"))}),
        ),
    ];

    // The archive does not exist when the run is planned: the extract is planned anyway.
    let first = converge(&host, PROVIDER, &session, &resources);
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(
        first[1].ends_with("the archive is not there yet: an earlier step must create it)"),
        "{first:?}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("README")).unwrap(),
        "served\n"
    );
    assert_eq!(mode(&archive), 0o644);
    assert!(converge(&host, PROVIDER, &session, &resources).is_empty());
    assert_eq!(server.requests_for("/app.tar.gz").len(), 1);

    // An archive that never appears is a clear error at apply time.
    let missing = validated(
        "linux.archive::extract",
        "missing",
        json!({"dest": p(&dir.path().join("none")), "src": p(&dir.path().join("none.zip"))}),
    );
    let e = apply_fails(&host, &session, &missing);
    assert_eq!(e.class, Some(ErrorClass::Permanent), "{e}");
    assert!(e.message.contains("none.zip does not exist"), "{e}");

    // destroy: the download's file goes; of the extract only its marker.
    let gone = host
        .destroy(PROVIDER, Some(session.clone()), &resources[1])
        .unwrap();
    assert!(gone.changed);
    assert_eq!(names(&out), ["README", "bin", "sub"]);
    let gone = host
        .destroy(PROVIDER, Some(session.clone()), &resources[0])
        .unwrap();
    assert!(gone.changed);
    assert!(!archive.exists());
    drop(server);
}
