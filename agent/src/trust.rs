//! Trust: the minisign (Ed25519) public keys given with `serve --trust KEYS`, and the
//! check of detached minisign signatures against them — of artifacts (`sig_uri`) and of
//! the desired-state documents of pull mode. With `--trust`, every artifact must carry a
//! signature by one of the keys; without it, an artifact that names a `sig_uri` cannot
//! be checked and is refused (a signature nobody checks is no protection). Nothing here
//! looks at the wall clock: a device that boots at 1970 verifies the same.

use std::path::{Path, PathBuf};

use minisign_verify::{PublicKey, Signature};

use crate::error::{AgentError, Result};

/// The largest signature file accepted (a minisign signature is ~300 bytes).
pub const MAX_SIGNATURE_BYTES: u64 = 8 * 1024;

/// The keys the agent trusts; empty when started without `--trust`.
#[derive(Clone, Default)]
pub struct Trust {
    keys: Vec<PublicKey>,
    /// The `--trust` file, for messages.
    pub source: Option<PathBuf>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("keys", &self.keys.len())
            .field("source", &self.source)
            .finish()
    }
}

impl Trust {
    /// Whether every artifact (and every pulled document) must be signed.
    pub fn required(&self) -> bool {
        !self.keys.is_empty()
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Reads a key file: `minisign.pub` files concatenated, or bare base64 keys one per
    /// line; `untrusted comment:` lines, `#` comments and blank lines are skipped.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| AgentError::io(path, e))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with("untrusted comment:") {
                continue;
            }
            let key = PublicKey::from_base64(l).map_err(|e| AgentError::Format {
                file: path.to_path_buf(),
                line: i + 1,
                column: line.len() - line.trim_start().len() + 1,
                message: format!("not a minisign public key: {e}"),
                help: "give the second line of a `minisign.pub` file (base64, starting with `RW`), one key per line".into(),
            })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(AgentError::Format {
                file: path.to_path_buf(),
                line: 1,
                column: 1,
                message: "no public key in the trust file".into(),
                help: "`minisign -G` writes a key pair; put the public key (`minisign.pub`) here"
                    .into(),
            });
        }
        Ok(Trust {
            keys,
            source: Some(path.to_path_buf()),
        })
    }

    /// Checks a detached minisign signature (`sig_text`) of the file at `path` against
    /// the trusted keys; `Ok` with the signature's trusted comment. Only prehashed
    /// signatures (minisign's default since 0.8) are accepted: the file is streamed.
    pub fn verify_file(&self, path: &Path, sig_text: &str) -> std::result::Result<String, String> {
        let sig = self.decode(sig_text)?;
        let mut last = String::new();
        for key in &self.keys {
            let mut v = match key.verify_stream(&sig) {
                Ok(v) => v,
                Err(minisign_verify::Error::UnexpectedKeyId) => continue,
                Err(minisign_verify::Error::UnsupportedLegacyMode) => {
                    return Err(
                        "the signature is a legacy (non-prehashed) minisign signature; sign with minisign ≥ 0.8 (prehashed, the default)".into(),
                    );
                }
                Err(e) => return Err(e.to_string()),
            };
            let mut f = std::fs::File::open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = std::io::Read::read(&mut f, &mut buf)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                if n == 0 {
                    break;
                }
                v.update(&buf[..n]);
            }
            match v.finalize() {
                Ok(()) => return Ok(sig.trusted_comment().to_owned()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(self.no_key(last))
    }

    /// [`Trust::verify_file`] for bytes in memory (a desired-state document).
    pub fn verify_bytes(
        &self,
        bytes: &[u8],
        sig_text: &str,
    ) -> std::result::Result<String, String> {
        let sig = self.decode(sig_text)?;
        let mut last = String::new();
        for key in &self.keys {
            match key.verify(bytes, &sig, false) {
                Ok(()) => return Ok(sig.trusted_comment().to_owned()),
                Err(minisign_verify::Error::UnexpectedKeyId) => continue,
                Err(e) => last = e.to_string(),
            }
        }
        Err(self.no_key(last))
    }

    fn decode(&self, sig_text: &str) -> std::result::Result<Signature, String> {
        if self.keys.is_empty() {
            return Err("the agent trusts no signing key (start it with `--trust KEYS`)".into());
        }
        Signature::decode(sig_text).map_err(|e| format!("not a minisign signature: {e}"))
    }

    fn no_key(&self, last: String) -> String {
        if last.is_empty() {
            format!(
                "signed by none of the {} trusted key(s) of {}",
                self.keys.len(),
                self.source
                    .as_ref()
                    .map_or("--trust".into(), |p| p.display().to_string())
            )
        } else {
            format!("bad signature: {last}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A key pair and a signature made with the minisign CLI (`minisign -G -W`,
    // `minisign -S -m`), from minisign-verify's own test vectors.
    const PK: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
    const SIG: &str = "untrusted comment: signature from minisign secret key
RUQf6LRCGA9i559r3g7V1qNyJDApGip8MfqcadIgT9CuhV3EMhHoN1mGTkUidF/z7SrlQgXdy8ofjb7bNJJylDOocrCo8KLzZwo=
trusted comment: timestamp:1633700835\tfile:test\tprehashed
wLMDjy9FLAuxZ3q4NlEvkgtyhrr0gtTu6KC4KBJdITbbOeAi1zBIYo0v4iTgt8jJpIidRJnp94ABQkJAgAooBQ==
";

    #[test]
    fn verifies_a_minisign_signature_and_refuses_other_bytes() {
        let t = Trust::parse(Path::new("keys"), &format!("# ops\n{PK}\n")).unwrap();
        assert!(t.required());
        assert!(t.verify_bytes(b"test", SIG).unwrap().contains("prehashed"));
        assert!(
            t.verify_bytes(b"tesT", SIG)
                .unwrap_err()
                .contains("bad signature")
        );
    }

    #[test]
    fn a_bad_key_line_is_reported_at_its_line() {
        let e = Trust::parse(Path::new("keys"), &format!("{PK}\n  nope\n")).unwrap_err();
        assert_eq!(e.code(), "E-AGENT-FORMAT");
        assert!(e.to_string().starts_with("keys:2:3:"), "{e}");
    }

    #[test]
    fn without_keys_nothing_verifies() {
        let t = Trust::default();
        assert!(!t.required());
        assert!(
            t.verify_bytes(b"test", SIG)
                .unwrap_err()
                .contains("--trust")
        );
    }
}
