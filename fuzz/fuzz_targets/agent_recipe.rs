#![no_main]
//! Fuzz target `agent_recipe`: see `froyo_fuzz::agent::agent_recipe` and docs/reliability.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| froyo_fuzz::agent::agent_recipe(data));
