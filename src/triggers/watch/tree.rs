//! The snapshot tree and the walk that compares the disk against it.
//!
//! Each folder remembers its own stat key, its watched files (name, key, content hash) and
//! its sub-folders that are not pruned. A poll stats every folder; a folder whose key is
//! unchanged is not listed again (its set of names cannot have changed): only its known
//! files are stat'ed. A file is hashed only when its key changed, when it was racy (written
//! in the same second as the poll that recorded it, git's rule), or on a full-hash poll.
//! Files that are not watched are never stat'ed nor stored.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::filter::{Filter, LazyIgnore};
use super::sys::{self, Key, Kind};

/// A watched file.
#[derive(Debug, Clone)]
pub struct FileEnt {
    pub name: Box<[u8]>,
    pub key: Key,
    pub hash: u64,
    /// Re-hash on the next poll even if the key is the same (git's racy-timestamp rule, or
    /// the file could not be read).
    pub racy: bool,
    pub symlink: bool,
}

/// A folder of the tree (the root has an empty name).
#[derive(Debug, Clone, Default)]
pub struct Dir {
    pub name: Box<[u8]>,
    /// None: list it on the next poll (new, racy, or a listing failed).
    pub key: Option<Key>,
    /// The key of its `.gitignore`, when it has one.
    pub ignore_key: Option<Key>,
    /// Sorted by name.
    pub files: Vec<FileEnt>,
    /// Sorted by name.
    pub dirs: Vec<Dir>,
    pub ignore: Option<Arc<LazyIgnore>>,
}

impl Dir {
    pub fn new(name: &[u8]) -> Dir {
        Dir {
            name: name.into(),
            ..Dir::default()
        }
    }

    pub fn count(&self) -> (usize, usize) {
        self.dirs.iter().fold((self.files.len(), 1), |(f, d), s| {
            let (sf, sd) = s.count();
            (f + sf, d + sd)
        })
    }

    /// The file at a repo-relative path.
    pub fn find(&self, rel: &[u8]) -> Option<&FileEnt> {
        let mut dir = self;
        let mut parts = rel.split(|b| *b == b'/').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                return dir
                    .files
                    .binary_search_by(|f| (*f.name).cmp(part))
                    .ok()
                    .map(|i| &dir.files[i]);
            }
            let i = dir.dirs.binary_search_by(|d| (*d.name).cmp(part)).ok()?;
            dir = &dir.dirs[i];
        }
        None
    }
}

/// What a poll found, as repo-relative paths (exact bytes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    pub created: Vec<Vec<u8>>,
    pub modified: Vec<Vec<u8>>,
    pub deleted: Vec<Vec<u8>>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.modified.is_empty() && self.deleted.is_empty()
    }
    pub fn len(&self) -> usize {
        self.created.len() + self.modified.len() + self.deleted.len()
    }
    pub fn sort(&mut self) {
        self.created.sort();
        self.modified.sort();
        self.deleted.sort();
    }
}

/// Something odd on the way (vanished file, permission denied...): never fatal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Note {
    pub path: Vec<u8>,
    pub what: String,
    /// A file that vanished between listing and reading: ordinary, shown only with -v.
    pub minor: bool,
}

/// Counters of one poll.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub dirs: usize,
    pub dirs_listed: usize,
    pub files: usize,
    pub hashed: usize,
}

/// One walk over the tree.
pub struct Scanner<'a> {
    pub root: &'a Path,
    pub filter: &'a Filter,
    /// A folder never entered (the state dir), as an absolute path.
    pub skip: Option<&'a Path>,
    /// mtimes at or after this (ns) are racy.
    pub racy_from: i64,
    /// Re-list every folder and re-hash every file.
    pub full: bool,
    pub changes: Changes,
    pub notes: Vec<Note>,
    pub stats: Stats,
    /// Whether the tree changed at all (a key, a hash, a folder): the snapshot needs saving.
    pub dirty: bool,
    /// Threads for the walk (1 or 2).
    pub threads: usize,
    rel: Vec<u8>,
    name_buf: Vec<u8>,
    data_buf: Vec<u8>,
}

fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
    )
}

impl<'a> Scanner<'a> {
    pub fn new(root: &'a Path, filter: &'a Filter, skip: Option<&'a Path>, racy_from: i64) -> Self {
        Scanner {
            root,
            filter,
            skip,
            racy_from,
            full: false,
            changes: Changes::default(),
            notes: Vec::new(),
            stats: Stats::default(),
            dirty: false,
            threads: 1,
            rel: Vec::new(),
            name_buf: Vec::new(),
            data_buf: Vec::new(),
        }
    }

    fn child_rel(&self, name: &[u8]) -> Vec<u8> {
        let mut r = Vec::with_capacity(self.rel.len() + 1 + name.len());
        if !self.rel.is_empty() {
            r.extend_from_slice(&self.rel);
            r.push(b'/');
        }
        r.extend_from_slice(name);
        r
    }

    fn abs(&self, rel: &[u8]) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        if rel.is_empty() {
            self.root.to_path_buf()
        } else {
            self.root.join(std::ffi::OsStr::from_bytes(rel))
        }
    }

    fn note(&mut self, rel: Vec<u8>, what: impl Into<String>, minor: bool) {
        self.notes.push(Note {
            path: rel,
            what: what.into(),
            minor,
        });
    }

    fn racy(&self, k: &Key) -> bool {
        k.mtime >= self.racy_from
    }

    /// Walk the folder open at `fd` against `dir`.
    pub fn scan_dir(
        &mut self,
        fd: &OwnedFd,
        dir: &mut Dir,
        stack: &mut Vec<Arc<LazyIgnore>>,
        mut force: bool,
    ) {
        self.stats.dirs += 1;
        let key = match sys::stat_fd(fd.as_raw_fd()) {
            Ok(s) => s.key,
            Err(e) => {
                let rel = self.rel.clone();
                self.note(rel, format!("cannot stat folder: {e}"), false);
                return;
            }
        };
        if self.filter.respect_gitignore && dir.ignore_key.is_some() {
            let now = sys::stat_at(fd.as_raw_fd(), b".gitignore", &mut self.name_buf)
                .ok()
                .map(|s| s.key);
            if now != dir.ignore_key {
                // Its rules changed: every folder below may see different names.
                force = true;
            }
        }
        if force || self.full || dir.key != Some(key) {
            self.relist(fd, dir, stack, force);
        } else {
            self.restat(fd, dir, stack);
        }
        let stored = if self.racy(&key) { None } else { Some(key) };
        if dir.key != stored {
            dir.key = stored;
            self.dirty = true;
        }
    }

    /// The folder's names are unchanged: stat its known files and walk its known folders.
    fn restat(&mut self, fd: &OwnedFd, dir: &mut Dir, stack: &mut Vec<Arc<LazyIgnore>>) {
        let raw = fd.as_raw_fd();
        let mut lost = false;
        let mut files = std::mem::take(&mut dir.files);
        files.retain_mut(|f| {
            let keep = self.check_known(raw, f);
            lost |= !keep;
            keep
        });
        dir.files = files;
        if let Some(ig) = &dir.ignore {
            stack.push(ig.clone());
        } else if dir.ignore_key.is_some() {
            let ig = Arc::new(LazyIgnore::new(self.abs(&self.rel)));
            dir.ignore = Some(ig.clone());
            stack.push(ig);
        }
        let mut dirs = std::mem::take(&mut dir.dirs);
        let before = dirs.len();
        self.enter_all(raw, &mut dirs, stack, false);
        lost |= dirs.len() != before;
        dir.dirs = dirs;
        if dir.ignore.is_some() {
            stack.pop();
        }
        if lost {
            // A name went away without the folder's mtime saying so: list it next time.
            dir.key = None;
            self.dirty = true;
        }
    }

    /// Stat a known file; false when it is gone (reported deleted).
    fn check_known(&mut self, dirfd: RawFd, f: &mut FileEnt) -> bool {
        self.stats.files += 1;
        match sys::stat_at(dirfd, &f.name, &mut self.name_buf) {
            Ok(st) if matches!(st.kind, Kind::File | Kind::Symlink) => {
                if st.key != f.key || f.racy || self.full || (st.kind == Kind::Symlink) != f.symlink
                {
                    let rel = self.child_rel(&f.name);
                    self.update(dirfd, f, st.key, st.kind, rel);
                }
                true
            }
            Ok(_) => {
                self.changes.deleted.push(self.child_rel(&f.name));
                false
            }
            Err(e) if is_gone(&e) => {
                self.changes.deleted.push(self.child_rel(&f.name));
                false
            }
            Err(e) => {
                let rel = self.child_rel(&f.name);
                self.note(rel, format!("cannot stat: {e}"), false);
                true
            }
        }
    }

    /// Re-hash a file whose key changed; report it modified when its content did.
    fn update(&mut self, dirfd: RawFd, f: &mut FileEnt, key: Key, kind: Kind, rel: Vec<u8>) {
        self.dirty = true;
        match self.hash(dirfd, &f.name, kind, &rel) {
            Some(h) => {
                if h != f.hash || (kind == Kind::Symlink) != f.symlink {
                    self.changes.modified.push(rel);
                }
                f.hash = h;
                f.key = key;
                f.racy = self.racy(&key);
                f.symlink = kind == Kind::Symlink;
            }
            None => f.racy = true,
        }
    }

    fn hash(&mut self, dirfd: RawFd, name: &[u8], kind: Kind, rel: &[u8]) -> Option<u64> {
        self.stats.hashed += 1;
        match sys::hash_at(dirfd, name, kind, &mut self.name_buf, &mut self.data_buf) {
            Ok(h) => Some(h),
            Err(e) => {
                let minor = is_gone(&e);
                self.note(rel.to_vec(), format!("cannot read: {e}"), minor);
                None
            }
        }
    }

    /// Walk sub-folders, dropping the ones that are gone. At the root the work is split
    /// between this thread and one more (by the number of entries below each folder): a
    /// poll is a stream of `fstatat` calls, which the kernel serves in parallel.
    fn enter_all(
        &mut self,
        dirfd: RawFd,
        dirs: &mut Vec<Dir>,
        stack: &mut Vec<Arc<LazyIgnore>>,
        force: bool,
    ) {
        let mut keep = vec![true; dirs.len()];
        if self.rel.is_empty() && self.threads > 1 && dirs.len() > 1 {
            let weights: Vec<usize> = dirs
                .iter()
                .map(|d| {
                    let (f, n) = d.count();
                    f + n
                })
                .collect();
            let total: usize = weights.iter().sum();
            let mut split = 0;
            let mut acc = 0;
            while split < dirs.len() - 1 && acc + weights[split] / 2 < total / 2 {
                acc += weights[split];
                split += 1;
            }
            let split = split.max(1);
            let (a, b) = dirs.split_at_mut(split);
            let (ka, kb) = keep.split_at_mut(split);
            let mut other = Scanner::new(self.root, self.filter, self.skip, self.racy_from);
            other.full = self.full;
            let mut other_stack = stack.clone();
            let other = std::thread::scope(|s| {
                let h = s.spawn(move || {
                    for (d, k) in b.iter_mut().zip(kb.iter_mut()) {
                        *k = other.enter(dirfd, d, &mut other_stack, force);
                    }
                    other
                });
                for (d, k) in a.iter_mut().zip(ka.iter_mut()) {
                    *k = self.enter(dirfd, d, stack, force);
                }
                h.join()
            });
            match other {
                Ok(o) => self.merge(o),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        } else {
            for (d, k) in dirs.iter_mut().zip(keep.iter_mut()) {
                *k = self.enter(dirfd, d, stack, force);
            }
        }
        let mut i = 0;
        dirs.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }

    fn merge(&mut self, o: Scanner) {
        self.changes.created.extend(o.changes.created);
        self.changes.modified.extend(o.changes.modified);
        self.changes.deleted.extend(o.changes.deleted);
        self.notes.extend(o.notes);
        self.stats.dirs += o.stats.dirs;
        self.stats.dirs_listed += o.stats.dirs_listed;
        self.stats.files += o.stats.files;
        self.stats.hashed += o.stats.hashed;
        self.dirty |= o.dirty;
    }

    /// Open a sub-folder and walk it; false when it is gone (its files reported deleted).
    fn enter(
        &mut self,
        dirfd: RawFd,
        d: &mut Dir,
        stack: &mut Vec<Arc<LazyIgnore>>,
        force: bool,
    ) -> bool {
        let len = self.rel.len();
        let rel = self.child_rel(&d.name);
        match sys::open_dir_at(dirfd, &d.name, &mut self.name_buf) {
            Ok(cfd) => {
                self.rel = rel;
                self.scan_dir(&cfd, d, stack, force);
                self.rel.truncate(len);
                true
            }
            Err(e) if is_gone(&e) => {
                deleted_under(d, rel, &mut self.changes.deleted);
                self.dirty = true;
                false
            }
            Err(e) => {
                self.note(rel, format!("cannot open folder: {e}"), false);
                true
            }
        }
    }

    /// List the folder and compare its names with the known ones.
    fn relist(
        &mut self,
        fd: &OwnedFd,
        dir: &mut Dir,
        stack: &mut Vec<Arc<LazyIgnore>>,
        force: bool,
    ) {
        let raw = fd.as_raw_fd();
        self.stats.dirs_listed += 1;
        self.dirty = true;
        let mut entries = match sys::list(fd) {
            Ok(v) => v,
            Err(e) => {
                let rel = self.rel.clone();
                self.note(rel, format!("cannot list folder: {e}"), false);
                return;
            }
        };
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // This folder's own .gitignore applies to its entries.
        let has_ignore =
            self.filter.respect_gitignore && entries.iter().any(|(n, _)| &**n == b".gitignore");
        if has_ignore {
            let k = sys::stat_at(raw, b".gitignore", &mut self.name_buf)
                .ok()
                .map(|s| s.key);
            if k != dir.ignore_key || dir.ignore.is_none() {
                dir.ignore = Some(Arc::new(LazyIgnore::new(self.abs(&self.rel))));
                dir.ignore_key = k;
            }
        } else {
            dir.ignore = None;
            dir.ignore_key = None;
        }
        if let Some(ig) = &dir.ignore {
            stack.push(ig.clone());
        }
        let mut old_files = std::mem::take(&mut dir.files).into_iter().peekable();
        let mut old_dirs = std::mem::take(&mut dir.dirs).into_iter().peekable();
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for (name, kind) in entries {
            if &*name == b".git" {
                continue;
            }
            let kind = match kind {
                Some(k) => k,
                None => match sys::stat_at(raw, &name, &mut self.name_buf) {
                    Ok(s) => s.kind,
                    Err(_) => continue,
                },
            };
            let rel = self.child_rel(&name);
            match kind {
                Kind::Dir => {
                    if self.filter.dir_excluded(&rel) {
                        continue;
                    }
                    let abs = self.abs(&rel);
                    if self.skip.is_some_and(|s| s == abs) || self.filter.ignored(stack, &abs, true)
                    {
                        continue;
                    }
                    while old_dirs.peek().is_some_and(|d| d.name < name) {
                        if let Some(d) = old_dirs.next() {
                            deleted_under(&d, self.child_rel(&d.name), &mut self.changes.deleted);
                        }
                    }
                    match old_dirs.next_if(|d| d.name == name) {
                        Some(d) => dirs.push(d),
                        None => dirs.push(Dir::new(&name)),
                    }
                }
                Kind::File | Kind::Symlink => {
                    if !self.filter.file_watched(&rel)
                        || self.filter.ignored(stack, &self.abs(&rel), false)
                    {
                        continue;
                    }
                    while old_files.peek().is_some_and(|f| f.name < name) {
                        if let Some(f) = old_files.next() {
                            self.changes.deleted.push(self.child_rel(&f.name));
                        }
                    }
                    let old = old_files.next_if(|f| f.name == name);
                    if let Some(f) = self.list_file(raw, name, old, rel) {
                        files.push(f);
                    }
                }
                Kind::Other => {}
            }
        }
        for f in old_files {
            self.changes.deleted.push(self.child_rel(&f.name));
        }
        for d in old_dirs {
            deleted_under(&d, self.child_rel(&d.name), &mut self.changes.deleted);
        }
        dir.files = files;
        self.enter_all(raw, &mut dirs, stack, force);
        dir.dirs = dirs;
        if dir.ignore.is_some() {
            stack.pop();
        }
    }

    /// A watched name seen in a listing: compare with its old entry (None: created).
    fn list_file(
        &mut self,
        dirfd: RawFd,
        name: Box<[u8]>,
        old: Option<FileEnt>,
        rel: Vec<u8>,
    ) -> Option<FileEnt> {
        self.stats.files += 1;
        let st = match sys::stat_at(dirfd, &name, &mut self.name_buf) {
            Ok(s) if matches!(s.kind, Kind::File | Kind::Symlink) => s,
            Ok(_) => {
                if old.is_some() {
                    self.changes.deleted.push(rel);
                }
                return None;
            }
            Err(e) => {
                let gone = is_gone(&e);
                self.note(rel.clone(), format!("cannot stat: {e}"), gone);
                if gone {
                    if old.is_some() {
                        self.changes.deleted.push(rel);
                    }
                    return None;
                }
                return old;
            }
        };
        match old {
            Some(mut f) => {
                if st.key != f.key || f.racy || self.full || (st.kind == Kind::Symlink) != f.symlink
                {
                    self.update(dirfd, &mut f, st.key, st.kind, rel);
                }
                Some(f)
            }
            None => {
                let hash = self.hash(dirfd, &name, st.kind, &rel);
                self.changes.created.push(rel);
                Some(FileEnt {
                    name,
                    key: st.key,
                    hash: hash.unwrap_or(0),
                    racy: hash.is_none() || self.racy(&st.key),
                    symlink: st.kind == Kind::Symlink,
                })
            }
        }
    }
}

/// Every file of a vanished folder, reported deleted.
fn deleted_under(d: &Dir, rel: Vec<u8>, out: &mut Vec<Vec<u8>>) {
    for f in &d.files {
        let mut r = rel.clone();
        r.push(b'/');
        r.extend_from_slice(&f.name);
        out.push(r);
    }
    for s in &d.dirs {
        let mut r = rel.clone();
        r.push(b'/');
        r.extend_from_slice(&s.name);
        deleted_under(s, r, out);
    }
}
