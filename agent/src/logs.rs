//! Per-component logs: one pipe carries a component's stdout and stderr to a reader
//! thread of the agent (no helper process), which appends to `logs/<name>.log` and
//! rotates it to `<name>.log.1` at the cap, so a flooding component costs at most two
//! caps of disk and never blocks on a full pipe.

use std::fs::{File, OpenOptions};
use std::io::{PipeReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes per log file before it rotates.
pub const LOG_CAP: u64 = 1024 * 1024;

/// Starts the reader thread for one process's output.
pub fn spawn_reader(mut pipe: PipeReader, path: PathBuf, bytes_total: Arc<AtomicU64>) {
    let spawned = std::thread::Builder::new()
        .name("log".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut sink = Sink::open(&path);
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        bytes_total.fetch_add(n as u64, Ordering::Relaxed);
                        sink.write(&buf[..n]);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start a log reader thread: {e}");
    }
}

struct Sink {
    path: PathBuf,
    file: Option<File>,
    size: u64,
}

impl Sink {
    fn open(path: &Path) -> Self {
        let file = OpenOptions::new().create(true).append(true).open(path).ok();
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        Sink {
            path: path.to_path_buf(),
            file,
            size,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.size + bytes.len() as u64 > LOG_CAP {
            let mut rotated = self.path.clone().into_os_string();
            rotated.push(".1");
            let _ = std::fs::rename(&self.path, &rotated);
            *self = Sink::open(&self.path);
        }
        if let Some(f) = &mut self.file
            && f.write_all(bytes).is_ok()
        {
            self.size += bytes.len() as u64;
        }
    }
}
