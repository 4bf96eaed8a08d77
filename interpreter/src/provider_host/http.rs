//! A minimal HTTP/1.1 client for probes run from the controller (`net:http`): plain
//! `http://` only, one request per connection, bounded by a timeout and a body cap.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

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
    let addr = addr_text
        .to_socket_addrs()
        .map_err(|e| format!("`{authority}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{authority}` has no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("connect to {addr}: {e}"))?;
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
