//! The CLI verbs (Keystone's `keystonectl`): `apply`, `status`, `components`, `graph`,
//! `stop-plan`, `stop`, `restart`, each one HTTP call to a running agent, printed for
//! people by default and as the agent's JSON with `--json`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::error::{AgentError, Result};

pub struct Client {
    pub base: String,
    pub token: Option<String>,
    http: ureq::Agent,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Self {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: crate::fetch::http_agent(Some(Duration::from_secs(900))),
        }
    }

    fn err(&self, message: String) -> AgentError {
        AgentError::Api {
            url: self.base.clone(),
            message,
            help: "is `froyo agent serve` running there? pass --agent URL (or FROYO_AGENT_URL)"
                .into(),
        }
    }

    /// `(status, json)` of one request.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value)> {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let resp = match method {
            "GET" => {
                let mut r = self.http.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a.as_str());
                }
                r.call()
            }
            _ => {
                let mut r = self
                    .http
                    .post(&url)
                    .header("Content-Type", "application/json");
                if let Some(a) = &auth {
                    r = r.header("Authorization", a.as_str());
                }
                r.send(body.map(|b| b.to_string()).unwrap_or_default())
            }
        }
        .map_err(|e| self.err(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp
            .into_body()
            .read_to_string()
            .map_err(|e| self.err(format!("bad answer: {e}")))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| self.err(format!("answer is not JSON ({e}): {text}")))?;
        Ok((status, v))
    }

    /// A call whose error answer becomes an error (with the agent's code and hint).
    pub fn ok(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value)> {
        let (status, v) = self.call(method, path, body)?;
        // A rolled-back apply answers 422 with its report (`error` a string); every other
        // failure is `{"error": {"code", "message", "hint"}}`.
        if status >= 400 && v["error"].is_object() {
            let e = &v["error"];
            return Err(AgentError::Api {
                url: self.base.clone(),
                message: format!(
                    "[{}] {}",
                    e["code"].as_str().unwrap_or("?"),
                    e["message"].as_str().unwrap_or("error")
                ),
                help: e["hint"]
                    .as_str()
                    .unwrap_or("see the agent's log")
                    .to_owned(),
            });
        }
        Ok((status, v))
    }
}

/// Human form of an apply report.
pub fn show_apply(v: &serde_json::Value) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "plan {}: {} ({} ms)",
        v["planPath"].as_str().unwrap_or("?"),
        v["status"].as_str().unwrap_or("?"),
        v["durationMs"].as_u64().unwrap_or(0)
    );
    if v["status"] == "dry-run" {
        for (k, label) in [
            ("stop", "would stop"),
            ("start", "would start"),
            ("unchanged", "unchanged"),
        ] {
            let names: Vec<&str> = v[k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str())
                .collect();
            let _ = writeln!(
                o,
                "  {label}: {}",
                if names.is_empty() {
                    "-".into()
                } else {
                    names.join(", ")
                }
            );
        }
    }
    for c in v["components"].as_array().into_iter().flatten() {
        let _ = write!(
            o,
            "  {:<20} {:<10} {}",
            c["name"].as_str().unwrap_or("?"),
            c["version"].as_str().unwrap_or(""),
            c["outcome"].as_str().unwrap_or("")
        );
        if let Some(r) = c["reason"].as_str() {
            let _ = write!(o, ": {r}");
        }
        o.push('\n');
    }
    if let Some(e) = v["error"].as_str() {
        let _ = writeln!(o, "error: {e}");
    }
    o
}

/// Human form of the component list.
pub fn show_components(v: &serde_json::Value) -> String {
    let mut o = format!(
        "{:<20} {:<10} {:<9} {:>7} {:<5} {:<9} {:>8}\n",
        "NAME", "VERSION", "STATE", "PID", "READY", "HEALTH", "RESTARTS"
    );
    for c in v.as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "{:<20} {:<10} {:<9} {:>7} {:<5} {:<9} {:>8}",
            c["name"].as_str().unwrap_or("?"),
            c["version"].as_str().unwrap_or(""),
            c["state"].as_str().unwrap_or(""),
            c["pid"]
                .as_u64()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            if c["ready"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
            c["lastHealth"].as_str().unwrap_or(""),
            c["restarts"].as_u64().unwrap_or(0)
        );
    }
    o
}

pub fn show_status(v: &serde_json::Value) -> String {
    let mut o = format!(
        "plan: {}\nstatus: {}\n",
        v["planPath"].as_str().unwrap_or("-"),
        v["status"].as_str().unwrap_or("?")
    );
    if let Some(e) = v["error"].as_str() {
        let _ = writeln!(o, "error: {e}");
    }
    o.push_str(&show_components(&v["components"]));
    o
}

pub fn show_graph(v: &serde_json::Value) -> String {
    let mut o = String::new();
    for (i, layer) in v["layers"].as_array().into_iter().flatten().enumerate() {
        let names: Vec<&str> = layer
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str())
            .collect();
        let _ = writeln!(o, "layer {}: {}", i + 1, names.join(", "));
    }
    for e in v["edges"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "{} -> {} ({})",
            e["from"].as_str().unwrap_or("?"),
            e["to"].as_str().unwrap_or("?"),
            e["type"].as_str().unwrap_or("?")
        );
    }
    o
}

pub fn show_orders(v: &serde_json::Value) -> String {
    let mut o = String::new();
    for (k, label) in [("stopOrder", "stop"), ("startOrder", "start")] {
        if let Some(a) = v[k].as_array() {
            let names: Vec<&str> = a.iter().filter_map(|n| n.as_str()).collect();
            let _ = writeln!(
                o,
                "{}{label}: {}",
                if v["dry"] == true { "would " } else { "" },
                names.join(", ")
            );
        }
    }
    o
}
