#![no_main]
//! Fuzz target `star_eval`: see `froyo_fuzz::interp::star_eval` and docs/reliability.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| froyo_fuzz::interp::star_eval(data));
