//! The work queue's side of the state (PostgreSQL only, the cluster profile): which
//! (run, host) items the controller published, which delivery of each owns it now, and how
//! each ended; and [`FencedStore`], the store a worker applies one host through, whose
//! writes are refused once a later delivery claimed the host.
//!
//! Fencing: a claim records the JetStream delivery count as `attempt` and only ever raises
//! it. Every write of a worker runs in a transaction that first reads the host's claim
//! `FOR SHARE` and gives up unless the attempt is still its own; a new claim's `UPDATE`
//! waits for such a transaction and, once committed, makes every later one fail. So a
//! worker that was presumed dead (no heartbeat within `ack_wait`) and comes back can never
//! write over its successor's record.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use froyo_cluster::pg::tokio_postgres::types::ToSql;
use serde::Serialize;
use serde_json::Value as Json;

use super::{
    Event, LockGuard, OnboardedTarget, PgStore, PlanUnit, ResourceRecord, Result, Run, RunId,
    RunKind, RunStatus, Store, UnitRecord, now_ms,
};
use crate::error::Error;

/// What a worker's writes for one host carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub run: RunId,
    pub target: String,
    pub attempt: i64,
}

/// One published (run, host) item as the state knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    pub target: String,
    /// 0 while queued, else the delivery that claimed it last.
    pub attempt: i64,
    pub worker: String,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    /// The last claim, heartbeat or finish (milliseconds since the epoch).
    pub updated_ms: i64,
    /// What the worker reported when it finished (round trips, an error).
    pub report: Option<Json>,
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// This delivery owns the host now.
    Owned,
    /// The host already finished in this run (the ack of that delivery was lost).
    Finished,
    /// A later delivery holds it.
    Superseded { latest: i64 },
    /// No such item (another project's or a forgotten run).
    Unknown,
}

/// A parameter of a fenced statement.
type Param = Box<dyn ToSql + Sync + Send>;

/// One statement of a fenced write.
struct Stmt(&'static str, Vec<Param>);

const FENCE_CHECK: &str =
    "SELECT attempt FROM work_claims WHERE run_id = $1 AND target = $2 FOR SHARE";

impl PgStore {
    /// Records that an item was published for each of `targets` in `run` (`queued`).
    pub fn queue_hosts(&self, run: RunId, targets: &[String]) -> Result<()> {
        let targets = targets.to_vec();
        self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            for t in &targets {
                tx.execute(
                    "INSERT INTO work_claims (run_id, target, attempt, worker, status, updated_ms)
                     VALUES ($1, $2, 0, '', 'queued', $3) ON CONFLICT DO NOTHING",
                    &[&run.0, t, &now_ms()],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Claims `target` of `run` for delivery `attempt` by `worker`.
    pub fn claim(&self, run: RunId, target: &str, attempt: i64, worker: &str) -> Result<Claimed> {
        let (target, worker) = (target.to_owned(), worker.to_owned());
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let took = c
                .execute(
                    "UPDATE work_claims SET attempt = $3, worker = $4, status = 'running',
                         updated_ms = $5
                     WHERE run_id = $1 AND target = $2 AND attempt < $3
                       AND status IN ('queued', 'running')",
                    &[&run.0, &target, &attempt, &worker, &now_ms()],
                )
                .await?;
            if took == 1 {
                return Ok(Claimed::Owned);
            }
            let row = c
                .query_opt(
                    "SELECT attempt, status FROM work_claims WHERE run_id = $1 AND target = $2",
                    &[&run.0, &target],
                )
                .await?;
            Ok(match row {
                None => Claimed::Unknown,
                Some(r) => match r.get::<_, &str>(1) {
                    "done" | "failed" => Claimed::Finished,
                    _ => Claimed::Superseded { latest: r.get(0) },
                },
            })
        })
    }

    /// Restarts the claim's clock; `false` when a later delivery owns the host now.
    pub fn heartbeat(&self, fence: &Fence) -> Result<bool> {
        let f = fence.clone();
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let n = c
                .execute(
                    "UPDATE work_claims SET updated_ms = $4
                     WHERE run_id = $1 AND target = $2 AND attempt = $3 AND status = 'running'",
                    &[&f.run.0, &f.target, &f.attempt, &now_ms()],
                )
                .await?;
            Ok(n == 1)
        })
    }

    /// Ends the claim as `status` (`done`, `failed`) with the worker's `report`; `false`
    /// when a later delivery owns the host now (nothing is written).
    pub fn finish_claim(&self, fence: &Fence, status: &str, report: &Json) -> Result<bool> {
        let (f, status, report) = (fence.clone(), status.to_owned(), report.to_string());
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let n = c
                .execute(
                    "UPDATE work_claims SET status = $4, report = $5, updated_ms = $6
                     WHERE run_id = $1 AND target = $2 AND attempt = $3",
                    &[&f.run.0, &f.target, &f.attempt, &status, &report, &now_ms()],
                )
                .await?;
            Ok(n == 1)
        })
    }

    /// Every item of `run`, by target.
    pub fn claims(&self, run: RunId) -> Result<Vec<Claim>> {
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    r#"SELECT target, attempt, worker, status, updated_ms, report FROM work_claims
                       WHERE run_id = $1 ORDER BY target COLLATE "C""#,
                    &[&run.0],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| Claim {
                    target: r.get(0),
                    attempt: r.get(1),
                    worker: r.get(2),
                    status: r.get(3),
                    updated_ms: r.get(4),
                    report: r
                        .get::<_, Option<&str>>(5)
                        .and_then(|s| serde_json::from_str(s).ok()),
                })
                .collect())
        })
    }

    /// Runs `stmts` in one transaction that first checks the fence; `Err(Fenced)` (and
    /// nothing written) when the attempt is no longer the latest.
    fn write_fenced(&self, fence: &Fence, stmts: Vec<Stmt>) -> Result<()> {
        let f = fence.clone();
        let latest = self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            let latest: Option<i64> = tx
                .query_opt(FENCE_CHECK, &[&f.run.0, &f.target])
                .await?
                .map(|r| r.get(0));
            if latest != Some(f.attempt) {
                return Ok(Some(latest.unwrap_or(0)));
            }
            for Stmt(sql, params) in &stmts {
                let refs: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
                tx.execute(*sql, &refs).await?;
            }
            tx.commit().await?;
            Ok(None)
        })?;
        match latest {
            None => Ok(()),
            Some(latest) => Err(Error::Fenced {
                target: fence.target.clone(),
                run: fence.run.0,
                attempt: fence.attempt,
                latest,
            }),
        }
    }
}

fn p<T: ToSql + Sync + Send + 'static>(v: T) -> Param {
    Box::new(v)
}

fn put_resource_stmt(r: &ResourceRecord) -> Stmt {
    Stmt(
        super::postgres::PUT_RESOURCE,
        vec![
            p(r.target.clone()),
            p(r.resource.clone()),
            p(r.type_name.clone()),
            p(super::redact(&r.config).to_string()),
            p(r.config_sha256.clone()),
            p(r.run.0),
            p(r.applied_ms),
        ],
    )
}

fn unit_status_stmt(run: RunId, target: &str, resource: &str, status: &str) -> Stmt {
    Stmt(
        super::postgres::SET_UNIT_STATUS,
        vec![
            p(status.to_owned()),
            p(run.0),
            p(target.to_owned()),
            p(resource.to_owned()),
        ],
    )
}

fn add_pending_stmt(target: &str, handler: &str, by: &str, run: RunId) -> Stmt {
    Stmt(
        super::postgres::ADD_PENDING,
        vec![
            p(target.to_owned()),
            p(handler.to_owned()),
            p(by.to_owned()),
            p(run.0),
        ],
    )
}

/// The store one worker applies one host through: reads as the project's store; the
/// run's record (events, unit outcomes, resource state, pending handlers) written only
/// while [`Fence`] still owns the host. The first refused write raises [`Self::lost`], so
/// the worker stops starting resources.
pub struct FencedStore {
    pg: Arc<PgStore>,
    fence: Fence,
    lost: Arc<AtomicBool>,
}

impl FencedStore {
    pub fn new(pg: Arc<PgStore>, fence: Fence) -> FencedStore {
        FencedStore {
            pg,
            fence,
            lost: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Raised once a write was refused (or a heartbeat found the host taken).
    pub fn lost(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    fn write(&self, stmts: Vec<Stmt>) -> Result<()> {
        let r = self.pg.write_fenced(&self.fence, stmts);
        if matches!(r, Err(Error::Fenced { .. })) {
            self.lost.store(true, Ordering::SeqCst);
        }
        r
    }
}

impl Store for FencedStore {
    fn lock(&self, command: &str) -> Result<LockGuard> {
        self.pg.lock(command)
    }

    fn lock_targets(&self, command: &str, targets: &[String]) -> Result<LockGuard> {
        self.pg.lock_targets(command, targets)
    }

    fn record_unit(&self, run: RunId, u: &UnitRecord<'_>) -> Result<()> {
        let mut stmts = Vec::new();
        if let Some(r) = u.record {
            stmts.push(put_resource_stmt(r));
        }
        stmts.push(unit_status_stmt(run, u.target, u.resource, u.status));
        for h in u.notified {
            stmts.push(add_pending_stmt(u.target, h, u.resource, run));
        }
        for h in u.withdrawn {
            stmts.push(Stmt(
                super::postgres::WITHDRAW_PENDING,
                vec![
                    p(u.target.to_owned()),
                    p(h.to_owned()),
                    p(u.resource.to_owned()),
                ],
            ));
        }
        self.write(stmts)
    }

    fn begin_run(&self, kind: RunKind, playbook: Option<&str>) -> Result<RunId> {
        self.pg.begin_run(kind, playbook)
    }

    fn finish_run(&self, run: RunId, status: RunStatus) -> Result<()> {
        self.pg.finish_run(run, status)
    }

    fn runs(&self, limit: usize) -> Result<Vec<Run>> {
        self.pg.runs(limit)
    }

    fn reap_interrupted(&self) -> Result<Vec<RunId>> {
        self.pg.reap_interrupted()
    }

    fn append_event(&self, run: RunId, e: &Event) -> Result<()> {
        self.write(vec![Stmt(
            super::postgres::INSERT_EVENT,
            vec![
                p(run.0),
                p(e.ts_ms),
                p(e.target.clone()),
                p(e.resource.clone()),
                p(e.kind.clone()),
                p(e.data.to_string()),
            ],
        )])
    }

    fn events(&self, run: RunId) -> Result<Vec<Event>> {
        self.pg.events(run)
    }

    fn events_after(&self, run: RunId, after: i64) -> Result<Vec<(i64, Event)>> {
        self.pg.events_after(run, after)
    }

    fn run(&self, run: RunId) -> Result<Option<Run>> {
        Store::run(&*self.pg, run)
    }

    fn put_plan_units(&self, run: RunId, units: &[PlanUnit]) -> Result<()> {
        self.pg.put_plan_units(run, units)
    }

    fn set_unit_status(
        &self,
        run: RunId,
        target: &str,
        resource: &str,
        status: &str,
    ) -> Result<()> {
        self.write(vec![unit_status_stmt(run, target, resource, status)])
    }

    fn plan_units(&self, run: RunId) -> Result<Vec<PlanUnit>> {
        self.pg.plan_units(run)
    }

    fn put_resource(&self, record: &ResourceRecord) -> Result<()> {
        self.write(vec![put_resource_stmt(record)])
    }

    fn remove_resource(&self, target: &str, resource: &str) -> Result<()> {
        self.write(vec![Stmt(
            super::postgres::REMOVE_RESOURCE,
            vec![p(target.to_owned()), p(resource.to_owned())],
        )])
    }

    fn resources(&self, target: Option<&str>) -> Result<Vec<ResourceRecord>> {
        self.pg.resources(target)
    }

    fn add_pending(&self, target: &str, handler: &str, by: &str, run: RunId) -> Result<()> {
        self.write(vec![add_pending_stmt(target, handler, by, run)])
    }

    fn clear_pending(&self, target: &str, handler: &str) -> Result<()> {
        self.write(vec![Stmt(
            super::postgres::CLEAR_PENDING,
            vec![p(target.to_owned()), p(handler.to_owned())],
        )])
    }

    fn pending(&self, target: &str) -> Result<Vec<(String, String)>> {
        self.pg.pending(target)
    }

    fn touch_target(&self, name: &str, address: &str) -> Result<()> {
        self.pg.touch_target(name, address)
    }

    // Facts are a cache, the audit trail is the controller's: neither is fenced.
    fn put_fact(&self, target: &str, name: &str, value: &Json, ttl_secs: u64) -> Result<()> {
        self.pg.put_fact(target, name, value, ttl_secs)
    }

    fn fact(&self, target: &str, name: &str) -> Result<Option<Json>> {
        self.pg.fact(target, name)
    }

    fn forget_facts(&self, target: &str) -> Result<()> {
        self.pg.forget_facts(target)
    }

    fn audit(&self, action: &str, detail: &Json) -> Result<()> {
        self.pg.audit(action, detail)
    }

    fn put_onboarded(&self, t: &OnboardedTarget) -> Result<()> {
        self.pg.put_onboarded(t)
    }

    fn onboarded(&self) -> Result<Vec<OnboardedTarget>> {
        self.pg.onboarded()
    }

    fn remove_onboarded(&self, name: &str) -> Result<()> {
        self.pg.remove_onboarded(name)
    }

    fn backup(&self, to: &std::path::Path) -> Result<()> {
        self.pg.backup(to)
    }
}
