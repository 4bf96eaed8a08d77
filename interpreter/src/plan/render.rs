//! The plan as people read it (spec §8): grouped per host with identical hosts
//! collapsed, one line per resource with its `file:line`, unified diffs under `--diff`,
//! and the closing `Plan: …` line.

use std::fmt::Write;

use super::{HostPlan, Plan, Status, Unit};

/// Counts for the closing line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub add: usize,
    pub change: usize,
    pub remove: usize,
    pub run: usize,
    pub unknown: usize,
    pub unchanged: usize,
    pub failed: usize,
}

impl Plan {
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for u in self.hosts.iter().flat_map(|h| &h.units) {
            match u.kind() {
                "create" => t.add += 1,
                "update" => t.change += 1,
                "delete" => t.remove += 1,
                "run" => t.run += 1,
                "unknown" => t.unknown += 1,
                "failed" => t.failed += 1,
                _ => t.unchanged += 1,
            }
        }
        t
    }
}

fn symbol(u: &Unit) -> &'static str {
    if u.handler && matches!(u.status, Status::Change | Status::Unknown) {
        return "↻";
    }
    match u.kind() {
        "create" => "+",
        "update" => "~",
        "delete" => "-",
        "run" => "!",
        "unknown" => "?",
        "skip" => "⊘",
        "failed" => "✗",
        _ => "=",
    }
}

/// One line per unit that is not unchanged, then `= N unchanged`.
fn host_body(h: &HostPlan, diffs: bool) -> String {
    let mut out = String::new();
    if let Some(e) = &h.error {
        let _ = writeln!(out, "  ✗ cannot plan this host: {e}");
        return out;
    }
    let shown: Vec<&Unit> = h
        .units
        .iter()
        .filter(|u| !(u.status == Status::Unchanged))
        .collect();
    let width = shown
        .iter()
        .map(|u| u.id.chars().count())
        .max()
        .unwrap_or(0);
    for u in &shown {
        let what = match u.status {
            Status::Change => {
                // Some providers start summaries with their own `+ `/`~ `/`- `: the symbol
                // in front of the line says it already.
                let s: Vec<&str> = u
                    .ops
                    .iter()
                    .map(|o| {
                        let t = o.summary.as_str();
                        ["+ ", "~ ", "- "]
                            .iter()
                            .find_map(|p| t.strip_prefix(p))
                            .unwrap_or(t)
                    })
                    .collect();
                let mut s = s.join("; ");
                if u.handler {
                    s = format!("{s} (when notified)");
                }
                s
            }
            _ => u.reason.clone().unwrap_or_default(),
        };
        let _ = writeln!(
            out,
            "  {} {:<width$}  {what}  {}",
            symbol(u),
            u.id,
            u.location,
        );
        if diffs {
            for d in u.ops.iter().filter_map(|o| o.diff.as_deref()) {
                for line in d.lines() {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
    }
    let unchanged = h
        .units
        .iter()
        .filter(|u| u.status == Status::Unchanged)
        .count();
    let _ = writeln!(out, "  = {unchanged} unchanged");
    out
}

/// The whole plan as text.
pub fn text(plan: &Plan, diffs: bool) -> String {
    // Hosts with the same body are shown once, under all their names.
    let mut groups: Vec<(Vec<&str>, String)> = Vec::new();
    for h in &plan.hosts {
        let body = host_body(h, diffs);
        match groups.iter_mut().find(|(_, b)| *b == body) {
            Some((names, _)) => names.push(&h.target),
            None => groups.push((vec![&h.target], body)),
        }
    }
    let mut out = String::new();
    for (names, body) in &groups {
        let head = if names.len() > 1 {
            format!("{} ({} hosts)", names.join(", "), names.len())
        } else {
            names[0].to_owned()
        };
        let _ = writeln!(out, "{head}\n{body}");
    }
    let t = plan.totals();
    if t.unknown > 0 {
        let _ = writeln!(
            out,
            "{} resource(s) can only be planned after earlier changes are applied (?).",
            t.unknown
        );
    }
    let _ = writeln!(
        out,
        "Plan: {} to add, {} to change, {} to remove, {} to run.",
        t.add, t.change, t.remove, t.run
    );
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{PlannedOp, Unit};
    use super::*;

    fn unit(id: &str, status: Status, kind: &str) -> Unit {
        Unit {
            id: id.into(),
            type_name: "linux.file::file".into(),
            provider: "linux.file".into(),
            play: "default".into(),
            location: "site.star:3".into(),
            handler: false,
            sensitive: false,
            config: json!({}),
            desired: None,
            meta: json!({}),
            deps: vec![],
            auto_deps: vec![],
            notifies: vec![],
            status,
            reason: (status != Status::Change).then(|| "why".into()),
            ops: if status == Status::Change {
                vec![PlannedOp {
                    kind: kind.into(),
                    summary: format!("{kind} it"),
                    diff: Some("-a\n+b\n".into()),
                    fingerprint: String::new(),
                    op: None,
                }]
            } else {
                vec![]
            },
            after_changes: false,
        }
    }

    #[test]
    fn identical_hosts_collapse_and_totals_add_up() {
        let host = |t: &str, units| HostPlan {
            target: t.into(),
            units,
            error: None,
            round_trips: 2,
        };
        let body = || {
            vec![
                unit("linux.file::file[/a]", Status::Change, "create"),
                unit("linux.file::file[/b]", Status::Change, "update"),
                unit("linux.file::file[/c]", Status::Unchanged, ""),
                unit("linux.file::file[/d]", Status::Unknown, ""),
            ]
        };
        let plan = Plan {
            version: 1,
            playbook: "site.star".into(),
            root: None,
            created_ms: 0,
            plays: vec!["default".into()],
            hosts: vec![
                host("web-01", body()),
                host("web-02", body()),
                host("db-01", vec![]),
            ],
            dot: String::new(),
        };
        let text = text(&plan, true);
        assert!(
            text.starts_with(
                "web-01, web-02 (2 hosts)\n  + linux.file::file[/a]  create it  site.star:3\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  ~ linux.file::file[/b]  update it  site.star:3\n      -a\n      +b\n"),
            "{text}"
        );
        assert!(
            text.contains("  ? linux.file::file[/d]  why  site.star:3\n  = 1 unchanged\n"),
            "{text}"
        );
        assert!(text.contains("db-01\n  = 0 unchanged\n"), "{text}");
        assert!(
            text.ends_with("Plan: 2 to add, 2 to change, 0 to remove, 0 to run.\n"),
            "{text}"
        );
        assert!(plan.has_changes());
    }
}
