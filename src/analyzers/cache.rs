//! The result cache: one tool's findings for one file, keyed by (tool, tool version, the
//! tool's own config files, bgrun's analyzer options, the file's path and content hash).
//!
//! One JSON file per entry under `<state>/cache/results/xx/<hash>.json`, written to a
//! temporary name and renamed into place, so concurrent drainers never see half an entry.
//! An entry carries its full key and a checksum of its body: a damaged, partial or
//! colliding entry is a miss (and is removed), never an answer. Bounded by size: when the
//! directory grows past its limit the least recently used entries (mtime, touched on a
//! hit) go first. Also the last result of each project-wide tool, for `unchanged since`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

use super::findings::{Finding, ToolRun};

/// Default bound of the cache directory.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// A stable 128-bit hex digest.
pub fn digest(parts: &[&[u8]]) -> String {
    let mut buf = Vec::new();
    for p in parts {
        buf.extend_from_slice(&(p.len() as u64).to_le_bytes());
        buf.extend_from_slice(p);
    }
    format!("{:032x}", xxh3_128(&buf))
}

/// The key of one file's result for one tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    /// `tool_key`: tool name, version, config and options digest (one per tool per run);
    /// `path`: repo-relative file; `content`: the file's bytes.
    pub fn new(tool_key: &str, path: &str, content: &[u8]) -> Key {
        Key(format!("{tool_key}\u{0}{path}\u{0}{}", digest(&[content])))
    }

    fn file_name(&self) -> String {
        digest(&[self.0.as_bytes()])
    }
}

/// An entry on disk. The body is kept as the exact JSON text its checksum was taken of:
/// parsing and re-serializing it would not give the same bytes back for every float (a
/// tool run's `duration_s`), and an intact entry must never look damaged.
#[derive(Serialize, Deserialize)]
struct Stored {
    key: String,
    sum: String,
    body: String,
}

/// The last result of a project-wide tool.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastRun {
    pub generated_at: String,
    /// Digest of the tool's inputs (paths and contents) at that run.
    #[serde(default)]
    pub inputs: String,
    pub run: ToolRun,
    pub findings: Vec<Finding>,
}

impl LastRun {
    /// A run finished now, with the digest of its inputs (empty where its cache name
    /// already carries them).
    pub fn now(inputs: String, run: &ToolRun, findings: &[Finding]) -> LastRun {
        LastRun {
            generated_at: crate::timefmt::rfc3339(crate::timefmt::now()),
            inputs,
            run: run.clone(),
            findings: findings.to_vec(),
        }
    }
}

/// The cache directory and its bound.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Cache {
    pub fn new(dir: PathBuf, max_bytes: u64) -> Cache {
        Cache { dir, max_bytes }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, sub: &str, name: &str) -> PathBuf {
        let shard = name.get(..2).unwrap_or("00");
        self.dir.join(sub).join(shard).join(format!("{name}.json"))
    }

    fn read<T: for<'de> Deserialize<'de>>(&self, path: &Path, key: &str) -> Option<T> {
        let bytes = std::fs::read(path).ok()?;
        let stored: Stored = match serde_json::from_slice(&bytes) {
            Ok(s) => s,
            Err(_) => {
                let _ = std::fs::remove_file(path);
                return None;
            }
        };
        if stored.key != key {
            return None; // another key with the same file name: a miss, not an answer
        }
        if digest(&[stored.body.as_bytes()]) != stored.sum {
            let _ = std::fs::remove_file(path);
            return None;
        }
        let Ok(body) = serde_json::from_str::<T>(&stored.body) else {
            let _ = std::fs::remove_file(path);
            return None;
        };
        // Touch it: eviction goes by least recent use.
        if let Ok(f) = std::fs::File::options().append(true).open(path) {
            let _ = f.set_modified(SystemTime::now());
        }
        Some(body)
    }

    fn write<T: Serialize>(&self, path: &Path, key: &str, body: &T) {
        let Ok(body) = serde_json::to_string(body) else {
            return;
        };
        let stored = Stored {
            key: key.to_string(),
            sum: digest(&[body.as_bytes()]),
            body,
        };
        let Ok(bytes) = serde_json::to_vec(&stored) else {
            return;
        };
        let Some(parent) = path.parent() else { return };
        if std::fs::create_dir_all(parent).is_err() {
            return;
        }
        let tmp = parent.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        if std::fs::write(&tmp, &bytes).is_ok() && std::fs::rename(&tmp, path).is_ok() {
            return;
        }
        let _ = std::fs::remove_file(&tmp);
    }

    /// One file's findings for one tool, if cached and intact.
    pub fn get(&self, key: &Key) -> Option<Vec<Finding>> {
        self.read(&self.path_of("results", &key.file_name()), &key.0)
    }

    pub fn put(&self, key: &Key, findings: &[Finding]) {
        self.write(
            &self.path_of("results", &key.file_name()),
            &key.0,
            &findings,
        );
    }

    fn last_key(tool: &str, root: &str) -> String {
        format!("last\u{0}{tool}\u{0}{root}")
    }

    /// The last result of a project-wide tool on this root.
    pub fn last(&self, tool: &str, root: &str) -> Option<LastRun> {
        let k = Self::last_key(tool, root);
        self.read(&self.path_of("last", &digest(&[k.as_bytes()])), &k)
    }

    pub fn put_last(&self, tool: &str, root: &str, last: &LastRun) {
        let k = Self::last_key(tool, root);
        self.write(&self.path_of("last", &digest(&[k.as_bytes()])), &k, last);
    }

    /// Keep the results directory under its bound: remove the least recently used entries
    /// until it is at 80% of it. Best effort; entries another process removes meanwhile are
    /// simply gone.
    pub fn trim(&self) {
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        let mut total = 0u64;
        for e in walkdir::WalkDir::new(self.dir.join("results"))
            .into_iter()
            .flatten()
        {
            if !e.file_type().is_file() {
                continue;
            }
            let Ok(m) = e.metadata() else { continue };
            let stale_tmp = e.file_name().to_string_lossy().starts_with(".tmp-")
                && m.modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() > 3600);
            if stale_tmp {
                let _ = std::fs::remove_file(e.path());
                continue;
            }
            total = total.saturating_add(m.len());
            entries.push((
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                m.len(),
                e.path().to_path_buf(),
            ));
        }
        if total <= self.max_bytes {
            return;
        }
        entries.sort();
        let target = self.max_bytes / 10 * 8;
        for (_, len, path) in entries {
            if total <= target {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzers::Severity;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("bgrun-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn hit_miss_and_damage() {
        let c = Cache::new(tmp("hit"), DEFAULT_MAX_BYTES);
        let k = Key::new("bandit 1.8", "a.py", b"print(1)\n");
        assert!(c.get(&k).is_none());
        let f = vec![Finding::new(
            "bandit",
            "B101",
            Severity::Low,
            "a.py",
            "assert",
        )];
        c.put(&k, &f);
        assert_eq!(c.get(&k), Some(f.clone()));
        // Other content, other version: a miss.
        assert!(
            c.get(&Key::new("bandit 1.8", "a.py", b"print(2)\n"))
                .is_none()
        );
        assert!(
            c.get(&Key::new("bandit 1.9", "a.py", b"print(1)\n"))
                .is_none()
        );
        // A truncated entry is a miss, and goes.
        let p = c.path_of("results", &k.file_name());
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        assert!(c.get(&k).is_none());
        assert!(!p.exists());
        // A body that does not match its checksum is a miss.
        c.put(&k, &f);
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("assert", "assext");
        std::fs::write(&p, text).unwrap();
        assert!(c.get(&k).is_none());
        let _ = std::fs::remove_dir_all(c.dir());
    }

    #[test]
    fn an_intact_entry_with_any_float_is_a_hit() {
        // A tool run's duration is an f64; serde_json does not give every float back
        // byte for byte through parse and print, so a checksum over a re-serialized body
        // took intact entries for damaged ones.
        let c = Cache::new(tmp("float"), DEFAULT_MAX_BYTES);
        for i in 0..500u32 {
            let mut run = ToolRun::new("pytest", "tests", crate::analyzers::Status::Ran, "");
            run.duration_s = f64::from(i) * 0.013_717 + 1.0 / 3.0;
            let last = LastRun {
                generated_at: "2026-01-01T00:00:00Z".into(),
                inputs: format!("{i}"),
                run,
                findings: Vec::new(),
            };
            c.put_last("pytest", "", &last);
            let back = c.last("pytest", "");
            assert_eq!(
                back.map(|l| l.inputs),
                Some(format!("{i}")),
                "duration {}",
                last.run.duration_s
            );
        }
        let _ = std::fs::remove_dir_all(c.dir());
    }

    #[test]
    fn trim_evicts_least_recently_used() {
        let c = Cache::new(tmp("trim"), 4000);
        let f = vec![Finding::new(
            "ruff",
            "E501",
            Severity::Low,
            "x.py",
            &"m".repeat(300),
        )];
        let keys: Vec<Key> = (0..20)
            .map(|i| Key::new("ruff", "x.py", format!("{i}").as_bytes()))
            .collect();
        for k in &keys {
            c.put(k, &f);
        }
        // Make the first entry the most recently used.
        let old = SystemTime::now() - std::time::Duration::from_secs(100);
        for k in &keys {
            let p = c.path_of("results", &k.file_name());
            let fh = std::fs::File::options().append(true).open(&p).unwrap();
            fh.set_modified(old).unwrap();
        }
        assert!(c.get(&keys[0]).is_some());
        c.trim();
        let total: u64 = walkdir::WalkDir::new(c.dir())
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert!(total <= 4000, "{total}");
        assert!(c.get(&keys[0]).is_some(), "the recently used entry stays");
        assert!(keys[1..].iter().any(|k| c.get(k).is_none()));
        let _ = std::fs::remove_dir_all(c.dir());
    }
}
