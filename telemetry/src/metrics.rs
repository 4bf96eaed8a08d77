//! The metrics of a froyo process in one Prometheus registry (prometheus-client): what a
//! run did (resources by outcome, durations by type and phase, round trips, retries,
//! policy denials, provider fuel). A one-shot command writes them to a file
//! (`--metrics-out`, node_exporter's textfile-collector convention: written aside, then
//! renamed) or pushes them to a Pushgateway (`FROYO_PUSHGATEWAY`); a long-running process
//! (`froyo agent`) serves [`Metrics::openmetrics`] on `/metrics`.
//!
//! Labels never hold secrets or per-run ids: resource types, outcomes, phases, provider
//! and host names only (no per-host labels on histograms: cardinality).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    resource_type: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    resource_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabels {
    host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    command: String,
    status: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// 1 ms … ~33 s, doubling.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The registry and every metric froyo records.
pub struct Metrics {
    registry: Registry,
    resources: Family<ResourceLabels, Counter>,
    resource_duration: HistogramFamily<TypeLabels>,
    phase_duration: HistogramFamily<PhaseLabels>,
    round_trips: Family<HostLabels, Counter>,
    retries: Family<TypeLabels, Counter>,
    policy_denials: Counter,
    provider_calls: Family<ProviderLabels, Counter>,
    provider_fuel: Family<ProviderLabels, Counter>,
    runs: Family<RunLabels, Counter>,
    run_duration: HistogramFamily<RunLabels>,
    last_success: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("froyo");
        let resources: Family<ResourceLabels, Counter> = Family::default();
        registry.register(
            "resources",
            "Resources applied, by type and outcome (changed, unchanged, failed, skipped)",
            resources.clone(),
        );
        let resource_duration: HistogramFamily<TypeLabels> =
            Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "resource_duration",
            "Time to bring one resource on one host to its desired state, by type",
            Unit::Seconds,
            resource_duration.clone(),
        );
        let phase_duration: HistogramFamily<PhaseLabels> =
            Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "phase_duration",
            "Time spent in each phase of a command (evaluate, validate, policy, plan, apply)",
            Unit::Seconds,
            phase_duration.clone(),
        );
        let round_trips: Family<HostLabels, Counter> = Family::default();
        registry.register(
            "runner_round_trips",
            "Commands sent to the runner on each host",
            round_trips.clone(),
        );
        let retries: Family<TypeLabels, Counter> = Family::default();
        registry.register(
            "retries",
            "Operations tried again after a failure, by resource type",
            retries.clone(),
        );
        let policy_denials: Counter = Counter::default();
        registry.register(
            "policy_denials",
            "Policy findings that deny a plan",
            policy_denials.clone(),
        );
        let provider_calls: Family<ProviderLabels, Counter> = Family::default();
        registry.register(
            "provider_calls",
            "Calls into WebAssembly providers",
            provider_calls.clone(),
        );
        let provider_fuel: Family<ProviderLabels, Counter> = Family::default();
        registry.register(
            "provider_fuel",
            "Wasmtime fuel (roughly, instructions) providers consumed",
            provider_fuel.clone(),
        );
        let runs: Family<RunLabels, Counter> = Family::default();
        registry.register("runs", "Commands run, by command and status", runs.clone());
        let run_duration: HistogramFamily<RunLabels> =
            Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "run_duration",
            "Wall time of whole commands",
            Unit::Seconds,
            run_duration.clone(),
        );
        let last_success = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "last_success_timestamp",
            "When a command last succeeded (Unix time)",
            Unit::Seconds,
            last_success.clone(),
        );
        Metrics {
            registry,
            resources,
            resource_duration,
            phase_duration,
            round_trips,
            retries,
            policy_denials,
            provider_calls,
            provider_fuel,
            runs,
            run_duration,
            last_success,
        }
    }

    /// One resource done on one host.
    pub fn resource(&self, resource_type: &str, outcome: &str, took: Duration) {
        self.resources
            .get_or_create(&ResourceLabels {
                resource_type: resource_type.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.resource_duration
            .get_or_create(&TypeLabels {
                resource_type: resource_type.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn phase(&self, phase: &str, took: Duration) {
        self.phase_duration
            .get_or_create(&PhaseLabels {
                phase: phase.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn round_trips(&self, host: &str, n: u64) {
        self.round_trips
            .get_or_create(&HostLabels {
                host: host.to_owned(),
            })
            .inc_by(n);
    }

    pub fn retry(&self, resource_type: &str) {
        self.retries
            .get_or_create(&TypeLabels {
                resource_type: resource_type.to_owned(),
            })
            .inc();
    }

    pub fn policy_denials(&self, n: u64) {
        self.policy_denials.inc_by(n);
    }

    /// One provider call and the fuel it consumed.
    pub fn provider_call(&self, provider: &str, fuel: u64) {
        let labels = ProviderLabels {
            provider: provider.to_owned(),
        };
        self.provider_calls.get_or_create(&labels).inc();
        self.provider_fuel.get_or_create(&labels).inc_by(fuel);
    }

    /// A whole command ended.
    pub fn run(&self, command: &str, succeeded: bool, took: Duration) {
        let labels = RunLabels {
            command: command.to_owned(),
            status: if succeeded { "succeeded" } else { "failed" }.to_owned(),
        };
        self.runs.get_or_create(&labels).inc();
        self.run_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if succeeded {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            self.last_success.set(now);
        }
    }

    /// The registry in the OpenMetrics text format (for `/metrics`).
    pub fn openmetrics(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The registry in the Prometheus text format 0.0.4, which node_exporter's textfile
    /// collector, `promtool check metrics` and the Pushgateway read: counter families
    /// named with their `_total` suffix, no `# UNIT` or `# EOF` lines.
    pub fn prometheus_text(&self) -> String {
        to_prometheus_text(&self.openmetrics())
    }

    /// Writes [`Metrics::prometheus_text`] to `path` atomically: to a temporary file in
    /// the same directory, then renamed over it, so a collector never reads half a file.
    pub fn write_textfile(&self, path: &Path) -> std::io::Result<()> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "metrics.prom".into());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let result = std::fs::File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(self.prometheus_text().as_bytes())?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, path));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Pushes the registry to a Pushgateway at `base` (`http://host:port`), replacing the
    /// group `job="froyo"` + `grouping` (e.g. project and playbook; never a run id: the
    /// Pushgateway keeps every group forever).
    pub fn push(
        &self,
        base: &str,
        grouping: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<(), String> {
        let mut path = String::from("/metrics/job/froyo");
        for (k, v) in grouping {
            // `@base64` takes any value, `/` included (URL-safe alphabet).
            path.push_str(&format!("/{k}@base64/{}", base64_url(v.as_bytes())));
        }
        let body = self.prometheus_text();
        let status = http_put(base, &path, "text/plain; version=0.0.4", &body, timeout)?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("the Pushgateway answered HTTP {status}"))
        }
    }
}

/// The process's registry.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::new();
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

fn base64_url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A minimal HTTP/1.1 `PUT` over plain TCP (a Pushgateway is plain `http://` on a
/// trusted network; froyo carries no HTTP client crate for one request per run).
fn http_put(
    base: &str,
    path: &str,
    content_type: &str,
    body: &str,
    timeout: Duration,
) -> Result<u16, String> {
    let rest = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{base}`: only http:// Pushgateway URLs are supported"))?;
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let addr_text = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addr = addr_text
        .to_socket_addrs()
        .map_err(|e| format!("`{authority}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{authority}` has no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{authority}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "PUT {prefix}{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: froyo\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| format!("sending to {authority}: {e}"))?;
    let mut head = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut head)
        .map_err(|e| format!("reading the answer of {authority}: {e}"))?;
    let text = String::from_utf8_lossy(&head);
    text.lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{authority} did not answer in HTTP"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_url_matches_the_rfc_vectors() {
        assert_eq!(base64_url(b""), "");
        assert_eq!(base64_url(b"f"), "Zg==");
        assert_eq!(base64_url(b"fo"), "Zm8=");
        assert_eq!(base64_url(b"foo"), "Zm9v");
        assert_eq!(base64_url(b"foob"), "Zm9vYg==");
        assert_eq!(base64_url(b"examples/a?b>"), "ZXhhbXBsZXMvYT9iPg==");
    }

    #[test]
    fn text_format_names_counters_with_total_and_drops_openmetrics_lines() {
        let m = Metrics::new();
        m.resource("linux.file::file", "changed", Duration::from_millis(3));
        let om = m.openmetrics();
        assert!(om.contains("# TYPE froyo_resources counter"), "{om}");
        assert!(om.ends_with("# EOF\n"));
        let text = m.prometheus_text();
        assert!(
            text.contains("# TYPE froyo_resources_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP froyo_resources_total Resources"),
            "{text}"
        );
        assert!(
            text.contains(
                "froyo_resources_total{resource_type=\"linux.file::file\",outcome=\"changed\"} 1"
            ),
            "{text}"
        );
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        assert!(
            text.contains(
                "froyo_resource_duration_seconds_count{resource_type=\"linux.file::file\"} 1"
            ),
            "{text}"
        );
    }
}
