//! `froyo agent publish`: the controller side of pull mode. Resolves a Keystone plan
//! (every recipe read and checked as an apply would), fetches every artifact once to
//! check its sha256 and record its size, and writes the desired-state document
//! ([`crate::document`]) with a rising sequence and an expiry, signed with a minisign
//! secret key (`OUT` and `OUT.minisig`). Devices trust the document, and through it
//! the artifact digests it lists.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::Digest;

use crate::document::{self, Document, FORMAT};
use crate::error::{AgentError, Result};
use crate::resolve::{self, ArtifactSpec};

pub struct PublishArgs {
    pub plan: PathBuf,
    pub key: PathBuf,
    pub out: PathBuf,
    pub sequence: Option<u64>,
    pub expires_in: Duration,
}

/// What was written.
pub struct Published {
    pub sequence: u64,
    pub expires_at: u64,
    pub components: usize,
    pub artifacts: usize,
}

pub fn publish(a: &PublishArgs, cwd: &Path) -> Result<Published> {
    if a.plan.extension().is_some_and(|e| e == "star") {
        return Err(AgentError::Unsupported {
            file: a.plan.clone(),
            line: 1,
            column: 1,
            message: "publishing a `.star` playbook (`component()`) is not supported yet".into(),
            help:
                "write the plan in Keystone's TOML (`[[components]] name, recipe`) and publish that"
                    .into(),
        });
    }
    let key = secret_key(&a.key)?;
    let mut plan = resolve::load(&a.plan, cwd)?;
    let http = crate::fetch::http_agent(Some(Duration::from_secs(600)));
    let mut artifacts = 0;
    for c in &mut plan.components {
        for art in &mut c.artifacts {
            if let Some(h) = art.headers.keys().find(|k| resolve::is_secret_header(k)) {
                return Err(AgentError::Unsupported {
                    file: PathBuf::from(&c.recipe_path),
                    line: 1,
                    column: 1,
                    message: format!(
                        "artifact `{}` of {} needs an `{h}` header (`headers` or `github_token`): a published document would carry that secret to every device",
                        art.uri, c.name
                    ),
                    help: "serve the artifact without credentials to the devices (the document's digest protects it), then publish".into(),
                });
            }
            let size = measure(art, &http).map_err(|message| AgentError::Artifact {
                component: c.name.clone(),
                uri: art.uri.clone(),
                message,
                help: "the publisher checks every artifact before signing: fix the recipe's sha256/size or the file".into(),
            })?;
            art.size = Some(size);
            artifacts += 1;
        }
    }
    let issued_at = document::now();
    let expires_at = issued_at.saturating_add(a.expires_in.as_secs());
    let previous = previous_sequence(&a.out);
    let sequence = match a.sequence {
        Some(s) => {
            if let Some(p) = previous
                && s <= p
            {
                return Err(AgentError::Usage(format!(
                    "--sequence {s} is not above {p}, the sequence of the document already at `{}`: devices would refuse it as a replay",
                    a.out.display()
                )));
            }
            s
        }
        // Rising across publishes without a counter to keep: above the last one, and
        // at least the time, so a lost output file does not rewind it.
        None => previous.map_or(0, |p| p + 1).max(issued_at),
    };
    let components = plan.components.len();
    let doc = Document {
        format: FORMAT.into(),
        sequence,
        issued_at,
        expires_at,
        plan,
    };
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    bytes.push(b'\n');
    let trusted = format!("froyo-agent desired state, sequence {sequence}");
    let sig = minisign::sign(None, &key, &bytes[..], Some(&trusted), None)
        .map_err(|e| AgentError::Usage(format!("cannot sign with `{}`: {e}", a.key.display())))?;
    let sig_path = PathBuf::from(format!("{}.minisig", a.out.display()));
    write_atomic(&sig_path, sig.to_string().as_bytes())?;
    write_atomic(&a.out, &bytes)?;
    Ok(Published {
        sequence,
        expires_at,
        components,
        artifacts,
    })
}

/// A minisign secret key: unencrypted (`minisign -G -W`), or encrypted with the
/// password in `FROYO_SIGNING_PASSWORD`.
fn secret_key(path: &Path) -> Result<minisign::SecretKey> {
    let text = std::fs::read_to_string(path).map_err(|e| AgentError::io(path, e))?;
    let bad = |m: String| AgentError::Usage(format!("`{}`: {m}", path.display()));
    if let Ok(pw) = std::env::var("FROYO_SIGNING_PASSWORD") {
        return minisign::SecretKeyBox::from_string(&text)
            .and_then(|b| b.into_secret_key(Some(pw)))
            .map_err(|e| bad(e.to_string()));
    }
    // Unencrypted: read the key's bytes as they are. (minisign-rs checks a checksum
    // over them that the minisign 0.11 CLI's `-W` keys do not match; a wrong key still
    // fails, as its signatures do not verify on the devices.)
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with("untrusted comment:"))
        .ok_or_else(|| bad("no key in the file".into()))?;
    let bytes = froyo_runner::encoding::base64_decode(line.trim())
        .map_err(|e| bad(format!("not a minisign secret key: {e}")))?;
    if bytes.len() < 4 || bytes[..2] != *b"Ed" {
        return Err(bad("not a minisign secret key".into()));
    }
    if bytes[2..4] != [0, 0] {
        return Err(bad(
            "the key is encrypted: give its password in FROYO_SIGNING_PASSWORD".into(),
        ));
    }
    minisign::SecretKey::from_bytes(&bytes).map_err(|e| bad(e.to_string()))
}

/// Downloads (or reads) an artifact once, checks its sha256 (and size when the recipe
/// gives one), and returns its size.
fn measure(a: &ArtifactSpec, http: &ureq::Agent) -> std::result::Result<u64, String> {
    let mut reader: Box<dyn Read> = if let Some(path) = a.uri.strip_prefix("file://") {
        Box::new(std::fs::File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?)
    } else {
        let resp = http.get(&a.uri).call().map_err(|e| e.to_string())?;
        if resp.status().as_u16() != 200 {
            return Err(format!("HTTP {}", resp.status().as_u16()));
        }
        Box::new(resp.into_body().into_reader())
    };
    let mut h = sha2::Sha256::new();
    let mut len = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if got != a.sha256 {
        return Err(format!(
            "sha256 mismatch: the recipe says {}, the file is {got}",
            a.sha256
        ));
    }
    if let Some(s) = a.size
        && s != len
    {
        return Err(format!("size is {len} bytes, the recipe says {s}"));
    }
    Ok(len)
}

/// The sequence of a document already at `out`, if any.
fn previous_sequence(out: &Path) -> Option<u64> {
    let bytes = std::fs::read(out).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("sequence")?.as_u64()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(d) = path.parent()
        && !d.as_os_str().is_empty()
    {
        std::fs::create_dir_all(d).map_err(|e| AgentError::io(d, e))?;
    }
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| AgentError::io(path, e))
}
