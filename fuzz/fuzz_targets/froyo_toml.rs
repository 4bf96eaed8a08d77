#![no_main]
//! Fuzz target `froyo_toml`: see `froyo_fuzz::interp::froyo_toml` and docs/reliability.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| froyo_fuzz::interp::froyo_toml(data));
