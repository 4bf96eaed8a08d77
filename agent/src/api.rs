//! The HTTP API on the paths Keystone uses: `GET /healthz`, `GET /metrics`,
//! `GET /v1/components`, `GET /v1/plan/status`, `GET /v1/plan/graph`,
//! `POST /v1/plan/apply` (`{"planPath", "dry"}` or a TOML plan as the body),
//! `POST /v1/plan/stop`, `POST /v1/components/NAME:stop|:restart` (`?dry=true`).
//! A small blocking server (tiny_http) with a few worker threads; bodies are bounded.
//! With a token (required when bound beyond loopback) every route but `/healthz` wants
//! `Authorization: Bearer <token>`.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use tiny_http::{Header, Method, Request, Response, Server};

use crate::agent::{Agent, PlanSource};
use crate::error::AgentError;

/// Largest request body read.
const MAX_BODY: u64 = 1024 * 1024;
const WORKERS: usize = 4;

pub struct Api {
    pub server: Arc<Server>,
    pub token: Option<String>,
}

impl Api {
    pub fn bind(addr: &str, token: Option<String>) -> Result<Self, AgentError> {
        let server = Server::http(addr)
            .map_err(|e| AgentError::Usage(format!("cannot listen on {addr}: {e}")))?;
        Ok(Api {
            server: Arc::new(server),
            token,
        })
    }

    /// Serves until the server is unblocked; returns after the workers end.
    pub fn serve(&self, agent: Arc<Agent>) {
        let mut workers = Vec::new();
        for i in 0..WORKERS {
            let server = self.server.clone();
            let agent = agent.clone();
            let token = self.token.clone();
            let w = std::thread::Builder::new()
                .name(format!("http-{i}"))
                .stack_size(256 * 1024)
                .spawn(move || {
                    while let Ok(req) = server.recv() {
                        handle(&agent, token.as_deref(), req);
                    }
                });
            match w {
                Ok(w) => workers.push(w),
                Err(e) => tracing::error!("cannot start an HTTP worker: {e}"),
            }
        }
        for w in workers {
            let _ = w.join();
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn json(status: u16, v: &serde_json::Value) -> Response<std::io::Cursor<Vec<u8>>> {
    let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
    body.push(b'\n');
    Response::from_data(body)
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"))
}

fn error(e: &AgentError) -> Response<std::io::Cursor<Vec<u8>>> {
    json(e.http_status(), &e.to_json())
}

fn authorized(req: &Request, token: Option<&str>) -> bool {
    let Some(token) = token else {
        return true;
    };
    let want = format!("Bearer {token}");
    req.headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .is_some_and(|h| constant_eq(h.value.as_str().as_bytes(), want.as_bytes()))
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn query_flag(query: &str, name: &str) -> bool {
    query.split('&').any(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, "true"));
        k == name && matches!(v, "true" | "1" | "yes")
    })
}

fn handle(agent: &Arc<Agent>, token: Option<&str>, mut req: Request) {
    let url = req.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let method = req.method().clone();
    let _span = tracing::debug_span!("http", %method, path).entered();
    if path != "/healthz" && !authorized(&req, token) {
        let _ = req.respond(json(401, &serde_json::json!({"error": {"code": "E-AGENT-API", "message": "missing or wrong bearer token", "hint": "send `Authorization: Bearer <token>`; the token is api.token in the agent's data dir"}})));
        return;
    }
    let dry = query_flag(query, "dry");
    let resp = match (&method, path) {
        (Method::Get, "/healthz") => json(
            200,
            &serde_json::json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "uptimeSeconds": agent.started.elapsed().as_secs(),
                "planStatus": agent.status_str(),
            }),
        ),
        (Method::Get, "/metrics") => {
            Response::from_data(crate::metrics::render(agent).into_bytes())
                .with_status_code(200)
                .with_header(header("Content-Type", "text/plain; version=0.0.4"))
        }
        (Method::Get, "/v1/components") => json(200, &serde_json::json!(agent.components())),
        (Method::Get, "/v1/plan/status") => json(200, &agent.plan_status()),
        (Method::Get, "/v1/plan/graph") => json(200, &agent.graph()),
        (Method::Post, "/v1/plan/apply") => match read_body(&mut req) {
            Err(e) => error(&e),
            Ok(body) => match apply_request(agent, &req, &body, dry) {
                Ok(report) => {
                    let status = if report.status == "rolled_back" {
                        422
                    } else {
                        200
                    };
                    json(status, &serde_json::json!(report))
                }
                Err(e) => error(&e),
            },
        },
        (Method::Post, "/v1/plan/stop") => match agent.stop_plan() {
            Ok(order) => json(
                200,
                &serde_json::json!({"status": "stopped", "stopOrder": order}),
            ),
            Err(e) => error(&e),
        },
        (Method::Post, p) if p.starts_with("/v1/components/") => {
            let rest = &p["/v1/components/".len()..];
            match rest.rsplit_once(':') {
                Some((name, "stop")) => match agent.stop_component(name, dry) {
                    Ok(v) => json(200, &v),
                    Err(e) => error(&e),
                },
                Some((name, "restart")) => match agent.restart_component(name, dry) {
                    Ok(v) => json(200, &v),
                    Err(e) => error(&e),
                },
                _ => error(&AgentError::NotFound(format!("no route POST {p}"))),
            }
        }
        _ => error(&AgentError::NotFound(format!("no route {method} {path}"))),
    };
    let _ = req.respond(resp);
}

fn read_body(req: &mut Request) -> Result<Vec<u8>, AgentError> {
    let mut body = Vec::new();
    req.as_reader()
        .take(MAX_BODY + 1)
        .read_to_end(&mut body)
        .map_err(|e| AgentError::Usage(format!("cannot read the request body: {e}")))?;
    if body.len() as u64 > MAX_BODY {
        return Err(AgentError::Usage("request body larger than 1 MiB".into()));
    }
    Ok(body)
}

/// `{"planPath": "...", "dry": bool}`, or a TOML plan (Keystone's upload), which is
/// saved under `plans/` in the data dir and applied from there.
fn apply_request(
    agent: &Agent,
    req: &Request,
    body: &[u8],
    dry_query: bool,
) -> Result<crate::agent::ApplyReport, AgentError> {
    let is_json = req
        .headers()
        .iter()
        .any(|h| h.field.equiv("Content-Type") && h.value.as_str().contains("json"))
        || body.first() == Some(&b'{');
    if is_json {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        struct ApplyBody {
            plan_path: String,
            #[serde(default)]
            dry: bool,
        }
        let b: ApplyBody = serde_json::from_slice(body).map_err(|e| {
            AgentError::Usage(format!(
                "bad apply request: {e} (want {{\"planPath\": \"…\", \"dry\": false}})"
            ))
        })?;
        return agent.apply(
            PlanSource::File(PathBuf::from(b.plan_path)),
            b.dry || dry_query,
        );
    }
    let text =
        std::str::from_utf8(body).map_err(|_| AgentError::Usage("the plan is not UTF-8".into()))?;
    let dir = agent.layout.root.join("plans");
    std::fs::create_dir_all(&dir).map_err(|e| AgentError::io(&dir, e))?;
    let path = dir.join("uploaded.toml");
    std::fs::write(&path, text).map_err(|e| AgentError::io(&path, e))?;
    agent.apply(PlanSource::File(path), dry_query)
}
