//! The config of `linux.firewall::rule` as `schema.cue` defines it, and [`Spec`]: the same
//! rule normalized (masked CIDR, `22-22` as `22`) so a desired rule and one read back from
//! the target compare by meaning, not by spelling.

use std::fmt;
use std::net::IpAddr;

use froyo_provider_sdk::{ProviderError, Resource, Result};
use serde::{Deserialize, Serialize};

pub const RULE: &str = "linux.firewall::rule";

/// Every managed rule carries the comment `froyo:NAME`; nftables caps comments at 128
/// bytes, which leaves this much for the name.
pub const MAX_NAME_BYTES: usize = 128 - COMMENT_PREFIX.len();
pub const COMMENT_PREFIX: &str = "froyo:";

/// `#Rule`, as the engine hands it over (defaults filled).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    pub port: Option<PortValue>,
    #[serde(default = "default_proto")]
    pub proto: Proto,
    #[serde(default = "default_source")]
    pub source: String,
    #[serde(default = "default_action")]
    pub action: Action,
    #[serde(default = "default_direction")]
    pub direction: Direction,
}

fn default_proto() -> Proto {
    Proto::Tcp
}
fn default_source() -> String {
    "any".into()
}
fn default_action() -> Action {
    Action::Allow
}
fn default_direction() -> Direction {
    Direction::In
}

/// `port`: a number or a `"a-b"` range.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PortValue {
    Number(u32),
    Range(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

/// A destination port or an inclusive range; `lo == hi` is a single port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub lo: u16,
    pub hi: u16,
}

/// An address block with the host bits cleared (nftables stores it that way, so
/// `10.1.2.3/8` reads back as `10.0.0.0/8`); `len` is 32 or 128 for a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

/// One rule by meaning: what `read` reports for a rule it understands and what `diff`
/// compares with the desired one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub direction: Direction,
    pub proto: Proto,
    /// `None`: every port (and always for icmp).
    pub port: Option<Port>,
    /// `None`: any remote address, IPv4 and IPv6.
    pub source: Option<Cidr>,
    pub action: Action,
}

impl RuleConfig {
    pub fn parse(resource: &Resource) -> Result<RuleConfig> {
        if resource.type_name != RULE {
            return Err(ProviderError::permanent(format!(
                "unknown resource type `{}` for linux.firewall",
                resource.type_name
            )));
        }
        serde_json::from_str(&resource.config).map_err(|e| {
            ProviderError::permanent(format!("invalid config for `{}`: {e}", resource.id))
        })
    }

    /// The rule's comment on the target: how `read` finds it again.
    pub fn comment(&self) -> String {
        format!("{COMMENT_PREFIX}{}", self.name)
    }

    /// Checks what the schema cannot (range order, real addresses, a name nftables can
    /// carry in a comment) and normalizes the rule.
    pub fn spec(&self) -> Result<Spec> {
        check_name(&self.name)?;
        let port = match &self.port {
            None => None,
            Some(_) if self.proto == Proto::Icmp => {
                return Err(ProviderError::permanent(
                    "port cannot be used with proto \"icmp\"",
                ));
            }
            Some(p) => Some(parse_port(p)?),
        };
        let source = if self.source == "any" {
            None
        } else {
            Some(parse_cidr(&self.source)?)
        };
        Ok(Spec {
            direction: self.direction,
            proto: self.proto,
            port,
            source,
            action: self.action,
        })
    }
}

/// The name goes inside a double-quoted nft string: no quote, backslash or control
/// character can be escaped there, and the comment has a byte limit.
fn check_name(name: &str) -> Result<()> {
    if let Some(c) = name
        .chars()
        .find(|c| *c == '"' || *c == '\\' || c.is_control())
    {
        return Err(ProviderError::permanent(format!(
            "the rule name {name:?} contains {c:?}, which an nftables comment cannot hold"
        )));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(ProviderError::permanent(format!(
            "the rule name is {} bytes long; at most {MAX_NAME_BYTES} fit in an nftables comment",
            name.len()
        )));
    }
    Ok(())
}

fn parse_port(p: &PortValue) -> Result<Port> {
    let bad =
        || ProviderError::permanent(format!("invalid port {p:?}: expected 1-65535 or \"a-b\""));
    let number = |n: u32| u16::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(bad);
    let (lo, hi) = match p {
        PortValue::Number(n) => (number(*n)?, number(*n)?),
        PortValue::Range(s) => {
            let (a, b) = s.split_once('-').ok_or_else(bad)?;
            let n = |x: &str| x.parse::<u32>().map_err(|_| bad()).and_then(number);
            (n(a)?, n(b)?)
        }
    };
    if lo > hi {
        return Err(ProviderError::permanent(format!(
            "invalid port range {lo}-{hi}: the first port must not be above the second"
        )));
    }
    Ok(Port { lo, hi })
}

/// Parses `addr` or `addr/len` and clears the host bits.
pub fn parse_cidr(s: &str) -> Result<Cidr> {
    let bad = |why: &str| ProviderError::permanent(format!("invalid source {s:?}: {why}"));
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| bad("not an IPv4 or IPv6 address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| bad("bad prefix length"))?,
    };
    Ok(Cidr::new(addr, len))
}

impl Cidr {
    pub fn new(addr: IpAddr, len: u8) -> Cidr {
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Cidr { addr, len }
    }

    pub fn full_len(&self) -> u8 {
        if self.addr.is_ipv4() { 32 } else { 128 }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len == self.full_len() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        }
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Reject => "reject",
        }
    }
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// The plan's wording: `allow tcp/22 from 10.0.0.0/8 (in)`, `deny udp to any (out)`.
impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.action.as_str(), self.proto.as_str())?;
        if let Some(port) = self.port {
            write!(f, "/{port}")?;
        }
        let peer = match self.direction {
            Direction::In => "from",
            Direction::Out => "to",
        };
        match self.source {
            Some(c) => write!(f, " {peer} {c}")?,
            None => write!(f, " {peer} any")?,
        }
        write!(f, " ({})", self.direction.as_str())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn config(v: Value) -> Result<RuleConfig> {
        RuleConfig::parse(&Resource {
            id: "r".into(),
            type_name: RULE.into(),
            config: v.to_string(),
        })
    }

    fn spec(v: Value) -> Result<Spec> {
        config(v)?.spec()
    }

    #[test]
    fn defaults_and_summaries() {
        let s = spec(json!({"name": "ssh", "port": 22, "source": "10.0.0.0/8"})).unwrap();
        assert_eq!(s.to_string(), "allow tcp/22 from 10.0.0.0/8 (in)");
        let s = spec(
            json!({"name": "x", "port": "8000-8100", "proto": "udp", "action": "deny",
                            "direction": "out", "source": "2001:DB8::/32"}),
        )
        .unwrap();
        assert_eq!(s.to_string(), "deny udp/8000-8100 to 2001:db8::/32 (out)");
        let s = spec(json!({"name": "p", "proto": "icmp", "action": "reject"})).unwrap();
        assert_eq!(s.to_string(), "reject icmp from any (in)");
    }

    #[test]
    fn addresses_are_masked_and_single_ports_normalized() {
        let a = spec(json!({"name": "a", "port": "22-22", "source": "10.1.2.3/8"})).unwrap();
        let b = spec(json!({"name": "a", "port": 22, "source": "10.0.0.0/8"})).unwrap();
        assert_eq!(a, b);
        assert_eq!(parse_cidr("10.1.2.3/32").unwrap().to_string(), "10.1.2.3");
        assert_eq!(
            parse_cidr("10.1.2.3").unwrap(),
            parse_cidr("10.1.2.3/32").unwrap()
        );
        assert_eq!(parse_cidr("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert_eq!(
            parse_cidr("2001:0db8:0::1/128").unwrap().to_string(),
            "2001:db8::1"
        );
        assert_eq!(
            parse_cidr("2001:db8:ff::1/33").unwrap().to_string(),
            "2001:db8::/33"
        );
    }

    #[test]
    fn what_the_schema_lets_through_is_still_checked() {
        let e = spec(json!({"name": "a", "port": "9000-8000"})).unwrap_err();
        assert!(e.message.contains("9000-8000"), "{}", e.message);
        let e = spec(json!({"name": "a", "source": "1:2:3"})).unwrap_err();
        assert!(e.message.contains("not an IPv4 or IPv6"), "{}", e.message);
        let e = spec(json!({"name": "say \"hi\""})).unwrap_err();
        assert!(e.message.contains("comment cannot hold"), "{}", e.message);
        let e = spec(json!({"name": "x".repeat(123)})).unwrap_err();
        assert!(e.message.contains("at most 122"), "{}", e.message);
        assert!(spec(json!({"name": "x".repeat(122)})).is_ok());
        let e = spec(json!({"name": "a", "proto": "icmp", "port": 1})).unwrap_err();
        assert!(e.message.contains("icmp"), "{}", e.message);
        let e = config(json!({"name": "a", "ports": 1})).unwrap_err();
        assert!(e.message.contains("unknown field"), "{}", e.message);
    }
}
