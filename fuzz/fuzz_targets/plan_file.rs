#![no_main]
//! Fuzz target `plan_file`: see `froyo_fuzz::interp::plan_file` and docs/reliability.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| froyo_fuzz::interp::plan_file(data));
