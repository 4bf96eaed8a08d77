//! `net.connect`: can the target reach `host:port`? Probes (`probe.tcp`) ask this from
//! the target itself, where no shell tool for it can be assumed.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::error::OpError;
use crate::protocol::ops::{ConnectArgs, ConnectResult};

/// `net.connect`. Every resolved address is tried in order until one accepts.
pub fn connect(args: ConnectArgs) -> Result<ConnectResult, OpError> {
    if args.host.is_empty() || args.port == 0 {
        return Err(OpError::permanent(
            "`host` must be non-empty and `port` from 1 to 65535",
        ));
    }
    let timeout = Duration::from_millis(args.timeout_ms.unwrap_or(5000).max(1));
    let start = Instant::now();
    let elapsed = |start: Instant| u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let addrs = match (args.host.as_str(), args.port).to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => {
            return Ok(ConnectResult {
                connected: false,
                address: None,
                error: Some(format!("cannot resolve `{}`: {e}", args.host)),
                duration_ms: elapsed(start),
            });
        }
    };
    let mut last = format!("`{}` has no address", args.host);
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => {
                return Ok(ConnectResult {
                    connected: true,
                    address: Some(addr.to_string()),
                    error: None,
                    duration_ms: elapsed(start),
                });
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Ok(ConnectResult {
        connected: false,
        address: None,
        error: Some(last),
        duration_ms: elapsed(start),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(host: &str, port: u16) -> ConnectArgs {
        ConnectArgs {
            host: host.into(),
            port,
            timeout_ms: Some(2000),
        }
    }

    #[test]
    fn connects_to_a_listener_and_reports_a_closed_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ok = connect(args("127.0.0.1", port)).unwrap();
        assert!(ok.connected, "{ok:?}");
        assert_eq!(
            ok.address.as_deref(),
            Some(format!("127.0.0.1:{port}").as_str())
        );
        drop(listener);
        let closed = connect(args("127.0.0.1", port)).unwrap();
        assert!(!closed.connected);
        assert!(closed.error.unwrap().contains("refused"));
        let bad = connect(args("no-such-host.invalid", 80)).unwrap();
        assert!(bad.error.unwrap().contains("cannot resolve"));
        assert!(connect(args("", 80)).is_err());
    }
}
