//! Observability for every froyo process: logs on stderr (text or JSON lines), the
//! metrics registry (Prometheus) and OpenTelemetry traces. One crate, so the CLI, `froyo agent` and a cluster
//! worker set them up the same way and share one metrics registry.

pub mod logs;
pub mod metrics;
pub mod traces;

pub use logs::{LogFormat, LogSettings};
