//! The operator's side of a store, one seam for both: the stored results, where a task is,
//! the queue depth, the metrics samples, retention and `stop`. `results`, `metrics`,
//! `cleanup` and `stop` run one code path over a [`Board`]; [`board`] picks the local
//! journal ([`Local`]: the `Store`, recovery and the process registry of this state dir)
//! or, only when a store URL is configured, the shared store ([`Shared`], over
//! `store::SharedStore`). No PostgreSQL code runs without a URL.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::{Env, Stopped, open_store, recover_now, requeue_expired};
use crate::error;
use crate::queue;
use crate::results::{self, Cleaned, Sample, TaskResult};
use crate::state::task::Task;
use crate::store::shared::TaskState;
use crate::store::{self, SharedStore};
use crate::timefmt::now;

/// Where a task is when it has no result yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    Queued,
    Running,
}

impl Live {
    pub fn as_str(self) -> &'static str {
        match self {
            Live::Queued => "queued",
            Live::Running => "running",
        }
    }
}

/// How many tasks are queued and running now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    pub queued: usize,
    pub running: usize,
}

/// What `status` shows of the queue, on any store.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The shared store, when that is what this is.
    pub store: Option<StoreInfo>,
    /// Queued tasks in run order with their effective priority (the journal: all of them;
    /// a shared store: the first [`SHOWN`]).
    pub queued: Vec<(Task, f64)>,
    /// How many are queued (a shared store counts up to a cap: see `StoreInfo::capped`).
    pub queued_total: usize,
    /// Running tasks, oldest first.
    pub running: Vec<RunningTask>,
    pub running_total: usize,
    /// The workers a shared store knows of (the journal's drainers are in the process
    /// registry, which `status` reads itself).
    pub workers: Vec<WorkerView>,
}

/// The shared store's identity in `status`.
#[derive(Debug, Clone)]
pub struct StoreInfo {
    /// The URL without its password.
    pub url: String,
    pub schema_version: i32,
    /// The counts stopped at the store's cap ("at least").
    pub capped: bool,
}

/// A running task in `status`.
#[derive(Debug, Clone)]
pub struct RunningTask {
    pub task: Task,
    /// When it was claimed or started (Unix seconds).
    pub started_at: f64,
    /// Its process (the journal knows it; a shared store's runs live on other hosts).
    pub pid: Option<u32>,
    /// The host running it (a shared store).
    pub host: Option<String>,
    pub log: Option<PathBuf>,
}

/// A worker of a shared store.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerView {
    pub host: String,
    pub pid: i32,
    pub started_at: String,
    pub running: i64,
}

/// How many live tasks of each state a shared store's `status` reads.
pub const SHOWN: i64 = 200;

/// The read side and the operator's verbs over one store.
pub trait Board {
    /// Stored results, newest first; of task `id` only when given; at most `last`.
    fn results(&mut self, id: Option<&str>, last: usize) -> Result<Vec<TaskResult>>;
    /// Whether task `id` is queued or running (`None`: neither, or unknown).
    fn live(&mut self, id: &str) -> Result<Option<Live>>;
    /// The queue depth now.
    fn depth(&mut self) -> Result<Depth>;
    /// The metrics samples kept (within metrics retention).
    fn samples(&mut self) -> Result<Vec<Sample>>;
    /// Apply the configured retention.
    fn cleanup(&mut self) -> Result<Cleaned>;
    /// The live tasks and the workers, for `status`.
    fn view(&mut self) -> Result<View>;
    /// Stop tasks: queued ones are cancelled now, running ones are asked to stop (`all`:
    /// every queued and running task, and on the journal its drainers and watchers too).
    fn stop(&mut self, ids: &[String], all: bool) -> Result<Stopped>;
}

/// The board of the configured store: the shared store when a URL is set (opening it
/// re-queues expired leases, as every command on it does), else the local journal.
pub fn board(env: &Env) -> Result<Box<dyn Board + '_>> {
    Ok(match env.store_url() {
        Some(url) => Box::new(Shared::open(env, url)?),
        None => Box::new(Local { env }),
    })
}

/// The local journal of a state dir.
pub struct Local<'a> {
    env: &'a Env,
}

impl Board for Local<'_> {
    fn results(&mut self, id: Option<&str>, last: usize) -> Result<Vec<TaskResult>> {
        open_store(self.env).results(id, last)
    }

    fn live(&mut self, id: &str) -> Result<Option<Live>> {
        let state = recover_now(self.env)?;
        Ok(if state.running.contains_key(id) {
            Some(Live::Running)
        } else if state.queued.contains_key(id) {
            Some(Live::Queued)
        } else {
            None
        })
    }

    fn depth(&mut self) -> Result<Depth> {
        let state = recover_now(self.env)?;
        Ok(Depth {
            queued: state.queued.len(),
            running: state.running.len(),
        })
    }

    fn samples(&mut self) -> Result<Vec<Sample>> {
        Ok(results::samples(&self.env.state_dir))
    }

    fn cleanup(&mut self) -> Result<Cleaned> {
        super::cleanup(self.env)
    }

    fn view(&mut self) -> Result<View> {
        let state = recover_now(self.env)?;
        let queued: Vec<(Task, f64)> = queue::ordered(state.queued.values(), &state.history)
            .into_iter()
            .map(|(t, eff)| (t.clone(), eff))
            .collect();
        let mut running: Vec<RunningTask> = state
            .running
            .values()
            .map(|r| RunningTask {
                task: r.task.clone(),
                started_at: r.claimed_at,
                pid: r.pid,
                host: None,
                log: r.log.clone(),
            })
            .collect();
        running.sort_by_key(|r| r.task.seq);
        Ok(View {
            store: None,
            queued_total: queued.len(),
            queued,
            running_total: running.len(),
            running,
            workers: Vec::new(),
        })
    }

    fn stop(&mut self, ids: &[String], all: bool) -> Result<Stopped> {
        super::stop(self.env, ids, all)
    }
}

/// The shared store (PostgreSQL).
pub struct Shared<'a> {
    env: &'a Env,
    db: Box<dyn SharedStore>,
}

/// At most this many metrics samples are read from the shared store.
const MAX_SAMPLES: i64 = 100_000;

impl<'a> Shared<'a> {
    /// Connect (schema current) and re-queue expired leases.
    pub fn open(env: &'a Env, url: &str) -> Result<Shared<'a>> {
        let mut db = store::open_shared(url)?;
        requeue_expired(env, db.as_mut())?;
        Ok(Shared { env, db })
    }

    fn lease_s(&self) -> f64 {
        store::lease_s(self.env.config.store.lease_seconds)
    }
}

/// A task id of the shared store (a number).
fn store_id(id: &str) -> Result<i64> {
    id.parse::<i64>()
        .map_err(|_| error::usage(format!("{id:?}: not a task id of the store (a number)")))
}

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

impl Board for Shared<'_> {
    fn results(&mut self, id: Option<&str>, last: usize) -> Result<Vec<TaskResult>> {
        self.db.results(id, last)
    }

    fn live(&mut self, id: &str) -> Result<Option<Live>> {
        let Ok(n) = id.parse::<i64>() else {
            return Ok(None);
        };
        Ok(match self.db.state_of(n)? {
            Some(TaskState::Queued) => Some(Live::Queued),
            Some(TaskState::Running) => Some(Live::Running),
            Some(TaskState::Done) | None => None,
        })
    }

    fn depth(&mut self) -> Result<Depth> {
        let lease = self.lease_s();
        let s = self.db.status(lease)?;
        Ok(Depth {
            queued: count(s.queued),
            running: count(s.running),
        })
    }

    fn samples(&mut self) -> Result<Vec<Sample>> {
        let days = self.env.config.metrics.retention_days as f64;
        self.db.samples(now() - days * 86_400.0, MAX_SAMPLES)
    }

    fn cleanup(&mut self) -> Result<Cleaned> {
        let c = &self.env.config;
        let [results, tasks, samples, workers] = self
            .db
            .cleanup(c.results.retention_days, c.metrics.retention_days)?;
        let n = |x: u64| usize::try_from(x).unwrap_or(usize::MAX);
        Ok(Cleaned {
            results: n(results),
            metrics_lines: n(samples),
            tasks: n(tasks),
            workers: n(workers),
            ..Cleaned::default()
        })
    }

    fn view(&mut self) -> Result<View> {
        let lease = self.lease_s();
        let s = self.db.status(lease)?;
        let mut v = View {
            store: Some(StoreInfo {
                url: s.url,
                schema_version: s.schema_version,
                capped: s.capped,
            }),
            queued_total: count(s.queued),
            running_total: count(s.running),
            workers: s
                .workers
                .into_iter()
                .map(|w| WorkerView {
                    host: w.host,
                    pid: w.pid,
                    started_at: w.started_at,
                    running: w.running,
                })
                .collect(),
            ..View::default()
        };
        for row in self.db.live_rows(SHOWN)? {
            if row.running {
                v.running.push(RunningTask {
                    started_at: row.started_at.unwrap_or(row.task.enqueued_at),
                    task: row.task,
                    pid: None,
                    host: row.host,
                    log: None,
                });
            } else {
                v.queued.push((row.task, row.eff_priority));
            }
        }
        Ok(v)
    }

    fn stop(&mut self, ids: &[String], all: bool) -> Result<Stopped> {
        let ids: Vec<i64> = ids.iter().map(|i| store_id(i)).collect::<Result<_>>()?;
        let s = self.db.stop(if all { None } else { Some(&ids) })?;
        let text = |v: Vec<i64>| v.into_iter().map(|i| i.to_string()).collect();
        Ok(Stopped {
            removed: text(s.cancelled),
            signalled: text(s.stopping),
            not_found: text(s.missing),
            processes: Vec::new(),
        })
    }
}
