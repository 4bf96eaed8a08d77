#![no_main]
//! Fuzz target `ansible_yaml`: see `froyo_fuzz::import::ansible_yaml` and docs/reliability.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| froyo_fuzz::import::ansible_yaml(data));
