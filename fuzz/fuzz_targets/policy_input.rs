#![no_main]
//! Fuzz target `policy_input`: see `froyo_fuzz::interp::policy_input` and docs/reliability.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| froyo_fuzz::interp::policy_input(data));
