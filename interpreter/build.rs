//! Embeds the bundled stdlib (`stdlib/*.star`) and the providers' manifests and CUE schemas
//! (`providers/*/manifest.toml`, `providers/*/schema.cue`) into the `froyo` binary, so a
//! fresh machine needs nothing next to it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    v.sort();
    v
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let stdlib = root.join("stdlib");
    let providers = root.join("providers");
    println!("cargo:rerun-if-changed={}", stdlib.display());
    println!("cargo:rerun-if-changed={}", providers.display());

    let mut out = String::new();
    out.push_str("/// `(module name, source)` of every bundled stdlib module.\n");
    out.push_str("pub static STDLIB: &[(&str, &str)] = &[\n");
    for path in sorted_entries(&stdlib) {
        if path.extension().is_some_and(|e| e == "star") {
            println!("cargo:rerun-if-changed={}", path.display());
            let name = path.file_name().unwrap().to_string_lossy();
            writeln!(
                out,
                "    ({name:?}, include_str!({:?})),",
                path.display().to_string()
            )
            .unwrap();
        }
    }
    out.push_str("];\n\n");
    out.push_str(
        "/// `(provider directory, manifest.toml, schema.cue)` of every built-in provider.\n",
    );
    out.push_str("pub static PROVIDERS: &[(&str, &str, &str)] = &[\n");
    for dir in sorted_entries(&providers) {
        let manifest = dir.join("manifest.toml");
        let schema = dir.join("schema.cue");
        if manifest.is_file() && schema.is_file() {
            println!("cargo:rerun-if-changed={}", manifest.display());
            println!("cargo:rerun-if-changed={}", schema.display());
            let name = dir.file_name().unwrap().to_string_lossy();
            writeln!(
                out,
                "    ({name:?}, include_str!({:?}), include_str!({:?})),",
                manifest.display().to_string(),
                schema.display().to_string()
            )
            .unwrap();
        }
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("out dir")).join("bundled.rs");
    std::fs::write(dest, out).expect("write bundled.rs");
}
