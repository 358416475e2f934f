//! The shared (networked) store: one queue for many hosts, behind [`SharedStore`]. The
//! engine's shared-queue worker (`engine::worker`), the shared enqueue, the operator's
//! board (`engine::board`) and `store migrate|status` speak only this trait and the plain
//! data below; [`super::open_shared`] is the one place that picks an implementation
//! (today PostgreSQL, `store::pg`, the only code that knows SQL or the `postgres` crate).
//!
//! # Why not [`super::Txn`]
//!
//! A [`super::Txn`] asks many small questions (`state`, `queued_len`, `queued_with_key`,
//! `claim` one id at a time, `finish`, `save_result`): the journal answers each from memory
//! under its file lock, but against a database each would be a network round trip, and a
//! transaction held open across them would hold row locks across the fleet. So the unit of
//! work here is a whole operation, each one round trip in the common case:
//!
//! - **the enqueue** ([`SharedStore::enqueue`]): a batch of tasks with dedup (one live task
//!   per dedup key), the queue-size bound (overflow drops the lowest priority, visibly), the
//!   wake-up of the workers, and what the command needs to know besides (an expired lease,
//!   a live worker), in one call;
//! - **the worker's turn** ([`SharedStore::finish_and_claim`]): every finished run recorded
//!   fenced by its lease token (result, metrics sample, retry, the type's history), then the
//!   next claims (effective-priority order, within the fleet's and this host's limits), one
//!   round trip and one transaction, made durable by the next statement ([`Turn::durable`]);
//! - **renewal** ([`SharedStore::renew`]), **hand back** ([`SharedStore::hand_back`]) and
//!   **re-queueing expired leases** ([`SharedStore::requeue_expired`]).
//!
//! # The contract, for an implementer
//!
//! **Leases.** A claim carries a token and an expiry by the store's own clock (so hosts
//! with skewed clocks agree); the worker renews it every third of the lease. Any command
//! that opens the store re-queues what expired (attempt + 1, or abandoned past its
//! retries, each lost run with its result).
//!
//! **Fencing.** A finish, renewal or hand back names the lease token; when the claim is no
//! longer held under it (it expired and was re-queued, maybe re-claimed elsewhere), the
//! store writes nothing for it and says so ([`Turn::accepted`], [`Renewed::lost`]): a task
//! never gets two results.
//!
//! **Wake-up.** [`SharedStore::listen`] calls the worker's `wake` whenever a task is
//! queued or a stop asked (and after every (re)connection of the listener), so a worker
//! sleeps in `poll` and never polls the queue.
//!
//! **Ids** are the store's row ids (numbers); task ids in results are their decimal text.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use serde::Serialize;

use crate::results::{Sample, TaskResult};
use crate::state::task::Task;

/// The shortest lease a worker takes, whatever `store.lease_seconds` says (it renews every
/// third of it, so a shorter one would expire under a merely busy worker).
pub const MIN_LEASE_S: f64 = 3.0;

/// The lease length in force for `store.lease_seconds`.
pub fn lease_s(configured: u64) -> f64 {
    (configured as f64).max(MIN_LEASE_S)
}

/// How many tasks one worker runs at once: the fleet's `execution.max_concurrent_tasks`,
/// at most `--host-limit`, at least 1.
pub fn local_max(fleet: usize, host_limit: Option<usize>) -> usize {
    let fleet = fleet.max(1);
    fleet.min(host_limit.unwrap_or(fleet)).max(1)
}

/// The store URL in force: `--store`/`$BGRUN_STORE`, else `store.url`.
pub fn url_of(flag: Option<&str>, config: Option<&str>) -> Option<String> {
    flag.or(config)
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
}

/// The URL with any password masked, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, tail) = match rest.split_once('@') {
        Some((a, t)) => (a, t),
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{tail}"),
        None => url.to_string(),
    }
}

/// This host's name in claims and results: `$BGRUN_HOST`, else the system host name.
pub fn host_name() -> String {
    if let Ok(h) = std::env::var("BGRUN_HOST")
        && !h.trim().is_empty()
    {
        return h.trim().to_string();
    }
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for its length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        let s = String::from_utf8_lossy(&buf[..end]).into_owned();
        if !s.is_empty() {
            return s;
        }
    }
    "localhost".to_string()
}

/// What an enqueue saw of the store besides the queue, so the command needs no further
/// round trip when nothing is to be done.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen {
    /// A running task's lease has expired: re-queue it (`requeue_expired`).
    pub expired: bool,
    /// A worker heartbeat is recent: no local drainer is needed.
    pub worker_alive: bool,
}

/// What became of one enqueued task.
#[derive(Debug, Clone)]
pub enum Enqueued {
    Queued {
        id: String,
        dropped: Option<TaskResult>,
    },
    Duplicate {
        id: String,
    },
    Dropped {
        result: TaskResult,
    },
}

/// A claimed task: run attempt `task.attempt + 1` while the lease `token` is renewed.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub task: Task,
    pub token: String,
}

/// A finished run to record, fenced by its lease `token`; `retry` is the task to queue
/// again, if any.
#[derive(Debug, Clone, Copy)]
pub struct Finish<'a> {
    pub token: &'a str,
    pub result: &'a TaskResult,
    pub retry: Option<&'a Task>,
    pub sample: &'a Sample,
}

/// A claim: up to `want` tasks for worker `worker_id`, leased for `lease_s`, within
/// `fleet_max` running in the whole fleet and `host_limit` on this host.
#[derive(Debug, Clone)]
pub struct ClaimReq {
    pub worker_id: i64,
    pub want: usize,
    pub fleet_max: usize,
    pub host_limit: Option<usize>,
    pub lease_s: f64,
}

/// What a claim found besides the claimed tasks.
#[derive(Debug, Default)]
pub struct ClaimOutcome {
    pub claimed: Vec<Claimed>,
    /// Fewer were claimed than asked while tasks ready now are left (the fleet or this host
    /// is at its limit, or other workers hold them): look again soon, no notification
    /// comes when a slot frees.
    pub full: bool,
    /// Queued tasks remain that are ready now or later; the earliest `not_before`.
    pub queued_left: bool,
    pub next_ready: Option<f64>,
}

/// A worker's turn ([`SharedStore::finish_and_claim`]).
#[derive(Debug)]
pub struct Turn {
    /// Per finished run: its result was recorded (`false`: the lease was lost, refused).
    pub accepted: Vec<bool>,
    pub out: ClaimOutcome,
    /// The turn reached the disk. An `Err`: it may or may not have been committed.
    pub durable: Result<()>,
}

/// What a renewal found.
#[derive(Debug, Default)]
pub struct Renewed {
    /// Leases lost: stop the task, its result will be refused.
    pub lost: Vec<i64>,
    /// Tasks `bgrun stop` asked to stop.
    pub stop: Vec<i64>,
}

/// What `stop` did.
#[derive(Debug, Default, Serialize)]
pub struct Stopping {
    pub cancelled: Vec<i64>,
    pub stopping: Vec<i64>,
    pub missing: Vec<i64>,
}

/// Queue depth by state and the fleet, for `store status` and `status`.
#[derive(Debug, Serialize)]
pub struct StoreStatus {
    pub url: String,
    pub schema_version: i32,
    pub latest_version: i32,
    pub queued: i64,
    pub running: i64,
    pub done: i64,
    /// Counts stop at the store's cap ("at least"; PostgreSQL: 100,000).
    pub capped: bool,
    pub workers: Vec<WorkerInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkerInfo {
    pub host: String,
    pub pid: i32,
    pub started_at: String,
    pub running: i64,
    pub heartbeat_at: String,
}

/// A live task of the store, as `status` shows it.
#[derive(Debug, Clone)]
pub struct LiveRow {
    pub running: bool,
    pub task: Task,
    pub eff_priority: f64,
    pub host: Option<String>,
    pub started_at: Option<f64>,
}

/// Where a task of the shared store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Queued,
    Running,
    Done,
}

/// A running listener ([`SharedStore::listen`]); dropping it tells it to stop (it may
/// linger in its wait a while, never calling `wake` again after its next wake-up).
#[derive(Debug)]
pub struct Listening {
    quit: Arc<AtomicBool>,
}

impl Listening {
    /// A listener that stops when `quit` is set.
    pub fn new(quit: Arc<AtomicBool>) -> Listening {
        Listening { quit }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::SeqCst);
    }
}

/// A connection to a shared store. See the module docs.
pub trait SharedStore {
    /// The applied schema version (0 before the first migration).
    fn schema_version(&mut self) -> Result<i32>;

    /// The schema version this bgrun needs.
    fn latest_schema(&self) -> i32;

    /// Apply every migration not yet applied; returns (from, to).
    fn migrate(&mut self) -> Result<(i32, i32)>;

    /// Queue tasks (dedup, the `max_queue` bound, the workers woken); returns what became
    /// of each, and what the enqueue saw besides (leases older than `lease_s`, live
    /// workers). Checks the schema version itself (open it unchecked).
    fn enqueue(
        &mut self,
        tasks: &[Task],
        max_queue: usize,
        lease_s: f64,
    ) -> Result<(Vec<Enqueued>, Seen)>;

    /// Register a worker of this host; returns its id.
    fn register_worker(&mut self) -> Result<i64>;

    /// The worker stops (best effort: a dead worker's heartbeat goes silent instead).
    fn unregister_worker(&mut self, worker_id: i64) -> Result<()>;

    /// One turn of a worker, one round trip: record the finished runs (fenced by their
    /// lease tokens: a lost lease's result is refused, `false` in [`Turn::accepted`]),
    /// then, when `claim` is given, claim ready tasks. Only when [`Turn::durable`] is `Ok`
    /// may the turn be acted on; an `Err` of the call itself: nothing was committed.
    /// `flush_worker`'s heartbeat is what makes the turn durable.
    fn finish_and_claim(
        &mut self,
        done: &[Finish<'_>],
        claim: Option<&ClaimReq>,
        flush_worker: i64,
    ) -> Result<Turn>;

    /// Renew the leases of `(id, token)` for `lease_s` and the worker's heartbeat.
    fn renew(&mut self, worker_id: i64, held: &[(i64, String)], lease_s: f64) -> Result<Renewed>;

    /// Give claimed tasks back to the queue unrun (same attempt); returns how many were
    /// still held.
    fn hand_back(&mut self, held: &[(i64, String)]) -> Result<usize>;

    /// Re-queue every task whose lease expired (attempt + 1), or end it as abandoned past
    /// its retries; returns the results recorded for the lost runs.
    fn requeue_expired(&mut self) -> Result<Vec<TaskResult>>;

    /// Seconds until the soonest lease of a running task expires, by the store's clock
    /// (`None`: nothing runs).
    fn next_expiry(&mut self) -> Result<Option<f64>>;

    /// Start listening for wake-ups (on a connection and a thread of its own, reconnecting
    /// by itself): `wake` is called when a task is queued or a stop asked, and after every
    /// (re)connection.
    fn listen(&self, wake: Box<dyn Fn() + Send>) -> Listening;

    /// The connection is known to be gone (after a failure: the worker reconnects anyway;
    /// this only words its warning).
    fn is_closed(&self) -> bool;

    /// Whether any worker is alive (a heartbeat younger than `2 x lease_s`).
    fn any_worker(&mut self, lease_s: f64) -> Result<bool>;

    /// Version, bounded queue depth by state, live workers.
    fn status(&mut self, lease_s: f64) -> Result<StoreStatus>;

    /// Where task `id` is, when the store has it.
    fn state_of(&mut self, id: i64) -> Result<Option<TaskState>>;

    /// Running tasks (with their host and start) and queued ones in run order (with their
    /// effective priority), at most `limit` of each.
    fn live_rows(&mut self, limit: i64) -> Result<Vec<LiveRow>>;

    /// Stored results, newest first (each names its host); of one task when `id` is given.
    fn results(&mut self, id: Option<&str>, last: usize) -> Result<Vec<TaskResult>>;

    /// Metrics samples since `since` (Unix seconds), the newest `limit` at most.
    fn samples(&mut self, since: f64, limit: i64) -> Result<Vec<Sample>>;

    /// Retention: results and finished tasks older than `results_days`, metrics samples
    /// older than `metrics_days`, stopped or silent workers older than a day. Returns the
    /// rows removed (results, tasks, samples, workers).
    fn cleanup(&mut self, results_days: u64, metrics_days: u64) -> Result<[u64; 4]>;

    /// `bgrun stop`: queued tasks end as cancelled (with a result); running ones are marked
    /// for their worker to stop. `None`: every live task.
    fn stop(&mut self, ids: Option<&[i64]>) -> Result<Stopping>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_masks_only_the_password() {
        assert_eq!(
            redact("postgres://u:secret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(redact("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact("nonsense"), "nonsense");
    }

    #[test]
    fn a_worker_runs_the_fleet_limit_capped_by_its_host_limit() {
        assert_eq!(local_max(4, None), 4);
        assert_eq!(local_max(4, Some(2)), 2);
        assert_eq!(local_max(2, Some(8)), 2);
        assert_eq!(local_max(0, None), 1);
        assert_eq!(local_max(3, Some(0)), 1);
    }

    #[test]
    fn flag_wins_over_config_and_blank_is_none() {
        assert_eq!(
            url_of(Some("postgres://a"), Some("postgres://b")).as_deref(),
            Some("postgres://a")
        );
        assert_eq!(
            url_of(None, Some("postgres://b")).as_deref(),
            Some("postgres://b")
        );
        assert_eq!(url_of(Some("  "), None), None);
    }
}
