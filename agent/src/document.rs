//! The signed desired-state document of pull mode: one JSON file with the plan fully
//! resolved (every recipe, every artifact's sha256 and size), a rising `sequence` and
//! an expiry, and beside it a detached minisign signature (`<url>.minisig`). `froyo
//! agent publish` writes it; `serve --pull` accepts it only when the signature is by a
//! `--trust` key, the sequence is above the last one applied (a replayed older document
//! is refused, and so is another document under the same sequence), and it has not
//! expired.
//!
//! Expiry does not trust the wall clock: the agent keeps a high-water mark of the
//! `issued_at` of every document it accepted, and judges expiry by the later of that
//! mark and the clock. A device that boots at 1970 still accepts a current document
//! (its clock is behind the mark, so the mark counts); only a clock *ahead* of a
//! document's expiry refuses it, which is what expiry is for.

use serde::{Deserialize, Serialize};

use crate::resolve::ResolvedPlan;
use crate::trust::Trust;

/// The `format` of the documents this agent reads.
pub const FORMAT: &str = "froyo-agent/desired-state/1";

/// The largest document accepted.
pub const MAX_DOCUMENT_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub format: String,
    /// Rises with every document a publisher signs.
    pub sequence: u64,
    /// Unix seconds when it was published.
    pub issued_at: u64,
    /// Unix seconds after which it is refused.
    pub expires_at: u64,
    pub plan: ResolvedPlan,
}

/// What the agent remembers of the documents it accepted (journal `meta`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// Sequence and sha256 of the last document accepted.
    pub last: Option<(u64, String)>,
    /// The highest `issued_at` accepted: the agent's lower bound on the time.
    pub high_water: u64,
}

/// Why a document was refused; `reason` is a stable word for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

fn refuse(reason: &'static str, message: String) -> Refusal {
    Refusal { reason, message }
}

/// The verdict on a fetched document.
#[derive(Debug)]
pub enum Verdict {
    /// New: apply it (its sha256 is recorded once applied).
    Apply(Box<Document>, String),
    /// The document already applied, fetched again.
    Same,
}

/// Checks `bytes` (with its signature `sig`) against the trust policy and what was
/// seen before; `now` is the wall clock (unix seconds), trusted only when ahead of the
/// high-water mark.
pub fn check(
    bytes: &[u8],
    sig: &str,
    trust: &Trust,
    seen: &Seen,
    now: u64,
) -> Result<Verdict, Refusal> {
    trust
        .verify_bytes(bytes, sig)
        .map_err(|m| refuse("signature", m))?;
    let sha = froyo_runner::encoding::sha256_hex(bytes);
    judge(read(bytes)?, sha, seen, now)
}

/// Reads the bytes of a document whose signature checked out: JSON of [`FORMAT`].
pub fn read(bytes: &[u8]) -> Result<Document, Refusal> {
    let doc: Document = serde_json::from_slice(bytes)
        .map_err(|e| refuse("format", format!("not a desired-state document: {e}")))?;
    if doc.format != FORMAT {
        return Err(refuse(
            "format",
            format!("format `{}`, this agent reads `{FORMAT}`", doc.format),
        ));
    }
    Ok(doc)
}

/// The policy on sequences and time, for a document whose signature checked out.
pub fn judge(doc: Document, sha: String, seen: &Seen, now: u64) -> Result<Verdict, Refusal> {
    if let Some((seq, last_sha)) = &seen.last {
        if doc.sequence < *seq {
            return Err(refuse(
                "replay",
                format!(
                    "sequence {} is older than the {seq} already applied: a replayed document",
                    doc.sequence
                ),
            ));
        }
        if doc.sequence == *seq {
            return if &sha == last_sha {
                Ok(Verdict::Same)
            } else {
                Err(refuse(
                    "replay",
                    format!(
                        "another document under sequence {seq}, which is already applied: publish with a higher sequence"
                    ),
                ))
            };
        }
    }
    let clock = now.max(seen.high_water).max(doc.issued_at);
    if clock >= doc.expires_at {
        return Err(refuse(
            "expired",
            format!(
                "expired at {} (the agent's time is at least {clock})",
                doc.expires_at
            ),
        ));
    }
    Ok(Verdict::Apply(Box::new(doc), sha))
}

/// The wall clock in unix seconds; `FROYO_AGENT_NOW` overrides it (test-only hook, to
/// play a device that booted at 1970).
pub fn now() -> u64 {
    if let Some(t) = std::env::var("FROYO_AGENT_NOW")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return t;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(seq: u64, issued: u64, expires: u64) -> Vec<u8> {
        serde_json::to_vec(&Document {
            format: FORMAT.into(),
            sequence: seq,
            issued_at: issued,
            expires_at: expires,
            plan: ResolvedPlan {
                path: "test".into(),
                components: vec![],
                layers: vec![],
                from_document: false,
            },
        })
        .unwrap()
    }

    /// [`judge`], reduced to `Ok(Some(sequence))`, `Ok(None)` (the same) or the reason.
    fn verdict(bytes: &[u8], seen: &Seen, now: u64) -> Result<Option<u64>, &'static str> {
        let sha = froyo_runner::encoding::sha256_hex(bytes);
        match judge(serde_json::from_slice(bytes).unwrap(), sha, seen, now) {
            Ok(Verdict::Apply(d, _)) => Ok(Some(d.sequence)),
            Ok(Verdict::Same) => Ok(None),
            Err(r) => Err(r.reason),
        }
    }

    #[test]
    fn sequences_rise_and_a_replay_is_refused() {
        let d5 = doc(5, 1000, 9000);
        let seen = Seen {
            last: Some((5, froyo_runner::encoding::sha256_hex(&d5))),
            high_water: 1000,
        };
        assert_eq!(verdict(&d5, &seen, 2000), Ok(None));
        assert_eq!(verdict(&doc(4, 900, 9000), &seen, 2000), Err("replay"));
        assert_eq!(verdict(&doc(5, 1001, 9000), &seen, 2000), Err("replay"));
        assert_eq!(verdict(&doc(6, 1100, 9000), &seen, 2000), Ok(Some(6)));
    }

    #[test]
    fn a_clock_at_1970_does_not_expire_nor_unexpire() {
        let seen = Seen {
            last: None,
            high_water: 5000,
        };
        // Booted at 1970: the high-water mark stands in for the clock.
        assert_eq!(verdict(&doc(1, 4000, 6000), &seen, 0), Ok(Some(1)));
        assert_eq!(verdict(&doc(1, 1000, 4000), &seen, 0), Err("expired"));
        // A clock ahead of the expiry refuses.
        assert_eq!(verdict(&doc(1, 4000, 6000), &seen, 7000), Err("expired"));
    }

    #[test]
    fn an_unsigned_document_is_refused() {
        let err = check(&doc(1, 1, 2), "", &Trust::default(), &Seen::default(), 0).unwrap_err();
        assert_eq!(err.reason, "signature");
    }
}
