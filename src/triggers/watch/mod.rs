//! The polling watcher (issue 8): compares the tree with a snapshot every poll and says
//! which watched files were created, modified (content changed) or deleted. It knows
//! nothing of tasks or the engine: `session` turns its changes into tasks.
//!
//! Polling, not inotify, so it behaves the same on network filesystems, containers, WSL and
//! macOS. See `tree` for how a poll stays cheap, `snapshot` for the persisted form.

pub mod debounce;
pub mod filter;
pub mod session;
pub mod snapshot;
pub mod sys;
pub mod tree;

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use filter::Filter;
pub use tree::{Changes, Note, Stats};
use tree::{Dir, Scanner};

/// What to watch.
#[derive(Debug, Clone)]
pub struct Options {
    pub root: PathBuf,
    /// Never entered; the snapshot is kept here.
    pub state_dir: PathBuf,
    pub paths: Vec<String>,
    pub exclude: Vec<String>,
    pub respect_gitignore: bool,
    /// Re-list and re-hash everything every N polls (0: never).
    pub full_hash_every: u64,
    /// Threads for a poll: 1 or 2 (see `tree::Scanner::enter_all`).
    pub threads: usize,
}

impl Options {
    /// What `triggers.file_watch` asks the session to watch in `env`'s repository
    /// (`gitignore`: false when `--no-gitignore` turns `respect_gitignore` off).
    /// `BGRUN_WATCH_THREADS=1` walks on one thread (for comparison in the benchmark).
    pub fn of(env: &crate::engine::Env, gitignore: bool, full_hash_every: u64) -> Options {
        let fw = &env.config.triggers.file_watch;
        Options {
            root: env.repo.clone(),
            state_dir: env.state_dir.clone(),
            paths: fw.paths.clone(),
            exclude: fw.exclude_paths.clone(),
            respect_gitignore: fw.respect_gitignore && gitignore,
            full_hash_every,
            threads: match std::env::var("BGRUN_WATCH_THREADS").ok().as_deref() {
                Some("1") => 1,
                _ => std::thread::available_parallelism().map_or(1, |n| n.get().min(2)),
            },
        }
    }
}

/// The result of one poll.
#[derive(Debug, Clone, Default)]
pub struct Poll {
    pub changes: Changes,
    /// Problems met for the first time (each is reported once per watcher).
    pub notes: Vec<Note>,
    pub stats: Stats,
    /// The first poll without a snapshot: it only records the baseline.
    pub baseline: bool,
    pub elapsed: Duration,
}

/// How loading the persisted snapshot went.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// Loaded: this many files.
    Files(usize),
    /// No snapshot yet.
    Missing,
    /// Written for other paths/excludes/gitignore settings: a new baseline is taken.
    Stale,
    /// Unreadable or damaged (the message): a new baseline is taken.
    Damaged(String),
}

pub struct Watcher {
    opts: Options,
    filter: Filter,
    fingerprint: u64,
    tree: Option<Dir>,
    exclude_key: Option<sys::Key>,
    polls: u64,
    reported: HashSet<Note>,
    dirty: bool,
}

pub const SNAPSHOT_FILE: &str = "watch.snapshot";

fn wall_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Watcher {
    pub fn new(opts: Options) -> Result<Watcher> {
        let filter = Filter::new(
            &opts.root,
            &opts.paths,
            &opts.exclude,
            opts.respect_gitignore,
        )?;
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(&snapshot::VERSION.to_le_bytes());
        h.update(opts.root.as_os_str().as_bytes());
        for list in [&opts.paths, &opts.exclude] {
            h.update(b"\0list");
            for g in list {
                h.update(b"\0");
                h.update(g.as_bytes());
            }
        }
        h.update(&[u8::from(opts.respect_gitignore)]);
        Ok(Watcher {
            fingerprint: h.digest(),
            opts,
            filter,
            tree: None,
            exclude_key: None,
            polls: 0,
            reported: HashSet::new(),
            dirty: false,
        })
    }

    pub fn snapshot_path(&self) -> PathBuf {
        self.opts.state_dir.join(SNAPSHOT_FILE)
    }

    /// Load the persisted snapshot, if any.
    pub fn load(&mut self) -> Loaded {
        let path = self.snapshot_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Missing,
            Err(e) => return Loaded::Damaged(format!("cannot read {}: {e}", path.display())),
        };
        match snapshot::decode(&bytes) {
            Ok((h, _)) if h.fingerprint != self.fingerprint => Loaded::Stale,
            Ok((h, tree)) => {
                let n = tree.count().0;
                self.exclude_key = h.exclude_key;
                self.tree = Some(tree);
                Loaded::Files(n)
            }
            Err(e) => Loaded::Damaged(format!("{}: {e:#}", path.display())),
        }
    }

    /// Persist the snapshot (atomically) if it changed since the last save.
    pub fn save(&mut self) -> Result<()> {
        let Some(tree) = &self.tree else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        let h = snapshot::Header {
            fingerprint: self.fingerprint,
            exclude_key: self.exclude_key,
        };
        let bytes = snapshot::encode(&h, tree);
        crate::state::store::ensure_private_dir(&self.opts.state_dir)?;
        crate::state::store::write_atomic(&self.snapshot_path(), &bytes, false)
            .context("cannot save the watch snapshot")?;
        self.dirty = false;
        Ok(())
    }

    /// (watched files, folders walked) in the snapshot.
    pub fn counts(&self) -> (usize, usize) {
        self.tree.as_ref().map(Dir::count).unwrap_or((0, 0))
    }

    /// Walk the tree once and compare it with the snapshot.
    pub fn poll(&mut self) -> Result<Poll> {
        let started = Instant::now();
        self.polls += 1;
        // git's racy rule: a file whose mtime is in this second may change again unseen.
        let racy_from = (wall_ns() / 1_000_000_000) * 1_000_000_000;
        let full =
            self.opts.full_hash_every > 0 && self.polls.is_multiple_of(self.opts.full_hash_every);
        let root_fd = sys::open_dir(&self.opts.root)
            .with_context(|| format!("cannot open {}", self.opts.root.display()))?;
        let exclude_key = if self.opts.respect_gitignore {
            std::fs::symlink_metadata(self.opts.root.join(".git/info/exclude"))
                .ok()
                .map(|m| sys::key_of(&m))
        } else {
            None
        };
        let baseline = self.tree.is_none();
        let force = exclude_key != self.exclude_key;
        self.exclude_key = exclude_key;
        let mut tree = self.tree.take().unwrap_or_default();
        let skip = self.opts.state_dir.clone();
        let mut sc = Scanner::new(&self.opts.root, &self.filter, Some(&skip), racy_from);
        sc.full = full;
        sc.threads = self.opts.threads;
        let mut stack = Vec::new();
        sc.scan_dir(&root_fd, &mut tree, &mut stack, force);
        self.tree = Some(tree);
        self.dirty |= sc.dirty || baseline || force;
        let mut changes = if baseline {
            Changes::default()
        } else {
            std::mem::take(&mut sc.changes)
        };
        changes.sort();
        let notes = sc
            .notes
            .drain(..)
            .filter(|n| self.reported.insert(n.clone()))
            .collect();
        Ok(Poll {
            changes,
            notes,
            stats: sc.stats,
            baseline,
            elapsed: started.elapsed(),
        })
    }

    /// Whether every path (repo-relative) still has the stat key the last poll saw: the
    /// debounced changes are settled. A path the snapshot does not have must be absent.
    pub fn settled<'a>(&self, paths: impl Iterator<Item = &'a Vec<u8>>) -> bool {
        let Some(tree) = &self.tree else {
            return true;
        };
        for rel in paths {
            let abs = self.opts.root.join(std::ffi::OsStr::from_bytes(rel));
            let now = std::fs::symlink_metadata(&abs)
                .ok()
                .map(|m| sys::key_of(&m));
            if now != tree.find(rel).map(|f| f.key) {
                return false;
            }
        }
        true
    }

    pub fn root(&self) -> &Path {
        &self.opts.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watcher(root: &Path, full_hash_every: u64) -> Watcher {
        Watcher::new(Options {
            root: root.to_path_buf(),
            state_dir: root.join(".bgrun"),
            paths: vec!["**/*.py".into()],
            exclude: vec![],
            respect_gitignore: false,
            full_hash_every,
            threads: 2,
        })
        .unwrap()
    }

    /// Make the snapshot believe it saw the file as it is now (a filesystem whose mtimes lie).
    fn forge_key(w: &mut Watcher, name: &[u8], racy: bool) {
        let key = sys::key_of(&std::fs::symlink_metadata(w.root().join("a.py")).unwrap());
        let tree = w.tree.as_mut().unwrap();
        let f = tree.files.iter_mut().find(|f| &*f.name == name).unwrap();
        f.key = key;
        f.racy = racy;
    }

    #[test]
    fn racy_entries_are_rehashed_and_full_hash_catches_lying_mtimes() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::write(root.join("a.py"), "aaaa").unwrap();
        let mut w = watcher(root, 4);
        assert!(w.poll().unwrap().baseline);
        // Written in the same second as the poll that recorded it: racy.
        assert!(w.tree.as_ref().unwrap().files[0].racy);

        // Same size, same key, but racy: re-hashed, so the change is seen.
        std::fs::write(root.join("a.py"), "bbbb").unwrap();
        forge_key(&mut w, b"a.py", true);
        assert_eq!(w.poll().unwrap().changes.modified, vec![b"a.py".to_vec()]);

        // Not racy and the key matches: a plain poll cannot see it, the full-hash poll does.
        std::fs::write(root.join("a.py"), "cccc").unwrap();
        forge_key(&mut w, b"a.py", false);
        assert!(w.poll().unwrap().changes.is_empty());
        assert_eq!(w.poll().unwrap().changes.modified, vec![b"a.py".to_vec()]);
    }

    #[test]
    fn snapshot_round_trips_through_the_state_dir() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for i in 0..30 {
            std::fs::create_dir_all(root.join(format!("d{}", i % 4))).unwrap();
            std::fs::write(root.join(format!("d{}/f{i}.py", i % 4)), format!("{i}")).unwrap();
        }
        let mut w = watcher(root, 0);
        w.poll().unwrap();
        w.save().unwrap();
        let mut again = watcher(root, 0);
        assert_eq!(again.load(), Loaded::Files(30));
        std::fs::write(root.join("d1/f1.py"), "changed").unwrap();
        std::fs::remove_file(root.join("d2/f2.py")).unwrap();
        let p = again.poll().unwrap();
        assert!(!p.baseline);
        assert_eq!(p.changes.modified, vec![b"d1/f1.py".to_vec()]);
        assert_eq!(p.changes.deleted, vec![b"d2/f2.py".to_vec()]);
        // Other settings: the snapshot is not used.
        let mut other = watcher(root, 0);
        other.opts.paths.push("**/*.rs".into());
        let mut other = Watcher::new(other.opts.clone()).unwrap();
        assert_eq!(other.load(), Loaded::Stale);
    }
}
