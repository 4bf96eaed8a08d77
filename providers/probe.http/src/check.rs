//! One HTTP check: its config, the request from the target (`curl`/`wget` through `exec`)
//! or from the controller, and the verdict on the response.

use froyo_provider_sdk::runner::{self, ExecArgs};
use froyo_provider_sdk::{ProviderError, Resource, Result, http};
use serde::Deserialize;

/// Seconds a request may take; the engine's `timeout` keyword bounds the whole check.
const REQUEST_TIMEOUT_SECS: u32 = 10;
/// Body bytes kept for `expect_body`.
const MAX_BODY: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunFrom {
    Target,
    Controller,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Check {
    pub url: String,
    pub expect_status: u16,
    #[serde(default)]
    pub expect_body: Option<String>,
    pub run_from: RunFrom,
}

/// What came back: the status and (the start of) the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Check {
    pub fn parse(resource: &Resource) -> Result<Check> {
        Check::from_json(&resource.id, &resource.config)
    }

    pub fn from_json(id: &str, json: &str) -> Result<Check> {
        let check: Check = serde_json::from_str(json)
            .map_err(|e| ProviderError::permanent(format!("invalid config for `{id}`: {e}")))?;
        if let Some(re) = &check.expect_body {
            regex_lite::Regex::new(re).map_err(|e| {
                ProviderError::permanent(format!("`{id}`: expect_body is not a valid regex: {e}"))
            })?;
        }
        Ok(check)
    }

    /// One line for the plan.
    pub fn summary(&self) -> String {
        let body = match &self.expect_body {
            Some(re) => format!(" and a body matching /{re}/"),
            None => String::new(),
        };
        let from = match self.run_from {
            RunFrom::Target => "target",
            RunFrom::Controller => "controller",
        };
        format!(
            "GET {} expects {}{body} (from the {from})",
            self.url, self.expect_status
        )
    }

    /// Makes the request from where the config says.
    pub fn request(&self) -> Result<Response> {
        match self.run_from {
            RunFrom::Controller => {
                let r = http::request("GET", &self.url, REQUEST_TIMEOUT_SECS * 1000)?;
                Ok(Response {
                    status: r.status,
                    body: r.body,
                })
            }
            RunFrom::Target => {
                let out = runner::exec(&ExecArgs {
                    max_output: Some(MAX_BODY + 64),
                    timeout_ms: Some(u64::from(REQUEST_TIMEOUT_SECS + 5) * 1000),
                    ..ExecArgs::shell(target_script(&self.url))
                })?;
                parse_target_output(out.rc, &out.stdout, &out.stderr)
                    .map_err(|e| e.context(format_args!("GET {}", self.url)))
            }
        }
    }

    /// Passes or fails the response. A failure is `transient`: the service may still be
    /// starting, and the engine retries transient failures when told to.
    pub fn verify(&self, response: &Response) -> Result<()> {
        if response.status != self.expect_status {
            return Err(ProviderError::transient(format!(
                "GET {}: status {}, expected {}",
                self.url, response.status, self.expect_status
            )));
        }
        if let Some(re) = &self.expect_body {
            let re = regex_lite::Regex::new(re)
                .map_err(|e| ProviderError::permanent(format!("expect_body: {e}")))?;
            if !re.is_match(&response.body) {
                return Err(ProviderError::transient(format!(
                    "GET {}: the body does not match /{}/ (it starts with {:?})",
                    self.url,
                    re.as_str(),
                    response.body.chars().take(120).collect::<String>()
                )));
            }
        }
        Ok(())
    }
}

/// The request on the target: `curl` when it exists, else `wget`. The status goes on the
/// last line of stdout (`curl -w`) or is taken from wget's `-S` headers on stderr.
pub fn target_script(url: &str) -> String {
    let url = froyo_provider_sdk::shell::quote(url);
    let t = REQUEST_TIMEOUT_SECS;
    format!(
        "if command -v curl >/dev/null 2>&1; then \
           curl -sS -o - -w '\\nfroyo-status:%{{http_code}}' --max-time {t} --max-filesize {MAX_BODY} -- {url}; \
         elif command -v wget >/dev/null 2>&1; then \
           wget -q -S -O - -T {t} --content-on-error -- {url}; \
         else echo 'neither curl nor wget is installed' >&2; exit 127; fi"
    )
}

/// Status and body from the target script's output.
pub fn parse_target_output(rc: Option<i32>, stdout: &str, stderr: &str) -> Result<Response> {
    if rc == Some(127) {
        return Err(ProviderError::permanent(
            "neither curl nor wget is installed on the target (use run_from = \"controller\")",
        ));
    }
    if let Some((body, status)) = stdout.rsplit_once("\nfroyo-status:") {
        let status: u16 = status.trim().parse().unwrap_or(0);
        if status != 0 {
            return Ok(Response {
                status,
                body: body.to_owned(),
            });
        }
    }
    // wget -S: the last "HTTP/1.1 200 OK" header line (after redirects) on stderr.
    let wget_status = stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("HTTP/"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u16>().ok())
        .next_back();
    if let Some(status) = wget_status {
        return Ok(Response {
            status,
            body: stdout.to_owned(),
        });
    }
    let why = stderr.trim();
    Err(ProviderError::transient(if why.is_empty() {
        format!("no response (exit status {rc:?})")
    } else {
        format!("no response: {why}")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(config: serde_json::Value) -> Check {
        Check::from_json("c", &config.to_string()).unwrap()
    }

    #[test]
    fn parses_curl_and_wget_output() {
        let r = parse_target_output(Some(0), "<h1>ok</h1>\nfroyo-status:200", "").unwrap();
        assert_eq!(
            r,
            Response {
                status: 200,
                body: "<h1>ok</h1>".into()
            }
        );
        let wget = "  HTTP/1.1 301 Moved\n  Location: /x\n  HTTP/1.1 404 Not Found\n";
        let r = parse_target_output(Some(8), "gone", wget).unwrap();
        assert_eq!(r.status, 404);
        let e = parse_target_output(Some(7), "\nfroyo-status:000", "curl: (7) Failed to connect")
            .unwrap_err();
        assert!(e.message.contains("Failed to connect"), "{}", e.message);
        assert_eq!(e.class, froyo_provider_sdk::ErrorClass::Transient);
        let e = parse_target_output(Some(127), "", "").unwrap_err();
        assert_eq!(e.class, froyo_provider_sdk::ErrorClass::Permanent);
    }

    #[test]
    fn verdicts() {
        let c = check(serde_json::json!({"url": "http://x/", "expect_status": 200,
            "expect_body": "ready\\s+v\\d", "run_from": "target"}));
        assert!(
            c.verify(&Response {
                status: 200,
                body: "ready  v2".into()
            })
            .is_ok()
        );
        let e = c
            .verify(&Response {
                status: 503,
                body: String::new(),
            })
            .unwrap_err();
        assert_eq!(e.message, "GET http://x/: status 503, expected 200");
        let e = c
            .verify(&Response {
                status: 200,
                body: "starting".into(),
            })
            .unwrap_err();
        assert!(e.message.contains("does not match"), "{}", e.message);
        assert_eq!(
            c.summary(),
            "GET http://x/ expects 200 and a body matching /ready\\s+v\\d/ (from the target)"
        );
        let bad = Check::from_json(
            "c",
            r#"{"url":"http://x/","expect_status":200,"expect_body":"(","run_from":"target"}"#,
        );
        assert!(bad.unwrap_err().message.contains("not a valid regex"));
    }

    #[test]
    fn the_url_is_one_shell_word() {
        let s = target_script("http://x/?a=1&b=$(id)");
        assert!(s.contains("-- 'http://x/?a=1&b=$(id)'"), "{s}");
    }
}
