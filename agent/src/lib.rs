//! The OpenFroyo edge agent: a small resident supervisor that applies Keystone-format
//! deployment plans on a device — verified artifacts, install scripts, processes in
//! dependency order with health checks, restarts with backoff, atomic upgrades with
//! rollback — journaled in SQLite and driven over a small HTTP API.
//!
//! Map: [`recipe`] (the TOML formats, strict) → [`resolve`] (specs and DAG layers) →
//! [`agent`] (apply, rollback, stop, restart) using [`fetch`], [`supervise`] (one
//! thread per component; [`health`], [`logs`]) and [`journal`]; [`api`] and
//! [`metrics`] serve it; [`cli`] and [`client`] are the command line.

pub mod agent;
pub mod api;
pub mod cli;
pub mod client;
pub mod document;
pub mod duration;
pub mod error;
pub mod failpoint;
pub mod fetch;
pub mod health;
pub mod journal;
pub mod layout;
pub mod logs;
pub mod metrics;
pub mod publish;
pub mod pull;
pub mod recipe;
pub mod resolve;
pub mod signals;
pub mod supervise;
pub mod trust;
