//! Logs on stderr: text for people (the default) or, with `--log-format json` /
//! `FROYO_LOG_FORMAT=json`, one JSON object per line (timestamp, level, target, message,
//! and the fields of the spans it happened in: run, host, resource). `FROYO_LOG` takes an
//! `EnvFilter` directive (`RUST_LOG` too, for compatibility); otherwise the verbosity flags
//! decide.

use std::io::Write;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" | "" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format `{other}` (text, json)")),
        }
    }
}

/// What the process logs and how.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    /// The filter when neither `FROYO_LOG` nor `RUST_LOG` is set (e.g. `warn`).
    pub default_filter: String,
    /// Colours in text lines.
    pub ansi: bool,
}

static JSON: AtomicBool = AtomicBool::new(false);

/// Whether log lines (and so every other line on stderr) are JSON.
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// The filter directive in effect and, when `FROYO_LOG`/`RUST_LOG` was not valid, why.
fn filter(default: &str) -> (EnvFilter, Option<String>) {
    for var in ["FROYO_LOG", "RUST_LOG"] {
        if let Ok(text) = std::env::var(var)
            && !text.trim().is_empty()
        {
            return match EnvFilter::try_new(&text) {
                Ok(f) => (f, None),
                Err(e) => (
                    EnvFilter::new(default),
                    Some(format!(
                        "{var}=`{text}` is not a valid filter ({e}); using `{default}`"
                    )),
                ),
            };
        }
    }
    (EnvFilter::new(default), None)
}

/// A layer of the process's subscriber (the log lines, later the trace exporter).
pub type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync + 'static>;

/// The log-lines layer with its own filter (the trace exporter has another).
fn log_layer(settings: &LogSettings, filter: EnvFilter) -> BoxedLayer {
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if settings.format == LogFormat::Json {
        fmt.json()
            .with_current_span(true)
            .with_span_list(true)
            .with_filter(filter)
            .boxed()
    } else {
        fmt.with_ansi(settings.ansi).with_filter(filter).boxed()
    }
}

/// Installs the process's subscriber (once; later calls do nothing): the log lines plus
/// any `extra` layers.
pub fn init(settings: &LogSettings, extra: Vec<BoxedLayer>) {
    JSON.store(settings.format == LogFormat::Json, Ordering::Relaxed);
    let (filter, warning) = filter(&settings.default_filter);
    let mut layers = vec![log_layer(settings, filter)];
    layers.extend(extra);
    let _ = tracing_subscriber::registry().with(layers).try_init();
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
}

/// One line on stderr that is not a log record (a diagnostic, progress, a summary): as
/// is in text mode, as a JSON object shaped like a log record in JSON mode, so that
/// every stderr line parses.
pub fn message(level: &str, target: &str, text: &str) {
    let mut err = std::io::stderr().lock();
    if json() {
        let line = serde_json::json!({
            "timestamp": rfc3339_now(),
            "level": level,
            "fields": {"message": text.trim_end()},
            "target": target,
        });
        let _ = writeln!(err, "{line}");
    } else {
        let _ = err.write_all(text.as_bytes());
    }
}

/// [`message`] with extra fields (e.g. a diagnostic's code) in JSON mode.
pub fn message_with(level: &str, target: &str, text: &str, fields: serde_json::Value) {
    if !json() {
        return message(level, target, text);
    }
    let mut all = serde_json::Map::new();
    all.insert("message".into(), text.trim_end().into());
    if let serde_json::Value::Object(extra) = fields {
        all.extend(extra);
    }
    let line = serde_json::json!({
        "timestamp": rfc3339_now(),
        "level": level,
        "fields": all,
        "target": target,
    });
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn rfc3339_now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    rfc3339_ms(ms)
}

/// `2026-12-02T18:45:00.123Z` for milliseconds since the Unix epoch (UTC).
pub fn rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_ms(1_796_237_100_000), "2026-12-02T18:45:00.000Z");
    }

    #[test]
    fn formats_parse() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!("xml".parse::<LogFormat>().is_err());
    }
}
