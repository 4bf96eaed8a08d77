//! Shared parts of the agent tests: a loopback HTTP artifact server with fault
//! injection and a request log, the real agent started through `froyo agent serve`,
//! and a small HTTP client for its API.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Run;

/// A fault for one path, consumed as requests arrive.
#[derive(Debug, Default, Clone)]
pub struct Fault {
    /// Answer the next N requests with 500.
    pub fail_500: u32,
    /// On the next full (non-range) request, send this many body bytes, then drop.
    pub drop_after: Option<usize>,
    pub delay: Duration,
}

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub range: Option<String>,
    /// The request's `If-None-Match`.
    pub if_none_match: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct ServerState {
    files: HashMap<String, Vec<u8>>,
    faults: HashMap<String, Fault>,
    hits: Vec<Hit>,
}

pub struct ArtifactServer {
    pub addr: std::net::SocketAddr,
    state: Arc<Mutex<ServerState>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ArtifactServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ServerState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(c) = conn {
                    let _ = serve_one(c, &st);
                }
            }
        });
        ArtifactServer {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn put(&self, path: &str, bytes: &[u8]) {
        self.state
            .lock()
            .unwrap()
            .files
            .insert(path.to_owned(), bytes.to_vec());
    }

    pub fn fault(&self, path: &str, f: Fault) {
        self.state.lock().unwrap().faults.insert(path.to_owned(), f);
    }

    pub fn hits(&self, path: &str) -> Vec<Hit> {
        self.state
            .lock()
            .unwrap()
            .hits
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for ArtifactServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(c: TcpStream, state: &Mutex<ServerState>) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(c.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut range = None;
    let mut if_none_match = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_owned());
            } else if k.eq_ignore_ascii_case("if-none-match") {
                if_none_match = Some(v.trim().to_owned());
            }
        }
    }
    let (body, fault) = {
        let mut s = state.lock().unwrap();
        let body = s.files.get(&path).cloned();
        let fault = s.faults.get(&path).cloned().unwrap_or_default();
        if let Some(f) = s.faults.get_mut(&path) {
            if f.fail_500 > 0 {
                f.fail_500 -= 1;
            } else if range.is_none() {
                f.drop_after = None;
            }
        }
        (body, fault)
    };
    std::thread::sleep(fault.delay);
    let mut out = c;
    let record = |status: u16| {
        state.lock().unwrap().hits.push(Hit {
            path: path.clone(),
            range: range.clone(),
            if_none_match: if_none_match.clone(),
            status,
        })
    };
    let Some(body) = body else {
        record(404);
        return out.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    if fault.fail_500 > 0 {
        record(500);
        return out.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    // A strong ETag over the content, and 304 when the client already has it.
    let etag = format!("\"{}\"", &sha256(&body)[..16]);
    if if_none_match.as_deref() == Some(etag.as_str()) {
        record(304);
        return write!(
            out,
            "HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
    match start {
        Some(s) if s < body.len() => {
            record(206);
            write!(
                out,
                "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {s}-{}/{}\r\nConnection: close\r\n\r\n",
                body.len() - s,
                body.len() - 1,
                body.len()
            )?;
            out.write_all(&body[s..])
        }
        _ => {
            record(200);
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: {etag}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            match fault.drop_after {
                Some(n) if range.is_none() => {
                    out.write_all(&body[..n.min(body.len())])?;
                    out.flush()?;
                    let _ = out.shutdown(std::net::Shutdown::Both);
                    Ok(())
                }
                _ => out.write_all(&body),
            }
        }
    }
}

/// `(status, body)` of one HTTP request to `url` (`http://host:port/path`).
pub fn http(method: &str, url: &str, body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut s = TcpStream::connect(host).expect("connect to the agent");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The real agent, started as `froyo agent serve` in `cwd`.
pub struct AgentProc {
    pub child: Child,
    pub data: PathBuf,
    pub url: String,
    pub cwd: PathBuf,
}

impl AgentProc {
    pub fn start(cwd: &Path, data: &Path) -> Self {
        Self::start_with(cwd, data, &[], &[])
    }

    pub fn start_with(cwd: &Path, data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(data).unwrap();
        let addr_file = data.join("agent.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.with_extension("stderr"))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_froyo"));
        cmd.args([
            "agent",
            "serve",
            "--http",
            "127.0.0.1:0",
            "--grace",
            "2s",
            "--data-dir",
        ])
        .arg(data)
        .args(extra)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("ORDER_LOG", cwd.join("order.log"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
        let child = cmd.spawn().expect("start froyo agent serve");
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            if let Ok(u) = std::fs::read_to_string(&addr_file)
                && u.ends_with('\n')
            {
                break u.trim().to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not start: {}",
                Self::stderr_of(data)
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        AgentProc {
            child,
            data: data.to_path_buf(),
            url,
            cwd: cwd.to_path_buf(),
        }
    }

    fn stderr_of(data: &Path) -> String {
        std::fs::read_to_string(data.with_extension("stderr")).unwrap_or_default()
    }

    /// The agent's own log so far.
    pub fn stderr(&self) -> String {
        Self::stderr_of(&self.data)
    }

    /// `froyo agent ARGS --agent URL` in the agent's working directory.
    pub fn cli(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_froyo"))
            .arg("agent")
            .args(args)
            .args(["--agent", &self.url])
            .current_dir(&self.cwd)
            .env("NO_COLOR", "1")
            .output()
            .expect("run froyo agent");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = http("GET", &format!("{}{path}", self.url), "");
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// The components, by name.
    pub fn components(&self) -> HashMap<String, serde_json::Value> {
        self.get_json("/v1/components")
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap().to_owned(), c.clone()))
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the agent to end by itself (a failpoint), returning how it ended.
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not end: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM (the agent stops its components), then waits.
    pub fn terminate(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The process group of a process.
pub fn pgrp(pid: u64) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

/// A free loopback TCP port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sha256` hex of bytes, for recipes.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Stamps of `order.log`: `(name, what) → (ns, pid)`, in file order.
pub fn stamps(cwd: &Path) -> Vec<(String, String, u128, u64)> {
    std::fs::read_to_string(cwd.join("order.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                f.first()?.to_string(),
                f.get(1)?.to_string(),
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
            ))
        })
        .collect()
}

/// Waits until `cond` holds (or panics with `what` after `secs`).
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A recipe in Keystone's format running `svc.py` (served at `/svc.py`) in `mode`.
pub struct RecipeSpec<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub deps: &'a [(&'a str, &'a str)],
    pub artifact_url: &'a str,
    pub artifact_path: &'a str,
    pub sha256: &'a str,
    pub mode: &'a str,
    pub port: u16,
    pub delay: &'a str,
    pub health: Option<String>,
    pub restart: &'a str,
    pub env: &'a [(&'a str, &'a str)],
}

impl RecipeSpec<'_> {
    pub fn toml(&self) -> String {
        let file = self.artifact_path.rsplit('/').next().unwrap();
        let mut t = format!(
            "[metadata]\nname = \"{}\"\nversion = \"{}\"\ndescription = \"test component\"\npublisher = \"froyo-tests\"\n\n",
            self.name, self.version
        );
        for (d, v) in self.deps {
            t.push_str(&format!(
                "[[dependencies]]\nname = \"{d}\"\nversion = \"{v}\"\ntype = \"hard\"\n\n"
            ));
        }
        t.push_str(&format!(
            "[[artifacts]]\nuri = \"{}\"\nsha256 = \"{}\"\n\n",
            self.artifact_url, self.sha256
        ));
        t.push_str(&format!(
            "[lifecycle.install]\nscript = \"\"\"\ncp ../../../artifacts/{}/{}/{file} ./svc.py\n\"\"\"\n\n",
            self.name, self.version
        ));
        t.push_str(&format!(
            "[lifecycle.run]\nrestart_policy = \"{}\"\n\n",
            self.restart
        ));
        t.push_str(&format!(
            "[lifecycle.run.exec]\ncommand = \"python3\"\nargs = [\"svc.py\", \"{}\", \"{}\", \"{}\", \"{}\"]\n\n",
            self.name.rsplit('.').next().unwrap(),
            self.mode,
            self.port,
            self.delay
        ));
        t.push_str("[lifecycle.run.exec.env]\nORDER_LOG = \"${ORDER_LOG}\"\n");
        for (k, v) in self.env {
            t.push_str(&format!("{k} = \"{v}\"\n"));
        }
        if let Some(h) = &self.health {
            t.push_str(&format!(
                "\n[lifecycle.run.health]\ncheck = \"{h}\"\ninterval = \"1s\"\ntimeout = \"1s\"\nfailure_threshold = 2\n"
            ));
        }
        t
    }
}
