//! The agent: the plan in effect, its supervised components, and the operations the
//! API and the CLI drive: apply (fetch and verify everything first, install, stop what
//! changed in reverse order, start layer by layer, roll back to the last healthy
//! versions when a component does not become healthy), stop, restart, stop-plan.
//! Only one apply runs at a time; status reads never wait for one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{AgentError, Result};
use crate::fetch::{self, Fetched};
use crate::journal::Journal;
use crate::layout::Layout;
use crate::pull::PullStatus;
use crate::resolve::{self, ComponentSpec, ResolvedPlan};
use crate::supervise::{self, State, Supervised};
use crate::trust::Trust;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub verify_failures: AtomicU64,
    pub rollbacks: AtomicU64,
    pub deploys_ok: AtomicU64,
    pub deploys_failed: AtomicU64,
    pub downloads: AtomicU64,
    pub download_bytes: AtomicU64,
    pub last_deploy_ms: AtomicU64,
    pub documents_applied: AtomicU64,
    /// Refused desired-state documents, by reason (`signature`, `replay`, …).
    pub documents_refused: Mutex<BTreeMap<&'static str, u64>>,
}

/// What one component's part in an apply came to.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub version: String,
    /// `started`, `unchanged`, `stopped`, `rolled_back`, `restored`, `failed`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to an apply.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    /// `running`, `rolled_back`, `dry-run`.
    pub status: &'static str,
    pub plan_path: String,
    pub start: Vec<String>,
    pub stop: Vec<String>,
    pub unchanged: Vec<String>,
    pub components: Vec<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// Where an apply's plan comes from.
pub enum PlanSource {
    File(PathBuf),
    /// A plan the journal kept.
    Resolved(ResolvedPlan),
    /// The plan of a signed desired-state document: its artifacts are trusted by the
    /// digests it lists, so `--trust` does not also require a `sig_uri` for each.
    Document(ResolvedPlan),
}

struct Inner {
    /// `idle`, `applying`, `running`, `failed`, `rolled_back`, `stopped`.
    status: &'static str,
    plan: Option<ResolvedPlan>,
    error: Option<String>,
    running: BTreeMap<String, Arc<Supervised>>,
    /// The last version of each component that was healthy: the rollback target.
    last_good: BTreeMap<String, ComponentSpec>,
    report: Vec<Outcome>,
}

pub struct Agent {
    pub layout: Layout,
    pub cwd: PathBuf,
    pub started: Instant,
    pub counters: Counters,
    /// SIGTERM → SIGKILL grace when stopping a component.
    pub grace: Duration,
    inner: Mutex<Inner>,
    apply_lock: Mutex<()>,
    journal: Mutex<Journal>,
    http: ureq::Agent,
    /// The signing keys of `--trust` (artifact signatures, pulled documents).
    pub trust: Trust,
    /// What pull mode last did (empty without `--pull`).
    pub pull: Mutex<PullStatus>,
}

/// One row of `GET /v1/components`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentView {
    pub name: String,
    pub recipe: String,
    pub version: String,
    pub state: &'static str,
    pub pid: Option<u32>,
    pub ready: bool,
    pub last_health: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_message: Option<String>,
    pub restarts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_exit_code: Option<i32>,
    pub crash_loop: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    pub probe_failures_total: u64,
    pub log_bytes_total: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Agent {
    pub fn new(layout: Layout, cwd: PathBuf) -> Result<Self> {
        let journal = Journal::open(&layout.journal())?;
        Ok(Agent {
            layout,
            cwd,
            started: Instant::now(),
            counters: Counters::default(),
            grace: Duration::from_secs(10),
            inner: Mutex::new(Inner {
                status: "idle",
                plan: None,
                error: None,
                running: BTreeMap::new(),
                last_good: BTreeMap::new(),
                report: Vec::new(),
            }),
            apply_lock: Mutex::new(()),
            journal: Mutex::new(journal),
            http: fetch::http_agent(Some(Duration::from_secs(600))),
            trust: Trust::default(),
            pull: Mutex::new(PullStatus::default()),
        })
    }

    fn journal<T>(&self, f: impl FnOnce(&Journal) -> Result<T>) -> Result<T> {
        f(&self.journal.lock().unwrap())
    }

    /// A value of the journal's `meta` table (pull mode keeps its sequence there).
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.journal(|j| j.meta(key))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.journal(|j| j.set_meta(key, value))
    }

    pub fn count_refusal(&self, reason: &'static str) {
        *self
            .counters
            .documents_refused
            .lock()
            .unwrap()
            .entry(reason)
            .or_default() += 1;
    }

    /// Journal writes that must not abort an operation already under way are logged.
    fn journal_soft(&self, f: impl FnOnce(&Journal) -> Result<()>) {
        if let Err(e) = self.journal(f) {
            tracing::error!("{e}");
        }
    }

    /// On start: the plan of an apply the previous run did not finish, else the plan
    /// the journal says was in effect (unless it was stopped on purpose). Component
    /// process groups a previous run left behind (found in `/proc` by the
    /// `FROYO_DATA_DIR` and `FROYO_COMPONENT` they carry) are ended first, so nothing
    /// runs twice and nothing is orphaned.
    pub fn boot_plan(&self) -> Result<Option<ResolvedPlan>> {
        let leftovers = leftovers(&self.layout.root);
        for (pid, name) in &leftovers {
            tracing::warn!(component = %name, pid, "ending the process group a previous agent run left");
            supervise::kill_group(*pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + self.grace;
        while leftovers.iter().any(|(p, _)| alive(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for (pid, _) in &leftovers {
            supervise::kill_group(*pid, libc::SIGKILL);
        }
        self.journal(|j| j.close_interrupted())?;
        if let Some(p) = self.journal(|j| j.pending())? {
            return Ok(Some(p));
        }
        Ok(match self.journal(|j| j.load_plan())? {
            Some((plan, status)) if status != "stopped" => Some(plan),
            _ => None,
        })
    }

    /// Applies a plan (see the module doc). `Err` only when nothing was changed
    /// (a bad plan, an artifact refused, an install failed) or the agent is busy; a
    /// rollback is an `Ok` report with status `rolled_back`.
    pub fn apply(&self, source: PlanSource, dry: bool) -> Result<ApplyReport> {
        let _guard = self
            .apply_lock
            .try_lock()
            .map_err(|_| AgentError::Busy("an apply is already in progress".into()))?;
        let t0 = Instant::now();
        let plan = match source {
            PlanSource::File(p) => resolve::load(&p, &self.cwd)?,
            PlanSource::Resolved(p) => p,
            PlanSource::Document(mut p) => {
                p.from_document = true;
                p
            }
        };
        let require_sig = !plan.from_document;
        let _span = tracing::info_span!("apply", plan = %plan.path).entered();
        let (old_plan, alive_digests) = {
            let inner = self.inner.lock().unwrap();
            let alive: BTreeMap<String, String> = inner
                .running
                .iter()
                .filter(|(_, s)| {
                    !matches!(
                        s.snapshot().state,
                        State::Failed | State::Exited | State::Stopped
                    )
                })
                .map(|(n, s)| (n.clone(), s.spec.digest.clone()))
                .collect();
            (inner.plan.clone(), alive)
        };
        let running_names: BTreeSet<String> = {
            let inner = self.inner.lock().unwrap();
            inner.running.keys().cloned().collect()
        };
        let changed: BTreeSet<String> = plan
            .components
            .iter()
            .filter(|c| alive_digests.get(&c.name) != Some(&c.digest))
            .map(|c| c.name.clone())
            .collect();
        let mut restart = changed.clone();
        restart.extend(plan.dependents(&changed));
        let new_names: BTreeSet<String> = plan.components.iter().map(|c| c.name.clone()).collect();
        let order: Vec<String> = plan.layers.iter().flatten().cloned().collect();
        let start: Vec<String> = order
            .iter()
            .filter(|n| restart.contains(*n))
            .cloned()
            .collect();
        let unchanged: Vec<String> = order
            .iter()
            .filter(|n| !restart.contains(*n))
            .cloned()
            .collect();
        let old_order: Vec<String> = match &old_plan {
            Some(p) => p.layers.iter().flatten().cloned().collect(),
            None => running_names.iter().cloned().collect(),
        };
        let mut stop: Vec<String> = old_order
            .iter()
            .filter(|n| {
                running_names.contains(*n) && (!new_names.contains(*n) || restart.contains(*n))
            })
            .cloned()
            .collect();
        for n in &running_names {
            if !stop.contains(n) && (!new_names.contains(n) || restart.contains(n)) {
                stop.push(n.clone());
            }
        }
        stop.reverse();
        let mut report = ApplyReport {
            status: "dry-run",
            plan_path: plan.path.clone(),
            start: start.clone(),
            stop: stop.clone(),
            unchanged: unchanged.clone(),
            components: Vec::new(),
            error: None,
            duration_ms: 0,
        };
        if dry {
            return Ok(report);
        }
        self.inner.lock().unwrap().status = "applying";
        let deploy = self.journal(|j| j.begin(&plan.path))?;
        self.journal(|j| j.set_pending(Some(&plan)))?;
        let fail = |e: AgentError| -> AgentError {
            let msg = e.to_string();
            {
                let mut inner = self.inner.lock().unwrap();
                inner.status = status_after_failure(inner.plan.is_some());
                inner.error = Some(msg.clone());
            }
            self.counters.deploys_failed.fetch_add(1, Ordering::Relaxed);
            self.journal_soft(|j| j.finish(deploy, "failed", Some(&msg)));
            self.journal_soft(|j| j.set_pending(None));
            e
        };

        // 1. Fetch and verify every artifact before anything is stopped; what the trust
        //    policy refuses anyway is refused before the first byte is downloaded.
        for c in &plan.components {
            for a in &c.artifacts {
                if let Err(e) = fetch::precheck(a, &self.trust, require_sig) {
                    self.counters
                        .verify_failures
                        .fetch_add(1, Ordering::Relaxed);
                    self.journal_soft(|j| {
                        j.step(
                            deploy,
                            &c.name,
                            &c.version,
                            "verify",
                            "failed",
                            Some(&e.message),
                        )
                    });
                    return Err(fail(AgentError::Artifact {
                        component: c.name.clone(),
                        uri: a.uri.clone(),
                        message: e.message,
                        help: "sign the artifact with `minisign -S -m FILE`, name the `.minisig` in `sig_uri`, and start the agent with `--trust` holding the public key; nothing was changed".into(),
                    }));
                }
            }
        }
        for c in &plan.components {
            let dir = self.layout.artifact_dir(&c.recipe, &c.version);
            for a in &c.artifacts {
                let _s = tracing::info_span!("fetch", component = %c.name, uri = %a.uri).entered();
                match fetch::ensure(a, &dir, &self.http, &self.trust, require_sig) {
                    Ok(Fetched::Cached) => {
                        self.journal(|j| {
                            j.step(
                                deploy,
                                &c.name,
                                &c.version,
                                "fetch",
                                "cached",
                                Some(&a.file),
                            )
                        })
                        .map_err(&fail)?;
                    }
                    Ok(Fetched::Downloaded { bytes, resumed }) => {
                        self.counters.downloads.fetch_add(1, Ordering::Relaxed);
                        self.counters
                            .download_bytes
                            .fetch_add(bytes, Ordering::Relaxed);
                        let detail = format!(
                            "{} ({bytes} bytes{})",
                            a.file,
                            if resumed { ", resumed" } else { "" }
                        );
                        self.journal(|j| {
                            j.step(deploy, &c.name, &c.version, "fetch", "ok", Some(&detail))
                        })
                        .map_err(&fail)?;
                    }
                    Err(e) => {
                        if e.verify {
                            self.counters
                                .verify_failures
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        self.journal_soft(|j| {
                            j.step(
                                deploy,
                                &c.name,
                                &c.version,
                                "fetch",
                                "failed",
                                Some(&e.message),
                            )
                        });
                        return Err(fail(AgentError::Artifact {
                            component: c.name.clone(),
                            uri: a.uri.clone(),
                            message: e.message,
                            help: if e.verify {
                                "the download does not match the recipe's sha256/size or its signature; nothing was changed".into()
                            } else {
                                "check that the URL is reachable from the device; nothing was changed".into()
                            },
                        }));
                    }
                }
            }
        }
        // 2. Install what will start (new work dirs; running versions are untouched).
        for c in plan.components.iter().filter(|c| restart.contains(&c.name)) {
            let _s =
                tracing::info_span!("install", component = %c.name, version = %c.version).entered();
            match self.install(c) {
                Ok(ran) => self
                    .journal(|j| {
                        j.step(
                            deploy,
                            &c.name,
                            &c.version,
                            "install",
                            if ran { "ok" } else { "skipped" },
                            None,
                        )
                    })
                    .map_err(&fail)?,
                Err(e) => {
                    self.journal_soft(|j| {
                        j.step(deploy, &c.name, &c.version, "install", "failed", None)
                    });
                    return Err(fail(e));
                }
            }
        }
        // 3. Stop what goes or changes, dependents first.
        let mut previous: BTreeMap<String, ComponentSpec> = BTreeMap::new();
        for n in &stop {
            let sup = self.inner.lock().unwrap().running.remove(n);
            if let Some(sup) = sup {
                let _s = tracing::info_span!("stop", component = %n).entered();
                sup.stop(self.grace);
                previous.insert(n.clone(), (*sup.spec).clone());
                self.journal_soft(|j| j.step(deploy, n, &sup.spec.version, "stop", "ok", None));
                if !new_names.contains(n) {
                    self.journal_soft(|j| j.remove_component(n));
                    report.components.push(Outcome {
                        name: n.clone(),
                        version: sup.spec.version.clone(),
                        outcome: "stopped",
                        reason: None,
                    });
                }
            }
        }
        // 4. Start layer by layer; a layer starts when the previous one is ready.
        let mut started: Vec<String> = Vec::new();
        for layer in &plan.layers {
            let mut waiting = Vec::new();
            for n in layer.iter().filter(|n| restart.contains(*n)) {
                let spec = plan.get(n).expect("layer member").clone();
                let deadline = Instant::now() + Supervised::ready_timeout(&spec);
                let sup = Arc::new(Supervised::start(spec, &self.layout));
                self.inner
                    .lock()
                    .unwrap()
                    .running
                    .insert(n.clone(), sup.clone());
                started.push(n.clone());
                let pid = sup.wait_pid(Duration::from_secs(2));
                self.journal_soft(|j| {
                    j.set_component(n, &sup.spec.version, &sup.spec.digest, pid, "starting")
                });
                self.journal_soft(|j| j.step(deploy, n, &sup.spec.version, "start", "ok", None));
                waiting.push((sup, deadline));
            }
            for (sup, deadline) in &waiting {
                let _s = tracing::info_span!("ready", component = %sup.spec.name).entered();
                if let Err(why) = sup.wait_ready(*deadline) {
                    let reason = format!(
                        "{} {} not healthy within {}: {why}",
                        sup.spec.name,
                        sup.spec.version,
                        crate::duration::show(Supervised::ready_timeout(&sup.spec))
                    );
                    tracing::warn!("{reason}; rolling back");
                    self.journal_soft(|j| {
                        j.step(
                            deploy,
                            &sup.spec.name,
                            &sup.spec.version,
                            "ready",
                            "failed",
                            Some(&why),
                        )
                    });
                    return Ok(self.rollback(
                        deploy,
                        &sup.spec.name,
                        &reason,
                        &started,
                        previous,
                        old_order,
                        report,
                        t0,
                    ));
                }
                let pid = sup.snapshot().pid;
                self.journal_soft(|j| {
                    j.step(
                        deploy,
                        &sup.spec.name,
                        &sup.spec.version,
                        "ready",
                        "ok",
                        None,
                    )
                });
                self.journal_soft(|j| {
                    j.set_component(
                        &sup.spec.name,
                        &sup.spec.version,
                        &sup.spec.digest,
                        pid,
                        "running",
                    )
                });
            }
        }
        // 5. Commit.
        {
            let mut inner = self.inner.lock().unwrap();
            for c in &plan.components {
                inner.last_good.insert(c.name.clone(), c.clone());
            }
            inner.status = "running";
            inner.error = None;
            inner.plan = Some(plan.clone());
            for n in &start {
                let v = plan.get(n).map(|c| c.version.clone()).unwrap_or_default();
                report.components.push(Outcome {
                    name: n.clone(),
                    version: v,
                    outcome: "started",
                    reason: None,
                });
            }
            for n in &unchanged {
                let v = plan.get(n).map(|c| c.version.clone()).unwrap_or_default();
                report.components.push(Outcome {
                    name: n.clone(),
                    version: v,
                    outcome: "unchanged",
                    reason: None,
                });
            }
            inner.report = report.components.clone();
        }
        self.journal(|j| j.save_plan(&plan, "running"))?;
        self.journal(|j| j.set_pending(None))?;
        self.journal(|j| j.step(deploy, "*", "", "commit", "ok", None))?;
        self.journal(|j| j.finish(deploy, "running", None))?;
        let ms = t0.elapsed().as_millis() as u64;
        self.counters.deploys_ok.fetch_add(1, Ordering::Relaxed);
        self.counters.last_deploy_ms.store(ms, Ordering::Relaxed);
        report.status = "running";
        report.duration_ms = ms;
        Ok(report)
    }

    /// Undoes an apply whose component `failed` did not become healthy: stops what the
    /// apply started and starts again the last healthy version of everything it
    /// stopped, from what is on disk (no download, no install).
    #[allow(clippy::too_many_arguments)]
    fn rollback(
        &self,
        deploy: i64,
        failed: &str,
        reason: &str,
        started: &[String],
        previous: BTreeMap<String, ComponentSpec>,
        old_order: Vec<String>,
        mut report: ApplyReport,
        t0: Instant,
    ) -> ApplyReport {
        let _s = tracing::info_span!("rollback", component = %failed).entered();
        for n in started.iter().rev() {
            let sup = self.inner.lock().unwrap().running.remove(n);
            if let Some(sup) = sup {
                sup.stop(self.grace);
                self.journal_soft(|j| {
                    j.step(deploy, n, &sup.spec.version, "rollback-stop", "ok", None)
                });
                report.components.push(Outcome {
                    name: n.clone(),
                    version: sup.spec.version.clone(),
                    outcome: if n == failed {
                        "rolled_back"
                    } else {
                        "stopped"
                    },
                    reason: (n == failed).then(|| reason.to_owned()),
                });
                if !previous.contains_key(n) {
                    self.journal_soft(|j| j.remove_component(n));
                }
            }
        }
        let last_good = self.inner.lock().unwrap().last_good.clone();
        let mut restore_errors = Vec::new();
        for n in old_order.iter().filter(|n| previous.contains_key(*n)) {
            let spec = last_good
                .get(n)
                .cloned()
                .unwrap_or_else(|| previous[n].clone());
            let deadline = Instant::now() + Supervised::ready_timeout(&spec);
            let sup = Arc::new(Supervised::start(spec, &self.layout));
            self.inner
                .lock()
                .unwrap()
                .running
                .insert(n.clone(), sup.clone());
            let ok = sup.wait_ready(deadline);
            let pid = sup.snapshot().pid;
            self.journal_soft(|j| {
                j.step(
                    deploy,
                    n,
                    &sup.spec.version,
                    "rollback-start",
                    if ok.is_ok() { "ok" } else { "failed" },
                    None,
                )
            });
            self.journal_soft(|j| {
                j.set_component(n, &sup.spec.version, &sup.spec.digest, pid, "running")
            });
            if let Err(e) = &ok {
                restore_errors.push(format!("{n}: {e}"));
            }
            if let Some(o) = report
                .components
                .iter_mut()
                .find(|o| &o.name == n && o.outcome == "rolled_back")
            {
                o.reason = Some(format!(
                    "{reason}; {} {} is running again",
                    n, sup.spec.version
                ));
            } else {
                report.components.push(Outcome {
                    name: n.clone(),
                    version: sup.spec.version.clone(),
                    outcome: "restored",
                    reason: ok.err(),
                });
            }
        }
        let mut error = format!("rolled back: {reason}");
        if !restore_errors.is_empty() {
            error.push_str(&format!(
                "; and the rollback did not fully recover: {}",
                restore_errors.join("; ")
            ));
        }
        {
            let mut inner = self.inner.lock().unwrap();
            inner.status = "rolled_back";
            inner.error = Some(error.clone());
            inner.report = report.components.clone();
        }
        self.counters.rollbacks.fetch_add(1, Ordering::Relaxed);
        self.counters.deploys_failed.fetch_add(1, Ordering::Relaxed);
        self.journal_soft(|j| j.finish(deploy, "rolled_back", Some(&error)));
        self.journal_soft(|j| j.set_pending(None));
        report.status = "rolled_back";
        report.error = Some(error);
        report.duration_ms = t0.elapsed().as_millis() as u64;
        report
    }

    /// Stages the artifacts into the work dir and runs the install script unless the
    /// `.installed` marker says this digest already ran. `Ok(true)` when it ran.
    fn install(&self, c: &ComponentSpec) -> Result<bool> {
        let work = self.layout.work_dir(&c.recipe, &c.version);
        let arts = self.layout.artifact_dir(&c.recipe, &c.version);
        fetch::stage(c, &arts, &work).map_err(|e| AgentError::io(&work, e))?;
        let Some(script) = &c.install else {
            return Ok(false);
        };
        let marker = work.join(".installed");
        if std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == c.digest) {
            return Ok(false);
        }
        let spec = froyo_runner::ops::exec::Spec {
            argv: vec!["/bin/sh".into(), "-c".into(), script.clone()],
            env: supervise::child_env(c, &self.layout),
            cwd: work.clone(),
            stdin: None,
            timeout: Duration::from_secs(120),
            max_output: 64 * 1024,
        };
        let fail = |message: String| AgentError::Install {
            component: c.name.clone(),
            work_dir: work.display().to_string(),
            message,
        };
        let out =
            froyo_runner::ops::exec::run(&spec, &std::sync::atomic::AtomicBool::new(false), None)
                .map_err(|e| fail(e.to_string()))?;
        if !out.status.success() {
            let text = out.combined();
            return Err(fail(format!(
                "{} — {}",
                match out.status.code() {
                    Some(c) => format!("exit {c}"),
                    None => "killed by a signal".into(),
                },
                crate::health::tail(&text, 2000)
            )));
        }
        std::fs::write(&marker, format!("{}\n", c.digest))
            .map_err(|e| AgentError::io(&marker, e))?;
        Ok(true)
    }

    /// Stops every component, dependents first; the journal keeps the plan as
    /// `stopped`, so the next start does not resume it.
    pub fn stop_plan(&self) -> Result<Vec<String>> {
        let _guard = self
            .apply_lock
            .try_lock()
            .map_err(|_| AgentError::Busy("an apply is in progress".into()))?;
        let order = self.stop_order();
        for n in &order {
            let sup = self.inner.lock().unwrap().running.remove(n);
            if let Some(sup) = sup {
                sup.stop(self.grace);
                self.journal_soft(|j| {
                    j.set_component(n, &sup.spec.version, &sup.spec.digest, None, "stopped")
                });
            }
        }
        let plan = {
            let mut inner = self.inner.lock().unwrap();
            inner.status = "stopped";
            inner.plan.clone()
        };
        if let Some(p) = plan {
            self.journal(|j| j.save_plan(&p, "stopped"))?;
        }
        Ok(order)
    }

    /// Stops everything on agent shutdown, dependents first, keeping the plan's status
    /// so the next start resumes it.
    pub fn shutdown(&self) {
        for n in self.stop_order() {
            let sup = self.inner.lock().unwrap().running.remove(&n);
            if let Some(sup) = sup {
                sup.stop(self.grace);
                self.journal_soft(|j| {
                    j.set_component(&n, &sup.spec.version, &sup.spec.digest, None, "stopped")
                });
            }
        }
    }

    /// Running components in reverse start order.
    fn stop_order(&self) -> Vec<String> {
        let inner = self.inner.lock().unwrap();
        let mut order: Vec<String> = match &inner.plan {
            Some(p) => p
                .layers
                .iter()
                .flatten()
                .filter(|n| inner.running.contains_key(*n))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        for n in inner.running.keys() {
            if !order.contains(n) {
                order.push(n.clone());
            }
        }
        order.reverse();
        order
    }

    /// Stops one component (it stays in the plan, stopped, until the next apply).
    pub fn stop_component(&self, name: &str, dry: bool) -> Result<serde_json::Value> {
        let sup = self.inner.lock().unwrap().running.get(name).cloned();
        let Some(sup) = sup else {
            return Err(AgentError::NotFound(format!("no component `{name}`")));
        };
        if !dry {
            sup.stop(self.grace);
            self.journal_soft(|j| {
                j.set_component(name, &sup.spec.version, &sup.spec.digest, None, "stopped")
            });
        }
        Ok(serde_json::json!({"stopOrder": [name], "dry": dry}))
    }

    /// Restarts a component and, around it, what depends on it through `hard` or
    /// `soft` edges: dependents stop first and start after, in dependency order.
    pub fn restart_component(&self, name: &str, dry: bool) -> Result<serde_json::Value> {
        let (plan, running) = {
            let inner = self.inner.lock().unwrap();
            (inner.plan.clone(), inner.running.clone())
        };
        if !running.contains_key(name) {
            return Err(AgentError::NotFound(format!("no component `{name}`")));
        }
        let mut set = BTreeSet::from([name.to_owned()]);
        if let Some(p) = &plan {
            set.extend(p.dependents(&set));
        }
        let start: Vec<String> = match &plan {
            Some(p) => p
                .layers
                .iter()
                .flatten()
                .filter(|n| set.contains(*n))
                .cloned()
                .collect(),
            None => vec![name.to_owned()],
        };
        let mut stop = start.clone();
        stop.reverse();
        if !dry {
            for n in &stop {
                if let Some(s) = running.get(n) {
                    s.stop(self.grace);
                }
            }
            for n in &start {
                if let Some(old) = running.get(n) {
                    let spec = (*old.spec).clone();
                    let deadline = Instant::now() + Supervised::ready_timeout(&spec);
                    let sup = Arc::new(Supervised::start(spec, &self.layout));
                    sup.status.lock().unwrap().restarts += old.snapshot().restarts + 1;
                    self.inner
                        .lock()
                        .unwrap()
                        .running
                        .insert(n.clone(), sup.clone());
                    sup.wait_ready(deadline).map_err(|why| AgentError::Start {
                        component: n.clone(),
                        message: format!("not healthy after restart: {why}"),
                    })?;
                    let pid = sup.snapshot().pid;
                    self.journal_soft(|j| {
                        j.set_component(n, &sup.spec.version, &sup.spec.digest, pid, "running")
                    });
                }
            }
        }
        Ok(serde_json::json!({"stopOrder": stop, "startOrder": start, "dry": dry}))
    }

    pub fn components(&self) -> Vec<ComponentView> {
        let (plan, running) = {
            let inner = self.inner.lock().unwrap();
            (inner.plan.clone(), inner.running.clone())
        };
        let mut order: Vec<String> = plan
            .map(|p| p.layers.into_iter().flatten().collect())
            .unwrap_or_default();
        for n in running.keys() {
            if !order.contains(n) {
                order.push(n.clone());
            }
        }
        order
            .iter()
            .filter_map(|n| running.get(n))
            .map(|sup| {
                let s = sup.snapshot();
                ComponentView {
                    name: sup.spec.name.clone(),
                    recipe: sup.spec.recipe.clone(),
                    version: sup.spec.version.clone(),
                    state: s.state.as_str(),
                    pid: s.pid,
                    ready: s.ready,
                    last_health: s.last_health,
                    health_message: s.health_message,
                    restarts: s.restarts,
                    last_exit: s.last_exit,
                    last_exit_code: s.last_exit_code,
                    crash_loop: s.crash_loop,
                    started_at: s.started_at,
                    probe_failures_total: s.probe_failures_total,
                    log_bytes_total: sup.log_bytes.load(Ordering::Relaxed),
                    error: s.error,
                }
            })
            .collect()
    }

    /// `GET /v1/plan/status`.
    pub fn plan_status(&self) -> serde_json::Value {
        let (status, path, error, report) = {
            let inner = self.inner.lock().unwrap();
            (
                inner.status,
                inner.plan.as_ref().map(|p| p.path.clone()),
                inner.error.clone(),
                inner.report.clone(),
            )
        };
        let pull = self.pull.lock().unwrap().clone();
        let mut v = serde_json::json!({
            "status": status,
            "planPath": path,
            "error": error,
            "lastApply": report,
            "components": self.components(),
        });
        if !pull.inbox.is_empty() {
            v["pull"] = serde_json::to_value(pull).unwrap_or_default();
        }
        v
    }

    /// `GET /v1/plan/graph`.
    pub fn graph(&self) -> serde_json::Value {
        match &self.inner.lock().unwrap().plan {
            Some(p) => p.graph_json(),
            None => serde_json::json!({"nodes": [], "edges": [], "layers": [], "order": []}),
        }
    }

    /// Pids of the running components (for `/metrics`).
    pub fn running_pids(&self) -> Vec<(String, u32)> {
        self.components()
            .into_iter()
            .filter_map(|c| c.pid.map(|p| (c.name, p)))
            .collect()
    }

    pub fn status_str(&self) -> &'static str {
        self.inner.lock().unwrap().status
    }
}

/// A failed apply changed nothing: the plan in effect keeps running.
fn status_after_failure(has_plan: bool) -> &'static str {
    if has_plan { "running" } else { "failed" }
}

/// Whether a process exists.
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()
                    .map(|r| r.trim_start().starts_with('Z'))
            })
            .map(|zombie| !zombie)
            .unwrap_or(false)
}

/// `(pid, component)` of every live process-group leader that carries
/// `FROYO_DATA_DIR=<root>` in its environment: components a run of this agent started.
pub fn leftovers(root: &Path) -> Vec<(u32, String)> {
    let want_dir = format!("FROYO_DATA_DIR={}", root.display());
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || !alive(pid) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command: state, ppid, pgrp.
        let pgrp = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(2))
            .and_then(|p| p.parse::<u32>().ok());
        if pgrp != Some(pid) {
            continue;
        }
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        if !vars.contains(&want_dir.as_bytes()) {
            continue;
        }
        let name = vars
            .iter()
            .find_map(|v| v.strip_prefix(b"FROYO_COMPONENT="))
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        out.push((pid, name));
    }
    out
}
