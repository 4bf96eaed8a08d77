#![no_main]
//! Fuzz target `agent_api`: see `froyo_fuzz::agent::agent_api` and docs/reliability.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| froyo_fuzz::agent::agent_api(data));
