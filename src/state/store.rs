//! The persisted queue: one JSON Lines journal, `<state>/state.jsonl`, under `<state>/lock`.
//!
//! The first line is a header with the schema version, the next sequence number and the
//! folded execution history; every later line is one operation (enqueue, claim, spawn,
//! end, cancel, drop, stop request, recovery). An enqueue appends one line and fsyncs it, so
//! it stays flat however long the queue is; its duplicate check reads only each line's fixed
//! prefix (`{"op":"enq","id":"..","key":".."`). The journal is compacted now and then under
//! the lock by writing a new file (temp, fsync, rename, fsync dir). A torn last line is an
//! interrupted append and is cut off before the next one; any other unreadable line, a
//! missing header or a newer schema is corruption: exit 3, and the file is never written.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::hash::BuildHasherDefault;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::lock::{self, StateLock};
use super::task::{Status, Task};
use crate::error;

pub const SCHEMA_VERSION: u32 = 1;
pub const JOURNAL: &str = "state.jsonl";
/// Executions kept per task type for adaptive priority.
pub const HISTORY_LEN: usize = 100;

/// One execution in a task type's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Exec {
    pub ok: bool,
    pub duration_s: f64,
    pub at: f64,
}

/// One journal line. Every variant starts with `id` and `key` so the fast scan can read
/// them at fixed places; `key` is the dedup key on the lines that add or remove a queued task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op")]
pub enum Op {
    #[serde(rename = "hdr")]
    Header {
        id: String,
        key: String,
        schema_version: u32,
        next_seq: u64,
        created_at: f64,
        #[serde(default)]
        history: BTreeMap<String, VecDeque<Exec>>,
    },
    #[serde(rename = "enq")]
    Enqueue {
        id: String,
        key: String,
        task: Box<Task>,
    },
    #[serde(rename = "clm")]
    Claim {
        id: String,
        key: String,
        drainer: String,
        at: f64,
    },
    #[serde(rename = "pid")]
    Spawned {
        id: String,
        key: String,
        pid: u32,
        pid_start: u64,
        log: PathBuf,
    },
    #[serde(rename = "can")]
    Cancel { id: String, key: String },
    #[serde(rename = "drp")]
    Drop { id: String, key: String },
    #[serde(rename = "cxl")]
    StopRequest { id: String, key: String },
    #[serde(rename = "end")]
    End {
        id: String,
        key: String,
        task_type: String,
        status: Status,
        duration_s: f64,
        at: f64,
    },
    #[serde(rename = "rcv")]
    Recovered { id: String, key: String },
}

/// A task that a drainer has claimed.
#[derive(Debug, Clone)]
pub struct Running {
    pub task: Task,
    pub drainer: String,
    pub claimed_at: f64,
    pub pid: Option<u32>,
    pub pid_start: Option<u64>,
    pub log: Option<PathBuf>,
    pub stop_requested: bool,
}

/// The folded journal.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub next_seq: u64,
    pub created_at: f64,
    pub queued: HashMap<String, Task>,
    pub running: HashMap<String, Running>,
    pub history: BTreeMap<String, VecDeque<Exec>>,
    /// Lines in the journal, for deciding when to compact.
    pub lines: usize,
}

impl State {
    pub fn apply(&mut self, op: Op) {
        self.lines += 1;
        match op {
            Op::Header {
                next_seq,
                created_at,
                history,
                ..
            } => {
                self.next_seq = next_seq;
                self.created_at = created_at;
                self.history = history;
            }
            Op::Enqueue { id, task, .. } => {
                self.next_seq = self.next_seq.max(task.seq + 1);
                self.queued.insert(id, *task);
            }
            Op::Claim {
                id, drainer, at, ..
            } => {
                if let Some(task) = self.queued.remove(&id) {
                    self.running.insert(
                        id,
                        Running {
                            task,
                            drainer,
                            claimed_at: at,
                            pid: None,
                            pid_start: None,
                            log: None,
                            stop_requested: false,
                        },
                    );
                }
            }
            Op::Spawned {
                id,
                pid,
                pid_start,
                log,
                ..
            } => {
                if let Some(r) = self.running.get_mut(&id) {
                    r.pid = Some(pid);
                    r.pid_start = Some(pid_start);
                    r.log = Some(log);
                }
            }
            Op::Cancel { id, .. } | Op::Drop { id, .. } => {
                self.queued.remove(&id);
            }
            Op::StopRequest { id, .. } => {
                if let Some(r) = self.running.get_mut(&id) {
                    r.stop_requested = true;
                }
            }
            Op::End {
                id,
                task_type,
                status,
                duration_s,
                at,
                ..
            } => {
                self.running.remove(&id);
                if !matches!(status, Status::Cancelled | Status::Dropped) {
                    let h = self.history.entry(task_type).or_default();
                    h.push_back(Exec {
                        ok: status == Status::Succeeded,
                        duration_s,
                        at,
                    });
                    while h.len() > HISTORY_LEN {
                        h.pop_front();
                    }
                }
            }
            Op::Recovered { id, .. } => {
                self.running.remove(&id);
            }
        }
    }

    /// Whether the journal has grown well past what it describes.
    pub fn wants_compaction(&self) -> bool {
        let live = self.queued.len() + 4 * self.running.len() + 1;
        self.lines > 2 * live + 2000
    }
}

/// What the fast scan of an enqueue learns without parsing whole lines.
#[derive(Debug, Default)]
pub struct Scan {
    pub next_seq: u64,
    /// Queued tasks per dedup key (the key's 64 bits): how many, and one of their ids.
    pub keys: HashMap<u64, (u32, u64), BuildHasherDefault<KeyHasher>>,
    pub queued: usize,
    /// Claims not yet ended: id -> the claim line.
    pub open_claims: HashMap<u64, Vec<u8>>,
    pub lines: usize,
}

impl Scan {
    /// The id of a queued task with this dedup key.
    pub fn queued_with(&self, key: &str) -> Option<u64> {
        let k = u64::from_str_radix(key, 16).ok()?;
        self.keys.get(&k).filter(|(n, _)| *n > 0).map(|(_, id)| *id)
    }

    pub fn add_key(&mut self, key: &str, id: u64) {
        if let Ok(k) = u64::from_str_radix(key, 16) {
            let e = self.keys.entry(k).or_insert((0, id));
            e.0 += 1;
            e.1 = id;
        }
    }

    pub fn remove_key(&mut self, key: &str) {
        if let Ok(k) = u64::from_str_radix(key, 16)
            && let Some(e) = self.keys.get_mut(&k)
        {
            e.0 -= 1;
            if e.0 == 0 {
                self.keys.remove(&k);
            }
        }
    }
}

/// Dedup keys are already FNV hashes: use their bits as they are.
#[derive(Debug, Default)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The journal, opened under the state lock. Dropping it releases the lock.
pub struct Store {
    pub dir: PathBuf,
    path: PathBuf,
    file: File,
    /// Bytes of the journal known to be whole lines; past it, a torn append to cut.
    valid_len: u64,
    len: u64,
    _lock: StateLock,
}

/// The open lock file and journal of a released [`Store`], to lock again without reopening.
pub struct Handles {
    dir: PathBuf,
    lock: File,
    journal: File,
}

impl Handles {
    /// Flush the journal's appended lines to disk (no lock needed).
    pub fn sync(&self) -> Result<()> {
        self.journal.sync_data().map_err(|e| {
            error::state(format!(
                "cannot fsync the state file {}: {e}",
                self.dir.join(JOURNAL).display()
            ))
        })
    }
}

/// A drainer's cached fold of the journal, re-read incrementally.
#[derive(Debug, Default)]
pub struct Cache {
    pub ino: u64,
    pub offset: u64,
    pub state: State,
}

/// Make sure `dir` exists: created with mode 0700 when absent; one that exists is never
/// chmodded (a `/tmp` or `$HOME` given as the state dir stays as it is), only warned about
/// once when others may read it. Failures are state errors (exit 3).
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            if meta.permissions().mode() & 0o077 != 0 {
                warn_open_dir(dir, meta.permissions().mode());
            }
            Ok(())
        }
        Ok(meta) if meta.file_type().is_symlink() => Err(error::state(format!(
            "{} is a symbolic link; bgrun does not follow links in its state directory. \
             Remove it (or pass --state-dir with a real directory)",
            dir.display()
        ))),
        Ok(_) => Err(error::state(format!(
            "{} is not a directory; move it aside or pass --state-dir with a directory",
            dir.display()
        ))),
        Err(_) => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    error::state(format!(
                        "cannot create the state directory {}: {e}; make its parent writable, \
                         or pass --state-dir with a writable directory",
                        dir.display()
                    ))
                })?;
            super::owner::created(dir);
            Ok(())
        }
    }
}

/// Warn once per process about a state directory that others may read.
fn warn_open_dir(dir: &Path, mode: u32) {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static WARNED: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let mut seen = WARNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if seen.insert(dir.to_path_buf()) {
        eprintln!(
            "bgrun: warning: {} has mode {:o}: others may read bgrun's state there; \
             it was left as it is (`chmod 700` it, or use a private --state-dir)",
            dir.display(),
            mode & 0o7777
        );
    }
}

/// Write `bytes` to `path` atomically: a temp file in the same dir (0600), fsync when
/// `durable`, rename over, fsync the dir when `durable`. A crash leaves the old file or the new.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), unique()));
    let res = (|| -> Result<()> {
        let mut f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        if durable {
            f.sync_all()
                .with_context(|| format!("cannot fsync {}", tmp.display()))?;
        }
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
        if durable && let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    t ^ (N.fetch_add(1, Ordering::Relaxed) << 32)
}

fn corrupt(path: &Path, what: &str) -> anyhow::Error {
    error::state(format!(
        "the state file {} is unreadable ({what}); it was left untouched. \
         Inspect it, or run `bgrun state reset` to move it aside and start with an empty queue",
        path.display()
    ))
}

fn header(next_seq: u64, created_at: f64, history: BTreeMap<String, VecDeque<Exec>>) -> Op {
    Op::Header {
        id: String::new(),
        key: String::new(),
        schema_version: SCHEMA_VERSION,
        next_seq,
        created_at,
        history,
    }
}

fn encode(ops: &[Op]) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(256 * ops.len());
    for op in ops {
        serde_json::to_writer(&mut buf, op)?;
        buf.push(b'\n');
    }
    Ok(buf)
}

impl Store {
    /// Take the state lock (bounded wait) and open the journal, creating it when absent.
    pub fn open(state_dir: &Path, lock_timeout: Duration) -> Result<Store> {
        ensure_private_dir(state_dir)?;
        let lock = lock::acquire(&state_dir.join("lock"), lock_timeout)?;
        let path = state_dir.join(JOURNAL);
        if !path.exists() {
            let bytes = encode(&[header(1, crate::timefmt::now(), BTreeMap::new())])?;
            write_atomic(&path, &bytes, true)?;
        }
        let file = OpenOptions::new()
            .custom_flags(libc::O_NOFOLLOW)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                error::state(format!(
                    "cannot open the state file {}: {e}",
                    path.display()
                ))
            })?;
        let len = file.metadata()?.len();
        Ok(Store {
            dir: state_dir.to_path_buf(),
            path,
            file,
            valid_len: len,
            len,
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Release the lock, keeping the files open for [`Store::relock`].
    pub fn unlock(self) -> Handles {
        Handles {
            dir: self.dir,
            lock: self._lock.release(),
            journal: self.file,
        }
    }

    /// Take the lock again; reopen the journal if a compaction replaced it meanwhile.
    pub fn relock(h: Handles, timeout: Duration) -> Result<Store> {
        let lock = lock::acquire_file(h.lock, &h.dir.join("lock"), timeout)?;
        let path = h.dir.join(JOURNAL);
        let on_disk = std::fs::metadata(&path).map_err(|e| {
            error::state(format!(
                "cannot read the state file {}: {e}",
                path.display()
            ))
        })?;
        let file = if h.journal.metadata().map(|m| m.ino()).ok() == Some(on_disk.ino()) {
            h.journal
        } else {
            OpenOptions::new()
                .custom_flags(libc::O_NOFOLLOW)
                .read(true)
                .append(true)
                .open(&path)?
        };
        let len = on_disk.len();
        Ok(Store {
            dir: h.dir,
            path,
            file,
            valid_len: len,
            len,
            _lock: lock,
        })
    }

    /// Where the next append will land (the end of the whole lines).
    pub fn end_offset(&self) -> u64 {
        self.valid_len
    }

    /// The journal's inode (changes when a compaction replaces it).
    pub fn ino(&self) -> u64 {
        self.file.metadata().map(|m| m.ino()).unwrap_or(0)
    }

    fn read_from(&mut self, offset: u64) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity((self.len.saturating_sub(offset)) as usize);
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.read_to_end(&mut buf).map_err(|e| {
            error::state(format!(
                "cannot read the state file {}: {e}",
                self.path.display()
            ))
        })?;
        Ok(buf)
    }

    /// Split `buf` into whole lines; a trailing part without a newline is a torn append.
    fn whole_lines(&mut self, base: u64, buf: &[u8]) -> usize {
        let whole = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        self.valid_len = base + whole as u64;
        whole
    }

    /// The fast path for enqueue: keys, counts and open claims from line prefixes only,
    /// reading the journal in chunks through one reused buffer.
    pub fn scan(&mut self) -> Result<Scan> {
        if !super::stamp::matches(&self.dir, &self.file) {
            return self.scan_full();
        }
        const CHUNK: usize = 256 * 1024;
        self.file.seek(SeekFrom::Start(0))?;
        let mut scan = Scan::default();
        let mut enq_lines = 0u64;
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK * 2);
        let mut consumed = 0u64; // bytes of whole lines processed
        loop {
            let start = buf.len();
            buf.resize(start + CHUNK, 0);
            let n = loop {
                match self.file.read(&mut buf[start..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(error::state(format!(
                            "cannot read the state file {}: {e}",
                            self.path.display()
                        )));
                    }
                }
            };
            buf.truncate(start + n);
            let whole = memchr::memrchr(b'\n', &buf).map_or(0, |i| i + 1);
            let mut pos = 0;
            while pos < whole {
                let end = memchr::memchr(b'\n', &buf[pos..whole]).map_or(whole, |i| pos + i);
                let line = &buf[pos..end];
                pos = end + 1;
                if line.is_empty() {
                    continue;
                }
                scan.lines += 1;
                self.scan_line(line, &mut scan, &mut enq_lines)?;
            }
            consumed += whole as u64;
            buf.drain(..whole);
            if n == 0 {
                break;
            }
        }
        // What is left without a newline is a torn append, cut before the next one.
        self.valid_len = consumed;
        if scan.lines == 0 {
            return Err(corrupt(&self.path, "empty, no header"));
        }
        scan.next_seq += enq_lines;
        Ok(scan)
    }

    /// The scan of a journal that bgrun did not leave as it is: every line parsed by the
    /// rule of [`Store::load`], so that enqueue accepts exactly what drain and status accept.
    fn scan_full(&mut self) -> Result<Scan> {
        let state = self.load()?;
        let mut scan = Scan {
            next_seq: state.next_seq,
            queued: state.queued.len(),
            lines: state.lines,
            ..Scan::default()
        };
        let mut queued: Vec<&Task> = state.queued.values().collect();
        queued.sort_by_key(|t| t.seq);
        for t in queued {
            scan.add_key(&t.dedup_key(), t.id.parse().unwrap_or(0));
        }
        for (id, r) in &state.running {
            let claim = Op::Claim {
                id: id.clone(),
                key: r.task.dedup_key(),
                drainer: r.drainer.clone(),
                at: r.claimed_at,
            };
            let n = id
                .parse()
                .unwrap_or(u64::MAX - scan.open_claims.len() as u64);
            scan.open_claims.insert(n, serde_json::to_vec(&claim)?);
        }
        // Record the stamp only when every line is in bgrun's own form, which the fast
        // scan reads; a journal in another form is read in full until compacted.
        let buf = self.read_from(0)?;
        let whole = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let canonical = buf[..whole]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .skip(1)
            .all(|l| prefix(l).is_some_and(|(_, id, _)| id.parse::<u64>().is_ok()));
        if canonical {
            super::stamp::record(&self.dir, &self.file);
        }
        Ok(scan)
    }

    fn scan_line(&self, line: &[u8], scan: &mut Scan, enq_lines: &mut u64) -> Result<()> {
        if scan.lines == 1 {
            let op: Op = serde_json::from_slice(line)
                .map_err(|e| corrupt(&self.path, &format!("line 1: {e}")))?;
            return match op {
                Op::Header { schema_version, .. } if schema_version > SCHEMA_VERSION => {
                    Err(future(&self.path, schema_version))
                }
                Op::Header { next_seq, .. } => {
                    scan.next_seq = next_seq;
                    Ok(())
                }
                _ => Err(corrupt(&self.path, "line 1 is not a header")),
            };
        }
        let bad = || corrupt(&self.path, &format!("line {}", scan.lines));
        let (op, id, key) = prefix(line).ok_or_else(bad)?;
        let id: u64 = id.parse().map_err(|_| bad())?;
        match op {
            b"enq" => {
                *enq_lines += 1;
                scan.add_key(key, id);
                scan.queued += 1;
            }
            b"clm" | b"can" | b"drp" => {
                scan.remove_key(key);
                scan.queued = scan.queued.saturating_sub(1);
                if op == b"clm" {
                    scan.open_claims.insert(id, line.to_vec());
                }
            }
            b"end" | b"rcv" => {
                scan.open_claims.remove(&id);
            }
            b"pid" | b"cxl" => {}
            _ => {
                return Err(corrupt(
                    &self.path,
                    &format!("line {}: unknown operation", scan.lines),
                ));
            }
        }
        Ok(())
    }

    /// Whether the journal moved past a cached fold (appended to or replaced), checked
    /// with one `stat` and no lock.
    pub fn changed_since(state_dir: &Path, cache: &Cache) -> bool {
        match std::fs::metadata(state_dir.join(JOURNAL)) {
            Ok(m) => m.ino() != cache.ino || m.len() != cache.offset,
            Err(_) => true,
        }
    }

    /// Fold the whole journal.
    pub fn load(&mut self) -> Result<State> {
        let mut cache = Cache::default();
        self.refresh(&mut cache)?;
        Ok(cache.state)
    }

    /// Bring a cached fold up to date: read only what was appended since, or everything
    /// when the journal was replaced by a compaction.
    pub fn refresh(&mut self, cache: &mut Cache) -> Result<()> {
        let meta = self.file.metadata()?;
        let ino = meta.ino();
        if ino != cache.ino || meta.len() < cache.offset || cache.offset == 0 {
            *cache = Cache {
                ino,
                offset: 0,
                state: State::default(),
            };
        }
        let base = cache.offset;
        let buf = self.read_from(base)?;
        let whole = self.whole_lines(base, &buf);
        let mut lineno = cache.state.lines;
        for line in buf[..whole].split(|b| *b == b'\n') {
            if line.is_empty() {
                continue;
            }
            lineno += 1;
            let op: Op = serde_json::from_slice(line)
                .map_err(|e| corrupt(&self.path, &format!("line {lineno}: {e}")))?;
            if lineno == 1 {
                match &op {
                    Op::Header { schema_version, .. } if *schema_version > SCHEMA_VERSION => {
                        return Err(future(&self.path, *schema_version));
                    }
                    Op::Header { .. } => {}
                    _ => return Err(corrupt(&self.path, "line 1 is not a header")),
                }
            }
            cache.state.apply(op);
        }
        if lineno == 0 {
            return Err(corrupt(&self.path, "empty, no header"));
        }
        cache.offset = base + whole as u64;
        Ok(())
    }

    /// Append operations as whole lines; fsync when `durable`. A torn tail is cut first.
    pub fn append(&mut self, ops: &[Op], durable: bool) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        if self.valid_len < self.len {
            self.file.set_len(self.valid_len)?;
            self.len = self.valid_len;
        }
        let bytes = encode(ops)?;
        let stamped = super::stamp::matches(&self.dir, &self.file);
        if let Err(e) = self.file.write_all(&bytes) {
            // Whole lines or nothing: cut a short write (a full disk) back off.
            let _ = self.file.set_len(self.valid_len);
            return Err(error::state(format!(
                "cannot append to the state file {}: {e}; nothing of this change was kept \
                 (free some space, then run the command again)",
                self.path.display()
            )));
        }
        if durable {
            self.file.sync_data().map_err(|e| {
                error::state(format!(
                    "cannot fsync the state file {}: {e}",
                    self.path.display()
                ))
            })?;
        }
        self.len += bytes.len() as u64;
        self.valid_len = self.len;
        if stamped {
            super::stamp::record(&self.dir, &self.file);
        }
        Ok(())
    }

    /// Rewrite the journal as a header plus the lines that describe `state` now; returns
    /// how many lines the new journal has.
    pub fn compact(&mut self, state: &State) -> Result<usize> {
        let mut ops = vec![header(
            state.next_seq,
            state.created_at,
            state.history.clone(),
        )];
        let mut queued: Vec<&Task> = state.queued.values().collect();
        queued.sort_by_key(|t| t.seq);
        for t in queued {
            ops.push(Op::Enqueue {
                id: t.id.clone(),
                key: t.dedup_key(),
                task: Box::new(t.clone()),
            });
        }
        let mut running: Vec<&Running> = state.running.values().collect();
        running.sort_by_key(|r| r.task.seq);
        for r in running {
            let (id, key) = (r.task.id.clone(), r.task.dedup_key());
            ops.push(Op::Enqueue {
                id: id.clone(),
                key: key.clone(),
                task: Box::new(r.task.clone()),
            });
            ops.push(Op::Claim {
                id: id.clone(),
                key,
                drainer: r.drainer.clone(),
                at: r.claimed_at,
            });
            if let (Some(pid), Some(pid_start)) = (r.pid, r.pid_start) {
                let log = r.log.clone().unwrap_or_default();
                ops.push(Op::Spawned {
                    id: id.clone(),
                    key: String::new(),
                    pid,
                    pid_start,
                    log,
                });
            }
            if r.stop_requested {
                ops.push(Op::StopRequest {
                    id,
                    key: String::new(),
                });
            }
        }
        let bytes = encode(&ops)?;
        write_atomic(&self.path, &bytes, true)?;
        self.file = OpenOptions::new()
            .custom_flags(libc::O_NOFOLLOW)
            .read(true)
            .append(true)
            .open(&self.path)?;
        self.len = bytes.len() as u64;
        self.valid_len = self.len;
        super::stamp::record(&self.dir, &self.file);
        Ok(ops.len())
    }
}

fn future(path: &Path, v: u32) -> anyhow::Error {
    error::state(format!(
        "the state file {} has schema version {v}, newer than this bgrun understands ({SCHEMA_VERSION}); \
         it was left untouched. Use the newer bgrun, or `bgrun state reset` to move it aside",
        path.display()
    ))
}

/// Read `{"op":"xxx","id":"...","key":"..."` from the start of a line.
fn prefix(line: &[u8]) -> Option<(&[u8], &str, &str)> {
    let rest = line.strip_prefix(br#"{"op":""#)?;
    let op = rest.get(..3)?;
    let rest = rest.get(3..)?.strip_prefix(br#"","id":""#)?;
    let end = rest.iter().position(|b| *b == b'"')?;
    let id = std::str::from_utf8(&rest[..end]).ok()?;
    let rest = rest[end..].strip_prefix(br#"","key":""#)?;
    let kend = rest.iter().position(|b| *b == b'"')?;
    let key = std::str::from_utf8(&rest[..kend]).ok()?;
    if line.last() != Some(&b'}') {
        return None;
    }
    Some((op, id, key))
}

/// Move a state file aside (never deleting it) so that the next command starts empty.
pub fn reset(state_dir: &Path, lock_timeout: Duration) -> Result<Option<PathBuf>> {
    ensure_private_dir(state_dir)?;
    let _lock = lock::acquire(&state_dir.join("lock"), lock_timeout)?;
    let path = state_dir.join(JOURNAL);
    if !path.exists() {
        return Ok(None);
    }
    let stamp = crate::timefmt::rfc3339(crate::timefmt::now()).replace(':', "");
    let aside = state_dir.join(format!("{JOURNAL}.broken-{stamp}"));
    std::fs::rename(&path, &aside)
        .with_context(|| format!("cannot move {} to {}", path.display(), aside.display()))?;
    if let Ok(d) = File::open(state_dir) {
        let _ = d.sync_all();
    }
    Ok(Some(aside))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::task::Action;

    fn task(seq: u64, argv: &str) -> Task {
        Task {
            id: seq.to_string(),
            task_type: "custom".into(),
            name: argv.into(),
            action: Action::Command {
                argv: vec![argv.into()],
                cwd: None,
                env: Default::default(),
                report: None,
            },
            priority: 10,
            timeout_s: 5,
            trigger: "manual".into(),
            enqueued_at: 0.0,
            first_enqueued_at: 0.0,
            attempt: 0,
            max_retries: 0,
            retry_delay_s: 0,
            not_before: None,
            context: serde_json::Value::Null,
            seq,
        }
    }

    fn enq(t: Task) -> Op {
        Op::Enqueue {
            id: t.id.clone(),
            key: t.dedup_key(),
            task: Box::new(t),
        }
    }

    #[test]
    fn scan_and_load_agree_and_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), Duration::from_secs(1)).unwrap();
        let (a, b) = (task(1, "a"), task(2, "b"));
        let ka = a.dedup_key();
        s.append(&[enq(a), enq(b)], true).unwrap();
        s.append(
            &[Op::Claim {
                id: "1".into(),
                key: ka.clone(),
                drainer: "d".into(),
                at: 1.0,
            }],
            false,
        )
        .unwrap();
        drop(s);
        // A torn append from a crash.
        let path = dir.path().join(JOURNAL);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"op":"enq","id":"3","key":"ab"#).unwrap();
        drop(f);
        let mut s = Store::open(dir.path(), Duration::from_secs(1)).unwrap();
        let scan = s.scan().unwrap();
        assert_eq!(scan.queued, 1);
        assert_eq!(scan.queued_with(&ka), None);
        assert_eq!(scan.open_claims.len(), 1);
        assert_eq!(scan.next_seq, 3);
        let state = s.load().unwrap();
        assert_eq!(state.queued.len(), 1);
        assert_eq!(state.running.len(), 1);
        s.append(&[enq(task(3, "c"))], true).unwrap();
        let state = s.load().unwrap();
        assert_eq!(
            state.queued.len(),
            2,
            "the torn line was cut and the new one reads"
        );
        s.compact(&state).unwrap();
        let again = s.load().unwrap();
        assert_eq!(again.queued.len(), 2);
        assert_eq!(again.running.len(), 1);
        assert_eq!(again.lines, 1 + 2 + 2);
    }

    #[test]
    fn corrupt_middle_line_is_an_error_and_file_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), Duration::from_secs(1)).unwrap();
        s.append(&[enq(task(1, "a"))], true).unwrap();
        drop(s);
        let path = dir.path().join(JOURNAL);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"garbage\n");
        std::fs::write(&path, &bytes).unwrap();
        let mut s = Store::open(dir.path(), Duration::from_secs(1)).unwrap();
        let err = s.load().unwrap_err();
        assert_eq!(error::exit_of(&err), error::Exit::State);
        assert!(s.scan().is_err());
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}
