#![no_main]
//! Fuzz target `runner_frames`: see `froyo_fuzz::runner::runner_frames` and docs/reliability.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| froyo_fuzz::runner::runner_frames(data));
