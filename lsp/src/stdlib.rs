//! The bundled stdlib served as real files, so that go-to-definition into
//! `@stdlib//linux.star` opens in any editor (not only those that speak `starlark:` URIs).

use std::path::{Path, PathBuf};

use crate::Error;

/// The bundled stdlib modules and the directory they are written to.
#[derive(Debug, Clone)]
pub(crate) struct Stdlib {
    pub dir: PathBuf,
    /// `(module file name, source)`.
    pub modules: Vec<(String, String)>,
}

impl Stdlib {
    /// Writes `modules` under `$XDG_CACHE_HOME/froyo/stdlib/<version>-<hash>/` (or
    /// `~/.cache/…`), leaving files that already hold the same text alone. The hash of the
    /// sources is part of the name, so two builds with the same version never share files.
    pub fn materialize(version: &str, modules: Vec<(String, String)>) -> Result<Stdlib, Error> {
        Stdlib::materialize_in(&cache_root(), version, modules)
    }

    fn materialize_in(
        root: &Path,
        version: &str,
        modules: Vec<(String, String)>,
    ) -> Result<Stdlib, Error> {
        let dir = root.join("stdlib").join(format!(
            "{version}-{:016x}",
            fnv1a(
                modules
                    .iter()
                    .flat_map(|(n, s)| [n.as_bytes(), s.as_bytes()])
            )
        ));
        std::fs::create_dir_all(&dir).map_err(|source| Error::Cache {
            path: dir.clone(),
            source,
        })?;
        for (name, source) in &modules {
            let path = dir.join(name);
            if std::fs::read_to_string(&path).is_ok_and(|old| old == *source) {
                continue;
            }
            write_readonly(&path, source).map_err(|source| Error::Cache {
                path: path.clone(),
                source,
            })?;
        }
        Ok(Stdlib { dir, modules })
    }

    /// The file that holds `@stdlib//NAME`.
    pub fn path_of(&self, load_path: &str) -> Option<PathBuf> {
        let name = load_path.strip_prefix("@stdlib//")?;
        self.modules
            .iter()
            .any(|(n, _)| n == name)
            .then(|| self.dir.join(name))
    }

    /// `@stdlib//NAME` when `path` is one of the cached modules.
    pub fn load_path_of(&self, path: &Path) -> Option<String> {
        let name = path.strip_prefix(&self.dir).ok()?.to_str()?;
        self.modules
            .iter()
            .any(|(n, _)| n == name)
            .then(|| format!("@stdlib//{name}"))
    }
}

fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("froyo");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".cache").join("froyo");
    }
    std::env::temp_dir().join("froyo-cache")
}

/// The cached copy is read-only: an edit there would change nothing the interpreter runs.
/// It is written next to its place and renamed into it, so a second server starting at
/// the same time never sees a half-written file.
fn write_readonly(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    let mut perms = std::fs::metadata(&tmp)?.permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&tmp, perms)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn fnv1a<'a>(parts: impl Iterator<Item = &'a [u8]>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0u8]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn materialize_writes_readonly_files_and_maps_paths_both_ways() {
        let root = std::env::temp_dir().join(format!("froyo-lsp-stdlib-{}", std::process::id()));
        let modules = || vec![("linux.star".to_owned(), "def f():\n    pass\n".to_owned())];
        let lib = Stdlib::materialize_in(&root, "1.0", modules()).unwrap();
        // A second server with the same stdlib reuses the files.
        let again = Stdlib::materialize_in(&root, "1.0", modules()).unwrap();
        assert_eq!(lib.dir, again.dir);
        assert!(lib.dir.starts_with(root.join("stdlib")));
        let file = lib.dir.join("linux.star");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), modules()[0].1);
        assert!(std::fs::metadata(&file).unwrap().permissions().readonly());
        // Another stdlib text gets another directory.
        let other = vec![("linux.star".to_owned(), "X = 1\n".to_owned())];
        assert_ne!(
            Stdlib::materialize_in(&root, "1.0", other).unwrap().dir,
            lib.dir
        );

        assert_eq!(lib.path_of("@stdlib//linux.star"), Some(file.clone()));
        assert_eq!(lib.path_of("@stdlib//nope.star"), None);
        assert_eq!(
            lib.load_path_of(&file).as_deref(),
            Some("@stdlib//linux.star")
        );
        std::fs::remove_dir_all(&root).ok();
    }
}
