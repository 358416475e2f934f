//! The journal model, pure: the operations one line of `state.jsonl` records ([`Op`]), the
//! fold they build ([`State`]: queued and running tasks, the execution history), the fast
//! prefix scan an enqueue uses ([`Scan`]) and the lines a compaction writes. No I/O: the
//! file, its lock and its durability are `store::jsonl`'s.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::model::Status;
use crate::state::task::Task;

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

/// Why a line cannot be read.
#[derive(Debug, Clone, PartialEq)]
pub enum Bad {
    /// Unreadable (what and where).
    Corrupt(String),
    /// A header with a schema newer than this bgrun.
    Future(u32),
}

/// Check that the first line's operation is a header this bgrun understands.
pub fn check_header(op: &Op) -> Result<(), Bad> {
    match op {
        Op::Header { schema_version, .. } if *schema_version > SCHEMA_VERSION => {
            Err(Bad::Future(*schema_version))
        }
        Op::Header { .. } => Ok(()),
        _ => Err(Bad::Corrupt("line 1 is not a header".into())),
    }
}

impl Scan {
    /// Read one non-empty line (counted in `self.lines` by the caller) into the scan.
    pub fn read_line(&mut self, line: &[u8], enq_lines: &mut u64) -> Result<(), Bad> {
        let scan = self;
        if scan.lines == 1 {
            let op: Op =
                serde_json::from_slice(line).map_err(|e| Bad::Corrupt(format!("line 1: {e}")))?;
            check_header(&op)?;
            if let Op::Header { next_seq, .. } = op {
                scan.next_seq = next_seq;
            }
            return Ok(());
        }
        let lineno = scan.lines;
        let bad = || Bad::Corrupt(format!("line {lineno}"));
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
                return Err(Bad::Corrupt(format!("line {lineno}: unknown operation")));
            }
        }
        Ok(())
    }
}

/// The header line of a new journal.
pub fn header(next_seq: u64, created_at: f64, history: BTreeMap<String, VecDeque<Exec>>) -> Op {
    Op::Header {
        id: String::new(),
        key: String::new(),
        schema_version: SCHEMA_VERSION,
        next_seq,
        created_at,
        history,
    }
}

/// One line read back. serde's derive for `Op` (an internally tagged enum) buffers each line
/// into a generic tree before it picks the variant, which made a full read of 5,000 queued
/// tasks 1.5x slower than the pre-journal state file. bgrun writes `op` first, so an enqueue
/// line (the bulk of a journal) is read straight into its variant's fields; any other line
/// (and an enqueue line in another form) takes the derive, which accepts the same JSON.
pub fn parse(line: &[u8]) -> serde_json::Result<Op> {
    #[derive(Deserialize)]
    struct Enqueue {
        id: String,
        key: String,
        task: Box<Task>,
    }
    if let Some(rest) = line.strip_prefix(br#"{"op":"enq","#) {
        let mut body = Vec::with_capacity(rest.len() + 1);
        body.push(b'{');
        body.extend_from_slice(rest);
        if let Ok(Enqueue { id, key, task }) = serde_json::from_slice(&body) {
            return Ok(Op::Enqueue { id, key, task });
        }
    }
    serde_json::from_slice(line)
}

/// Lines as written: one JSON object and a newline each.
pub fn encode(ops: &[Op]) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(256 * ops.len());
    for op in ops {
        serde_json::to_writer(&mut buf, op)?;
        buf.push(b'\n');
    }
    Ok(buf)
}

/// The lines of a compacted journal: a header plus what describes `state` now.
pub fn compaction_ops(state: &State) -> Vec<Op> {
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
    ops
}

/// Read `{"op":"xxx","id":"...","key":"..."` from the start of a line.
pub fn prefix(line: &[u8]) -> Option<(&[u8], &str, &str)> {
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
