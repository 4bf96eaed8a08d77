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

use tiny_http::{Header, Request, Response, Server};

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
    let given = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str());
    bearer_matches(given, token)
}

/// Whether the `Authorization` header value `given` carries `token` (any request
/// passes when the agent has no token); compared in constant time.
pub fn bearer_matches(given: Option<&str>, token: Option<&str>) -> bool {
    let Some(token) = token else {
        return true;
    };
    let want = format!("Bearer {token}");
    given.is_some_and(|g| constant_eq(g.as_bytes(), want.as_bytes()))
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

/// What a request asks for, from its method and URL alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    Metrics,
    Components,
    PlanStatus,
    PlanGraph,
    Apply,
    StopPlan,
    StopComponent(String),
    RestartComponent(String),
    /// No such route; the message names what was asked.
    NotFound(String),
}

/// A routed request: where it goes, whether `?dry=` asked for a dry run, and whether
/// it needs the bearer token (every route but `/healthz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub route: Route,
    pub dry: bool,
    pub needs_token: bool,
}

/// Routes a request by its method (`GET`, `POST`, …) and URL (path and query).
pub fn route(method: &str, url: &str) -> Routed {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let route = match (method, path) {
        ("GET", "/healthz") => Route::Health,
        ("GET", "/metrics") => Route::Metrics,
        ("GET", "/v1/components") => Route::Components,
        ("GET", "/v1/plan/status") => Route::PlanStatus,
        ("GET", "/v1/plan/graph") => Route::PlanGraph,
        ("POST", "/v1/plan/apply") => Route::Apply,
        ("POST", "/v1/plan/stop") => Route::StopPlan,
        ("POST", p) if p.starts_with("/v1/components/") => {
            let rest = &p["/v1/components/".len()..];
            match rest.rsplit_once(':') {
                Some((name, "stop")) => Route::StopComponent(name.to_owned()),
                Some((name, "restart")) => Route::RestartComponent(name.to_owned()),
                _ => Route::NotFound(format!("no route POST {p}")),
            }
        }
        _ => Route::NotFound(format!("no route {method} {path}")),
    };
    Routed {
        route,
        dry: query_flag(query, "dry"),
        needs_token: path != "/healthz",
    }
}

fn handle(agent: &Arc<Agent>, token: Option<&str>, mut req: Request) {
    let url = req.url().to_owned();
    let method = req.method().clone();
    let routed = route(method.as_str(), &url);
    let path = url.split_once('?').map_or(url.as_str(), |(p, _)| p);
    let _span = tracing::debug_span!("http", %method, path).entered();
    if routed.needs_token && !authorized(&req, token) {
        let _ = req.respond(json(401, &serde_json::json!({"error": {"code": "E-AGENT-API", "message": "missing or wrong bearer token", "hint": "send `Authorization: Bearer <token>`; the token is api.token in the agent's data dir"}})));
        return;
    }
    let dry = routed.dry;
    let resp = match routed.route {
        Route::Health => json(
            200,
            &serde_json::json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "uptimeSeconds": agent.started.elapsed().as_secs(),
                "planStatus": agent.status_str(),
            }),
        ),
        Route::Metrics => Response::from_data(crate::metrics::render(agent).into_bytes())
            .with_status_code(200)
            .with_header(header("Content-Type", "text/plain; version=0.0.4")),
        Route::Components => json(200, &serde_json::json!(agent.components())),
        Route::PlanStatus => json(200, &agent.plan_status()),
        Route::PlanGraph => json(200, &agent.graph()),
        Route::Apply => match read_body(&mut req) {
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
        Route::StopPlan => match agent.stop_plan() {
            Ok(order) => json(
                200,
                &serde_json::json!({"status": "stopped", "stopOrder": order}),
            ),
            Err(e) => error(&e),
        },
        Route::StopComponent(name) => match agent.stop_component(&name, dry) {
            Ok(v) => json(200, &v),
            Err(e) => error(&e),
        },
        Route::RestartComponent(name) => match agent.restart_component(&name, dry) {
            Ok(v) => json(200, &v),
            Err(e) => error(&e),
        },
        Route::NotFound(message) => error(&AgentError::NotFound(message)),
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

/// The body of `POST /v1/plan/apply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyBody {
    /// `{"planPath": "...", "dry": bool}`: apply the plan file at that path.
    Path { plan_path: PathBuf, dry: bool },
    /// A TOML plan (not parsed yet: the agent saves it, then reads it as a file).
    Toml(String),
}

/// Reads the body of an apply request: JSON when `json_type` (a JSON `Content-Type`) or
/// when it starts with `{`, else the UTF-8 text of a TOML plan.
pub fn apply_body(json_type: bool, body: &[u8]) -> Result<ApplyBody, AgentError> {
    if json_type || body.first() == Some(&b'{') {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        struct Wire {
            plan_path: String,
            #[serde(default)]
            dry: bool,
        }
        let b: Wire = serde_json::from_slice(body).map_err(|e| {
            AgentError::Usage(format!(
                "bad apply request: {e} (want {{\"planPath\": \"…\", \"dry\": false}})"
            ))
        })?;
        return Ok(ApplyBody::Path {
            plan_path: PathBuf::from(b.plan_path),
            dry: b.dry,
        });
    }
    let text =
        std::str::from_utf8(body).map_err(|_| AgentError::Usage("the plan is not UTF-8".into()))?;
    Ok(ApplyBody::Toml(text.to_owned()))
}

/// `{"planPath": "...", "dry": bool}`, or a TOML plan (Keystone's upload), which is
/// saved under `plans/` in the data dir and applied from there.
fn apply_request(
    agent: &Agent,
    req: &Request,
    body: &[u8],
    dry_query: bool,
) -> Result<crate::agent::ApplyReport, AgentError> {
    let json_type = req
        .headers()
        .iter()
        .any(|h| h.field.equiv("Content-Type") && h.value.as_str().contains("json"));
    let text = match apply_body(json_type, body)? {
        ApplyBody::Path { plan_path, dry } => {
            return agent.apply(PlanSource::File(plan_path), dry || dry_query);
        }
        ApplyBody::Toml(text) => text,
    };
    let dir = agent.layout.root.join("plans");
    std::fs::create_dir_all(&dir).map_err(|e| AgentError::io(&dir, e))?;
    let path = dir.join("uploaded.toml");
    std::fs::write(&path, text).map_err(|e| AgentError::io(&path, e))?;
    agent.apply(PlanSource::File(path), dry_query)
}
