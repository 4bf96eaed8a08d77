#![no_main]
//! Fuzz target `inventory_toml`: see `froyo_fuzz::interp::inventory_toml` and docs/reliability.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| froyo_fuzz::interp::inventory_toml(data));
