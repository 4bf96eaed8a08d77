//! The checks behind each fuzz target, one module per froyo crate: every function takes
//! the fuzzer's bytes, feeds them to the same entry point users hit, and panics only
//! when a property fails. `tests/it/fuzz_corpus.rs` replays the committed corpora through
//! these same modules on stable, so CI guards them without nightly.

pub mod runner;

#[cfg(feature = "agent")]
pub mod agent;
#[cfg(feature = "import")]
pub mod import;
#[cfg(feature = "interp")]
pub mod interp;
