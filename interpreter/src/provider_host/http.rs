//! Network checks from the controller for probes: a minimal HTTP/1.1 client (`net:http`:
//! plain `http://` only, one request per connection, bounded by a timeout and a body cap)
//! and a TCP connect (`net:tcp`).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

const MAX_BODY: u64 = 1 << 20;

/// `(status, body)` of `METHOD url`.
pub fn request(method: &str, url: &str, timeout: Duration) -> Result<(u16, String), String> {
    if !matches!(method, "GET" | "HEAD") {
        return Err(format!(
            "HTTP method `{method}` is not supported (GET, HEAD)"
        ));
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}`: only http:// URLs are supported from the controller"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr_text = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut stream = connect(&addr_text, timeout)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: froyo\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream
        .take(MAX_BODY + 64 * 1024)
        .read_to_end(&mut raw)
        .map_err(|e| format!("reading the response: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| "malformed HTTP response".to_owned())?;
    Ok((status, body.to_owned()))
}

/// Connects to `host:port` and closes the connection: how long it took.
pub fn tcp_connect(host: &str, port: u16, timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let text = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    connect(&text, timeout).map(|_| start.elapsed())
}

/// A connection to the first address of `addr` (`host:port`) that accepts one.
fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addrs = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{addr}`: {e}"))?;
    let mut last = format!("`{addr}` has no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("connect to {a}: {e}"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_connect_to_a_listener_and_a_closed_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(tcp_connect("127.0.0.1", port, Duration::from_secs(2)).is_ok());
        drop(l);
        let e = tcp_connect("127.0.0.1", port, Duration::from_secs(2)).unwrap_err();
        assert!(e.contains("refused"), "{e}");
    }
}
