//! `froyo import ansible`: converts Ansible playbooks and roles into a froyo project of
//! Starlark playbooks, and says exactly what did not convert.
//!
//! The pipeline: [`yaml`] reads YAML as Ansible does (YAML 1.1 scalars, lines kept),
//! [`kv`] splits free-form `k=v` arguments, [`expr`] translates Jinja2 expressions into
//! Starlark. Nothing here evaluates a playbook or touches a target; the `froyo` CLI calls
//! this library and prints its report.

pub mod code;
pub mod convert;
pub mod error;
pub mod expr;
pub mod kv;
pub mod modules;
pub mod report;
pub mod tasks;
pub mod yaml;

pub use convert::{Options, import_ansible};
pub use error::ImportError;
pub use report::Report;
