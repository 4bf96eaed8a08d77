#![no_main]
//! Fuzz target `controller_frames`: see `froyo_fuzz::interp::controller_frames` and docs/reliability.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| froyo_fuzz::interp::controller_frames(data));
