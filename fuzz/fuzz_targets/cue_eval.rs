#![no_main]
//! Fuzz target `cue_eval`: see `froyo_fuzz::interp::cue_eval` and docs/reliability.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| froyo_fuzz::interp::cue_eval(data));
