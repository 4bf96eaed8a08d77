//! `froyo worker`: takes (run, host) items from the queue, `concurrency` at a time, and
//! applies each host's part of the plan: claim the host in the state with the delivery's
//! attempt number, evaluate the playbook (once per run, from this worker's copy of the
//! project), check the host's units against the controller's digest, read and diff the
//! host again (what an earlier attempt applied is now unchanged, its pending handlers are
//! replayed), apply through the usual transports with every write fenced by the attempt,
//! then ack. A heartbeat (`AckProgress`, and the claim's clock in the state) runs every
//! third of `ack_wait` while a host is applied; a host that cannot be reached is naked
//! with an exponential backoff until its last delivery, which marks it failed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use froyo_cluster::queue::{Queue, WorkItem};
use serde_json::json;

use super::{ITEM_VERSION, Item, MAX_ITEM_BYTES, digest};
use crate::apply::{ApplyOptions, Quiet};
use crate::engine::Engine;
use crate::plan::{PLAN_VERSION, Plan, PlanOptions, Status, Unit};
use crate::project::Project;
use crate::state::{Claimed, Fence, FencedStore, PgStore, RunId, Store};

/// How a worker works.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Hosts applied at once.
    pub concurrency: usize,
    /// Resources applied at once on one host, and over a host's resources.
    pub per_host: usize,
    /// How this worker is named in claims (`host:pid`).
    pub name: String,
}

/// What the worker tells its operator (one line per host).
pub type Note<'a> = &'a (dyn Fn(&str) + Sync);

/// One run, evaluated: the engine it is applied with (its sessions are reused for every
/// host of the run) and each host's units.
struct Prepared {
    engine: Engine,
    units: HashMap<String, Vec<Unit>>,
    playbook: String,
}

/// Everything the worker's threads share.
struct Shared<'a> {
    project: Project,
    state: Arc<PgStore>,
    queue: &'a Queue,
    runtime: tokio::runtime::Handle,
    opts: WorkerOptions,
    /// Runs evaluated, by id (an `Err` is the reason the run cannot be evaluated here).
    prepared: Mutex<HashMap<i64, Arc<Result<Prepared, String>>>>,
    /// One evaluation at a time (libcue is used from one thread at a time).
    evaluating: Mutex<()>,
    note: Note<'a>,
}

/// Takes and applies items until `stop` is raised; hosts in progress then finish first.
pub fn serve(
    project: Project,
    state: Arc<PgStore>,
    queue: &Queue,
    runtime: tokio::runtime::Handle,
    opts: WorkerOptions,
    stop: &AtomicBool,
    note: Note<'_>,
) {
    let shared = Shared {
        project,
        state,
        queue,
        runtime,
        opts: opts.clone(),
        prepared: Mutex::new(HashMap::new()),
        evaluating: Mutex::new(()),
        note,
    };
    std::thread::scope(|s| {
        for _ in 0..opts.concurrency.max(1) {
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    match shared.queue.take(Duration::from_millis(500)) {
                        Ok(Some(item)) => shared.handle(item),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!("{e}");
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                }
            });
        }
    });
    let prepared = std::mem::take(&mut *lock(&shared.prepared));
    for p in prepared.into_values() {
        if let Ok(p) = &*p {
            p.engine.close();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How applying one item ended.
enum Ending {
    /// The host is done (its resources may have failed: the events say so).
    Done {
        round_trips: u64,
        changed: usize,
        failed: usize,
    },
    /// Cannot be done by any worker (the playbook does not evaluate, the units differ).
    Failed(String),
    /// May work later (the host is unreachable).
    Transient(String),
    /// A later delivery took the host over: this one must neither ack nor write.
    Superseded,
}

impl Shared<'_> {
    fn handle(&self, item: WorkItem) {
        let attempt = item.attempt;
        let parsed = (item.payload.len() <= MAX_ITEM_BYTES)
            .then(|| serde_json::from_slice::<Item>(&item.payload).ok())
            .flatten()
            .filter(|i| i.v == ITEM_VERSION);
        let Some(it) = parsed else {
            tracing::warn!(subject = %item.subject, "not a froyo work item (v{ITEM_VERSION}); dropped");
            let _ = item.term();
            return;
        };
        let span = tracing::info_span!("work_item", run = it.run, host = %it.target, attempt);
        let _in = span.enter();
        let fence = Fence {
            run: RunId(it.run),
            target: it.target.clone(),
            attempt,
        };
        match self
            .state
            .claim(fence.run, &fence.target, attempt, &self.opts.name)
        {
            Ok(Claimed::Owned) => {}
            Ok(Claimed::Finished | Claimed::Superseded { .. }) => {
                let _ = item.ack();
                return;
            }
            Ok(Claimed::Unknown) => {
                tracing::warn!("run #{} has no item for `{}`; dropped", it.run, it.target);
                let _ = item.term();
                return;
            }
            Err(e) => {
                tracing::warn!("cannot claim: {e}");
                let _ = item.nak(backoff(attempt));
                return;
            }
        }
        let store = Arc::new(FencedStore::new(self.state.clone(), fence.clone()));
        let lost = store.lost();
        let done = AtomicBool::new(false);
        let every = self.queue.config().ack_wait / 3;
        let ending = std::thread::scope(|s| {
            // The heartbeat: the queue's clock and the claim's, until the host is done.
            s.spawn(|| {
                let mut last = std::time::Instant::now();
                while !done.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                    if last.elapsed() < every {
                        continue;
                    }
                    last = std::time::Instant::now();
                    if let Err(e) = item.progress() {
                        tracing::warn!("heartbeat: {e}");
                    }
                    if let Ok(false) = self.state.heartbeat(&fence) {
                        lost.store(true, Ordering::SeqCst);
                    }
                }
            });
            let ending = self.apply_item(&it, &store);
            done.store(true, Ordering::SeqCst);
            ending
        });
        let ending = if store.lost().load(Ordering::SeqCst) {
            Ending::Superseded
        } else {
            ending
        };
        let who = format!("run #{} {} (attempt {attempt})", it.run, it.target);
        let max = self.queue.config().max_deliver;
        match ending {
            Ending::Done {
                round_trips,
                changed,
                failed,
            } => {
                let report = json!({"round_trips": round_trips, "worker": self.opts.name});
                match self.state.finish_claim(&fence, "done", &report) {
                    Ok(true) => {
                        if let Err(e) = item.ack() {
                            tracing::warn!("ack: {e}");
                        }
                        (self.note)(&format!("{who}: done, {changed} changed, {failed} failed"));
                    }
                    Ok(false) => (self.note)(&format!("{who}: superseded, left to its successor")),
                    Err(e) => {
                        tracing::warn!("{e}");
                        let _ = item.nak(backoff(attempt));
                    }
                }
            }
            Ending::Transient(why) if attempt < max => {
                (self.note)(&format!("{who}: {why}; trying again later"));
                let _ = item.nak(backoff(attempt));
            }
            Ending::Failed(why) | Ending::Transient(why) => {
                let report = json!({"error": why, "worker": self.opts.name});
                let _ = self.state.finish_claim(&fence, "failed", &report);
                let _ = item.term();
                (self.note)(&format!("{who}: failed: {why}"));
            }
            Ending::Superseded => {
                (self.note)(&format!("{who}: superseded, left to its successor"));
            }
        }
    }

    fn apply_item(&self, it: &Item, store: &Arc<FencedStore>) -> Ending {
        let prepared = self.prepare(it);
        let p = match &*prepared {
            Ok(p) => p,
            Err(why) => return Ending::Failed(why.clone()),
        };
        let Some(units) = p.units.get(&it.target) else {
            return Ending::Failed(format!(
                "the playbook evaluated by this worker has nothing for `{}`",
                it.target
            ));
        };
        if digest(units) != it.digest {
            return Ending::Failed(
                "this worker's copy of the project evaluates differently from the controller's (another checkout?): nothing applied".into(),
            );
        }
        let host = crate::plan::plan_host(
            &p.engine,
            &it.target,
            units.clone(),
            &PlanOptions {
                tags: it.tags.clone(),
            },
        );
        if let Some(e) = &host.error {
            return Ending::Transient(e.clone());
        }
        let failed: Vec<String> = host
            .units
            .iter()
            .filter(|u| u.status == Status::Failed)
            .map(|u| format!("{}: {}", u.id, u.reason.as_deref().unwrap_or("failed")))
            .collect();
        if !failed.is_empty() {
            return Ending::Transient(format!("cannot plan {}", failed.join("; ")));
        }
        let plan = Plan {
            version: PLAN_VERSION,
            playbook: p.playbook.clone(),
            root: Some(self.project.root.clone()),
            created_ms: crate::state::now_ms(),
            plays: it.plays.clone(),
            hosts: vec![host],
            dot: String::new(),
        };
        let report = crate::apply::apply(
            &p.engine,
            &**store,
            &plan,
            RunId(it.run),
            &ApplyOptions {
                per_host: self.opts.per_host,
                stop: Some(crate::apply::Stop {
                    flag: store.lost(),
                    why: "another worker took this host over",
                }),
            },
            &Quiet,
        );
        Ending::Done {
            round_trips: report.round_trips.first().map_or(0, |(_, n)| *n),
            changed: report.count(crate::apply::Outcome::Changed),
            failed: report.count(crate::apply::Outcome::Failed),
        }
    }

    /// The run of `it`, evaluated once by this worker.
    fn prepare(&self, it: &Item) -> Arc<Result<Prepared, String>> {
        let _one = lock(&self.evaluating);
        if let Some(p) = lock(&self.prepared).get(&it.run) {
            return p.clone();
        }
        let p = Arc::new(self.evaluate(it));
        let mut all = lock(&self.prepared);
        // Runs nobody applies any more give their sessions back.
        all.retain(|_, old| {
            if Arc::strong_count(old) > 1 {
                return true;
            }
            if let Ok(old) = &**old {
                old.engine.close();
            }
            false
        });
        all.insert(it.run, p.clone());
        p
    }

    fn evaluate(&self, it: &Item) -> Result<Prepared, String> {
        let root = &self.project.root;
        let inside = |p: &std::path::Path| {
            self.project
                .resolve_inside(root, &p.to_string_lossy())
                .map_err(|e| format!("the item's playbook: {e}"))
        };
        let file = inside(&it.playbook)?;
        let more = it
            .more
            .iter()
            .map(|p| inside(p))
            .collect::<Result<Vec<_>, _>>()?;
        let r = crate::check::resolve_in(self.project.clone(), &it.vars, it.on.as_deref())
            .map_err(|e| e.to_string())?;
        let engine = Engine::with_store(
            r.project.clone(),
            r.inventory.clone(),
            self.runtime.clone(),
            self.opts.per_host.max(1) * 2,
            self.state.clone() as Arc<dyn Store + Send + Sync>,
        )
        .map_err(|e| e.to_string())?;
        let checked = crate::check::check_with(
            &r.project,
            &r.inventory,
            engine.registry,
            &file,
            &more,
            r.on,
            Some(engine.facts()),
        );
        if checked.has_errors() {
            engine.close();
            let first = checked
                .diagnostics
                .iter()
                .find(|d| d.is_error())
                .map(|d| d.message.clone())
                .unwrap_or_default();
            return Err(format!("the playbook does not evaluate here: {first}"));
        }
        let mut hosts: Vec<String> = Vec::new();
        for res in checked.graph.resources() {
            if !hosts.contains(&res.host) {
                hosts.push(res.host.clone());
            }
        }
        let units = hosts
            .into_iter()
            .map(|h| {
                let u = crate::plan::host_units(&engine, &checked.graph, &h);
                (h, u)
            })
            .collect();
        Ok(Prepared {
            playbook: r.project.display_name(&file),
            engine,
            units,
        })
    }
}

/// The delay before a naked item comes back: 1 s, 2 s, 4 s, … at most 30 s.
fn backoff(attempt: i64) -> Duration {
    let exp = u32::try_from(attempt.clamp(1, 6) - 1).unwrap_or(0);
    Duration::from_secs((1u64 << exp).min(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_half_a_minute() {
        let got: Vec<u64> = (1..=8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
