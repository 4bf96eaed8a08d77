//! OpenTelemetry traces, opt-in and configured only by the standard environment: nothing
//! leaves the process unless `OTEL_TRACES_EXPORTER` is `otlp` (OTLP/gRPC through tonic,
//! `OTEL_EXPORTER_OTLP_*` for endpoint, headers and timeout, read by opentelemetry-otlp)
//! or `console` (one JSON line per span on stderr). `OTEL_SERVICE_NAME` and
//! `OTEL_RESOURCE_ATTRIBUTES` name the service (`froyo` by default); `TRACEPARENT` /
//! `TRACESTATE` make a command's root span the child of a CI job or a scheduler (W3C
//! trace context, as Terraform and Ansible do).
//!
//! Only `froyo` spans are exported, and no log record: span attributes are ids, types,
//! hosts, locations and outcomes, never a message that could hold a secret. An endpoint
//! that cannot be reached is said once on stderr; the run goes on, and the final flush
//! waits at most the exporter's timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::Layer;

use crate::logs::BoxedLayer;

/// The trace pipeline of the process, shut down (flushed) by [`Traces::shutdown`].
pub struct Traces {
    provider: SdkTracerProvider,
    /// tonic's connections live on it (the batch processor exports from its own thread).
    runtime: Option<tokio::runtime::Runtime>,
    timeout: Duration,
    /// What is active, for `-v`: e.g. `otlp (grpc) to http://127.0.0.1:4317`.
    pub description: String,
}

/// The environment's choice: no traces, traces, or a setting that cannot be honoured.
pub enum Setup {
    Off,
    On(Traces, BoxedLayer),
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `OTEL_EXPORTER_OTLP_TRACES_<X>`, else `OTEL_EXPORTER_OTLP_<X>`.
fn otlp_env(x: &str) -> Option<String> {
    env(&format!("OTEL_EXPORTER_OTLP_TRACES_{x}"))
        .or_else(|| env(&format!("OTEL_EXPORTER_OTLP_{x}")))
}

/// Reads the environment and builds the pipeline. `Err` says why a setting is refused
/// (the caller warns and runs without traces).
pub fn from_env() -> Result<Setup, String> {
    let choice = env("OTEL_TRACES_EXPORTER").unwrap_or_default();
    // The variable is a list; froyo honours the first exporter.
    let first = choice
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let timeout = otlp_env("TIMEOUT")
        .and_then(|t| t.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis);
    match first.as_str() {
        "" | "none" => Ok(Setup::Off),
        "otlp" => otlp(timeout),
        "console" => {
            let warned = Arc::new(AtomicBool::new(false));
            let exporter = WarnOnce {
                inner: Console,
                what: "the console".into(),
                warned,
            };
            Ok(pipeline(exporter, None, timeout, "console (stderr)".into()))
        }
        other => Err(format!(
            "OTEL_TRACES_EXPORTER=`{other}` is not supported (otlp, console, none); no traces are sent"
        )),
    }
}

fn otlp(timeout: Duration) -> Result<Setup, String> {
    let protocol = otlp_env("PROTOCOL").unwrap_or_else(|| "grpc".into());
    let default_endpoint = match protocol.as_str() {
        "grpc" => "http://localhost:4317",
        "http/protobuf" => "http://localhost:4318",
        other => {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL=`{other}`: this froyo exports traces over `grpc` or `http/protobuf`; no traces are sent"
            ));
        }
    };
    let endpoint = otlp_env("ENDPOINT").unwrap_or_else(|| default_endpoint.into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("froyo-otlp")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the trace exporter's runtime: {e}"))?;
    let exporter = {
        let _in = runtime.enter();
        let built = if protocol == "grpc" {
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
        } else {
            use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(timeout)
                .with_http_client(OnRuntime {
                    inner: Arc::new(
                        opentelemetry_http::hyper::HyperClient::with_default_connector(
                            timeout, None,
                        ),
                    ),
                    handle: runtime.handle().clone(),
                })
                .build()
        };
        built.map_err(|e| format!("the OTLP trace exporter: {e}; no traces are sent"))?
    };
    let exporter = WarnOnce {
        inner: exporter,
        what: endpoint.clone(),
        warned: Arc::new(AtomicBool::new(false)),
    };
    Ok(pipeline(
        exporter,
        Some(runtime),
        timeout,
        format!("otlp ({protocol}) to {endpoint}"),
    ))
}

/// hyper's client run on the exporter's runtime: the batch processor polls an export on
/// its own thread, where hyper (tokio's reactor and timers) cannot run.
#[derive(Debug)]
struct OnRuntime {
    inner: Arc<opentelemetry_http::hyper::HyperClient>,
    handle: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let inner = self.inner.clone();
        self.handle
            .spawn(async move { inner.send_bytes(request).await })
            .await
            .map_err(|e| Box::new(e) as opentelemetry_http::HttpError)?
    }
}

/// The providers of the running pipeline, for [`flush`] from a signal handler.
static ACTIVE: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Exports the spans that ended so far (used before an interrupted process exits).
pub fn flush() {
    if let Some(provider) = ACTIVE.get() {
        let _ = provider.force_flush();
    }
}

fn pipeline<E: SpanExporter + 'static>(
    exporter: E,
    runtime: Option<tokio::runtime::Runtime>,
    timeout: Duration,
    description: String,
) -> Setup {
    let mut resource = Resource::builder();
    let named = env("OTEL_SERVICE_NAME").is_some()
        || env("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| a.contains("service.name="));
    if !named {
        resource = resource.with_service_name("froyo");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let _ = ACTIVE.set(provider.clone());
    let tracer = provider.tracer("froyo");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            meta.is_span() && meta.target().starts_with("froyo")
        }))
        .boxed();
    Setup::On(
        Traces {
            provider,
            runtime,
            timeout,
            description,
        },
        layer,
    )
}

impl Traces {
    /// Ends the pipeline: exports what is left, waiting at most the exporter's timeout.
    pub fn shutdown(mut self) {
        let _ = self.provider.shutdown_with_timeout(self.timeout);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_millis(200));
        }
    }

    /// On Ctrl-C: exports the spans that ended so far, then ends the process (130) as
    /// SIGINT would have.
    pub fn flush_on_interrupt(&self) {
        let provider = self.provider.clone();
        let _ = std::thread::Builder::new()
            .name("froyo-sigint".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                if rt.block_on(tokio::signal::ctrl_c()).is_ok() {
                    let _ = provider.force_flush();
                    std::process::exit(130);
                }
            });
    }
}

/// The parent a run's root span takes from `TRACEPARENT`/`TRACESTATE`, if any.
pub fn parent_from_env() -> Option<opentelemetry::Context> {
    let traceparent = env("TRACEPARENT")?;
    let mut carrier = HashMap::new();
    carrier.insert("traceparent".to_owned(), traceparent.trim().to_owned());
    if let Some(state) = env("TRACESTATE") {
        carrier.insert("tracestate".to_owned(), state.trim().to_owned());
    }
    let cx = TraceContextPropagator::new().extract(&carrier);
    use opentelemetry::trace::TraceContextExt;
    cx.span().span_context().is_valid().then_some(cx)
}

/// Makes `span` (a command's root) the child of the `TRACEPARENT` context.
pub fn set_parent(span: &tracing::Span, cx: opentelemetry::Context) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let _ = span.set_parent(cx);
}

/// An exporter that says once on stderr that its destination is unreachable, and then
/// stays quiet: traces are an aid, never a reason to fail or flood a run.
#[derive(Debug)]
struct WarnOnce<E> {
    inner: E,
    what: String,
    warned: Arc<AtomicBool>,
}

impl<E: SpanExporter> SpanExporter for WarnOnce<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        if let Err(e) = &result
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            crate::logs::message(
                "WARN",
                "froyo::telemetry",
                &format!(
                    "warning: cannot export traces to {}: {e}; the run goes on without them\n",
                    self.what
                ),
            );
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// `OTEL_TRACES_EXPORTER=console`: one JSON object per ended span on stderr (stdout is
/// for data such as the event stream).
#[derive(Debug)]
struct Console;

impl SpanExporter for Console {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        for s in batch {
            let attributes: serde_json::Map<String, serde_json::Value> = s
                .attributes
                .iter()
                .map(|kv| (kv.key.to_string(), kv.value.to_string().into()))
                .collect();
            let took = s.end_time.duration_since(s.start_time).unwrap_or_default();
            let line = serde_json::json!({
                "span": s.name,
                "trace_id": s.span_context.trace_id().to_string(),
                "span_id": s.span_context.span_id().to_string(),
                "parent_span_id": s.parent_span_id.to_string(),
                "duration_ms": took.as_secs_f64() * 1000.0,
                "attributes": attributes,
            });
            crate::logs::message("INFO", "froyo::trace", &format!("{line}\n"));
        }
        Ok(())
    }
}
