//! The runtime layout under `--data-dir`, Keystone's relative layout so install scripts
//! written for Keystone (`cp ../../../artifacts/<name>/<version>/<file> ./app`) run
//! unchanged: `components/<recipe>/<version>/` is a component's work dir,
//! `artifacts/<recipe>/<version>/<file>` its verified downloads. Ours besides:
//! `logs/<component>.log` (capped, rotated), `state.db` (the journal), `api.token`.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    /// The layout rooted at `root`, made absolute.
    pub fn new(root: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let root = std::fs::canonicalize(root)?;
        for d in ["components", "artifacts", "logs"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        Ok(Layout { root })
    }

    pub fn work_dir(&self, recipe: &str, version: &str) -> PathBuf {
        self.root.join("components").join(recipe).join(version)
    }

    pub fn artifact_dir(&self, recipe: &str, version: &str) -> PathBuf {
        self.root.join("artifacts").join(recipe).join(version)
    }

    pub fn log(&self, component: &str) -> PathBuf {
        self.root.join("logs").join(format!("{component}.log"))
    }

    pub fn journal(&self) -> PathBuf {
        self.root.join("state.db")
    }

    pub fn token(&self) -> PathBuf {
        self.root.join("api.token")
    }
}
