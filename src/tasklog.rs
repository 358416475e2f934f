//! Reading task logs back: finding a task's logs (`<state>/logs/ID-ATTEMPT.log`), the last
//! N lines of one, and following one as it grows (`bgrun log --follow`, `bgrun run`'s live
//! output). Logs are written by the runner's pump; this module only reads them.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The log files of task `id` that exist, by attempt (oldest first).
pub fn logs_of(state_dir: &Path, id: &str) -> Vec<(u32, PathBuf)> {
    let dir = state_dir.join("logs");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let prefix = format!("{id}-");
    let mut out: Vec<(u32, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            let rest = name.strip_prefix(&prefix)?.strip_suffix(".log")?;
            let attempt: u32 = rest.parse().ok()?;
            Some((attempt, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// The newest attempt's log of task `id`, if it has written any output.
pub fn latest(state_dir: &Path, id: &str) -> Option<(u32, PathBuf)> {
    logs_of(state_dir, id).pop()
}

/// The last `n` lines of `bytes` (all of them when `n` is None).
pub fn last_lines(bytes: &[u8], n: Option<usize>) -> &[u8] {
    let Some(n) = n else { return bytes };
    if n == 0 {
        return &bytes[bytes.len()..];
    }
    // A trailing newline ends the last line; it does not start a new one.
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &bytes[i + 1..];
            }
        }
    }
    bytes
}

/// Follows one file from an offset, copying what is appended to `out`.
pub struct Follower {
    path: PathBuf,
    offset: u64,
    file: Option<File>,
}

impl Follower {
    pub fn new(path: PathBuf, offset: u64) -> Follower {
        Follower {
            path,
            offset,
            file: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copy whatever was appended since the last call; returns the bytes copied. A file that
    /// does not exist yet is not an error (the pump creates it on the first output).
    pub fn pump(&mut self, out: &mut dyn Write) -> std::io::Result<u64> {
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(mut f) => {
                    f.seek(SeekFrom::Start(self.offset))?;
                    self.file = Some(f);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            }
        }
        let Some(f) = self.file.as_mut() else {
            return Ok(0);
        };
        let mut buf = [0u8; 16384];
        let mut total = 0u64;
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            out.write_all(&buf[..n])?;
            total += n as u64;
        }
        if total > 0 {
            out.flush()?;
        }
        self.offset += total;
        Ok(total)
    }

    /// Copy appended output until `done()` says the writer has finished, then copy the
    /// rest once more and return. Polls every `every`.
    pub fn follow_until(
        &mut self,
        out: &mut dyn Write,
        every: Duration,
        mut done: impl FnMut() -> bool,
    ) -> std::io::Result<()> {
        loop {
            let finished = done();
            self.pump(out)?;
            if finished {
                return Ok(());
            }
            std::thread::sleep(every);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_counts_lines_not_the_trailing_newline() {
        assert_eq!(last_lines(b"a\nb\nc\n", Some(2)), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", Some(2)), b"b\nc");
        assert_eq!(last_lines(b"a\nb\n", Some(5)), b"a\nb\n");
        assert_eq!(last_lines(b"a\nb\n", Some(0)), b"");
        assert_eq!(last_lines(b"a\nb\n", None), b"a\nb\n");
    }

    #[test]
    fn follower_copies_appends_and_waits_for_a_missing_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.log");
        let mut f = Follower::new(p.clone(), 0);
        let mut out = Vec::new();
        assert_eq!(f.pump(&mut out).unwrap(), 0);
        std::fs::write(&p, b"one\n").unwrap();
        f.pump(&mut out).unwrap();
        let mut h = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        h.write_all(b"two\n").unwrap();
        f.pump(&mut out).unwrap();
        assert_eq!(out, b"one\ntwo\n");
    }

    #[test]
    fn logs_are_found_by_attempt() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("logs")).unwrap();
        for n in ["7-1.log", "7-2.log", "17-1.log", "7-x.log"] {
            std::fs::write(d.path().join("logs").join(n), b"").unwrap();
        }
        let l: Vec<u32> = logs_of(d.path(), "7").into_iter().map(|x| x.0).collect();
        assert_eq!(l, vec![1, 2]);
        assert_eq!(latest(d.path(), "7").unwrap().0, 2);
    }
}
