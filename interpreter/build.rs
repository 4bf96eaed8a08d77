//! Embeds the bundled stdlib (`stdlib/*.star`), the bundled Rego policies (`policies/`),
//! the providers' manifests and CUE schemas
//! (`providers/*/manifest.toml`, `providers/*/schema.cue`), and the static micro-runner
//! and edge agent (nested musl builds) into the `froyo` binary, so a fresh machine needs
//! nothing next to it; the built-in providers also as native code, precompiled with the
//! run-time engine configuration, so no run compiles them.

#[path = "src/provider_host/engine_config.rs"]
mod engine_config;

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
    // The bundled Rego policies (their `_test.rego` files are for `froyo policy test`).
    let policies = root.join("policies");
    println!("cargo:rerun-if-changed={}", policies.display());
    out.push_str("/// `(file name, source)` of every bundled Rego policy.\n");
    out.push_str("pub static POLICIES: &[(&str, &str)] = &[\n");
    for path in sorted_entries(&policies) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".rego") && !name.ends_with("_test.rego") {
            println!("cargo:rerun-if-changed={}", path.display());
            writeln!(
                out,
                "    ({name:?}, include_str!({:?})),",
                path.display().to_string()
            )
            .unwrap();
        }
    }
    out.push_str("];\n\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("out dir"));
    // A fuzz build (`cargo fuzz`, `--cfg fuzzing`, see fuzz/README.md) exercises parsers
    // and evaluation only: it embeds no runner, agent or provider binaries, so it needs
    // neither the nested builds nor their extra targets on the nightly toolchain.
    let fuzzing = std::env::var_os("CARGO_CFG_FUZZING").is_some();
    if !fuzzing {
        ensure_targets(&root);
    }
    let wasm_dir = if fuzzing {
        println!("cargo:rustc-env=FROYO_GUEST_DIR=");
        None
    } else {
        build_providers(&root, &out_dir)
    };
    out.push_str(
        "/// `(provider directory, manifest.toml, schema.cue, component)` of every built-in\n",
    );
    out.push_str("/// provider; the component is empty for providers without a guest crate yet.\n");
    out.push_str("pub static PROVIDERS: &[(&str, &str, &str, &[u8])] = &[\n");
    let mut components = Vec::new();
    for dir in sorted_entries(&providers) {
        let manifest = dir.join("manifest.toml");
        let schema = dir.join("schema.cue");
        if manifest.is_file() && schema.is_file() {
            println!("cargo:rerun-if-changed={}", manifest.display());
            println!("cargo:rerun-if-changed={}", schema.display());
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let wasm = wasm_dir
                .as_ref()
                .map(|w| w.join(guest_artifact(&name)))
                .filter(|w| dir.join("Cargo.toml").is_file() && w.is_file());
            let wasm_expr = match wasm {
                Some(w) => {
                    components.push((name.clone(), w.clone()));
                    format!("include_bytes!({:?})", w.display().to_string())
                }
                None => "&[]".to_owned(),
            };
            writeln!(
                out,
                "    ({name:?}, include_str!({:?}), include_str!({:?}), {wasm_expr}),",
                manifest.display().to_string(),
                schema.display().to_string()
            )
            .unwrap();
        }
    }
    out.push_str("];\n");
    let (precompiled, engine) = precompile(&components, &out_dir);
    out.push_str(
        "\n/// `(provider directory, native code)` of every built-in provider with a component,\n",
    );
    out.push_str("/// made by `precompile_component` with `provider_host/engine_config.rs`.\n");
    out.push_str("pub static PRECOMPILED: &[(&str, &[u8])] = &[\n");
    for (name, path) in precompiled {
        writeln!(
            out,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    out.push_str("/// wasmtime's compatibility hash of the engine that made [`PRECOMPILED`].\n");
    writeln!(out, "pub const PRECOMPILED_ENGINE: u64 = {engine};").unwrap();
    let (runner, sha) = if fuzzing {
        empty_binary(&out_dir, "froyo-runner")
    } else {
        build_runner(&root, &out_dir)
    };
    writeln!(out, "\n/// The static micro-runner shipped to targets.").unwrap();
    writeln!(
        out,
        "pub static RUNNER: &[u8] = include_bytes!({:?});",
        runner.display().to_string()
    )
    .unwrap();
    writeln!(
        out,
        "/// sha256 of [`RUNNER`], checked on the target before it runs."
    )
    .unwrap();
    writeln!(out, "pub const RUNNER_SHA256: &str = {sha:?};").unwrap();
    let (agent, agent_sha) = if fuzzing {
        empty_binary(&out_dir, "froyo-agent")
    } else {
        build_agent(&root, &out_dir)
    };
    writeln!(
        out,
        "\n/// The static edge agent (`froyo agent`), extracted and exec'd."
    )
    .unwrap();
    writeln!(
        out,
        "pub static AGENT: &[u8] = include_bytes!({:?});",
        agent.display().to_string()
    )
    .unwrap();
    writeln!(out, "/// sha256 of [`AGENT`], checked after extraction.").unwrap();
    writeln!(out, "pub const AGENT_SHA256: &str = {agent_sha:?};").unwrap();
    let dest = out_dir.join("bundled.rs");
    std::fs::write(dest, out).expect("write bundled.rs");
}

/// Compiles each component to native code with the engine configuration the provider host
/// uses at run time. A provider that does not compile fails the build: `froyo` never
/// ships a built-in provider that would be compiled on a user's machine. Returns the
/// `.cwasm` files and the engine's compatibility hash. Unchanged components are not
/// compiled again (the file name holds the component's sha256 and that hash).
fn precompile(components: &[(String, PathBuf)], out_dir: &Path) -> (Vec<(String, PathBuf)>, u64) {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    println!(
        "cargo:rerun-if-changed={}",
        root.join("src/provider_host/engine_config.rs").display()
    );
    let engine = wasmtime::Engine::new(&engine_config::engine_config())
        .unwrap_or_else(|e| panic!("cannot start wasmtime to precompile the providers: {e}"));
    let hash = engine_config::compatibility_hash(&engine);
    let dir = out_dir.join("precompiled");
    std::fs::create_dir_all(&dir).expect("create the precompiled directory");
    let mut out = Vec::new();
    for (name, wasm) in components {
        let bytes = std::fs::read(wasm).unwrap_or_else(|e| panic!("read {}: {e}", wasm.display()));
        use sha2::Digest;
        let sha: String = sha2::Sha256::digest(&bytes)
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect();
        let path = dir.join(format!("{name}-{sha}-{hash:016x}.cwasm"));
        if !path.is_file() {
            let code = engine.precompile_component(&bytes).unwrap_or_else(|e| {
                panic!("precompiling the built-in provider {name} failed: {e:#}")
            });
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, code).expect("write a precompiled provider");
            std::fs::rename(&tmp, &path).expect("rename a precompiled provider");
        }
        out.push((name.clone(), path));
    }
    (out, hash)
}

/// The nested builds need the extra targets of `rust-toolchain.toml`. cargo normally checks
/// them in its first second through the workspace wrapper (`.cargo/check-targets`);
/// commands that replace that wrapper (`cargo clippy`) get the same check here.
fn ensure_targets(root: &Path) {
    let script = root.join(".cargo/check-targets");
    println!("cargo:rerun-if-changed={}", script.display());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("--ensure")
        .arg(&rustc)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        std::process::exit(1);
    }
    if let Some(added) = stdout.lines().find_map(|l| l.strip_prefix("added: ")) {
        println!("cargo:warning=added the missing Rust target(s) {added} with rustup");
    }
}

const RUNNER_TARGET: &str = "x86_64-unknown-linux-musl";

/// Builds `froyo-runner` for the musl target with the size profile; returns the binary and
/// its sha256.
fn build_runner(root: &Path, out_dir: &Path) -> (PathBuf, String) {
    for p in ["runner/src", "runner/Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    let target_dir = out_dir.join("runner-target");
    nested_cargo(
        &[
            "--profile",
            "runner",
            "-p",
            "froyo-runner",
            "--bin",
            "froyo-runner",
            "--target",
            RUNNER_TARGET,
        ],
        &root.join("Cargo.toml"),
        &target_dir,
        RUNNER_TARGET,
    );
    let bin = target_dir
        .join(RUNNER_TARGET)
        .join("runner")
        .join("froyo-runner");
    with_sha256(bin)
}

/// An empty stand-in for an embedded binary in a fuzz build (never run there).
fn empty_binary(out_dir: &Path, name: &str) -> (PathBuf, String) {
    let path = out_dir.join(format!("{name}.fuzz-empty"));
    std::fs::write(&path, b"").unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    with_sha256(path)
}

/// `bin` and the sha256 of its bytes (what `froyo` checks before it runs an embedded binary).
fn with_sha256(bin: PathBuf) -> (PathBuf, String) {
    let bytes = std::fs::read(&bin).unwrap_or_else(|e| panic!("read {}: {e}", bin.display()));
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (bin, sha)
}

/// Builds `froyo-agent` static for musl with the agent profile; returns the binary and
/// its sha256. SQLite (bundled) is compiled by the host C compiler when no musl-gcc is
/// installed: without large-file macros (`SQLITE_DISABLE_LFS`; off_t is 64-bit on
/// x86_64 anyway) it needs none of glibc's `*64` symbols, which musl does not export.
fn build_agent(root: &Path, out_dir: &Path) -> (PathBuf, String) {
    for p in ["agent/src", "agent/Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    let target_dir = out_dir.join("agent-target");
    nested_cargo_env(
        &[
            "--profile",
            "agent",
            "-p",
            "froyo-agent",
            "--bin",
            "froyo-agent",
            "--target",
            RUNNER_TARGET,
        ],
        &root.join("Cargo.toml"),
        &target_dir,
        RUNNER_TARGET,
        &agent_c_env(),
    );
    let bin = target_dir
        .join(RUNNER_TARGET)
        .join("agent")
        .join("froyo-agent");
    with_sha256(bin)
}

/// The environment of the agent's nested build: SQLite without large-file macros, and
/// the host C compiler for the musl target when no musl cross compiler is installed (cc
/// does not fall back by itself).
fn agent_c_env() -> Vec<(&'static str, String)> {
    let mut env = vec![("LIBSQLITE3_FLAGS", "-DSQLITE_DISABLE_LFS".to_owned())];
    let on_path = |tool: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
    };
    let set = std::env::var_os("CC_x86_64_unknown_linux_musl").is_some()
        || std::env::var_os("TARGET_CC").is_some();
    if !set && !on_path("x86_64-linux-musl-gcc") && !on_path("musl-gcc") {
        env.push(("CC_x86_64_unknown_linux_musl", "cc".to_owned()));
    }
    env
}

/// `linux.file` → `froyo_provider_linux_file.wasm` (the guest crate's cdylib).
fn guest_artifact(dir_name: &str) -> String {
    format!("froyo_provider_{}.wasm", dir_name.replace(['.', '-'], "_"))
}

/// Builds the providers' own workspace (`providers/`: guests for wasm32-wasip2). Returns
/// the directory holding the `.wasm` components, or `None` when there is no guest
/// workspace. Test guests land there too; tests find them through `FROYO_GUEST_DIR`.
fn build_providers(root: &Path, out_dir: &Path) -> Option<PathBuf> {
    let manifest = root.join("providers/Cargo.toml");
    println!("cargo:rerun-if-changed={}", manifest.display());
    if !manifest.is_file() {
        println!("cargo:rustc-env=FROYO_GUEST_DIR=");
        return None;
    }
    for p in [
        "providers/Cargo.lock",
        "providers/wit",
        "providers/sdk",
        "providers/test-guests",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    for dir in sorted_entries(&root.join("providers")) {
        if dir.join("Cargo.toml").is_file() {
            println!("cargo:rerun-if-changed={}", dir.join("src").display());
            println!(
                "cargo:rerun-if-changed={}",
                dir.join("Cargo.toml").display()
            );
        }
    }
    let target_dir = out_dir.join("providers-target");
    nested_cargo(
        &["--release", "--workspace", "--target", "wasm32-wasip2"],
        &manifest,
        &target_dir,
        "wasm32-wasip2",
    );
    let dir = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env=FROYO_GUEST_DIR={}", dir.display());
    Some(dir)
}

/// `cargo build --quiet ARGS` for another target, in its own target directory so it never
/// waits on the outer build's lock; the outer build's flags are not meant for it.
fn nested_cargo(args: &[&str], manifest: &Path, target_dir: &Path, target: &str) {
    nested_cargo_env(args, manifest, target_dir, target, &[]);
}

/// [`nested_cargo`] with extra environment variables for the nested build.
fn nested_cargo_env(
    args: &[&str],
    manifest: &Path,
    target_dir: &Path,
    target: &str,
    envs: &[(&str, String)],
) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--quiet"])
        .args(args)
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir);
    cmd.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    for var in [
        "CARGO_TARGET_DIR",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("run cargo for {}: {e}", manifest.display()));
    assert!(
        status.success(),
        "building {} for {target} failed; is the target installed? (`rustup target add {target}`)",
        manifest.display()
    );
}
