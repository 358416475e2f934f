//! The state lock: an exclusive `flock` on `<state>/lock`, waited for with a bound.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::error;

/// Held while alive; the kernel releases it when the process dies, even by `kill -9`.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Release the lock but keep the file open, to take it again without reopening.
    pub fn release(self) -> File {
        let _ = self._file.unlock();
        self._file
    }
}

/// Take the lock, waiting at most `timeout`; past it, a state error (exit 3).
pub fn acquire(path: &Path, timeout: Duration) -> Result<StateLock> {
    let file = OpenOptions::new()
        .custom_flags(libc::O_NOFOLLOW)
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            error::state(format!(
                "cannot open the state lock {}: {e}",
                path.display()
            ))
        })?;
    acquire_file(file, path, timeout)
}

/// Take the lock on an already open lock file.
pub fn acquire_file(file: File, path: &Path, timeout: Duration) -> Result<StateLock> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(StateLock { _file: file }),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(error::state(format!("cannot lock {}: {e}", path.display())));
            }
        }
        if start.elapsed() >= timeout {
            return Err(error::state(format!(
                "the state lock {} was not obtained within {:.1}s: another bgrun holds it \
                 (see `bgrun status`; raise execution.lock_timeout_seconds if this machine is very busy)",
                path.display(),
                timeout.as_secs_f64()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}
