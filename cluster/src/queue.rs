//! The cluster profile's work queue on NATS JetStream, from synchronous code: one stream
//! (`FROYO_WORK`, WorkQueue retention, file storage, subjects `froyo.work.>`) and, per
//! scope (a project's state namespace), one durable pull consumer (`workers_<scope>`,
//! filtered on `froyo.work.<scope>.>`) shared by every worker of that project: a WorkQueue
//! stream admits no overlapping consumers, and two projects on one server must never take
//! each other's items. A message is kept until acked; one not acked within
//! `ack_wait` is delivered again (to any worker) with its delivery count raised, which
//! callers use as the attempt number that fences a stale worker. Publishing the same
//! message id twice inside the duplicate window stores it once (`Nats-Msg-Id`).
//!
//! Invariant: a password in a URL never reaches a message (see [`crate::pg::redact_url`]).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;

use crate::Error;
use crate::pg::redact_url;
use crate::rt::Rt;

pub const STREAM: &str = "FROYO_WORK";
/// Consumers are `workers_<scope>`.
pub const CONSUMER: &str = "workers";
/// Subjects are `froyo.work.<scope>.<run>`.
pub const SUBJECTS: &str = "froyo.work.>";

/// The consumer's timing.
#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    /// How long a worker may hold an item without acking or reporting progress.
    pub ack_wait: Duration,
    /// Deliveries before an item is given up.
    pub max_deliver: i64,
    /// How long a re-published id is recognised as a duplicate.
    pub duplicate_window: Duration,
}

impl Default for QueueConfig {
    fn default() -> QueueConfig {
        QueueConfig {
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            duplicate_window: Duration::from_secs(600),
        }
    }
}

/// A connection to the work queue.
pub struct Queue {
    rt: Arc<Rt>,
    js: jetstream::Context,
    consumer: consumer::PullConsumer,
    scope: String,
    config: QueueConfig,
    shown: String,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("url", &self.shown).finish()
    }
}

/// What publishing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub sequence: u64,
    /// The id was seen inside the duplicate window: nothing new was stored.
    pub duplicate: bool,
}

fn queue_err(shown: &str) -> impl Fn(String) -> Error + '_ {
    move |message| Error::Queue {
        url: shown.to_owned(),
        message,
    }
}

impl Queue {
    /// Connects to `url` (`nats://HOST:PORT`) and creates the stream and the consumer of
    /// `scope` (a plain identifier: letters, digits, `_`) when they do not exist yet.
    pub fn connect(url: &str, scope: &str, config: QueueConfig) -> Result<Queue, Error> {
        let shown = redact_url(url);
        let err = queue_err(&shown);
        if !url.starts_with("nats://") {
            return Err(err("it must start with nats://".into()));
        }
        if scope.is_empty()
            || !scope
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(err(format!("`{scope}` is not a plain scope name")));
        }
        let (consumer_name, filter) = (
            format!("{CONSUMER}_{scope}"),
            format!("froyo.work.{scope}.>"),
        );
        let rt = Rt::new("froyo-nats").map_err(&err)?;
        let password = crate::pg::password_of(url);
        let url = url.to_owned();
        let made = rt
            .block(async move {
                let client = async_nats::ConnectOptions::new()
                    .connection_timeout(Duration::from_secs(5))
                    .connect(url.as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                let js = jetstream::new(client);
                let stream = js
                    .get_or_create_stream(stream::Config {
                        name: STREAM.into(),
                        subjects: vec![SUBJECTS.into()],
                        retention: stream::RetentionPolicy::WorkQueue,
                        storage: stream::StorageType::File,
                        duplicate_window: config.duplicate_window,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| format!("stream {STREAM}: {e}"))?;
                let consumer = stream
                    .get_or_create_consumer(
                        &consumer_name,
                        consumer::pull::Config {
                            durable_name: Some(consumer_name.clone()),
                            filter_subject: filter,
                            ack_policy: consumer::AckPolicy::Explicit,
                            ack_wait: config.ack_wait,
                            max_deliver: config.max_deliver,
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(|e| format!("consumer {consumer_name}: {e}"))?;
                Ok::<_, String>((js, consumer))
            })
            .unwrap_or_else(|| Err("the connection task ended early".into()));
        let (js, consumer) = made.map_err(|m| match &password {
            Some(p) => err(m.replace(p.as_str(), "***")),
            None => err(m),
        })?;
        Ok(Queue {
            rt,
            js,
            consumer,
            scope: scope.to_owned(),
            config,
            shown: shown.clone(),
        })
    }

    /// The timing this connection was made with (the consumer keeps the timing it was
    /// created with first).
    pub fn config(&self) -> QueueConfig {
        self.config
    }

    /// Publishes `payload` on `froyo.work.<scope>.<suffix>` with message id
    /// `<scope>/<id>`; waits for the stream to store it.
    pub fn publish(&self, suffix: &str, id: &str, payload: Vec<u8>) -> Result<Published, Error> {
        let js = self.js.clone();
        let (subject, id) = (
            format!("froyo.work.{}.{suffix}", self.scope),
            format!("{}/{id}", self.scope),
        );
        self.rt
            .block(async move {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", id.as_str());
                let ack = js
                    .publish_with_headers(subject, headers, payload.into())
                    .await
                    .map_err(|e| e.to_string())?
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Published {
                    sequence: ack.sequence,
                    duplicate: ack.duplicate,
                })
            })
            .unwrap_or_else(|| Err("the publish task ended early".into()))
            .map_err(queue_err(&self.shown))
    }

    /// The next item, waiting up to `wait` for one.
    pub fn take(&self, wait: Duration) -> Result<Option<WorkItem>, Error> {
        let consumer = self.consumer.clone();
        let got = self
            .rt
            .block(async move {
                let mut batch = consumer
                    .fetch()
                    .max_messages(1)
                    .expires(wait)
                    .messages()
                    .await
                    .map_err(|e| e.to_string())?;
                match batch.next().await {
                    Some(Ok(m)) => Ok(Some(m)),
                    Some(Err(e)) => Err(e.to_string()),
                    None => Ok(None),
                }
            })
            .unwrap_or_else(|| Err("the fetch task ended early".into()))
            .map_err(queue_err(&self.shown))?;
        Ok(got.map(|msg| {
            let attempt = msg.info().map(|i| i.delivered).unwrap_or(1);
            WorkItem {
                subject: msg.subject.to_string(),
                payload: msg.payload.to_vec(),
                attempt,
                msg,
                rt: self.rt.clone(),
                shown: self.shown.clone(),
            }
        }))
    }

    /// Messages the stream holds (not yet acked).
    pub fn backlog(&self) -> Result<u64, Error> {
        let js = self.js.clone();
        self.rt
            .block(async move {
                let mut stream = js.get_stream(STREAM).await.map_err(|e| e.to_string())?;
                let info = stream.info().await.map_err(|e| e.to_string())?;
                Ok(info.state.messages)
            })
            .unwrap_or_else(|| Err("the info task ended early".into()))
            .map_err(queue_err(&self.shown))
    }

    pub fn shown_url(&self) -> &str {
        &self.shown
    }
}

/// One item taken from the queue; ack it when done, or nak it to have it delivered
/// again. Dropped without either, it is delivered again after `ack_wait`.
pub struct WorkItem {
    pub subject: String,
    pub payload: Vec<u8>,
    /// 1 on the first delivery, then one more on each redelivery.
    pub attempt: i64,
    msg: jetstream::Message,
    rt: Arc<Rt>,
    shown: String,
}

impl std::fmt::Debug for WorkItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkItem")
            .field("subject", &self.subject)
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl WorkItem {
    fn reply(&self, kind: jetstream::AckKind, double: bool) -> Result<(), Error> {
        let msg = self.msg.clone();
        self.rt
            .block(async move {
                if double {
                    msg.double_ack_with(kind).await
                } else {
                    msg.ack_with(kind).await
                }
                .map_err(|e| e.to_string())
            })
            .unwrap_or_else(|| Err("the ack task ended early".into()))
            .map_err(queue_err(&self.shown))
    }

    /// Done: the stream forgets the item. Waits for the server to confirm, so an ack
    /// that arrives after the item was given to another worker is reported.
    pub fn ack(self) -> Result<(), Error> {
        self.reply(jetstream::AckKind::Ack, true)
    }

    /// Still working: the `ack_wait` clock starts again.
    pub fn progress(&self) -> Result<(), Error> {
        self.reply(jetstream::AckKind::Progress, false)
    }

    /// Given up: never deliver it again.
    pub fn term(self) -> Result<(), Error> {
        self.reply(jetstream::AckKind::Term, false)
    }

    /// Failed for now: deliver it again after `delay`.
    pub fn nak(self, delay: Duration) -> Result<(), Error> {
        self.reply(jetstream::AckKind::Nak(Some(delay)), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a real `nats-server -js`: duplicates are stored once, an item not acked
    /// comes back with a higher attempt, a nak brings it back, an ack removes it.
    #[test]
    fn items_are_deduplicated_redelivered_and_acked() {
        let server = crate::testing::NatsServer::start().unwrap();
        let config = QueueConfig {
            ack_wait: Duration::from_secs(1),
            ..QueueConfig::default()
        };
        let q = Queue::connect(&server.url(), "proj", config).unwrap();
        // Another project's consumer on the same stream never sees these items.
        let stranger = Queue::connect(&server.url(), "other", config).unwrap();
        let a = q.publish("1", "1/web", b"web".to_vec()).unwrap();
        assert!(!a.duplicate);
        let again = q.publish("1", "1/web", b"web".to_vec()).unwrap();
        assert!(again.duplicate);
        assert_eq!(again.sequence, a.sequence);
        q.publish("1", "1/db", b"db".to_vec()).unwrap();
        assert_eq!(q.backlog().unwrap(), 2);

        // A second connection (another worker) shares the one consumer.
        let other = Queue::connect(&server.url(), "proj", config).unwrap();
        let first = q.take(Duration::from_secs(2)).unwrap().unwrap();
        assert_eq!((first.payload.as_slice(), first.attempt), (&b"web"[..], 1));
        let second = other.take(Duration::from_secs(2)).unwrap().unwrap();
        assert_eq!(second.payload, b"db");
        second.nak(Duration::from_millis(100)).unwrap();
        // `first` is neither acked nor naked: after ack_wait it comes back.
        drop(first);
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while seen.len() < 2 && std::time::Instant::now() < deadline {
            if let Some(item) = other.take(Duration::from_secs(1)).unwrap() {
                seen.push((item.payload.clone(), item.attempt));
                item.ack().unwrap();
            }
        }
        seen.sort();
        assert_eq!(seen, [(b"db".to_vec(), 2), (b"web".to_vec(), 2)]);
        assert_eq!(q.backlog().unwrap(), 0);
        assert!(q.take(Duration::from_millis(200)).unwrap().is_none());
        assert!(stranger.take(Duration::from_millis(200)).unwrap().is_none());
    }

    #[test]
    fn an_unreachable_queue_is_a_clear_error() {
        let port = crate::testing::free_port();
        let err = Queue::connect(
            &format!("nats://u:s3cret@127.0.0.1:{port}"),
            "proj",
            QueueConfig::default(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Queue { .. }), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
