//! Integration tests of the runner: most spawn the real `froyo-runner` binary and
//! drive it with frames over its stdio, on real files and real processes; the
//! onboarding tests call the library against a scratch system root.

mod exec;
mod facts;
mod files;
mod fuzz;
mod golden;
mod harness;
mod lifecycle;
mod onboarding;
mod scheduling;
