//! Artifacts: downloaded into `artifacts/<recipe>/<version>/.<file>.partial`, resumed
//! with `Range` after an interrupted transfer, checked against the recipe's sha256 (and
//! size, when given) end to end, and only then renamed to `<file>`. A file already there
//! with the right digest is not fetched again, which is what makes a rollback free.
//! An artifact with a `sig_uri` (or any artifact, under `--trust`) must also carry a
//! minisign signature by a trusted key, checked on the `.partial` before the rename and
//! again on a cached file (its signature is kept as `.<file>.minisig`, so a rollback
//! needs no network).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use froyo_runner::encoding::sha256_file;

use crate::resolve::{ArtifactSpec, ComponentSpec};
use crate::trust::{MAX_SIGNATURE_BYTES, Trust};

/// Why a fetch failed; `verify` marks a digest or size mismatch (a refused artifact,
/// counted in `/metrics`) as opposed to a transfer problem.
#[derive(Debug)]
pub struct FetchError {
    pub message: String,
    pub verify: bool,
}

impl FetchError {
    fn transfer(message: impl Into<String>) -> Self {
        FetchError {
            message: message.into(),
            verify: false,
        }
    }
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// The verified file was already there.
    Cached,
    /// Downloaded now; `resumed` when a partial file was continued.
    Downloaded { bytes: u64, resumed: bool },
}

const ATTEMPTS: u32 = 4;

/// The HTTP client for artifacts and probes.
pub fn http_agent(timeout: Option<Duration>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(timeout)
        .timeout_connect(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .max_redirects(5)
        .user_agent(concat!("froyo-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Refuses, before anything is downloaded, an artifact the trust policy cannot accept:
/// one without `sig_uri` when signatures are `required` (`--trust`, for a plan that
/// is not a signed document listing the artifact's digest), one with a `sig_uri` when
/// the agent trusts no key.
pub fn precheck(a: &ArtifactSpec, trust: &Trust, required: bool) -> Result<(), FetchError> {
    let message = match (&a.sig_uri, trust.required()) {
        (None, true) if !required => return Ok(()),
        (None, true) => {
            "the agent's trust policy (`--trust`) requires a signature, and the recipe gives no `sig_uri`"
        }
        (Some(_), false) => {
            "the recipe gives a `sig_uri`, and the agent trusts no signing key to check it with (start it with `--trust KEYS`)"
        }
        _ => return Ok(()),
    };
    Err(FetchError {
        message: message.into(),
        verify: true,
    })
}

/// Makes sure `dir/<file>` holds the artifact with the recipe's digest (and, when it
/// has to be signed, a valid signature).
pub fn ensure(
    a: &ArtifactSpec,
    dir: &Path,
    http: &ureq::Agent,
    trust: &Trust,
    required: bool,
) -> Result<Fetched, FetchError> {
    precheck(a, trust, required)?;
    let dest = dir.join(&a.file);
    if dest.is_file() {
        match sha256_file(&dest) {
            Ok(h) if h == a.sha256 => {
                signature(a, dir, &dest, http, trust)?;
                return Ok(Fetched::Cached);
            }
            _ => {
                let _ = std::fs::remove_file(&dest);
            }
        }
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| FetchError::transfer(format!("cannot create {}: {e}", dir.display())))?;
    let partial = dir.join(format!(".{}.partial", a.file));
    let mut resumed = false;
    let mut last_err = String::new();
    let mut complete = false;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(200 * (1 << attempt)));
        }
        let have = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if have > 0 {
            resumed = true;
        }
        match download(a, &partial, have, http) {
            Ok(()) => {
                complete = true;
                break;
            }
            Err(Step::Fatal(e)) => return Err(e),
            Err(Step::Retry(msg)) => {
                tracing::warn!(uri = %a.uri, "artifact download: {msg}; retrying");
                last_err = msg;
            }
        }
    }
    if !complete {
        return Err(FetchError::transfer(format!(
            "download failed after {ATTEMPTS} attempts: {last_err}"
        )));
    }
    let len = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    if let Some(size) = a.size
        && len != size
    {
        let _ = std::fs::remove_file(&partial);
        return Err(FetchError {
            message: format!("size is {len} bytes, the recipe says {size}"),
            verify: true,
        });
    }
    let got = sha256_file(&partial)
        .map_err(|e| FetchError::transfer(format!("cannot hash {}: {e}", partial.display())))?;
    if got != a.sha256 {
        let _ = std::fs::remove_file(&partial);
        return Err(FetchError {
            message: format!(
                "sha256 mismatch: the recipe says {}, the download is {got}",
                a.sha256
            ),
            verify: true,
        });
    }
    if let Err(e) = signature(a, dir, &partial, http, trust) {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, &dest)
        .map_err(|e| FetchError::transfer(format!("cannot rename into {}: {e}", dest.display())))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(Fetched::Downloaded {
        bytes: len,
        resumed,
    })
}

/// Checks the artifact's minisign signature (fetched from `sig_uri`, or the copy kept
/// from an earlier check) of `file`. Without `sig_uri` there is nothing to check
/// ([`precheck`] already refused that under `--trust`).
fn signature(
    a: &ArtifactSpec,
    dir: &Path,
    file: &Path,
    http: &ureq::Agent,
    trust: &Trust,
) -> Result<(), FetchError> {
    let Some(uri) = &a.sig_uri else {
        return Ok(());
    };
    let kept = dir.join(format!(".{}.minisig", a.file));
    let (mut text, mut fresh) = match std::fs::read_to_string(&kept) {
        Ok(t) => (t, false),
        Err(_) => (get_small(uri, &a.headers, http)?, true),
    };
    let mut verdict = trust.verify_file(file, &text);
    if verdict.is_err() && !fresh {
        // The kept copy may predate a change of keys: ask the publisher again.
        if let Ok(t) = get_small(uri, &a.headers, http) {
            (text, fresh) = (t, true);
            verdict = trust.verify_file(file, &text);
        }
    }
    match verdict {
        Ok(_) => {
            if fresh {
                let tmp = dir.join(format!(".{}.minisig.tmp", a.file));
                let _ = std::fs::write(&tmp, &text).and_then(|_| std::fs::rename(&tmp, &kept));
            }
            Ok(())
        }
        Err(why) => {
            let _ = std::fs::remove_file(&kept);
            Err(FetchError {
                message: format!("signature `{uri}`: {why}"),
                verify: true,
            })
        }
    }
}

/// A small text file (a signature) from `uri`, at most [`MAX_SIGNATURE_BYTES`].
pub fn get_small(
    uri: &str,
    headers: &std::collections::BTreeMap<String, String>,
    http: &ureq::Agent,
) -> Result<String, FetchError> {
    let mut bytes = Vec::new();
    if let Some(path) = uri.strip_prefix("file://") {
        File::open(path)
            .and_then(|f| f.take(MAX_SIGNATURE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| FetchError::transfer(format!("cannot read {path}: {e}")))?;
    } else {
        let mut req = http.get(uri);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req
            .call()
            .map_err(|e| FetchError::transfer(format!("cannot fetch `{uri}`: {e}")))?;
        if resp.status().as_u16() != 200 {
            return Err(FetchError::transfer(format!(
                "cannot fetch `{uri}`: HTTP {}",
                resp.status().as_u16()
            )));
        }
        resp.into_body()
            .as_reader()
            .take(MAX_SIGNATURE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| FetchError::transfer(format!("cannot fetch `{uri}`: {e}")))?;
    }
    if bytes.len() as u64 > MAX_SIGNATURE_BYTES {
        return Err(FetchError {
            message: format!("`{uri}` is larger than {MAX_SIGNATURE_BYTES} bytes: not a signature"),
            verify: true,
        });
    }
    String::from_utf8(bytes).map_err(|_| FetchError {
        message: format!("`{uri}` is not text: not a minisign signature"),
        verify: true,
    })
}

enum Step {
    Retry(String),
    Fatal(FetchError),
}

fn download(a: &ArtifactSpec, partial: &Path, have: u64, http: &ureq::Agent) -> Result<(), Step> {
    if let Some(path) = a.uri.strip_prefix("file://") {
        let mut src = File::open(path)
            .map_err(|e| Step::Fatal(FetchError::transfer(format!("cannot open {path}: {e}"))))?;
        let mut out = File::create(partial).map_err(|e| Step::Retry(e.to_string()))?;
        std::io::copy(&mut src, &mut out).map_err(|e| Step::Retry(e.to_string()))?;
        return out.sync_all().map_err(|e| Step::Retry(e.to_string()));
    }
    let mut req = http.get(&a.uri);
    for (k, v) in &a.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    let resp = req.call().map_err(|e| Step::Retry(e.to_string()))?;
    let status = resp.status().as_u16();
    let offset = match status {
        200 => 0,
        206 => {
            let start = resp
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if start != Some(have) {
                // A range we did not ask for: start over.
                let _ = std::fs::remove_file(partial);
                return Err(Step::Retry("the server answered another range".into()));
            }
            have
        }
        416 => {
            let _ = std::fs::remove_file(partial);
            return Err(Step::Retry("the server refused the resume range".into()));
        }
        s if (500..600).contains(&s) || s == 429 || s == 408 => {
            return Err(Step::Retry(format!("HTTP {s}")));
        }
        s => return Err(Step::Fatal(FetchError::transfer(format!("HTTP {s}")))),
    };
    let expected_len = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut out = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(partial)
        .map_err(|e| Step::Retry(e.to_string()))?;
    out.set_len(offset)
        .map_err(|e| Step::Retry(e.to_string()))?;
    out.seek(SeekFrom::Start(offset))
        .map_err(|e| Step::Retry(e.to_string()))?;
    let limit = a.size.unwrap_or(u64::MAX);
    let mut written = offset;
    let mut body = resp.into_body();
    let mut reader = body.as_reader();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = out.sync_all();
                return Err(Step::Retry(format!(
                    "transfer interrupted at byte {written}: {e}"
                )));
            }
        };
        written += n as u64;
        if written > limit {
            drop(out);
            let _ = std::fs::remove_file(partial);
            return Err(Step::Fatal(FetchError {
                message: format!("larger than the recipe's size of {limit} bytes"),
                verify: true,
            }));
        }
        out.write_all(&buf[..n])
            .map_err(|e| Step::Retry(e.to_string()))?;
    }
    out.sync_all().map_err(|e| Step::Retry(e.to_string()))?;
    if let Some(len) = expected_len
        && written != offset + len
    {
        return Err(Step::Retry(format!(
            "transfer ended at byte {written} of {}",
            offset + len
        )));
    }
    Ok(())
}

/// Copies each artifact into the component's work dir (as Keystone stages them) unless
/// a file of that name is already there.
pub fn stage(spec: &ComponentSpec, artifact_dir: &Path, work_dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(work_dir)?;
    for a in &spec.artifacts {
        let to = work_dir.join(&a.file);
        if !to.exists() {
            let tmp = work_dir.join(format!(".{}.staging", a.file));
            std::fs::copy(artifact_dir.join(&a.file), &tmp)?;
            std::fs::rename(&tmp, &to)?;
        }
    }
    Ok(())
}
