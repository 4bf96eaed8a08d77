//! The cluster profile's clients for the shared servers a fleet of controllers and
//! workers meet at: PostgreSQL for the state ([`pg`]), NATS JetStream for the work queue
//! ([`queue`]). The engine's semantics (tables,
//! migrations, what a lock means) stay in the `froyo` crate; this crate only knows how to
//! talk to the servers, and how to start real ones for tests ([`testing`]).

pub mod pg;
pub mod queue;
mod rt;
pub mod testing;

/// What can go wrong talking to a cluster server. URLs in messages are redacted.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    #[error("`{url}` is not a usable PostgreSQL URL: {message}")]
    #[diagnostic(
        code("E-STATE"),
        help("write it as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
    )]
    Url { url: String, message: String },

    #[error("cannot reach PostgreSQL at `{url}`: {message}")]
    #[diagnostic(
        code("E-STATE"),
        help("check that the server runs and accepts this user from this machine")
    )]
    Connect { url: String, message: String },

    #[error("PostgreSQL at `{url}`: {message}")]
    #[diagnostic(code("E-STATE"))]
    Query { url: String, message: String },

    #[error("work queue `{url}`: {message}")]
    #[diagnostic(
        code("E-QUEUE"),
        help(
            "check that nats-server runs with JetStream enabled (`nats-server -js`) and the URL is nats://HOST:PORT"
        )
    )]
    Queue { url: String, message: String },
}
