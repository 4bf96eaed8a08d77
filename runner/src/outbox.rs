//! The runner's stdout, shared by every command thread: one frame per line, each
//! written whole under a mutex and flushed, so frames from concurrent commands never
//! interleave and the controller sees each as soon as it is complete.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::protocol::RunnerFrame;

/// A cloneable handle on the frame stream.
#[derive(Clone)]
pub struct Outbox {
    sink: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl Outbox {
    pub fn new(sink: impl Write + Send + 'static) -> Self {
        Self {
            sink: Arc::new(Mutex::new(Box::new(sink))),
        }
    }

    /// Writes one frame. A failed write means the controller is gone; the session
    /// notices through stdin EOF, so the error is only logged.
    pub fn send(&self, frame: &RunnerFrame) {
        let mut line = frame.to_line();
        line.push('\n');
        let mut sink = self
            .sink
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(e) = sink.write_all(line.as_bytes()).and_then(|()| sink.flush()) {
            crate::log(&format!("cannot write a frame: {e}"));
        }
    }
}
