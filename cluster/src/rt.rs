//! A small Tokio runtime owned by a client, so synchronous callers (the engine's `Store`
//! trait, its worker threads) can wait for async clients without ever blocking on
//! another runtime's thread, which panics in Tokio.

use std::future::Future;
use std::sync::Arc;

/// The runtime, shut down without waiting when the last user is gone (dropping a Tokio
/// runtime the ordinary way panics inside another runtime's context).
pub(crate) struct Rt(Option<tokio::runtime::Runtime>);

impl Rt {
    pub(crate) fn new(name: &str) -> Result<Arc<Rt>, String> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .map(|rt| Arc::new(Rt(Some(rt))))
            .map_err(|e| format!("cannot start the runtime: {e}"))
    }

    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("runtime present until drop")
            .handle()
    }

    /// Runs `fut` on this runtime and waits for it; `None` if the task was dropped
    /// (the runtime is shutting down).
    pub(crate) fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle().spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().ok()
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}
