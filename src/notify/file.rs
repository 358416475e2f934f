//! File channel: a JSON Lines log of every notification, rotated by size.
//!
//! `<path>` is the active file; rotated ones are `<path>.1` (newest) .. `<path>.<keep-1>`,
//! so at most `keep_files` files exist, none over `max_size_kb`. Rotated files older than
//! `retention_days` are dropped. Writers take an `flock` on `<path>.lock`, so processes do
//! not interleave or rotate under each other; a line is written with one `write` and, if
//! that fails (disk full), the file is cut back to where it was: never a half-written event.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::error::io_err;
use super::{Channel, Error, Notification};
use crate::config::FileChannel;
use crate::state::lock;

/// What to do when the file channel's file or directory cannot be written.
const HINT: &str = " (fix it or change notifications.channels.file.path)";

pub struct FileLog {
    pub path: PathBuf,
    pub max_bytes: u64,
    pub keep_files: u32,
    pub retention: Duration,
}

impl FileLog {
    pub fn from_config(c: &FileChannel, repo: &Path) -> FileLog {
        FileLog {
            path: repo.join(&c.path),
            max_bytes: c.max_size_kb.max(1) * 1024,
            keep_files: c.keep_files.max(1),
            retention: Duration::from_secs(c.retention_days.saturating_mul(86400)),
        }
    }

    fn rotated(&self, i: u32) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(format!(".{i}"));
        PathBuf::from(s)
    }

    fn lock_path(&self) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(".lock");
        PathBuf::from(s)
    }

    /// One JSON line, shrunk (metadata dropped, then the message cut) to fit the cap.
    fn line(&self, n: &Notification) -> Result<Vec<u8>, Error> {
        let mut v = serde_json::to_value(n)?;
        let mut line = serde_json::to_vec(&v)?;
        if line.len() as u64 + 1 > self.max_bytes {
            v["metadata"] = Value::Null;
            v["truncated"] = Value::Bool(true);
            let room = (self.max_bytes as usize / 2).saturating_sub(200);
            let msg = n.message.chars().take(room / 4).collect::<String>();
            v["message"] = Value::String(msg);
            let title = n.title.chars().take(room / 4).collect::<String>();
            v["title"] = Value::String(title);
            line = serde_json::to_vec(&v)?;
        }
        line.push(b'\n');
        Ok(line)
    }

    /// Append one event, rotating first when it would pass the cap.
    pub fn append(&self, n: &Notification) -> Result<(), Error> {
        let line = self.line(n)?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err("create the directory", dir, HINT))?;
        }
        let _guard =
            lock::acquire(&self.lock_path(), Duration::from_secs(1)).map_err(|e| Error::State {
                why: crate::error::render(&e),
            })?;
        let size = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if size > 0 && size + line.len() as u64 > self.max_bytes {
            self.rotate().map_err(io_err("rotate", &self.path, ""))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(io_err("open", &self.path, HINT))?;
        let before = f.metadata().map(|m| m.len()).unwrap_or(0);
        if let Err(e) = f.write_all(&line) {
            let _ = f.set_len(before);
            return Err(io_err("write", &self.path, "")(e));
        }
        self.prune_old();
        Ok(())
    }

    /// `<path>` -> `.1` -> `.2` ...; the oldest past `keep_files` is removed.
    fn rotate(&self) -> std::io::Result<()> {
        let k = self.keep_files;
        if k <= 1 {
            return std::fs::remove_file(&self.path);
        }
        self.remove_beyond(k - 1);
        let last = self.rotated(k - 1);
        if last.exists() {
            std::fs::remove_file(&last)?;
        }
        for i in (1..k - 1).rev() {
            let from = self.rotated(i);
            if from.exists() {
                std::fs::rename(&from, self.rotated(i + 1))?;
            }
        }
        std::fs::rename(&self.path, self.rotated(1))
    }

    /// Rotated files numbered past `last` (left by a larger `keep_files`).
    fn remove_beyond(&self, last: u32) {
        let (Some(dir), Some(name)) = (self.path.parent(), self.path.file_name()) else {
            return;
        };
        let mut prefix = name.to_os_string();
        prefix.push(".");
        let prefix = prefix.as_encoded_bytes().to_vec();
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let n = e.file_name();
            let b = n.as_encoded_bytes();
            if let Some(rest) = b.strip_prefix(prefix.as_slice()) {
                let num = std::str::from_utf8(rest)
                    .ok()
                    .and_then(|s| s.parse::<u32>().ok());
                if num.is_some_and(|i| i > last) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// Drop rotated files last written before the retention age.
    fn prune_old(&self) {
        let Some(cutoff) = SystemTime::now().checked_sub(self.retention) else {
            return;
        };
        for i in 1..self.keep_files {
            let p = self.rotated(i);
            let old = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff);
            if old {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

impl Channel for FileLog {
    fn name(&self) -> &'static str {
        "file"
    }

    fn send(&self, n: &Notification) -> Result<(), Error> {
        self.append(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Severity;

    fn log(dir: &Path, kb: u64, keep: u32) -> FileLog {
        FileLog {
            path: dir.join("logs").join("n.jsonl"),
            max_bytes: kb * 1024,
            keep_files: keep,
            retention: Duration::from_secs(30 * 86400),
        }
    }

    #[test]
    fn ten_thousand_events_rotate_without_loss() {
        let dir = tempfile::tempdir().expect("tmp");
        let l = log(dir.path(), 100, 5);
        // Two writers at once, each numbering its own events.
        std::thread::scope(|s| {
            for w in 0..2u64 {
                let l = &l;
                s.spawn(move || {
                    for i in 0..5000u64 {
                        let mut n = Notification::custom(Severity::Info, "t", "event");
                        n.metadata = serde_json::json!({"writer": w, "seq": i});
                        l.append(&n).expect("append");
                    }
                });
            }
        });
        let mut files = vec![l.path.clone()];
        files.extend((1..5).map(|i| l.rotated(i)));
        assert!(!l.rotated(5).exists());
        let mut seqs: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        // Oldest first: .4 .. .1, then the active file.
        for p in files.iter().rev() {
            let text = std::fs::read_to_string(p).expect("kept file");
            assert!(
                text.len() as u64 <= l.max_bytes,
                "{} over the cap",
                p.display()
            );
            assert!(text.ends_with('\n'));
            for line in text.lines() {
                let v: Value = serde_json::from_str(line).expect("valid JSON line");
                let w = v["metadata"]["writer"].as_u64().expect("writer") as usize;
                seqs[w].push(v["metadata"]["seq"].as_u64().expect("seq"));
            }
        }
        // What is kept is, per writer, a gapless run of its last events. How many of each
        // writer's events fall in the kept window depends on how the two interleaved (on a
        // loaded machine one may finish long before the other), so only the total is fixed.
        for s in &seqs {
            if let Some(last) = s.last() {
                assert_eq!(*last, 4999);
            }
            assert!(
                s.windows(2).all(|p| p[1] == p[0] + 1),
                "a gap in the kept events"
            );
        }
        assert!(seqs[0].len() + seqs[1].len() > 1000, "too few events kept");
    }

    #[test]
    fn retention_drops_old_rotated_files_and_extra_ones() {
        let dir = tempfile::tempdir().expect("tmp");
        let l = log(dir.path(), 1, 3);
        let n = Notification::custom(Severity::Info, "t", &"m".repeat(300));
        for _ in 0..10 {
            l.append(&n).expect("append");
        }
        assert!(l.rotated(1).exists() && l.rotated(2).exists());
        let old = SystemTime::now() - Duration::from_secs(31 * 86400);
        std::fs::File::options()
            .write(true)
            .open(l.rotated(2))
            .and_then(|f| f.set_modified(old))
            .expect("age");
        // A write that does not rotate still applies retention.
        std::fs::remove_file(&l.path).expect("rm active");
        l.append(&n).expect("append");
        assert!(!l.rotated(2).exists(), "an old rotated file was kept");
        assert!(l.rotated(1).exists(), "a recent rotated file was dropped");
        // Files left by a larger keep_files go at the next rotation.
        std::fs::write(l.rotated(7), "{}\n").expect("stray");
        for _ in 0..3 {
            l.append(&n).expect("append");
        }
        assert!(!l.rotated(7).exists());
        assert!(!l.rotated(3).exists());
    }

    #[test]
    fn an_oversized_event_is_shrunk_to_fit() {
        let dir = tempfile::tempdir().expect("tmp");
        let l = log(dir.path(), 1, 2);
        let n = Notification::custom(Severity::Info, "t", &"é".repeat(5000));
        l.append(&n).expect("append");
        let text = std::fs::read_to_string(&l.path).expect("read");
        assert!(text.len() <= 1024);
        let v: Value = serde_json::from_str(text.trim_end()).expect("json");
        assert_eq!(v["truncated"], true);
    }

    #[test]
    fn unwritable_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("logs"), "a file, not a directory").expect("write");
        let err = log(dir.path(), 1, 2)
            .append(&Notification::custom(Severity::Info, "t", "m"))
            .expect_err("must fail");
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(
            err.to_string().starts_with("cannot create the directory"),
            "{err}"
        );
    }
}
