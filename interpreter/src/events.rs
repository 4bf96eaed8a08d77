//! The event stream (`docs/events.md`): every step of an apply, a drift remediation or a
//! runbook as a typed event, recorded in the state's `events` table the moment it happens
//! and, with `--json`, printed as one JSON object per line on stdout. `froyo events`
//! replays a run's events from the state (or follows a run in progress) line for line as
//! the run printed them. `plan --json` and `drift --json` use the same event types.
//!
//! The stream is versioned: its first line is `{"type":"version",…,"events":"1.0"}`; a
//! new event type or field bumps the minor version, anything else the major one.

use serde_json::{Map, Value as Json, json};

use crate::plan::Plan;
use crate::secrets::Masker;
use crate::state::{Event, RunId, Store, now_ms};

/// The version of the event stream's schema.
pub const SCHEMA_VERSION: &str = "1.0";

/// The stream's first line.
pub fn version_line() -> String {
    json!({
        "type": "version",
        "froyo": env!("CARGO_PKG_VERSION"),
        "events": SCHEMA_VERSION,
    })
    .to_string()
}

/// A new event stamped now. `data` must be an object.
pub fn event(host: Option<&str>, resource: Option<&str>, kind: &str, data: Json) -> Event {
    Event {
        ts_ms: now_ms(),
        target: host.map(str::to_owned),
        resource: resource.map(str::to_owned),
        kind: kind.to_owned(),
        data,
    }
}

/// An event's line: `type`, `@timestamp`, `run`, `host`, `resource`, then its own fields.
pub fn line(run: Option<RunId>, e: &Event) -> String {
    let mut m = Map::new();
    m.insert("type".into(), e.kind.clone().into());
    m.insert(
        "@timestamp".into(),
        froyo_telemetry::logs::rfc3339_ms(e.ts_ms).into(),
    );
    if let Some(r) = run {
        m.insert("run".into(), r.0.into());
    }
    if let Some(h) = &e.target {
        m.insert("host".into(), h.clone().into());
    }
    if let Some(r) = &e.resource {
        m.insert("resource".into(), r.clone().into());
    }
    if let Json::Object(d) = &e.data {
        for (k, v) in d {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Json::Object(m).to_string()
}

/// Whoever sees a run's events as they are recorded (`--json` prints them).
pub trait Sink: Sync {
    fn event(&self, run: Option<RunId>, e: &Event);
}

/// A sink that prints nothing.
pub struct Discard;

impl Sink for Discard {
    fn event(&self, _: Option<RunId>, _: &Event) {}
}

/// Records a run's events in the state, then hands them to a sink.
pub struct Recorder<'a> {
    pub store: &'a (dyn Store + Sync),
    pub run: RunId,
    pub sink: &'a dyn Sink,
}

impl Recorder<'_> {
    pub fn emit(&self, e: Event) {
        if let Err(err) = self.store.append_event(self.run, &e) {
            tracing::error!("cannot record event {}: {err}", e.kind);
        }
        self.sink.event(Some(self.run), &e);
    }
}

/// `run_started`: what kind of run, of which playbook, on which hosts.
pub fn run_started(kind: &str, plan: &Plan) -> Event {
    let hosts: Vec<&str> = plan.hosts.iter().map(|h| h.target.as_str()).collect();
    let resources: usize = plan.hosts.iter().map(|h| h.units.len()).sum();
    event(
        None,
        None,
        "run_started",
        json!({
            "kind": kind,
            "playbook": plan.playbook,
            "hosts": hosts,
            "resources": resources,
        }),
    )
}

/// The plan as events: `plan_error` for a host that could not be planned, one
/// `plan_unit` per resource × host (its action, the changes planned, its declaration),
/// then `plan_summary` with the totals of the closing `Plan:` line.
pub fn plan_events(plan: &Plan, masker: &Masker) -> Vec<Event> {
    let mut out = Vec::new();
    for h in &plan.hosts {
        if let Some(e) = &h.error {
            out.push(event(
                Some(&h.target),
                None,
                "plan_error",
                json!({"error": masker.mask(e)}),
            ));
        }
        for u in &h.units {
            let changes: Vec<String> = u.ops.iter().map(|o| masker.mask(&o.summary)).collect();
            let mut data = json!({
                "resource_type": u.type_name,
                "action": u.kind(),
                "changes": changes,
                "location": u.location,
                "play": u.play,
                "handler": u.handler,
            });
            if let Some(r) = &u.reason {
                data["reason"] = masker.mask(r).into();
            }
            out.push(event(Some(&h.target), Some(&u.id), "plan_unit", data));
        }
    }
    let t = plan.totals();
    out.push(event(
        None,
        None,
        "plan_summary",
        json!({
            "add": t.add,
            "change": t.change,
            "remove": t.remove,
            // Not `run`: that is the run's number on every event of a run.
            "commands": t.run,
            "unknown": t.unknown,
            "unchanged": t.unchanged,
            "failed": t.failed,
            "errors": plan.has_errors(),
        }),
    ));
    out
}

/// `summary`: how the run ended, the counts by outcome, and the round trips per host.
pub fn summary(report: &crate::apply::Report) -> Event {
    use crate::apply::Outcome;
    let round_trips: Map<String, Json> = report
        .round_trips
        .iter()
        .map(|(h, n)| (h.clone(), (*n).into()))
        .collect();
    event(
        None,
        None,
        "summary",
        json!({
            "status": if report.failed() { "failed" } else { "succeeded" },
            "changed": report.count(Outcome::Changed),
            "unchanged": report.count(Outcome::Unchanged),
            "failed": report.count(Outcome::Failed),
            "skipped": report.count(Outcome::Skipped),
            "elapsed_ms": report.elapsed_ms,
            "round_trips": round_trips,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_the_common_fields_first_and_never_lets_data_override_them() {
        let e = Event {
            ts_ms: 0,
            target: Some("web1".into()),
            resource: Some("linux.file::file[/x]".into()),
            kind: "resource_started".into(),
            data: json!({"type": "evil", "attempt": 1}),
        };
        assert_eq!(
            line(Some(RunId(3)), &e),
            r#"{"type":"resource_started","@timestamp":"1970-01-01T00:00:00.000Z","run":3,"host":"web1","resource":"linux.file::file[/x]","attempt":1}"#
        );
        let v: Json = serde_json::from_str(&version_line()).unwrap();
        assert_eq!(v["events"], SCHEMA_VERSION);
    }
}
