//! Pull mode (`serve --pull URL`): a thread that fetches the desired-state document
//! every `--pull-interval` (±20 % jitter, so a fleet does not poll in step) with
//! `If-None-Match`, checks it ([`crate::document`]) and applies it. The same thread
//! watches `inbox/` under the data dir, where a push (over SSH) leaves a document and
//! its signature: same check, same sequence. Without network it
//! only logs: the components it has keep running and stay supervised. What it did last
//! is in `GET /v1/plan/status` (`pull`) and `/metrics`.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

use crate::agent::{Agent, PlanSource};
use crate::document::{self, MAX_DOCUMENT_BYTES, Seen, Verdict};
use crate::error::AgentError;

/// What pull mode last did, for the API.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PullStatus {
    /// The URL polled (empty when only the inbox is watched).
    pub url: String,
    /// The inbox directory a push leaves documents in.
    pub inbox: String,
    /// The sequence of the document in effect.
    pub sequence: Option<u64>,
    /// `applied`, `unchanged` (304 or the same document), `refused`, `unreachable`,
    /// `failed`.
    pub last_result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub polls: u64,
}

/// A fetched document and its `ETag`.
type Fetched = (Vec<u8>, Option<String>);

/// Journal keys.
const SEQUENCE: &str = "doc_sequence";
const SHA: &str = "doc_sha256";
const HIGH_WATER: &str = "doc_high_water";

pub struct Puller {
    agent: Arc<Agent>,
    url: Option<String>,
    inbox: PathBuf,
    interval: Duration,
    http: ureq::Agent,
    etag: Option<String>,
    /// Digest of the inbox's document and signature last done with.
    inbox_seen: Option<String>,
}

impl Puller {
    /// Polls `url` (when given) and the data dir's `inbox/`.
    pub fn new(agent: Arc<Agent>, url: Option<String>, interval: Duration) -> Self {
        let inbox = agent.layout.root.join("inbox");
        {
            let mut p = agent.pull.lock().unwrap();
            p.url = url.clone().unwrap_or_default();
            p.inbox = inbox.display().to_string();
        }
        Puller {
            agent,
            url,
            inbox,
            interval,
            http: crate::fetch::http_agent(Some(Duration::from_secs(60))),
            etag: None,
            inbox_seen: None,
        }
    }

    /// Polls forever on its own thread.
    pub fn spawn(mut self) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("pull".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut jitter = crate::supervise::Jitter::new();
                loop {
                    self.poll();
                    std::thread::sleep(jitter.spread(self.interval));
                }
            })
            .map(|_| ())
    }

    fn seen(&self) -> Seen {
        let get = |k: &str| self.agent.meta(k).ok().flatten();
        let last = match (get(SEQUENCE).and_then(|s| s.parse().ok()), get(SHA)) {
            (Some(seq), Some(sha)) => Some((seq, sha)),
            _ => None,
        };
        Seen {
            last,
            high_water: get(HIGH_WATER).and_then(|s| s.parse().ok()).unwrap_or(0),
        }
    }

    fn set(&self, result: &str, error: Option<String>) {
        let mut p = self.agent.pull.lock().unwrap();
        p.polls += 1;
        p.last_result = result.into();
        p.last_error = error;
    }

    /// One round: the URL (when pulling), then the inbox.
    pub fn poll(&mut self) {
        if self.url.is_some() {
            self.poll_url();
        }
        self.poll_inbox();
    }

    fn poll_url(&mut self) {
        let url = self.url.clone().unwrap_or_default();
        let _span = tracing::info_span!("pull", url = %url).entered();
        let (bytes, etag) = match self.fetch_document(&url) {
            Ok(None) => return self.set("unchanged", None),
            Ok(Some(b)) => b,
            Err(e) => {
                tracing::warn!("desired state unreachable: {e}");
                return self.set("unreachable", Some(e));
            }
        };
        let sig = match crate::fetch::get_small(
            &format!("{url}.minisig"),
            &Default::default(),
            &self.http,
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("signature of the desired state: {}", e.message);
                return self.set("unreachable", Some(e.message));
            }
        };
        if self.consider(&bytes, &sig) {
            // Done with (applied, the same, or refused for good): ask again only when it
            // changes.
            self.etag = etag;
        }
    }

    /// `inbox/desired.json` and `inbox/desired.json.minisig` under the data dir, as a
    /// push over SSH leaves them (signature first, each renamed into place).
    fn poll_inbox(&mut self) {
        let doc = self.inbox.join("desired.json");
        let sig = self.inbox.join("desired.json.minisig");
        let read = |p: &std::path::Path, max: u64| -> Option<Vec<u8>> {
            let mut b = Vec::new();
            std::fs::File::open(p)
                .ok()?
                .take(max + 1)
                .read_to_end(&mut b)
                .ok()?;
            (b.len() as u64 <= max).then_some(b)
        };
        let (Some(bytes), Some(sig)) = (
            read(&doc, MAX_DOCUMENT_BYTES),
            read(&sig, crate::trust::MAX_SIGNATURE_BYTES),
        ) else {
            return;
        };
        let mut h = froyo_runner::encoding::sha256_hex(&bytes);
        h.push_str(&froyo_runner::encoding::sha256_hex(&sig));
        if self.inbox_seen.as_deref() == Some(h.as_str()) {
            return;
        }
        let _span = tracing::info_span!("inbox", path = %doc.display()).entered();
        if self.consider(&bytes, &String::from_utf8_lossy(&sig)) {
            self.inbox_seen = Some(h);
        }
    }

    /// Checks and applies one document; `true` when it is done with (applied, rolled
    /// back, the same as before, or refused), `false` when it should be tried again.
    fn consider(&mut self, bytes: &[u8], sig: &str) -> bool {
        let seen = self.seen();
        match document::check(bytes, sig, &self.agent.trust, &seen, document::now()) {
            Err(r) => {
                tracing::warn!(reason = r.reason, "desired state refused: {}", r.message);
                self.agent.count_refusal(r.reason);
                self.set("refused", Some(format!("{}: {}", r.reason, r.message)));
                true
            }
            Ok(Verdict::Same) => {
                self.set("unchanged", None);
                true
            }
            Ok(Verdict::Apply(doc, sha)) => {
                let seq = doc.sequence;
                let issued = doc.issued_at;
                tracing::info!(sequence = seq, "applying the desired state");
                match self.agent.apply(PlanSource::Document(doc.plan), false) {
                    Ok(report) => {
                        // Applied, or rolled back to what was healthy: either way this
                        // document is done with; a newer one is needed to move on.
                        let _ = self.agent.set_meta(SEQUENCE, &seq.to_string());
                        let _ = self.agent.set_meta(SHA, &sha);
                        let _ = self
                            .agent
                            .set_meta(HIGH_WATER, &seen.high_water.max(issued).to_string());
                        self.agent.pull.lock().unwrap().sequence = Some(seq);
                        self.agent
                            .counters
                            .documents_applied
                            .fetch_add(1, Ordering::Relaxed);
                        self.set(
                            if report.status == "rolled_back" {
                                "rolled_back"
                            } else {
                                "applied"
                            },
                            report.error,
                        );
                        true
                    }
                    Err(AgentError::Busy(m)) => {
                        self.set("busy", Some(m));
                        false
                    }
                    Err(e) => {
                        // Nothing changed (an artifact unreachable or refused…): try
                        // again next round.
                        tracing::warn!("{}", e.render().trim_end());
                        self.set("failed", Some(e.to_string()));
                        false
                    }
                }
            }
        }
    }

    /// `Ok(None)` on 304 Not Modified; else the body and its `ETag`.
    fn fetch_document(&self, url: &str) -> Result<Option<Fetched>, String> {
        let mut req = self.http.get(url);
        if let Some(t) = &self.etag {
            req = req.header("If-None-Match", t.as_str());
        }
        let resp = req.call().map_err(|e| e.to_string())?;
        match resp.status().as_u16() {
            304 => return Ok(None),
            200 => {}
            s => return Err(format!("HTTP {s}")),
        }
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut bytes = Vec::new();
        resp.into_body()
            .as_reader()
            .take(MAX_DOCUMENT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
            return Err(format!("larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        Ok(Some((bytes, etag)))
    }
}
