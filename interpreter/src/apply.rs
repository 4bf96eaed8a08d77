//! Apply: carries out a plan over the graph. Plays run in order, each a barrier across
//! its hosts; within a play every host's resources start as soon as what they depend on
//! succeeded, up to `parallelism` at once overall and `per_host` per host, with package
//! operations on one host one at a time. A failure skips its dependents. Handlers run
//! after the rest of their play on the host, at most once per host, when notified; a
//! notification is persisted the moment it is sent, so one pending when a run dies is
//! replayed by the next apply. Every step is an event in the state before and after it
//! happens (the stream of `docs/events.md`), and every resource × host is a tracing span
//! under its host's span.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::engine::Engine;
use crate::events::{Recorder, Sink};
use crate::plan::{HostPlan, Plan, Status, Unit, needs_become};
use crate::provider_host::{ErrorClass, Operation, ProviderFailure, Resource as ProviderResource};
use crate::secrets::{self, Unresolved};
use crate::state::{ResourceRecord, RunId, Store};
use crate::transport::Session;

/// How one resource ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Changed,
    Unchanged,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnitResult {
    pub target: String,
    pub id: String,
    pub location: String,
    pub handler: bool,
    pub outcome: Outcome,
    pub message: Option<String>,
    pub duration_ms: u64,
    /// Why it failed (`transient`, `permanent`, …; `target` when its host was lost).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run: i64,
    pub results: Vec<UnitResult>,
    pub elapsed_ms: u64,
    /// Runner round trips per host.
    pub round_trips: Vec<(String, u64)>,
}

impl Report {
    pub fn count(&self, o: Outcome) -> usize {
        self.results.iter().filter(|r| r.outcome == o).count()
    }

    pub fn failed(&self) -> bool {
        self.count(Outcome::Failed) > 0
    }
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Resources applied at once on one host.
    pub per_host: usize,
    /// Raised, resources not started yet are skipped, and handlers stay pending (a
    /// worker whose claim on the host was superseded: its successor applies them; an
    /// apply that got SIGINT or SIGTERM: the next apply does).
    pub stop: Option<Stop>,
}

/// A flag raised from outside a running apply, and why (the skip message says it).
#[derive(Debug, Clone)]
pub struct Stop {
    pub flag: Arc<std::sync::atomic::AtomicBool>,
    /// Completes "skipped: …".
    pub why: &'static str,
}

impl Stop {
    pub fn new(why: &'static str) -> Stop {
        Stop {
            flag: Arc::default(),
            why,
        }
    }

    pub fn raise(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn raised(&self) -> bool {
        self.flag.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            per_host: 4,
            stop: None,
        }
    }
}

/// Sees every step as it happens: progress on stderr, and every recorded event (`--json`
/// prints them on stdout).
pub trait Observer: Sink {
    fn started(&self, target: &str, unit: &Unit);
    fn finished(&self, result: &UnitResult);
}

/// An observer that says nothing.
pub struct Quiet;

impl Observer for Quiet {
    fn started(&self, _: &str, _: &Unit) {}
    fn finished(&self, _: &UnitResult) {}
}

impl Sink for Quiet {
    fn event(&self, _: Option<RunId>, _: &crate::state::Event) {}
}

/// Key of a unit: (host index, unit index).
type Key = (usize, usize);

/// Applies `plan` (which must have no errors) and records everything under `run`.
#[tracing::instrument(skip_all, fields(run = run.0))]
pub fn apply(
    engine: &Engine,
    store: &(dyn Store + Sync),
    plan: &Plan,
    run: RunId,
    opts: &ApplyOptions,
    observer: &dyn Observer,
) -> Report {
    let started = Instant::now();
    let host_spans = plan
        .hosts
        .iter()
        .map(|h| tracing::info_span!("host", host = %h.target, otel.name = %format!("host {}", h.target)))
        .collect();
    let ctx = Ctx {
        engine,
        store,
        run,
        plan,
        observer,
        host_spans,
        sessions: Mutex::new(HashMap::new()),
        changed: Mutex::new(HashMap::new()),
        notified: Mutex::new(plan.hosts.iter().map(|_| BTreeSet::new()).collect()),
        pending_before: Mutex::new(plan.hosts.iter().map(|_| BTreeSet::new()).collect()),
        lost: Mutex::new(vec![None; plan.hosts.len()]),
        results: Mutex::new(Vec::new()),
    };
    ctx.replay_pending();
    for play in &plan.plays {
        ctx.run_play(play, opts);
    }
    // Cached facts of a host that changed may no longer be true.
    let results = ctx
        .results
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for h in &plan.hosts {
        if results
            .iter()
            .any(|r| r.target == h.target && r.outcome == Outcome::Changed)
            && let Err(e) = store.forget_facts(&h.target)
        {
            tracing::warn!("cannot forget the cached facts of {}: {e}", h.target);
        }
    }
    let round_trips = plan
        .hosts
        .iter()
        .map(|h| {
            let rt = ctx
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&h.target)
                .and_then(|s| s.as_ref().ok().map(|s| s.round_trips()))
                .unwrap_or(0);
            (h.target.clone(), rt)
        })
        .collect::<Vec<_>>();
    for (host, n) in &round_trips {
        froyo_telemetry::metrics::global().round_trips(host, *n);
    }
    Report {
        run: run.0,
        results: ctx.results.into_inner().unwrap_or_else(|e| e.into_inner()),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        round_trips,
    }
}

struct Ctx<'a> {
    engine: &'a Engine,
    store: &'a (dyn Store + Sync),
    run: RunId,
    plan: &'a Plan,
    observer: &'a dyn Observer,
    /// One span per host, parent of its resources' spans.
    host_spans: Vec<tracing::Span>,
    sessions: Mutex<HashMap<String, Result<Arc<Session>, String>>>,
    /// Whether each resource changed in this run, by (host index, id).
    changed: Mutex<HashMap<(usize, String), bool>>,
    /// Handlers to run, per host index.
    notified: Mutex<Vec<BTreeSet<String>>>,
    /// `(handler, notified_by)` pending per host when the run began.
    pending_before: Mutex<Vec<BTreeSet<(String, String)>>>,
    /// Per host index: why its session was lost (it dropped, its runner died, an op
    /// timed out) or could not be opened; its remaining resources are skipped.
    lost: Mutex<Vec<Option<String>>>,
    results: Mutex<Vec<UnitResult>>,
}

/// Scheduling state of one play.
struct Sched {
    /// Dependencies not yet done, per unit of the play.
    waiting: HashMap<Key, usize>,
    /// The units waiting for each unit, and whether only an automatic edge links them.
    dependents: HashMap<Key, Vec<(Key, bool)>>,
    ready: VecDeque<Key>,
    running_per_host: Vec<usize>,
    pkg_busy: Vec<bool>,
    remaining: usize,
    running: usize,
}

impl Ctx<'_> {
    fn host(&self, h: usize) -> &HostPlan {
        &self.plan.hosts[h]
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an event of the stream (`docs/events.md`) and shows it to the observer.
    fn event(&self, target: &str, resource: Option<&str>, kind: &str, data: Json) {
        Recorder {
            store: self.store,
            run: self.run,
            sink: self.observer,
        }
        .emit(crate::events::event(Some(target), resource, kind, data));
    }

    /// After a failure on host `h`: whether it is because the host's session is gone (or
    /// never opened), and then why; the host counts as lost from now on.
    fn lose_host(&self, h: usize, msg: &str, class: &str) -> Option<String> {
        let target = &self.host(h).target;
        let reason = match Self::lock(&self.sessions).get(target) {
            Some(Ok(session)) => session.lost(),
            Some(Err(_)) if class == "session" => Some(msg.to_owned()),
            _ => None,
        }?;
        let reason = self.engine.masker.mask(&reason);
        let mut lost = Self::lock(&self.lost);
        Some(lost[h].get_or_insert(reason).clone())
    }

    fn session(&self, h: usize) -> Result<Arc<Session>, String> {
        let target = &self.host(h).target;
        if let Some(s) = Self::lock(&self.sessions).get(target) {
            return s.clone();
        }
        // Opened under the host's span (not the first resource's that needs it).
        let s = self.host_spans[h]
            .in_scope(|| {
                self.engine
                    .session(target, needs_become(&self.host(h).units))
            })
            .map_err(|e| self.engine.masker.mask(&e.to_string()));
        Self::lock(&self.sessions).insert(target.clone(), s.clone());
        s
    }

    /// Notifications left pending by an earlier run that died before its handlers ran.
    fn replay_pending(&self) {
        for (h, host) in self.plan.hosts.iter().enumerate() {
            let pending = match self.store.pending(&host.target) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("cannot read pending handlers of {}: {e}", host.target);
                    continue;
                }
            };
            Self::lock(&self.pending_before)[h] = pending.iter().cloned().collect();
            for (handler, by) in pending {
                if host.units.iter().any(|u| u.handler && u.id == handler) {
                    self.event(
                        &host.target,
                        Some(&handler),
                        "handler_replayed",
                        json!({"notified_by": by}),
                    );
                    Self::lock(&self.notified)[h].insert(handler);
                } else {
                    // The playbook no longer has this handler: nothing can run it.
                    let _ = self.store.clear_pending(&host.target, &handler);
                }
            }
        }
    }

    fn run_play(&self, play: &str, opts: &ApplyOptions) {
        let plan = self.plan;
        let mut sched = Sched {
            waiting: HashMap::new(),
            dependents: HashMap::new(),
            ready: VecDeque::new(),
            running_per_host: vec![0; plan.hosts.len()],
            pkg_busy: vec![false; plan.hosts.len()],
            remaining: 0,
            running: 0,
        };
        for (h, host) in plan.hosts.iter().enumerate() {
            if host.error.is_some() {
                continue;
            }
            let index: HashMap<&str, usize> = host
                .units
                .iter()
                .enumerate()
                .map(|(i, u)| (u.id.as_str(), i))
                .collect();
            for (i, u) in host.units.iter().enumerate() {
                if u.play != play || u.handler {
                    continue;
                }
                let deps: Vec<(usize, bool)> = u
                    .deps
                    .iter()
                    .filter_map(|d| {
                        let j = *index.get(d.as_str())?;
                        Some((j, u.auto_deps.contains(d)))
                    })
                    .filter(|&(j, _)| host.units[j].play == play && !host.units[j].handler)
                    .collect();
                sched.waiting.insert((h, i), deps.len());
                for (j, auto) in deps {
                    sched
                        .dependents
                        .entry((h, j))
                        .or_default()
                        .push(((h, i), auto));
                }
                sched.remaining += 1;
            }
        }
        let mut ready: Vec<Key> = sched
            .waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(k, _)| *k)
            .collect();
        ready.sort_unstable();
        sched.ready.extend(ready);

        let shared = (Mutex::new(sched), Condvar::new());
        let workers = self
            .engine
            .parallelism
            .min(shared.0.lock().map(|s| s.remaining).unwrap_or(0))
            .max(1);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| self.worker(&shared, opts));
            }
        });

        // Handlers of this play, host by host in parallel, each host's in declaration order.
        let hosts: Vec<usize> = (0..plan.hosts.len()).collect();
        crate::plan::parallel_map(&hosts, self.engine.parallelism, |&h| {
            self.run_handlers(h, play, opts)
        });
    }

    fn worker(&self, shared: &(Mutex<Sched>, Condvar), opts: &ApplyOptions) {
        let (lock, cv) = shared;
        loop {
            let key = {
                let mut s = Self::lock(lock);
                loop {
                    if s.remaining == 0 {
                        cv.notify_all();
                        return;
                    }
                    let pos = s.ready.iter().position(|&(h, i)| {
                        s.running_per_host[h] < opts.per_host.max(1)
                            && !(self.host(h).units[i].provider == "linux.pkg" && s.pkg_busy[h])
                    });
                    if let Some(p) = pos {
                        let (h, i) = s.ready.remove(p).unwrap_or_default();
                        s.running_per_host[h] += 1;
                        s.running += 1;
                        if self.host(h).units[i].provider == "linux.pkg" {
                            s.pkg_busy[h] = true;
                        }
                        break (h, i);
                    }
                    s = cv.wait(s).unwrap_or_else(|e| e.into_inner());
                }
            };
            let stopped = opts.stop.as_ref().filter(|s| s.raised());
            let outcome = if let Some(stop) = stopped {
                self.skip(key.0, key.1, &format!("skipped: {}", stop.why));
                Outcome::Skipped
            } else {
                self.run_unit(key.0, key.1)
            };
            let mut s = Self::lock(lock);
            s.running_per_host[key.0] -= 1;
            s.running -= 1;
            if self.host(key.0).units[key.1].provider == "linux.pkg" {
                s.pkg_busy[key.0] = false;
            }
            s.remaining -= 1;
            // A dependent through an automatic edge still runs after a `when`/`--tags`
            // skip (froyo only ordered them), never after a failure. A unit skipped because
            // of a failure passes `Failed` on to its own dependents.
            let mut stack = vec![(key, outcome)];
            while let Some((k, o)) = stack.pop() {
                for (d, auto) in s.dependents.get(&k).cloned().unwrap_or_default() {
                    let blocked = match o {
                        Outcome::Failed => true,
                        Outcome::Skipped => !auto,
                        Outcome::Changed | Outcome::Unchanged => false,
                    };
                    if blocked {
                        // Skip the dependent now, and its own dependents after it.
                        if s.waiting.remove(&d).is_some() {
                            s.remaining -= 1;
                            let blocker = &self.host(k.0).units[k.1].id;
                            self.skip(d.0, d.1, &format!("skipped: {blocker} did not succeed"));
                            let class = if o == Outcome::Failed {
                                Outcome::Failed
                            } else {
                                Outcome::Skipped
                            };
                            stack.push((d, class));
                        }
                    } else if let Some(n) = s.waiting.get_mut(&d) {
                        *n -= 1;
                        if *n == 0 {
                            s.ready.push_back(d);
                        }
                    }
                }
            }
            cv.notify_all();
        }
    }

    fn skip(&self, h: usize, i: usize, why: &str) {
        let host = self.host(h);
        let u = &host.units[i];
        let _ = self
            .store
            .set_unit_status(self.run, &host.target, &u.id, "skipped");
        let done = Done {
            outcome: Outcome::Skipped,
            message: Some(why.to_owned()),
            class: None,
            changes: Vec::new(),
        };
        self.finish(h, i, done, Duration::ZERO);
    }

    fn finish(&self, h: usize, i: usize, done: Done, took: Duration) {
        let host = self.host(h);
        let u = &host.units[i];
        let r = UnitResult {
            target: host.target.clone(),
            id: u.id.clone(),
            location: u.location.clone(),
            handler: u.handler,
            outcome: done.outcome,
            message: done.message.map(|m| self.engine.masker.mask(&m)),
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            error_class: done.class.map(str::to_owned),
        };
        let mut data = json!({
            "resource_type": u.type_name,
            "outcome": r.outcome,
            "changes": done.changes,
            "duration_ms": r.duration_ms,
            "location": u.location,
            "handler": u.handler,
        });
        if let Some(m) = &r.message {
            data["message"] = m.clone().into();
        }
        if let Some(c) = done.class {
            data["error_class"] = c.into();
        }
        self.event(&host.target, Some(&u.id), "resource_finished", data);
        let outcome = format!("{:?}", r.outcome).to_lowercase();
        froyo_telemetry::metrics::global().resource(&u.type_name, &outcome, took);
        self.observer.finished(&r);
        Self::lock(&self.results).push(r);
    }

    /// Whether `id` changed in this run on host `h` (`None`: not run yet).
    fn changed_of(&self, h: usize, id: &str) -> Option<bool> {
        Self::lock(&self.changed).get(&(h, id.to_owned())).copied()
    }

    fn run_unit(&self, h: usize, i: usize) -> Outcome {
        let host = self.host(h);
        let u = &host.units[i];
        if Self::lock(&self.lost)[h].is_some() {
            self.skip(h, i, &format!("skipped: target `{}` was lost", host.target));
            return Outcome::Skipped;
        }
        // Ids, types and locations come from the playbook's text, never from a secret.
        let span = tracing::info_span!(
            parent: &self.host_spans[h],
            "resource",
            otel.name = %u.id,
            resource = %u.id,
            host = %host.target,
            resource_type = %u.type_name,
            location = %u.location,
            handler = u.handler,
            outcome = tracing::field::Empty,
            error_class = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let _entered = span.enter();
        self.observer.started(&host.target, u);
        self.event(
            &host.target,
            Some(&u.id),
            "resource_started",
            json!({"resource_type": u.type_name, "location": u.location, "handler": u.handler}),
        );
        // The handlers a change would notify are recorded as pending before the change is
        // made, so a process killed between the change and its record leaves them pending
        // for whoever applies the host next (the notification is at least once). Those
        // this unit does not notify after all are withdrawn with its outcome.
        let may_change = !(u.handler
            || u.status == Status::Skipped
            || (u.status == Status::Unchanged && !u.after_changes));
        let intended: Vec<String> = if may_change {
            let before = &Self::lock(&self.pending_before)[h];
            u.notifies
                .iter()
                .filter(|(handler, on)| {
                    on != "failure" && !before.contains(&(handler.clone(), u.id.clone()))
                })
                .map(|(handler, _)| handler.clone())
                .collect()
        } else {
            Vec::new()
        };
        for handler in &intended {
            if let Err(e) = self
                .store
                .add_pending(&host.target, handler, &u.id, self.run)
            {
                tracing::warn!("cannot record the pending notification of {handler}: {e}");
            }
        }
        let t0 = Instant::now();
        let (done, record) = match self.execute(h, u) {
            Ok((changed, record, changes)) => (
                Done {
                    outcome: if changed {
                        Outcome::Changed
                    } else {
                        Outcome::Unchanged
                    },
                    message: None,
                    class: None,
                    changes,
                },
                record,
            ),
            Err(Failure::Skip(why)) => (
                Done {
                    outcome: Outcome::Skipped,
                    message: Some(why),
                    class: None,
                    changes: Vec::new(),
                },
                None,
            ),
            Err(Failure::Error(msg, class)) => {
                let (msg, class) = match self.lose_host(h, &msg, class) {
                    Some(reason) => (format!("the target was lost: {reason}"), "target"),
                    None => (msg, class),
                };
                (
                    Done {
                        outcome: Outcome::Failed,
                        message: Some(msg),
                        class: Some(class),
                        changes: Vec::new(),
                    },
                    None,
                )
            }
        };
        let outcome = done.outcome;
        span.record("outcome", format!("{outcome:?}").to_lowercase());
        if let Some(c) = done.class {
            span.record("error_class", c);
            span.record("otel.status_code", "ERROR");
        }
        let changed = outcome == Outcome::Changed;
        Self::lock(&self.changed).insert((h, u.id.clone()), changed);
        let status = match outcome {
            Outcome::Changed | Outcome::Unchanged => "ok",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        };
        let notified: Vec<String> = u
            .notifies
            .iter()
            .filter(|(_, on)| match on.as_str() {
                "failure" => outcome == Outcome::Failed,
                _ => changed,
            })
            .map(|(handler, _)| handler.clone())
            .collect();
        let withdrawn: Vec<String> = intended
            .into_iter()
            .filter(|h| !notified.contains(h))
            .collect();
        // The resource's new state and the notifications it sent are kept together (one
        // transaction), so a run that dies before a handler runs leaves it pending for the
        // next apply, and never keeps the change while losing the notification.
        if let Err(e) = self.store.record_unit(
            self.run,
            &crate::state::UnitRecord {
                target: &host.target,
                resource: &u.id,
                status,
                record: record.as_ref(),
                notified: &notified,
                withdrawn: &withdrawn,
            },
        ) {
            tracing::warn!("cannot record {}: {e}", u.id);
        }
        for handler in notified {
            self.event(
                &host.target,
                Some(&handler),
                "handler_notified",
                json!({"by": u.id}),
            );
            Self::lock(&self.notified)[h].insert(handler);
        }
        self.finish(h, i, done, t0.elapsed());
        outcome
    }

    fn run_handlers(&self, h: usize, play: &str, opts: &ApplyOptions) {
        let host = self.host(h);
        for (i, u) in host.units.iter().enumerate() {
            if !u.handler || u.play != play {
                continue;
            }
            // A superseded worker leaves its notifications pending for its successor, a
            // stopped apply for the next one.
            if opts.stop.as_ref().is_some_and(Stop::raised) {
                return;
            }
            // A lost host keeps its notifications pending for the next apply.
            if Self::lock(&self.lost)[h].is_some() {
                return;
            }
            let notified = Self::lock(&self.notified)[h].remove(&u.id);
            if !notified {
                continue;
            }
            if self.run_unit(h, i) != Outcome::Failed {
                let _ = self.store.clear_pending(&host.target, &u.id);
            }
        }
    }

    /// Brings one resource to its desired state; `Ok((changed, what to record, what
    /// changed))` (a handler's state is not recorded).
    #[allow(clippy::type_complexity)]
    fn execute(
        &self,
        h: usize,
        u: &Unit,
    ) -> Result<(bool, Option<ResourceRecord>, Vec<String>), Failure> {
        let host = self.host(h);
        let changed = |id: &str| self.changed_of(h, id);
        if u.status == Status::Skipped {
            return Err(Failure::Skip(
                u.reason.clone().unwrap_or_else(|| "skipped".into()),
            ));
        }
        if let Some(w) = u.meta.get("when")
            && w.is_object()
        {
            match secrets::resolve(w, &self.engine.masker, &changed) {
                Ok(Json::Bool(false)) => {
                    return Err(Failure::Skip("when is false".into()));
                }
                Ok(_) => {}
                Err(e) => return Err(Failure::Error(e.to_string(), "engine")),
            }
        }
        let session = self.session(h).map_err(|e| Failure::Error(e, "session"))?;
        // The plan's operations stand unless the resource could not be planned, comes after
        // changes in this run, depends on values of this run, or is a handler (which acts
        // on the state after its play).
        let deferred = u.desired.as_ref().is_some_and(secrets::has_deferred);
        let fresh = u.status == Status::Unknown
            || u.handler
            || deferred
            || (u.after_changes && u.status == Status::Change);
        let ops: Vec<Operation> = if fresh {
            self.fresh_ops(u, &session, &changed)?
        } else {
            u.ops.iter().filter_map(|o| o.op.clone()).collect()
        };
        let mut any = false;
        let mut changes = Vec::new();
        for op in &ops {
            if self.apply_op(&host.target, u, op, &session)? {
                any = true;
                changes.push(self.engine.masker.mask(&op.summary));
            }
        }
        let desired = u.desired.clone().unwrap_or_else(|| u.config.clone());
        let record = ResourceRecord {
            target: host.target.clone(),
            resource: u.id.clone(),
            type_name: u.type_name.clone(),
            config_sha256: crate::util::sha256_hex(
                crate::state::redact(&desired).to_string().as_bytes(),
            ),
            config: desired,
            run: self.run,
            applied_ms: crate::state::now_ms(),
        };
        Ok((any, (!u.handler).then_some(record), changes))
    }

    /// Reads and diffs one resource now.
    fn fresh_ops(
        &self,
        u: &Unit,
        session: &Arc<Session>,
        changed: &dyn Fn(&str) -> Option<bool>,
    ) -> Result<Vec<Operation>, Failure> {
        let desired = u.desired.clone().unwrap_or_else(|| u.config.clone());
        let config =
            secrets::resolve(&desired, &self.engine.masker, changed).map_err(|e| match e {
                Unresolved::Deferred(d) => {
                    Failure::Error(format!("{d} is still unknown"), "engine")
                }
                e => Failure::Error(e.to_string(), "engine"),
            })?;
        let r = ProviderResource {
            id: u.id.clone(),
            type_name: u.type_name.clone(),
            config: config.to_string(),
        };
        let p = &self.engine.providers;
        let actual = p
            .read(&u.provider, Some(session.clone()), std::slice::from_ref(&r))
            .map_err(|e| Failure::Error(e.to_string(), class_name(e.class)))?;
        let actual = actual
            .into_iter()
            .next()
            .ok_or_else(|| Failure::Error("the provider returned no state".into(), "permanent"))?;
        p.diff(&u.provider, &r, &actual)
            .map_err(|e| Failure::Error(e.to_string(), class_name(e.class)))
    }

    /// One operation with retries and the resource's timeout; `Ok(changed)`.
    fn apply_op(
        &self,
        target: &str,
        u: &Unit,
        op: &Operation,
        session: &Arc<Session>,
    ) -> Result<bool, Failure> {
        let policy = RetryPolicy::of(&u.meta);
        let timeout = u
            .meta
            .get("timeout")
            .and_then(Json::as_str)
            .and_then(crate::util::parse_duration_ms)
            .map(Duration::from_millis);
        let summary = self.engine.masker.mask(&op.summary);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.event(
                target,
                Some(&u.id),
                "operation_started",
                json!({"op": op.kind, "summary": summary, "attempt": attempt}),
            );
            let result = self.call_with_timeout(&u.provider, op, session, timeout);
            match result {
                Ok(r) => {
                    self.event(
                        target,
                        Some(&u.id),
                        "operation_finished",
                        json!({"op": op.kind, "changed": r.changed}),
                    );
                    return Ok(r.changed);
                }
                Err(e) => {
                    let msg = self.engine.masker.mask(&e.message);
                    let retry = policy.should_retry(e.class, attempt);
                    let class = class_name(e.class);
                    self.event(
                        target,
                        Some(&u.id),
                        "operation_failed",
                        json!({"op": op.kind, "error": msg, "error_class": class, "retrying": retry.is_some()}),
                    );
                    match retry {
                        Some(delay) => {
                            froyo_telemetry::metrics::global().retry(&u.type_name);
                            self.event(
                                target,
                                Some(&u.id),
                                "retry",
                                json!({
                                    "op": op.kind,
                                    "attempt": attempt + 1,
                                    "delay_ms": u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                                    "error_class": class,
                                }),
                            );
                            std::thread::sleep(delay);
                        }
                        None => return Err(Failure::Error(msg, class)),
                    }
                }
            }
        }
    }

    fn call_with_timeout(
        &self,
        provider: &str,
        op: &Operation,
        session: &Arc<Session>,
        timeout: Option<Duration>,
    ) -> Result<crate::provider_host::ApplyResult, ProviderFailure> {
        let providers = &self.engine.providers;
        let Some(timeout) = timeout else {
            return providers.apply(provider, Some(session.clone()), op);
        };
        // The call cannot be interrupted inside wasmtime; past the deadline its result is
        // dropped and the resource fails (the runner's own limits end the work on target).
        let (tx, rx) = std::sync::mpsc::channel();
        let (providers, provider, op, session) = (
            providers.clone(),
            provider.to_owned(),
            op.clone(),
            session.clone(),
        );
        let span = tracing::Span::current();
        std::thread::spawn(move || {
            let _in = span.enter();
            let _ = tx.send(providers.apply(&provider, Some(session), &op));
        });
        rx.recv_timeout(timeout).unwrap_or_else(|_| {
            Err(ProviderFailure {
                provider: String::new(),
                class: Some(ErrorClass::Transient),
                message: format!("timed out after {} ms", timeout.as_millis()),
            })
        })
    }
}

enum Failure {
    Skip(String),
    /// What went wrong, and its class (`transient`, `permanent`, …, `session`, `engine`).
    Error(String, &'static str),
}

/// How one resource ended, for its result, its event and its span.
struct Done {
    outcome: Outcome,
    message: Option<String>,
    class: Option<&'static str>,
    /// Summaries of the operations that changed something.
    changes: Vec<String>,
}

fn class_name(c: Option<ErrorClass>) -> &'static str {
    match c {
        Some(ErrorClass::Transient) => "transient",
        Some(ErrorClass::Throttled) => "throttled",
        Some(ErrorClass::Conflict) => "conflict",
        Some(ErrorClass::Permanent) | None => "permanent",
    }
}

/// When to try an operation again.
#[derive(Debug, Clone, PartialEq)]
struct RetryPolicy {
    /// Retries after the first attempt.
    times: u32,
    delay: Duration,
    backoff: f64,
    /// Given by the playbook (`retry=`): applies to every failure but a trap. Otherwise
    /// only transient and throttled failures are retried.
    explicit: bool,
}

impl RetryPolicy {
    fn of(meta: &Json) -> RetryPolicy {
        match meta.get("retry") {
            Some(r) => RetryPolicy {
                times: r
                    .get("times")
                    .and_then(Json::as_u64)
                    .map_or(0, |t| t.min(100) as u32),
                delay: Duration::from_millis(
                    r.get("delay")
                        .and_then(Json::as_str)
                        .and_then(crate::util::parse_duration_ms)
                        .unwrap_or(2000),
                ),
                backoff: r
                    .get("backoff")
                    .and_then(Json::as_f64)
                    .unwrap_or(1.0)
                    .max(1.0),
                explicit: true,
            },
            None => RetryPolicy {
                times: 2,
                delay: Duration::from_millis(500),
                backoff: 2.0,
                explicit: false,
            },
        }
    }

    /// The delay before another attempt after failed attempt number `attempt` (1-based),
    /// or `None` to give up.
    fn should_retry(&self, class: Option<ErrorClass>, attempt: u32) -> Option<Duration> {
        let retryable = match class {
            None => false,
            Some(ErrorClass::Transient | ErrorClass::Throttled) => true,
            Some(_) => self.explicit,
        };
        if !retryable || attempt > self.times {
            return None;
        }
        let factor = self
            .backoff
            .powi(i32::try_from(attempt - 1).unwrap_or(i32::MAX));
        Some(self.delay.mul_f64(factor.min(1e6)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_policies() {
        let default = RetryPolicy::of(&json!({}));
        assert_eq!(
            default.should_retry(Some(ErrorClass::Transient), 1),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            default.should_retry(Some(ErrorClass::Transient), 2),
            Some(Duration::from_millis(1000))
        );
        assert_eq!(default.should_retry(Some(ErrorClass::Transient), 3), None);
        assert_eq!(default.should_retry(Some(ErrorClass::Permanent), 1), None);
        assert_eq!(
            default.should_retry(None, 1),
            None,
            "traps are never retried"
        );
        let explicit =
            RetryPolicy::of(&json!({"retry": {"times": 3, "delay": "1s", "backoff": 2.0}}));
        assert_eq!(
            explicit.should_retry(Some(ErrorClass::Permanent), 3),
            Some(Duration::from_secs(4))
        );
        assert_eq!(explicit.should_retry(Some(ErrorClass::Permanent), 4), None);
    }
}
