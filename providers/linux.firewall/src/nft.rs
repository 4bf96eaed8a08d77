//! The nftables side, pure: rules rendered as `nft` statements, the `nft -f` scripts that
//! create, replace and delete them, and `nft -j list table inet froyo` parsed back into
//! [`Spec`]s so a hand-edited rule is told apart from the desired one by its matches and
//! verdict, not only by its comment.
//!
//! froyo keeps its rules in a table of its own, `inet froyo`, with base chains `input`
//! and `output` (policy accept), so it never touches anyone else's rules. A rule is found
//! again by its comment `froyo:NAME`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Action, COMMENT_PREFIX, Cidr, Direction, Port, Proto, Spec};

pub const TABLE: &str = "inet froyo";

/// The chain a direction's rules live in.
pub fn chain(direction: Direction) -> &'static str {
    match direction {
        Direction::In => "input",
        Direction::Out => "output",
    }
}

/// The rule as nft statements, e.g. `ip saddr 10.0.0.0/8 tcp dport 22 accept`.
///
/// - The remote address is `ip`/`ip6` by its family, `saddr` for incoming traffic and
///   `daddr` for outgoing; with `any` there is no address match, so the rule covers IPv4
///   and IPv6 alike (the table is `inet`).
/// - A port is always the destination port (`tcp dport 22`, `udp dport 8000-8100`);
///   without one, `meta l4proto tcp` matches the whole protocol.
/// - icmp means ICMP for an IPv4 address, ICMPv6 for an IPv6 one, and both for `any`.
/// - deny is `drop`; reject is `reject with tcp reset` for tcp (a client sees "connection
///   refused" at once, as from a closed port) and `reject` (ICMP port unreachable)
///   otherwise.
pub fn render(spec: &Spec) -> String {
    let mut words = Vec::new();
    if let Some(c) = spec.source {
        words.push(format!("{} {} {c}", family(&c), addr_field(spec.direction)));
    }
    match (spec.proto, spec.port) {
        (Proto::Icmp, _) => words.push(format!(
            "meta l4proto {}",
            match icmp_protos(spec).as_slice() {
                [one] => (*one).to_owned(),
                many => format!("{{ {} }}", many.join(", ")),
            }
        )),
        (p, Some(port)) => words.push(format!("{} dport {port}", p.as_str())),
        (p, None) => words.push(format!("meta l4proto {}", p.as_str())),
    }
    words.push(
        match (spec.action, spec.proto) {
            (Action::Allow, _) => "accept",
            (Action::Deny, _) => "drop",
            (Action::Reject, Proto::Tcp) => "reject with tcp reset",
            (Action::Reject, _) => "reject",
        }
        .to_owned(),
    );
    words.join(" ")
}

fn family(c: &Cidr) -> &'static str {
    if c.addr.is_ipv4() { "ip" } else { "ip6" }
}

fn addr_field(direction: Direction) -> &'static str {
    match direction {
        Direction::In => "saddr",
        Direction::Out => "daddr",
    }
}

fn icmp_protos(spec: &Spec) -> Vec<&'static str> {
    match spec.source {
        Some(c) if c.addr.is_ipv4() => vec!["icmp"],
        Some(_) => vec!["ipv6-icmp"],
        None => vec!["icmp", "ipv6-icmp"],
    }
}

/// What a rule matches and does, in the shape `nft -j` reports it; [`render`]'s output
/// reads back as exactly the [`expected`] value of its spec.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Matches {
    /// `(ip|ip6, saddr|daddr, block)`.
    pub addr: Option<(String, String, Cidr)>,
    pub l4proto: Option<BTreeSet<String>>,
    /// `(tcp|udp, port)`.
    pub dport: Option<(String, Port)>,
    pub verdict: Option<Verdict>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    /// An ICMP port-unreachable reply (`reject`, `icmp`, `icmpv6` or `icmpx` type).
    Reject,
    TcpReset,
}

/// The matches [`render`] produces for `spec`.
pub fn expected(spec: &Spec) -> Matches {
    let addr = spec.source.map(|c| {
        (
            family(&c).to_owned(),
            addr_field(spec.direction).to_owned(),
            c,
        )
    });
    let (l4proto, dport) = match (spec.proto, spec.port) {
        (Proto::Icmp, _) => (
            Some(icmp_protos(spec).into_iter().map(str::to_owned).collect()),
            None,
        ),
        (p, Some(port)) => (None, Some((p.as_str().to_owned(), port))),
        (p, None) => (Some(BTreeSet::from([p.as_str().to_owned()])), None),
    };
    let verdict = match (spec.action, spec.proto) {
        (Action::Allow, _) => Verdict::Accept,
        (Action::Deny, _) => Verdict::Drop,
        (Action::Reject, Proto::Tcp) => Verdict::TcpReset,
        (Action::Reject, _) => Verdict::Reject,
    };
    Matches {
        addr,
        l4proto,
        dport,
        verdict: Some(verdict),
    }
}

/// One rule of froyo's table that carries a `froyo:` comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// The comment without `froyo:`.
    pub name: String,
    pub chain: String,
    pub handle: u64,
    /// `None`: the rule is not one froyo would write (hand-edited beyond recognition).
    pub spec: Option<Spec>,
    /// Why `spec` is `None`, for the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unrecognized: Option<String>,
}

/// The froyo rules in the output of `nft -j list table inet froyo`, in chain order.
pub fn parse_listing(json: &str) -> Result<Vec<Found>, String> {
    let doc: Value =
        serde_json::from_str(json).map_err(|e| format!("nft -j printed invalid JSON: {e}"))?;
    let items = doc
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or("nft -j printed no `nftables` array")?;
    let mut found = Vec::new();
    for item in items {
        let Some(rule) = item.get("rule") else {
            continue;
        };
        if rule.get("family").and_then(Value::as_str) != Some("inet")
            || rule.get("table").and_then(Value::as_str) != Some("froyo")
        {
            continue;
        }
        let Some(name) = rule
            .get("comment")
            .and_then(Value::as_str)
            .and_then(|c| c.strip_prefix(COMMENT_PREFIX))
        else {
            // Someone else's rule in our table: not ours to judge.
            continue;
        };
        let chain = rule
            .get("chain")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let handle = rule
            .get("handle")
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("nft -j printed rule `{name}` without a handle"))?;
        let (spec, unrecognized) = match recognize(rule.get("expr"), &chain) {
            Ok(spec) => (Some(spec), None),
            Err(why) => (None, Some(why)),
        };
        found.push(Found {
            name: name.to_owned(),
            chain,
            handle,
            spec,
            unrecognized,
        });
    }
    Ok(found)
}

/// The spec whose rendering reads back exactly as this rule, or why there is none.
fn recognize(expr: Option<&Value>, chain: &str) -> Result<Spec, String> {
    let direction = match chain {
        "input" => Direction::In,
        "output" => Direction::Out,
        other => return Err(format!("it is in chain `{other}`")),
    };
    let exprs = expr
        .and_then(Value::as_array)
        .ok_or("it has no expressions")?;
    let m = parse_matches(exprs)?;
    let (proto, port) = match (&m.dport, &m.l4proto) {
        (Some((p, port)), None) => (proto_named(p)?, Some(*port)),
        (None, Some(set)) => {
            let names: Vec<&str> = set.iter().map(String::as_str).collect();
            match names.as_slice() {
                ["tcp"] => (Proto::Tcp, None),
                ["udp"] => (Proto::Udp, None),
                ["icmp"] | ["ipv6-icmp"] | ["icmp", "ipv6-icmp"] => (Proto::Icmp, None),
                _ => return Err(format!("it matches protocols {}", names.join(", "))),
            }
        }
        _ => return Err("it does not match one protocol".into()),
    };
    let action = match m.verdict {
        Some(Verdict::Accept) => Action::Allow,
        Some(Verdict::Drop) => Action::Deny,
        Some(Verdict::Reject | Verdict::TcpReset) => Action::Reject,
        None => return Err("it has no verdict".into()),
    };
    let spec = Spec {
        direction,
        proto,
        port,
        source: m.addr.as_ref().map(|(_, _, c)| *c),
        action,
    };
    if expected(&spec) != m {
        return Err(format!(
            "its matches differ from what froyo writes for `{}`",
            render(&spec)
        ));
    }
    Ok(spec)
}

fn proto_named(p: &str) -> Result<Proto, String> {
    match p {
        "tcp" => Ok(Proto::Tcp),
        "udp" => Ok(Proto::Udp),
        other => Err(format!("it matches ports of `{other}`")),
    }
}

/// Reads the rule's statements; anything froyo never writes (a counter, a second address,
/// a `!=`) makes the rule unrecognized, so `diff` replaces it.
fn parse_matches(exprs: &[Value]) -> Result<Matches, String> {
    let mut m = Matches::default();
    let short = |v: &Value| {
        let s = v.to_string();
        if s.chars().count() > 120 {
            format!("{}…", s.chars().take(120).collect::<String>())
        } else {
            s
        }
    };
    let unknown = |v: &Value| format!("froyo does not write the statement {}", short(v));
    for e in exprs {
        if m.verdict.is_some() {
            return Err(unknown(e));
        }
        if let Some(verdict) = parse_verdict(e) {
            m.verdict = Some(verdict);
            continue;
        }
        let Some(mat) = e.get("match") else {
            return Err(unknown(e));
        };
        if mat.get("op").and_then(Value::as_str) != Some("==") {
            return Err(unknown(e));
        }
        let (left, right) = match (mat.get("left"), mat.get("right")) {
            (Some(l), Some(r)) => (l, r),
            _ => return Err(unknown(e)),
        };
        if let Some(payload) = left.get("payload") {
            let protocol = payload.get("protocol").and_then(Value::as_str);
            let field = payload.get("field").and_then(Value::as_str);
            match (protocol, field) {
                (Some(p @ ("ip" | "ip6")), Some(f @ ("saddr" | "daddr"))) if m.addr.is_none() => {
                    let cidr = parse_addr(right).ok_or_else(|| unknown(e))?;
                    m.addr = Some((p.to_owned(), f.to_owned(), cidr));
                }
                (Some(p @ ("tcp" | "udp")), Some("dport")) if m.dport.is_none() => {
                    let port = parse_port(right).ok_or_else(|| unknown(e))?;
                    m.dport = Some((p.to_owned(), port));
                }
                _ => return Err(unknown(e)),
            }
        } else if left.pointer("/meta/key").and_then(Value::as_str) == Some("l4proto")
            && m.l4proto.is_none()
        {
            let set = match right {
                Value::String(s) => BTreeSet::from([s.clone()]),
                other => other
                    .get("set")
                    .and_then(Value::as_array)
                    .and_then(|items| {
                        items
                            .iter()
                            .map(|i| i.as_str().map(str::to_owned))
                            .collect::<Option<BTreeSet<_>>>()
                    })
                    .ok_or_else(|| unknown(e))?,
            };
            m.l4proto = Some(set);
        } else {
            return Err(unknown(e));
        }
    }
    Ok(m)
}

fn parse_verdict(e: &Value) -> Option<Verdict> {
    let obj = e.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    let (key, value) = obj.iter().next()?;
    match key.as_str() {
        "accept" => Some(Verdict::Accept),
        "drop" => Some(Verdict::Drop),
        "reject" => {
            let ty = value.get("type").and_then(Value::as_str);
            let code = value.get("expr").and_then(Value::as_str);
            match (ty, code) {
                (Some("tcp reset"), None) => Some(Verdict::TcpReset),
                // A bare `reject` in an inet chain is icmpx port-unreachable; after an
                // address match nft names the family's own ICMP.
                (None | Some("icmp" | "icmpv6" | "icmpx"), None | Some("port-unreachable")) => {
                    Some(Verdict::Reject)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// `"10.0.0.1"` or `{"prefix": {"addr": "10.0.0.0", "len": 8}}`.
fn parse_addr(v: &Value) -> Option<Cidr> {
    match v {
        Value::String(s) => {
            let addr: std::net::IpAddr = s.parse().ok()?;
            let len = if addr.is_ipv4() { 32 } else { 128 };
            Some(Cidr::new(addr, len))
        }
        _ => {
            let p = v.get("prefix")?;
            let addr: std::net::IpAddr = p.get("addr")?.as_str()?.parse().ok()?;
            let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            (len <= max).then(|| Cidr::new(addr, len))
        }
    }
}

/// `22` or `{"range": [8000, 8100]}`.
fn parse_port(v: &Value) -> Option<Port> {
    let n = |v: &Value| v.as_u64().and_then(|n| u16::try_from(n).ok());
    match v {
        Value::Number(_) => {
            let p = n(v)?;
            Some(Port { lo: p, hi: p })
        }
        _ => {
            let r = v.get("range")?.as_array()?;
            match r.as_slice() {
                [a, b] => Some(Port {
                    lo: n(a)?,
                    hi: n(b)?,
                }),
                _ => None,
            }
        }
    }
}

/// Creates froyo's table and chains if missing. A new base chain gets the default policy
/// (accept); an existing one keeps whatever policy its operator gave it, since `add
/// chain` without `policy` leaves it alone.
fn ensure_table() -> String {
    let mut s = format!("add table {TABLE}\n");
    for hook in ["input", "output"] {
        s.push_str(&format!(
            "add chain {TABLE} {hook} {{ type filter hook {hook} priority filter; }}\n"
        ));
    }
    s
}

fn comment(name: &str) -> String {
    // The name was checked for quotes, backslashes and control characters.
    format!("comment \"{COMMENT_PREFIX}{name}\"")
}

/// An `nft -f` script (one transaction) that appends the rule to its chain, creating the
/// table and chains first when needed.
pub fn create_script(name: &str, spec: &Spec) -> String {
    let mut s = ensure_table();
    s.push_str(&format!(
        "add rule {TABLE} {} {} {}\n",
        chain(spec.direction),
        render(spec),
        comment(name)
    ));
    s
}

/// An `nft -f` script that turns the existing rules named `name` into one desired rule:
/// the first is replaced in place (keeping its position) when it is in the right chain,
/// else deleted and the rule appended to the right chain; duplicates are deleted.
pub fn update_script(name: &str, spec: &Spec, existing: &[Found]) -> String {
    let want = chain(spec.direction);
    let mut s = String::new();
    let keep = existing.iter().position(|f| f.chain == want);
    for (i, f) in existing.iter().enumerate() {
        if Some(i) == keep {
            s.push_str(&format!(
                "replace rule {TABLE} {want} handle {} {} {}\n",
                f.handle,
                render(spec),
                comment(name)
            ));
        } else {
            s.push_str(&delete_line(f));
        }
    }
    if keep.is_none() {
        s.push_str(&create_script(name, spec));
    }
    s
}

/// An `nft -f` script that deletes every rule in `existing`.
pub fn delete_script(existing: &[Found]) -> String {
    existing.iter().map(delete_line).collect()
}

fn delete_line(f: &Found) -> String {
    format!("delete rule {TABLE} {} handle {}\n", f.chain, f.handle)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::parse_cidr;

    /// `nft -j list table inet froyo` from nftables 1.0.6 for the rules below (comments
    /// `froyo:<name>`), plus someone else's rule without a comment.
    pub(crate) const LISTING: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "froyo", "handle": 1}}, {"chain": {"family": "inet", "table": "froyo", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}, {"chain": {"family": "inet", "table": "froyo", "name": "output", "handle": 2, "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}},
{"rule": {"family": "inet", "table": "froyo", "chain": "input", "handle": 3, "comment": "froyo:ssh", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "10.0.0.0", "len": 8}}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"accept": null}]}},
{"rule": {"family": "inet", "table": "froyo", "chain": "input", "handle": 4, "comment": "froyo:u", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": {"prefix": {"addr": "2001:db8::", "len": 32}}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": {"range": [8000, 8100]}}}, {"drop": null}]}},
{"rule": {"family": "inet", "table": "froyo", "chain": "input", "handle": 6, "comment": "froyo:icmp", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": {"set": ["icmp", "ipv6-icmp"]}}}, {"reject": {"type": "icmpx", "expr": "port-unreachable"}}]}},
{"rule": {"family": "inet", "table": "froyo", "chain": "input", "handle": 8, "comment": "froyo:web", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}}, {"reject": {"type": "tcp reset"}}]}},
{"rule": {"family": "inet", "table": "froyo", "chain": "input", "handle": 10, "comment": "froyo:alludp", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "10.1.2.3"}}, {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "udp"}}, {"reject": {"type": "icmp", "expr": "port-unreachable"}}]}},
{"rule": {"family": "inet", "table": "froyo", "chain": "input", "handle": 12, "comment": "froyo:ic6", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": "::1"}}, {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "ipv6-icmp"}}, {"accept": null}]}},
{"rule": {"family": "inet", "table": "froyo", "chain": "input", "handle": 13, "comment": "froyo:range1", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"range": [22, 22]}}}, {"accept": null}]}},
{"rule": {"family": "inet", "table": "froyo", "chain": "input", "handle": 14, "comment": "froyo:counted", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"counter": {"packets": 0, "bytes": 0}}, {"accept": null}]}},
{"rule": {"family": "inet", "table": "froyo", "chain": "input", "handle": 15, "comment": "froyo:plainreject", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}, {"reject": {"type": "icmpx", "expr": "port-unreachable"}}]}},
{"rule": {"family": "inet", "table": "froyo", "chain": "input", "handle": 16, "expr": [{"accept": null}]}},
{"rule": {"family": "inet", "table": "froyo", "chain": "output", "handle": 7, "comment": "froyo:out", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "1.2.3.4"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 443}}, {"reject": {"type": "tcp reset"}}]}}]}"#;

    fn spec(
        direction: Direction,
        proto: Proto,
        port: Option<(u16, u16)>,
        source: &str,
        action: Action,
    ) -> Spec {
        Spec {
            direction,
            proto,
            port: port.map(|(lo, hi)| Port { lo, hi }),
            source: (source != "any").then(|| parse_cidr(source).unwrap()),
            action,
        }
    }

    #[test]
    fn renders_nft_statements() {
        use Action::*;
        use Direction::*;
        use Proto::*;
        let cases = [
            (
                spec(In, Tcp, Some((22, 22)), "10.1.0.0/16", Allow),
                "ip saddr 10.1.0.0/16 tcp dport 22 accept",
            ),
            (
                spec(Out, Udp, Some((8000, 8100)), "2001:db8::1", Deny),
                "ip6 daddr 2001:db8::1 udp dport 8000-8100 drop",
            ),
            (
                spec(In, Tcp, None, "any", Reject),
                "meta l4proto tcp reject with tcp reset",
            ),
            (
                spec(In, Udp, Some((53, 53)), "any", Reject),
                "udp dport 53 reject",
            ),
            (
                spec(In, Icmp, None, "any", Deny),
                "meta l4proto { icmp, ipv6-icmp } drop",
            ),
            (
                spec(In, Icmp, None, "192.0.2.0/24", Allow),
                "ip saddr 192.0.2.0/24 meta l4proto icmp accept",
            ),
            (
                spec(Out, Icmp, None, "fe80::/10", Reject),
                "ip6 daddr fe80::/10 meta l4proto ipv6-icmp reject",
            ),
        ];
        for (s, want) in cases {
            assert_eq!(render(&s), want, "{s}");
        }
    }

    #[test]
    fn reads_recorded_nft_json() {
        use Action::*;
        use Direction::*;
        use Proto::*;
        let found = parse_listing(LISTING).unwrap();
        let names: Vec<_> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ssh",
                "u",
                "icmp",
                "web",
                "alludp",
                "ic6",
                "range1",
                "counted",
                "plainreject",
                "out"
            ],
            "the rule without a froyo comment is left out"
        );
        let by = |n: &str| found.iter().find(|f| f.name == n).unwrap();
        assert_eq!(by("ssh").handle, 3);
        assert_eq!(by("ssh").chain, "input");
        assert_eq!(
            by("ssh").spec,
            Some(spec(In, Tcp, Some((22, 22)), "10.0.0.0/8", Allow))
        );
        assert_eq!(
            by("u").spec,
            Some(spec(In, Udp, Some((8000, 8100)), "2001:db8::/32", Deny))
        );
        assert_eq!(by("icmp").spec, Some(spec(In, Icmp, None, "any", Reject)));
        assert_eq!(
            by("web").spec,
            Some(spec(In, Tcp, Some((80, 80)), "any", Reject))
        );
        assert_eq!(
            by("alludp").spec,
            Some(spec(In, Udp, None, "10.1.2.3", Reject))
        );
        assert_eq!(by("ic6").spec, Some(spec(In, Icmp, None, "::1", Allow)));
        assert_eq!(
            by("range1").spec,
            Some(spec(In, Tcp, Some((22, 22)), "any", Allow))
        );
        assert_eq!(
            by("out").spec,
            Some(spec(Out, Tcp, Some((443, 443)), "1.2.3.4", Reject))
        );
        let counted = by("counted");
        assert_eq!(counted.spec, None);
        assert!(
            counted.unrecognized.as_deref().unwrap().contains("counter"),
            "{counted:?}"
        );
        // A tcp reject that is not a reset is not what froyo writes.
        let plain = by("plainreject");
        assert_eq!(plain.spec, None);
        assert!(
            plain
                .unrecognized
                .as_deref()
                .unwrap()
                .contains("reject with tcp reset"),
            "{plain:?}"
        );
    }

    #[test]
    fn odd_rules_are_unrecognized_not_errors() {
        let rule = |chain: &str, expr: &str| {
            format!(
                r#"{{"nftables": [{{"rule": {{"family": "inet", "table": "froyo", "chain": "{chain}", "handle": 9, "comment": "froyo:x", "expr": {expr}}}}}]}}"#
            )
        };
        let why = |chain: &str, expr: &str| {
            let f = parse_listing(&rule(chain, expr)).unwrap().remove(0);
            assert_eq!(f.spec, None);
            f.unrecognized.unwrap()
        };
        let tcp22 = r#"{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}"#;
        assert!(why("mine", &format!("[{tcp22}, {{\"accept\": null}}]")).contains("chain `mine`"));
        assert!(why("input", &format!("[{tcp22}]")).contains("no verdict"));
        let ne = tcp22.replace("==", "!=");
        assert!(why("input", &format!("[{ne}, {{\"accept\": null}}]")).contains("does not write"));
        // daddr on an incoming rule.
        let daddr = r#"{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.0.0.1"}}"#;
        assert!(
            why(
                "input",
                &format!("[{daddr}, {tcp22}, {{\"accept\": null}}]")
            )
            .contains("differ")
        );
        assert!(why("input", r#"[{"accept": null}]"#).contains("one protocol"));
        assert!(parse_listing("{}").is_err());
        assert!(parse_listing("not json").is_err());
    }

    /// The `nft -j` form of `m`, as nftables 1.0.6 prints it.
    fn to_json(chain: &str, m: &Matches) -> String {
        let mut exprs = Vec::new();
        let eq = |left: Value, right: Value| serde_json::json!({"match": {"op": "==", "left": left, "right": right}});
        if let Some((p, f, c)) = &m.addr {
            let right = if c.len == c.full_len() {
                Value::String(c.addr.to_string())
            } else {
                serde_json::json!({"prefix": {"addr": c.addr.to_string(), "len": c.len}})
            };
            exprs.push(eq(
                serde_json::json!({"payload": {"protocol": p, "field": f}}),
                right,
            ));
        }
        if let Some(set) = &m.l4proto {
            let right = if set.len() == 1 {
                Value::String(set.iter().next().unwrap().clone())
            } else {
                serde_json::json!({"set": set})
            };
            exprs.push(eq(serde_json::json!({"meta": {"key": "l4proto"}}), right));
        }
        if let Some((p, port)) = &m.dport {
            let right = if port.lo == port.hi {
                serde_json::json!(port.lo)
            } else {
                serde_json::json!({"range": [port.lo, port.hi]})
            };
            exprs.push(eq(
                serde_json::json!({"payload": {"protocol": p, "field": "dport"}}),
                right,
            ));
        }
        exprs.push(match m.verdict.unwrap() {
            Verdict::Accept => serde_json::json!({"accept": null}),
            Verdict::Drop => serde_json::json!({"drop": null}),
            Verdict::Reject => {
                serde_json::json!({"reject": {"type": "icmpx", "expr": "port-unreachable"}})
            }
            Verdict::TcpReset => serde_json::json!({"reject": {"type": "tcp reset"}}),
        });
        serde_json::json!({"nftables": [{"rule": {"family": "inet", "table": "froyo", "chain": chain,
            "handle": 5, "comment": "froyo:r", "expr": exprs}}]})
        .to_string()
    }

    #[test]
    fn every_spec_reads_back_as_itself() {
        use Action::*;
        use Direction::*;
        use Proto::*;
        let mut n = 0;
        for d in [In, Out] {
            for (p, port) in [
                (Tcp, Some((22, 22))),
                (Udp, Some((1, 65535))),
                (Tcp, None),
                (Udp, None),
                (Icmp, None),
            ] {
                for src in ["any", "10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"] {
                    for a in [Allow, Deny, Reject] {
                        let s = spec(d, p, port, src, a);
                        let found = parse_listing(&to_json(chain(d), &expected(&s))).unwrap();
                        assert_eq!(
                            found[0].spec.as_ref(),
                            Some(&s),
                            "{}: {:?}",
                            render(&s),
                            found[0].unrecognized
                        );
                        n += 1;
                    }
                }
            }
        }
        assert_eq!(n, 150);
    }

    #[test]
    fn scripts_are_single_transactions_that_keep_rule_positions() {
        let s = spec(
            Direction::In,
            Proto::Tcp,
            Some((22, 22)),
            "any",
            Action::Allow,
        );
        assert_eq!(
            create_script("ssh", &s),
            "add table inet froyo\n\
             add chain inet froyo input { type filter hook input priority filter; }\n\
             add chain inet froyo output { type filter hook output priority filter; }\n\
             add rule inet froyo input tcp dport 22 accept comment \"froyo:ssh\"\n"
        );
        let found = |chain: &str, handle| Found {
            name: "ssh".into(),
            chain: chain.into(),
            handle,
            spec: None,
            unrecognized: None,
        };
        assert_eq!(
            update_script("ssh", &s, &[found("input", 7), found("input", 9)]),
            "replace rule inet froyo input handle 7 tcp dport 22 accept comment \"froyo:ssh\"\n\
             delete rule inet froyo input handle 9\n"
        );
        let moved = update_script("ssh", &s, &[found("output", 4)]);
        assert!(
            moved.starts_with("delete rule inet froyo output handle 4\nadd table inet froyo\n"),
            "{moved}"
        );
        assert!(
            moved
                .ends_with("add rule inet froyo input tcp dport 22 accept comment \"froyo:ssh\"\n")
        );
        assert_eq!(
            delete_script(&[found("input", 7), found("output", 2)]),
            "delete rule inet froyo input handle 7\ndelete rule inet froyo output handle 2\n"
        );
    }
}
