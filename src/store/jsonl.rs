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

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::journal::{
    Bad, Op, Running, SCHEMA_VERSION, Scan, State, compaction_ops, encode, header, parse, prefix,
};
use super::{Durability, End, Lease, Release, Removal, Store, Txn};
use crate::error;
use crate::fsutil::{ensure_private_dir, write_atomic};
use crate::model::{Sample, TaskResult};
use crate::results::{self, Cleaned};
use crate::state::lock::{self, StateLock};
use crate::state::procs;
use crate::state::task::Task;

/// The journal's file name in the state dir.
pub const JOURNAL: &str = "state.jsonl";

/// The journal, opened under the state lock. Dropping it releases the lock.
pub struct JournalFile {
    pub dir: PathBuf,
    path: PathBuf,
    file: File,
    /// Bytes of the journal known to be whole lines; past it, a torn append to cut.
    valid_len: u64,
    len: u64,
    _lock: StateLock,
}

/// The open lock file and journal of a released [`JournalFile`], to lock again without reopening.
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

fn corrupt(path: &Path, what: &str) -> anyhow::Error {
    error::state(format!(
        "the state file {} is unreadable ({what}); it was left untouched. \
         Inspect it, or run `bgrun state reset` to move it aside and start with an empty queue",
        path.display()
    ))
}

impl JournalFile {
    /// Take the state lock (bounded wait) and open the journal, creating it when absent.
    pub fn open(state_dir: &Path, lock_timeout: Duration) -> Result<JournalFile> {
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
        Ok(JournalFile {
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

    /// Release the lock, keeping the files open for [`JournalFile::relock`].
    pub fn unlock(self) -> Handles {
        Handles {
            dir: self.dir,
            lock: self._lock.release(),
            journal: self.file,
        }
    }

    /// Take the lock again; reopen the journal if a compaction replaced it meanwhile.
    pub fn relock(h: Handles, timeout: Duration) -> Result<JournalFile> {
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
        Ok(JournalFile {
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
        if !crate::state::stamp::matches(&self.dir, &self.file) {
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
    /// rule of [`JournalFile::load`], so that enqueue accepts exactly what drain and status
    /// accept (issue 14; see `state::stamp`).
    fn scan_full(&mut self) -> Result<Scan> {
        let state = self.load()?;
        let mut scan = Scan {
            next_seq: state.next_seq,
            queued: state.queued.len(),
            lines: state.lines,
            ..Scan::default()
        };
        let mut queued: Vec<&crate::state::task::Task> = state.queued.values().collect();
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
            crate::state::stamp::record(&self.dir, &self.file);
        }
        Ok(scan)
    }

    fn scan_line(&self, line: &[u8], scan: &mut Scan, enq_lines: &mut u64) -> Result<()> {
        scan.read_line(line, enq_lines).map_err(|bad| self.bad(bad))
    }

    fn bad(&self, bad: Bad) -> anyhow::Error {
        match bad {
            Bad::Corrupt(what) => corrupt(&self.path, &what),
            Bad::Future(v) => future(&self.path, v),
        }
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
            let op =
                parse(line).map_err(|e| corrupt(&self.path, &format!("line {lineno}: {e}")))?;
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
        let stamped = crate::state::stamp::matches(&self.dir, &self.file);
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
            crate::state::stamp::record(&self.dir, &self.file);
        }
        Ok(())
    }

    /// Rewrite the journal as a header plus the lines that describe `state` now; returns
    /// how many lines the new journal has.
    pub fn compact(&mut self, state: &State) -> Result<usize> {
        let ops = compaction_ops(state);
        let bytes = encode(&ops)?;
        write_atomic(&self.path, &bytes, true)?;
        self.file = OpenOptions::new()
            .custom_flags(libc::O_NOFOLLOW)
            .read(true)
            .append(true)
            .open(&self.path)?;
        self.len = bytes.len() as u64;
        self.valid_len = self.len;
        crate::state::stamp::record(&self.dir, &self.file);
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

/// After `bgrun state adopt`: read an existing journal in full once, under the lock, by the
/// rule of every reader, so that it is recorded as bgrun's own (its stamp) and the next
/// enqueue takes the fast scan instead of that full read. A journal that does not parse is
/// left as it is (the error says so); a state dir without one gets nothing.
pub fn adopt(state_dir: &Path, lock_timeout: Duration) -> Result<()> {
    if !state_dir.join(JOURNAL).exists() {
        return Ok(());
    }
    JournalFile::open(state_dir, lock_timeout)?
        .scan()
        .map(|_| ())
}

/// The JSON Lines store: the journal of one state dir. Holds no lock between transactions;
/// keeps the journal's fold cached and re-reads only what others appended since.
pub struct JsonlStore {
    dir: PathBuf,
    lock_timeout: Duration,
    cache: Cache,
    /// The lock file and journal, kept open between transactions.
    handles: Option<Handles>,
}

impl JsonlStore {
    pub fn new(dir: PathBuf, lock_timeout: Duration) -> JsonlStore {
        JsonlStore {
            dir,
            lock_timeout,
            cache: Cache::default(),
            handles: None,
        }
    }

    fn lock(&mut self) -> Result<JournalFile> {
        match self.handles.take() {
            Some(h) => JournalFile::relock(h, self.lock_timeout),
            None => JournalFile::open(&self.dir, self.lock_timeout),
        }
    }
}

impl Store for JsonlStore {
    fn begin(&mut self) -> Result<Box<dyn Txn + '_>> {
        let file = self.lock()?;
        Ok(Box::new(JsonlTxn {
            store: self,
            file: Some(file),
            scan: None,
            loaded: false,
            ops: Vec::new(),
            results: Vec::new(),
            persisted: Vec::new(),
        }))
    }

    fn view(&self) -> &State {
        &self.cache.state
    }

    fn changed(&self) -> bool {
        self.cache.ino == 0 || JournalFile::changed_since(&self.dir, &self.cache)
    }

    fn sync(&mut self) -> Result<()> {
        match &self.handles {
            Some(h) => h.sync(),
            None => Ok(()),
        }
    }

    fn results(&self, id: Option<&str>, last: usize) -> Result<Vec<TaskResult>> {
        results::list(&self.dir, id, last)
    }

    fn cleanup(&mut self, results_days: u64, metrics_days: u64) -> Result<Cleaned> {
        let file = self.lock()?;
        let cleaned = results::cleanup(&self.dir, results_days, metrics_days);
        self.handles = Some(file.unlock());
        cleaned
    }
}

/// A transaction on the journal: the state lock is held from `begin` to `commit` (or drop);
/// operations are applied to the fold at once and appended as one write at commit.
struct JsonlTxn<'a> {
    store: &'a mut JsonlStore,
    file: Option<JournalFile>,
    /// The prefix scan, when a cheap question was asked.
    scan: Option<Scan>,
    /// Whether `store.cache` was brought up to date in this transaction.
    loaded: bool,
    ops: Vec<Op>,
    results: Vec<(TaskResult, usize, usize)>,
    /// Results already written by a `flush` (announced at commit).
    persisted: Vec<TaskResult>,
}

impl JsonlTxn<'_> {
    fn file(&mut self) -> Result<&mut JournalFile> {
        self.file
            .as_mut()
            .ok_or_else(|| error::state("the state transaction is already over"))
    }

    fn load(&mut self) -> Result<&mut State> {
        if !self.loaded {
            let file = self
                .file
                .as_mut()
                .ok_or_else(|| error::state("the state transaction is already over"))?;
            if let Err(e) = file.refresh(&mut self.store.cache) {
                self.store.cache = Cache::default();
                return Err(e);
            }
            for op in &self.ops {
                self.store.cache.state.apply(op.clone());
            }
            self.loaded = true;
        }
        Ok(&mut self.store.cache.state)
    }

    fn scanned(&mut self) -> Result<&mut Scan> {
        if self.scan.is_none() {
            let mut scan = self.file()?.scan()?;
            for op in &self.ops {
                scan_apply(&mut scan, op);
            }
            self.scan = Some(scan);
        }
        self.scan
            .as_mut()
            .ok_or_else(|| error::state("the state scan is missing"))
    }

    fn push(&mut self, op: Op) {
        if self.loaded {
            self.store.cache.state.apply(op.clone());
        }
        if let Some(scan) = self.scan.as_mut() {
            scan_apply(scan, &op);
        }
        self.ops.push(op);
    }

    fn next_seq(&mut self) -> Result<u64> {
        let from_state = if self.loaded {
            Some(self.store.cache.state.next_seq)
        } else {
            None
        };
        let from_scan = match (from_state, &self.scan) {
            (Some(_), None) => None,
            _ => Some(self.scanned()?.next_seq),
        };
        Ok(from_state.into_iter().chain(from_scan).max().unwrap_or(1))
    }

    fn holds(&mut self, lease: &Lease) -> Result<bool> {
        Ok(self
            .load()?
            .running
            .get(&lease.id)
            .is_some_and(|r| r.drainer == lease.drainer))
    }
}

/// What an operation changes in a prefix scan.
fn scan_apply(scan: &mut Scan, op: &Op) {
    scan.lines += 1;
    match op {
        Op::Enqueue { id, key, task } => {
            scan.add_key(key, id.parse().unwrap_or(task.seq));
            scan.queued += 1;
            scan.next_seq = scan.next_seq.max(task.seq.saturating_add(1));
        }
        Op::Claim { id, key, .. } | Op::Cancel { id, key } | Op::Drop { id, key } => {
            scan.remove_key(key);
            scan.queued = scan.queued.saturating_sub(1);
            if let (Op::Claim { .. }, Ok(n)) = (op, id.parse::<u64>())
                && let Ok(line) = serde_json::to_vec(op)
            {
                scan.open_claims.insert(n, line);
            }
        }
        Op::End { id, .. } | Op::Recovered { id, .. } => {
            if let Ok(n) = id.parse::<u64>() {
                scan.open_claims.remove(&n);
            }
        }
        Op::Header { .. } | Op::Spawned { .. } | Op::StopRequest { .. } => {}
    }
}

impl Txn for JsonlTxn<'_> {
    fn state(&mut self) -> Result<&State> {
        self.load().map(|s| &*s)
    }

    fn queued_len(&mut self) -> Result<usize> {
        if self.loaded {
            return Ok(self.store.cache.state.queued.len());
        }
        Ok(self.scanned()?.queued)
    }

    fn queued_with_key(&mut self, key: &str) -> Result<Option<String>> {
        if self.loaded && self.scan.is_none() {
            return Ok(self
                .store
                .cache
                .state
                .queued
                .values()
                .find(|t| t.dedup_key() == key)
                .map(|t| t.id.clone()));
        }
        Ok(self.scanned()?.queued_with(key).map(|id| id.to_string()))
    }

    fn enqueue(&mut self, mut task: Task) -> Result<Task> {
        task.seq = self.next_seq()?;
        task.id = task.seq.to_string();
        self.push(Op::Enqueue {
            id: task.id.clone(),
            key: task.dedup_key(),
            task: Box::new(task.clone()),
        });
        Ok(task)
    }

    fn remove_queued(&mut self, id: &str, why: Removal) -> Result<bool> {
        let Some(key) = self.load()?.queued.get(id).map(Task::dedup_key) else {
            return Ok(false);
        };
        let id = id.to_string();
        self.push(match why {
            Removal::Cancelled => Op::Cancel { id, key },
            Removal::Dropped => Op::Drop { id, key },
        });
        Ok(true)
    }

    fn claim(&mut self, id: &str, drainer: &str, at: f64) -> Result<Option<Lease>> {
        let Some(key) = self.load()?.queued.get(id).map(Task::dedup_key) else {
            return Ok(None);
        };
        self.push(Op::Claim {
            id: id.to_string(),
            key,
            drainer: drainer.to_string(),
            at,
        });
        Ok(Some(Lease {
            id: id.to_string(),
            drainer: drainer.to_string(),
            token: 0,
        }))
    }

    fn spawned(&mut self, lease: &Lease, pid: u32, pid_start: u64, log: PathBuf) -> Result<bool> {
        if !self.holds(lease)? {
            return Ok(false);
        }
        self.push(Op::Spawned {
            id: lease.id.clone(),
            key: String::new(),
            pid,
            pid_start,
            log,
        });
        Ok(true)
    }

    fn request_stop(&mut self, id: &str) -> Result<bool> {
        if !self.load()?.running.contains_key(id) {
            return Ok(false);
        }
        self.push(Op::StopRequest {
            id: id.to_string(),
            key: String::new(),
        });
        Ok(true)
    }

    fn finish(&mut self, lease: &Lease, end: &End, retry: Option<Task>) -> Result<bool> {
        if !self.holds(lease)? {
            return Ok(false);
        }
        self.push(end_op(&lease.id, end));
        if let Some(mut t) = retry {
            t.seq = self.next_seq()?;
            self.push(Op::Enqueue {
                id: t.id.clone(),
                key: t.dedup_key(),
                task: Box::new(t),
            });
        }
        Ok(true)
    }

    fn renew(&mut self, _drainer: &str, _at: f64) -> Result<Vec<String>> {
        // A journal claim lives as long as its drainer's registry lock: nothing to renew.
        Ok(Vec::new())
    }

    fn may_have_expired_claims(&mut self) -> Result<bool> {
        let dir = self.store.dir.clone();
        if self.loaded {
            return Ok(self
                .store
                .cache
                .state
                .running
                .values()
                .any(|r| !procs::token_alive(&dir, &r.drainer)));
        }
        let scan = self.scanned()?;
        Ok(scan.open_claims.values().any(|line| {
            parse(line).ok().is_some_and(
                |op| matches!(op, Op::Claim { drainer, .. } if !procs::token_alive(&dir, &drainer)),
            )
        }))
    }

    fn expired_claims(&mut self, mine: Option<&str>) -> Result<Vec<Running>> {
        let dir = self.store.dir.clone();
        let mut out: Vec<Running> = self
            .load()?
            .running
            .values()
            .filter(|r| Some(r.drainer.as_str()) != mine && !procs::token_alive(&dir, &r.drainer))
            .cloned()
            .collect();
        out.sort_by_key(|r| r.task.seq);
        Ok(out)
    }

    fn release_expired(&mut self, id: &str, how: Release) -> Result<()> {
        match how {
            Release::Requeue(t) => {
                let mut t = *t;
                t.seq = self.next_seq()?;
                self.push(Op::Recovered {
                    id: id.to_string(),
                    key: String::new(),
                });
                self.push(Op::Enqueue {
                    id: id.to_string(),
                    key: t.dedup_key(),
                    task: Box::new(t),
                });
            }
            Release::End(end) => self.push(end_op(id, &end)),
        }
        Ok(())
    }

    fn save_result(&mut self, result: TaskResult, queue_len: usize, concurrent: usize) {
        self.results.push((result, queue_len, concurrent));
    }

    fn flush(&mut self) -> Result<()> {
        // As at commit: results first, then the journal lines that end their tasks (an
        // ended task flushed with the claims must never be on disk without its result).
        for (r, queue_len, concurrent) in std::mem::take(&mut self.results) {
            persist(&self.store.dir, &r, queue_len, concurrent);
            self.persisted.push(r);
        }
        let ops = std::mem::take(&mut self.ops);
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| error::state("the state transaction is already over"))?;
        if let Err(e) = file.append(&ops, true) {
            self.store.cache = Cache::default();
            return Err(e);
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>, durability: Durability) -> Result<Vec<TaskResult>> {
        let ops = std::mem::take(&mut self.ops);
        let mut file = self
            .file
            .take()
            .ok_or_else(|| error::state("the state transaction is already over"))?;
        // Results first, then the journal lines that end their tasks: a drainer killed
        // between the two leaves a result whose task is still running in the journal (it
        // is recovered and run again as the next attempt), never an ended task without
        // its result (issue 14: 0 lost under kill -9).
        let mut saved = std::mem::take(&mut self.persisted);
        for (r, queue_len, concurrent) in std::mem::take(&mut self.results) {
            persist(&self.store.dir, &r, queue_len, concurrent);
            saved.push(r);
        }
        if let Err(e) = file.append(&ops, durability == Durability::Now) {
            self.store.cache = Cache::default();
            return Err(e);
        }
        let cache = &mut self.store.cache;
        if self.loaded {
            cache.offset = file.end_offset();
            if cache.state.wants_compaction() {
                cache.state.lines = file.compact(&cache.state)?;
                cache.ino = file.ino();
                cache.offset = file.end_offset();
            }
        } else if let Some(scan) = &self.scan
            && scan.lines > 4 * scan.queued + 20_000
        {
            let st = file.load()?;
            file.compact(&st)?;
        }
        self.store.handles = Some(file.unlock());
        Ok(saved)
    }
}

impl Drop for JsonlTxn<'_> {
    fn drop(&mut self) {
        if self.file.is_some() && self.loaded && !self.ops.is_empty() {
            // Abandoned with changes applied to the cached fold only: forget the fold.
            self.store.cache = Cache::default();
        }
    }
}

fn end_op(id: &str, end: &End) -> Op {
    Op::End {
        id: id.to_string(),
        key: String::new(),
        task_type: end.task_type.clone(),
        status: end.status,
        duration_s: end.duration_s,
        at: end.at,
    }
}

/// Append a result and its metrics sample (warnings only: the queue change is already made).
fn persist(dir: &Path, r: &TaskResult, queue_len: usize, concurrent: usize) {
    if let Err(e) = results::save(dir, r) {
        eprintln!(
            "bgrun: warning: cannot save the result of task {}: {e:#}",
            r.id
        );
    }
    let s = Sample::of(r, r.finished_ts(), queue_len, concurrent);
    if let Err(e) = results::append_sample(dir, &s) {
        eprintln!("bgrun: warning: cannot append metrics: {e:#}");
    }
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
        let mut s = JournalFile::open(dir.path(), Duration::from_secs(1)).unwrap();
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
        let mut s = JournalFile::open(dir.path(), Duration::from_secs(1)).unwrap();
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
    fn adopting_a_copied_journal_records_it_as_bgruns_own() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut s = JournalFile::open(&a, Duration::from_secs(1)).unwrap();
        s.append(&[enq(task(1, "a")), enq(task(2, "b"))], true)
            .unwrap();
        drop(s);
        std::fs::create_dir(&b).unwrap();
        std::fs::copy(a.join(JOURNAL), b.join(JOURNAL)).unwrap();
        let journal = |d: &Path| File::open(d.join(JOURNAL)).unwrap();
        // A copy is another file: the next enqueue would read it in full.
        assert!(!crate::state::stamp::matches(&b, &journal(&b)));
        adopt(&b, Duration::from_secs(1)).unwrap();
        assert!(crate::state::stamp::matches(&b, &journal(&b)));
        // Nothing to adopt: no journal is made.
        let c = dir.path().join("c");
        std::fs::create_dir(&c).unwrap();
        adopt(&c, Duration::from_secs(1)).unwrap();
        assert!(!c.join(JOURNAL).exists());
    }

    #[test]
    fn corrupt_middle_line_is_an_error_and_file_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = JournalFile::open(dir.path(), Duration::from_secs(1)).unwrap();
        s.append(&[enq(task(1, "a"))], true).unwrap();
        drop(s);
        let path = dir.path().join(JOURNAL);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"garbage\n");
        std::fs::write(&path, &bytes).unwrap();
        let mut s = JournalFile::open(dir.path(), Duration::from_secs(1)).unwrap();
        let err = s.load().unwrap_err();
        assert_eq!(error::exit_of(&err), error::Exit::State);
        assert!(s.scan().is_err());
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    const V1_STATE: &str = include_str!("../../fixtures/state/v1/state.jsonl");
    const V1_RESULTS: &str = include_str!("../../fixtures/state/v1/results.jsonl");
    const V1_METRICS: &str = include_str!("../../fixtures/state/v1/metrics.jsonl");

    /// The old-journal fixture: every future version must fold it to the same state.
    #[test]
    fn v1_fixture_folds_to_the_recorded_state() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(JOURNAL), V1_STATE).unwrap();
        let mut f = JournalFile::open(dir.path(), Duration::from_secs(1)).unwrap();
        let st = f.load().unwrap();
        let mut queued: Vec<&str> = st.queued.keys().map(String::as_str).collect();
        queued.sort();
        assert_eq!(queued, ["4", "5"]);
        let mut running: Vec<&str> = st.running.keys().map(String::as_str).collect();
        running.sort();
        assert_eq!(running, ["9"]);
        let orphan = &st.running["9"];
        assert_eq!(orphan.pid, Some(9817));
        assert_eq!(orphan.drainer, "9812-468708285952");
        assert_eq!(st.next_seq, 10);
        let odd = match &st.queued["4"].action {
            crate::state::task::Action::Command { argv, .. } => argv[2].0.clone(),
            other => panic!("not a command: {other:?}"),
        };
        assert_eq!(odd, b"caf\xe9 with spaces \"quoted\"");
        let ok: Vec<bool> = st.history["custom"].iter().map(|e| e.ok).collect();
        assert_eq!(ok, [true, false, false, true]);
        let scan = f.scan().unwrap();
        assert_eq!(scan.queued, 2);
        assert_eq!(scan.open_claims.len(), 1);
        assert_eq!(scan.next_seq, 10);
        assert!(scan.queued_with(&st.queued["5"].dedup_key()).is_some());
        assert_eq!(
            std::fs::read_to_string(dir.path().join(JOURNAL)).unwrap(),
            V1_STATE
        );
    }

    /// Same JSON text up to the last bit of a float (serde_json reads floats to within an
    /// ulp unless its `float_roundtrip` feature is on).
    fn same_line(written: &str, original: &str) {
        use serde_json::Value;
        fn same(a: &Value, b: &Value) -> bool {
            match (a, b) {
                (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
                    let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                    (x - y).abs() <= x.abs().max(1.0) * 1e-15
                }
                (Value::Array(x), Value::Array(y)) => {
                    x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
                }
                (Value::Object(x), Value::Object(y)) => {
                    x.keys().eq(y.keys()) && x.values().zip(y.values()).all(|(a, b)| same(a, b))
                }
                _ => a == b,
            }
        }
        let keys = |l: &str| -> Vec<String> {
            // Field order on disk: the keys in the order written.
            l.split("\":")
                .map(|p| p.rsplit('"').next().unwrap_or("").to_string())
                .collect()
        };
        let (a, b): (Value, Value) = (
            serde_json::from_str(written).unwrap(),
            serde_json::from_str(original).unwrap(),
        );
        assert!(same(&a, &b), "{written}\n  differs from\n{original}");
        assert_eq!(keys(written), keys(original), "field order");
    }

    /// On-disk compatibility: every line of the v1 files reads into today's types and writes
    /// back as the same JSON, fields in the same order, so old and new bgrun can share a
    /// state dir's files.
    #[test]
    fn v1_fixture_lines_round_trip_byte_for_byte() {
        for line in V1_STATE.lines() {
            let op: Op = serde_json::from_str(line).unwrap();
            same_line(&serde_json::to_string(&op).unwrap(), line);
        }
        let mut statuses = Vec::new();
        for line in V1_RESULTS.lines() {
            let r: TaskResult = serde_json::from_str(line).unwrap();
            same_line(&serde_json::to_string(&r).unwrap(), line);
            statuses.push(r.status);
        }
        use crate::model::Status::*;
        assert_eq!(
            statuses,
            [Succeeded, Failed, Failed, Dropped, Cancelled, Succeeded]
        );
        for line in V1_METRICS.lines() {
            let s: Sample = serde_json::from_str(line).unwrap();
            same_line(&serde_json::to_string(&s).unwrap(), line);
        }
    }

    /// The batch claim: the ready tasks in run order (priority, then FIFO; a retry waiting
    /// for its `not_before` is skipped), at most `want`, and none past `global_max` running.
    #[test]
    fn claim_next_takes_ready_tasks_in_run_order_within_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = JsonlStore::new(dir.path().to_path_buf(), Duration::from_secs(1));
        let mut txn = store.begin().unwrap();
        let mut low = task(0, "low");
        low.priority = 1;
        let mut later = task(0, "later");
        later.priority = 100;
        later.not_before = Some(50.0);
        let mut high = task(0, "high");
        high.priority = 50;
        for t in [low, task(0, "mid1"), later, task(0, "mid2"), high] {
            txn.enqueue(t).unwrap();
        }
        let names = |v: &[(Task, Lease)]| v.iter().map(|(t, _)| t.name.clone()).collect::<Vec<_>>();
        let got = txn.claim_next(2, 10, "me", 1.0).unwrap();
        assert_eq!(names(&got), ["high", "mid1"]);
        assert!(got.iter().all(|(t, l)| l.id == t.id && l.drainer == "me"));
        // Three run in the store now at most: one more.
        let got = txn.claim_next(5, 3, "me", 1.0).unwrap();
        assert_eq!(names(&got), ["mid2"]);
        assert!(txn.claim_next(5, 3, "me", 1.0).unwrap().is_empty());
        // Past its not_before, the waiting retry comes first.
        let got = txn.claim_next(5, 10, "me", 60.0).unwrap();
        assert_eq!(names(&got), ["later", "low"]);
        assert_eq!(txn.state().unwrap().running.len(), 5);
        assert!(txn.state().unwrap().queued.is_empty());
    }

    /// The store's transactions: dedup through the scan, overflow through the fold, fenced
    /// finish, expired claims of a dead drainer, and a dropped transaction changes nothing.
    #[test]
    fn jsonl_store_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = JsonlStore::new(dir.path().to_path_buf(), Duration::from_secs(1));
        let mut txn = store.begin().unwrap();
        let a = txn.enqueue(task(0, "a")).unwrap();
        let b = txn.enqueue(task(0, "b")).unwrap();
        assert_eq!((a.id.as_str(), b.id.as_str()), ("1", "2"));
        assert_eq!(
            txn.queued_with_key(&a.dedup_key()).unwrap(),
            Some("1".into())
        );
        assert_eq!(txn.queued_len().unwrap(), 2);
        txn.commit(Durability::Now).unwrap();

        // Dropped without commit: nothing happens.
        let mut txn = store.begin().unwrap();
        txn.enqueue(task(0, "c")).unwrap();
        assert!(txn.remove_queued("1", Removal::Cancelled).unwrap());
        drop(txn);
        let mut txn = store.begin().unwrap();
        assert_eq!(txn.queued_len().unwrap(), 2);
        assert_eq!(txn.state().unwrap().queued.len(), 2);

        // Claim, spawn, finish with a retry (same id, new seq); a stranger's lease is fenced.
        let lease = txn.claim("1", "me", 1.0).unwrap().unwrap();
        assert!(txn.spawned(&lease, 1, 2, "log".into()).unwrap());
        let end = End {
            task_type: "custom".into(),
            status: crate::model::Status::Failed,
            duration_s: 0.5,
            at: 2.0,
        };
        let stranger = Lease {
            drainer: "other".into(),
            ..lease.clone()
        };
        assert!(!txn.finish(&stranger, &end, None).unwrap());
        let mut again = a.clone();
        again.attempt = 1;
        assert!(txn.finish(&lease, &end, Some(again)).unwrap());
        let st = txn.state().unwrap();
        assert!(st.running.is_empty());
        assert_eq!(st.queued["1"].seq, 3);
        assert!(!st.history["custom"][0].ok);
        let mut r: TaskResult = serde_json::from_str(V1_RESULTS.lines().nth(1).unwrap()).unwrap();
        r.id = "1".into();
        txn.save_result(r, 2, 0);
        let saved = txn.commit(Durability::Soon).unwrap();
        assert_eq!(saved.len(), 1);
        store.sync().unwrap();
        assert_eq!(store.view().queued.len(), 2);
        assert!(!store.changed());
        assert_eq!(store.results(Some("1"), 5).unwrap().len(), 1);

        // A claim by a drainer that is not alive has expired.
        let mut txn = store.begin().unwrap();
        txn.claim("2", "0-0", 3.0).unwrap().unwrap();
        txn.commit(Durability::Now).unwrap();
        let mut other = JsonlStore::new(dir.path().to_path_buf(), Duration::from_secs(1));
        assert!(other.changed());
        let mut txn = other.begin().unwrap();
        assert!(txn.may_have_expired_claims().unwrap());
        let expired = txn.expired_claims(None).unwrap();
        assert_eq!(expired.len(), 1);
        let mut t = expired[0].task.clone();
        t.attempt = 1;
        txn.release_expired("2", Release::Requeue(Box::new(t)))
            .unwrap();
        assert!(txn.expired_claims(None).unwrap().is_empty());
        assert_eq!(txn.state().unwrap().queued["2"].attempt, 1);
        txn.commit(Durability::Now).unwrap();
        assert!(store.changed(), "the first handle sees the other's commit");
    }
}
