//! Health probes as Keystone declares them: `http://`/`https://` (healthy on 2xx or
//! 3xx), `tcp://host:port` (a connection opens), `cmd:` (a shell command in the work
//! dir exits 0). Each probe is bounded by the recipe's `timeout`.

use std::collections::BTreeMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::recipe::Probe;

/// Runs one probe; `Err` says why it is unhealthy.
pub fn probe(
    p: &Probe,
    timeout: Duration,
    cwd: &Path,
    env: &BTreeMap<String, String>,
    http: &ureq::Agent,
) -> Result<(), String> {
    match p {
        Probe::Http(url) => {
            let resp = http
                .get(url)
                .config()
                .timeout_global(Some(timeout))
                .build()
                .call()
                .map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            if (200..400).contains(&status) {
                Ok(())
            } else {
                Err(format!("HTTP {status}"))
            }
        }
        Probe::Tcp(addr) => {
            let addrs: Vec<_> = addr
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {addr}: {e}"))?
                .collect();
            let mut last = format!("{addr} resolves to no address");
            for a in addrs {
                match TcpStream::connect_timeout(&a, timeout) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = format!("{a}: {e}"),
                }
            }
            Err(last)
        }
        Probe::Cmd(cmd) => {
            let spec = froyo_runner::ops::exec::Spec {
                argv: vec!["/bin/sh".into(), "-c".into(), cmd.clone()],
                env: env.clone(),
                cwd: cwd.to_path_buf(),
                stdin: None,
                timeout,
                max_output: 4096,
            };
            let out = froyo_runner::ops::exec::run(&spec, &AtomicBool::new(false), None)
                .map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                let text = out.combined();
                Err(match out.status.code() {
                    Some(c) if text.is_empty() => format!("exit {c}"),
                    Some(c) => format!("exit {c}: {}", tail(&text, 200)),
                    None => "killed by a signal".into(),
                })
            }
        }
    }
}

/// The last `n` bytes of `s` (on a char boundary).
pub fn tail(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut start = s.len() - n;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
