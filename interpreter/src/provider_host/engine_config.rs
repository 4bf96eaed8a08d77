//! The wasmtime configuration of the provider host, one source for both `build.rs` (which
//! precompiles the built-in providers with it) and the run-time engine, so the native code
//! embedded in `froyo` is made by exactly the engine that loads it. This file is compiled
//! into the build script too (`#[path]`), so it uses nothing but wasmtime and std.

/// The configuration every provider runs under.
pub fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.consume_fuel(true);
    config.wasm_component_model(true);
    config
}

/// wasmtime's own compatibility hash of `engine` (its version, compiler settings, target
/// and features), reduced to a number that can be written into the binary.
pub fn compatibility_hash(engine: &wasmtime::Engine) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}
