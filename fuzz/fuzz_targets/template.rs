#![no_main]
//! Fuzz target `template`: see `froyo_fuzz::interp::template` and docs/reliability.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| froyo_fuzz::interp::template(data));
