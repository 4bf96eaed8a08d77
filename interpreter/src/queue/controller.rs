//! The controller's half of `apply --queue`: after the run, its plan units and its first
//! events are recorded (as in the solo profile), publish one item per host, then follow
//! the run from the state: every event the workers record is handed to the observer as
//! if this process had applied it (same progress lines, same `--json` stream), and the
//! report is assembled from the `resource_finished` events and the workers' claims.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use froyo_cluster::queue::Queue;
use serde_json::Value as Json;

use super::{ITEM_VERSION, Item, digest};
use crate::apply::{Observer, Outcome, Report, UnitResult};
use crate::error::Error;
use crate::plan::Plan;
use crate::state::{PgStore, RunId, Store};

/// What the items say besides the plan.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The playbook and more `.cue` files, relative to the project root.
    pub playbook: PathBuf,
    pub more: Vec<PathBuf>,
    pub on: Option<String>,
    pub vars: Vec<String>,
    pub tags: Vec<String>,
}

/// How often the state is read while following.
const POLL: Duration = Duration::from_millis(100);
/// Events are numbered when inserted but seen when committed, so one may appear below
/// the highest id already read: each poll looks this far back (and the final pass reads
/// everything).
const LOOKBACK: i64 = 1000;

/// Publishes the items of `plan` (recorded under `run`) and follows the run until every
/// host finished; the report is what a solo apply would have returned.
#[tracing::instrument(skip_all, fields(run = run.0))]
pub fn publish_and_follow(
    state: &PgStore,
    queue: &Queue,
    plan: &Plan,
    run: RunId,
    inputs: &Inputs,
    observer: &dyn Observer,
    note: &dyn Fn(&str),
) -> Result<Report, Error> {
    let started = Instant::now();
    let targets: Vec<String> = plan.hosts.iter().map(|h| h.target.clone()).collect();
    let base = state
        .events_after(run, 0)?
        .last()
        .map(|(id, _)| *id)
        .unwrap_or(0);
    state.queue_hosts(run, &targets)?;
    for h in &plan.hosts {
        let item = Item {
            v: ITEM_VERSION,
            run: run.0,
            target: h.target.clone(),
            playbook: inputs.playbook.clone(),
            more: inputs.more.clone(),
            on: inputs.on.clone(),
            vars: inputs.vars.clone(),
            tags: inputs.tags.clone(),
            plays: plan.plays.clone(),
            digest: digest(&h.units),
        };
        let payload = serde_json::to_vec(&item).unwrap_or_default();
        queue
            .publish(&run.0.to_string(), &format!("{}/{}", run.0, h.target), payload)
            .map_err(|e| Error::Queue {
                message: e.to_string(),
                help: "the run's other hosts may be queued already; apply again to publish the rest (items are de-duplicated)".into(),
            })?;
    }
    tracing::info!(hosts = targets.len(), "published");

    let units: HashMap<(&str, &str), &crate::plan::Unit> = plan
        .hosts
        .iter()
        .flat_map(|h| {
            h.units
                .iter()
                .map(move |u| ((h.target.as_str(), u.id.as_str()), u))
        })
        .collect();
    let config = queue.config();
    // A claim not heard of for this long had every delivery's ack_wait run out.
    let lost_after = config.ack_wait.as_millis() as i64 * (config.max_deliver + 1);
    let mut seen = Seen {
        ids: HashSet::new(),
        base,
        cursor: base,
    };
    let mut results: Vec<UnitResult> = Vec::new();
    let mut told_waiting = false;
    let claims = loop {
        let events = state.events_after(run, (seen.cursor - LOOKBACK).max(base))?;
        seen.show(events, run, &units, observer, &mut results);
        let claims = state.claims(run)?;
        let now = crate::state::now_ms();
        let open = claims
            .iter()
            .filter(|c| match c.status.as_str() {
                "done" | "failed" => false,
                "running" => now - c.updated_ms < lost_after,
                _ => true,
            })
            .count();
        if open == 0 {
            break claims;
        }
        if !told_waiting
            && started.elapsed() > Duration::from_secs(10)
            && claims.iter().all(|c| c.status == "queued")
        {
            told_waiting = true;
            note(&format!(
                "waiting for a worker to take {} host(s): start `froyo worker --queue {}` in the project",
                claims.len(),
                queue.shown_url()
            ));
        }
        std::thread::sleep(POLL);
    };
    // Everything committed by now, stragglers included.
    seen.show(
        state.events_after(run, base)?,
        run,
        &units,
        observer,
        &mut results,
    );

    let mut results = merge(results);
    let mut round_trips = Vec::new();
    for h in &plan.hosts {
        let claim = claims.iter().find(|c| c.target == h.target);
        let report = claim.and_then(|c| c.report.clone()).unwrap_or(Json::Null);
        round_trips.push((
            h.target.clone(),
            report["round_trips"].as_u64().unwrap_or(0),
        ));
        let error = match claim {
            Some(c) if c.status == "done" => continue,
            Some(c) if c.status == "failed" => report["error"]
                .as_str()
                .unwrap_or("the worker gave up on this host")
                .to_owned(),
            Some(c) => format!(
                "no worker finished this host (last heard of {} s ago, attempt {})",
                (crate::state::now_ms() - c.updated_ms) / 1000,
                c.attempt
            ),
            None => "the item was never recorded".into(),
        };
        // Each unit that has no result failed with the host.
        for u in &h.units {
            if !results
                .iter()
                .any(|r| r.target == h.target && r.id == u.id && r.handler == u.handler)
            {
                let r = UnitResult {
                    target: h.target.clone(),
                    id: u.id.clone(),
                    location: u.location.clone(),
                    handler: u.handler,
                    outcome: if u.handler {
                        Outcome::Skipped
                    } else {
                        Outcome::Failed
                    },
                    message: Some(error.clone()),
                    duration_ms: 0,
                    error_class: None,
                };
                if !u.handler {
                    observer.finished(&r);
                    results.push(r);
                }
            }
        }
    }
    Ok(Report {
        run: run.0,
        results,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        round_trips,
    })
}

/// The events already handed on.
struct Seen {
    ids: HashSet<i64>,
    base: i64,
    cursor: i64,
}

impl Seen {
    /// Hands each event not seen yet to the observer, as the solo apply would have.
    fn show(
        &mut self,
        events: Vec<(i64, crate::state::Event)>,
        run: RunId,
        units: &HashMap<(&str, &str), &crate::plan::Unit>,
        observer: &dyn Observer,
        results: &mut Vec<UnitResult>,
    ) {
        for (id, e) in events {
            if id <= self.base || !self.ids.insert(id) {
                continue;
            }
            self.cursor = self.cursor.max(id);
            observer.event(Some(run), &e);
            let (Some(target), Some(resource)) = (e.target.as_deref(), e.resource.as_deref())
            else {
                continue;
            };
            let unit = units.get(&(target, resource)).copied();
            match e.kind.as_str() {
                "resource_started" => {
                    if let Some(u) = unit {
                        observer.started(target, u);
                    }
                }
                "resource_finished" => {
                    let r = result_of(target, resource, &e.data, unit);
                    observer.finished(&r);
                    results.push(r);
                }
                _ => {}
            }
        }
    }
}

/// A unit's result from its `resource_finished` event; the declaration as the controller
/// planned it (the worker's may be named from another directory).
fn result_of(
    target: &str,
    resource: &str,
    data: &Json,
    unit: Option<&crate::plan::Unit>,
) -> UnitResult {
    let outcome = match data["outcome"].as_str() {
        Some("changed") => Outcome::Changed,
        Some("unchanged") => Outcome::Unchanged,
        Some("skipped") => Outcome::Skipped,
        _ => Outcome::Failed,
    };
    UnitResult {
        target: target.to_owned(),
        id: resource.to_owned(),
        location: unit.map_or_else(
            || data["location"].as_str().unwrap_or_default().to_owned(),
            |u| u.location.clone(),
        ),
        handler: data["handler"].as_bool().unwrap_or(false),
        outcome,
        message: data["message"].as_str().map(str::to_owned),
        duration_ms: data["duration_ms"].as_u64().unwrap_or(0),
        error_class: data["error_class"].as_str().map(str::to_owned),
    }
}

/// One result per resource × host: when a host was applied twice (its worker died and
/// another took it over), the later attempt's, except that a resource the first attempt
/// changed counts as changed.
fn merge(results: Vec<UnitResult>) -> Vec<UnitResult> {
    let mut out: Vec<UnitResult> = Vec::new();
    for r in results {
        match out
            .iter_mut()
            .find(|o| o.target == r.target && o.id == r.id && o.handler == r.handler)
        {
            Some(o) => {
                let changed_before = o.outcome == Outcome::Changed;
                *o = r;
                if changed_before && o.outcome == Outcome::Unchanged {
                    o.outcome = Outcome::Changed;
                }
            }
            None => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str, outcome: Outcome) -> UnitResult {
        UnitResult {
            target: "web".into(),
            id: id.into(),
            location: String::new(),
            handler: false,
            outcome,
            message: None,
            duration_ms: 0,
            error_class: None,
        }
    }

    #[test]
    fn a_host_applied_twice_counts_each_resource_once() {
        let merged = merge(vec![
            r("a", Outcome::Changed),
            r("b", Outcome::Failed),
            r("a", Outcome::Unchanged),
            r("b", Outcome::Changed),
            r("c", Outcome::Unchanged),
        ]);
        let got: Vec<(&str, Outcome)> = merged.iter().map(|r| (r.id.as_str(), r.outcome)).collect();
        assert_eq!(
            got,
            [
                ("a", Outcome::Changed),
                ("b", Outcome::Changed),
                ("c", Outcome::Unchanged)
            ]
        );
    }
}
