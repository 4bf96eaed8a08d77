#![no_main]
//! Fuzz target `agent_document`: see `froyo_fuzz::agent::agent_document` and docs/reliability.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| froyo_fuzz::agent::agent_document(data));
