//! The project's encrypted secret store: `secrets.age` (or another file under the project
//! root), a JSON object `{name: value}` encrypted with age to the project's identity in
//! `.froyo/keys/age.key`. Decrypted only in memory, only when a value is needed.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

/// The store `froyo secret` manages unless told otherwise.
pub const DEFAULT_FILE: &str = "secrets.age";

/// Where the project's age identity lives.
pub fn identity_path(root: &Path) -> PathBuf {
    root.join(".froyo").join("keys").join("age.key")
}

/// A secret's name: letters, digits, `_`, `-`, `.` (as `secret("file://…#NAME")` takes).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// The project's identity; refused when other users could read it.
pub fn identity(root: &Path) -> Result<age::x25519::Identity, String> {
    use std::os::unix::fs::PermissionsExt;
    let path = identity_path(root);
    let meta = std::fs::metadata(&path).map_err(|e| {
        format!(
            "cannot read the project's age identity `.froyo/keys/age.key` ({e}); `froyo init` creates it"
        )
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "`.froyo/keys/age.key` is readable by other users (mode {:o}); `chmod 600` it",
            meta.permissions().mode() & 0o777
        ));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read `.froyo/keys/age.key`: {e}"))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or("`.froyo/keys/age.key` holds no identity")?;
    age::x25519::Identity::from_str(line)
        .map_err(|e| format!("`.froyo/keys/age.key` is not an age identity: {e}"))
}

/// `file` (relative to the project root) as a path inside the root; anything that could
/// leave it (absolute paths, `..`) is refused.
pub fn store_path(root: &Path, file: &str) -> Result<PathBuf, String> {
    let rel = Path::new(file);
    let inside = !file.is_empty()
        && rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !inside {
        return Err(format!(
            "secret store `{file}` must be a relative path inside the project (no `..`, not absolute)"
        ));
    }
    Ok(root.join(rel))
}

/// The decrypted store (empty when the file does not exist yet).
pub fn load(root: &Path, file: &str) -> Result<BTreeMap<String, String>, String> {
    let path = store_path(root, file)?;
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("cannot read `{file}`: {e}")),
    };
    let id = identity(root)?;
    let plain = age::decrypt(&id, &bytes)
        .map_err(|e| format!("cannot decrypt `{file}` with the project's identity: {e}"))?;
    serde_json::from_slice(&plain)
        .map_err(|_| format!("`{file}` does not hold a froyo secret store"))
}

/// Encrypts `secrets` to the project's identity and replaces `file` atomically (0600).
pub fn save(root: &Path, file: &str, secrets: &BTreeMap<String, String>) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = store_path(root, file)?;
    let id = identity(root)?;
    let plain = serde_json::to_vec(secrets).map_err(|e| e.to_string())?;
    let cipher =
        age::encrypt(&id.to_public(), &plain).map_err(|e| format!("cannot encrypt: {e}"))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&cipher).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write `{file}`: {e}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_paths_stay_in_the_project() {
        let root = Path::new("/p");
        assert_eq!(
            store_path(root, "secrets.age").unwrap(),
            Path::new("/p/secrets.age")
        );
        assert_eq!(
            store_path(root, "env/prod.age").unwrap(),
            Path::new("/p/env/prod.age")
        );
        for bad in ["", "/etc/shadow", "../x.age", "a/../../x.age"] {
            assert!(store_path(root, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn round_trip_through_age_and_refuses_a_readable_identity() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join(".froyo/keys");
        std::fs::create_dir_all(&keys).unwrap();
        let id = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        let key = keys.join("age.key");
        std::fs::write(
            &key,
            format!(
                "# public key: {}\n{}\n",
                id.to_public(),
                id.to_string().expose_secret()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut s = BTreeMap::new();
        s.insert("db".to_owned(), "hunter2-very-secret".to_owned());
        save(dir.path(), DEFAULT_FILE, &s).unwrap();
        let raw = std::fs::read(dir.path().join(DEFAULT_FILE)).unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("hunter2"));
        assert_eq!(load(dir.path(), DEFAULT_FILE).unwrap(), s);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            load(dir.path(), DEFAULT_FILE)
                .unwrap_err()
                .contains("readable by other users")
        );
    }
}
