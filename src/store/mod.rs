//! Persistence behind two seams: the engine reads and changes the queue only through a
//! [`Store`] and its transactions ([`Txn`]) for the local journal, or a [`SharedStore`] for
//! a queue shared by many hosts; it never sees files, locks or SQL.
//!
//! - `journal`: the pure model of the local store (operations, their fold, the prefix scan).
//! - `jsonl`: the local store, [`JsonlStore`]: `<state>/state.jsonl` under the `flock` of
//!   `<state>/lock`, results in `<state>/results.jsonl` and `metrics.jsonl`. [`open`].
//! - `shared`: the [`SharedStore`] trait and the data it speaks. Its unit of work is a
//!   whole operation of one network round trip (an enqueue, a worker's turn), not a
//!   [`Txn`], whose many small reads would each cost a round trip: see its docs.
//! - `pg`: PostgreSQL, the one [`SharedStore`] ([`open_shared`]), the only module that
//!   knows SQL. Another networked store is a new folder here implementing [`SharedStore`],
//!   plus its arm in [`open_shared`]; another local one implements [`Store`] and [`Txn`].
//!
//! # The contract of [`Store`] and [`Txn`], for an implementer
//!
//! **Transactions.** Everything the engine changes happens inside one [`Txn`], begun with
//! [`Store::begin`] and ended with [`Txn::commit`]. A transaction is *serializable* with
//! respect to every other process using the same store (the journal takes an exclusive
//! lock).
//! Its writes become visible to others all at once at commit; a transaction dropped without
//! `commit` changes nothing. Transactions are short: the engine holds one only to read,
//! decide and write, plus the fork/exec of the tasks it claims (never while a task runs).
//! Every write method also changes what [`Txn::state`] returns at once, so the engine can
//! decide the next step on the state it is building.
//!
//! **Ids and order.** [`Txn::enqueue`] gives a new task its `seq` (strictly increasing per
//! store, the FIFO order among equal priorities) and its `id` (`seq` as decimal text). A
//! retry or a recovered task keeps its id and gets a new `seq`.
//!
//! **Dedup.** A task's dedup key is [`Task::dedup_key`] (type + argv + cwd). The engine asks
//! [`Txn::queued_with_key`] before enqueueing and does not enqueue a duplicate; a store
//! must make that question cheap (the journal: its prefix scan).
//!
//! **Overflow.** The engine enforces `execution.max_queue_size`: it asks
//! [`Txn::queued_len`], and on overflow reads [`Txn::state`] to pick a victim
//! (`queue::overflow_victim`) and removes it with [`Txn::remove_queued`] (`Removal::Dropped`).
//!
//! **Claims are leases.** A drainer claims the next ready tasks with [`Txn::claim_next`]
//! (by default [`Txn::claim`] one id at a time); each claim is a [`Lease`]: the drainer's id plus a `token` the store chose. The claim is valid until the
//! drainer ends it ([`Txn::finish`]) or it *expires*. How a claim expires is the store's:
//! the journal's claims expire when the drainer's process-registry entry (an `flock`ed file
//! under `<state>/procs/`) is no longer locked, i.e. the drainer died; a store whose
//! leases have an expiry time pushes it forward in [`Txn::renew`] (the engine calls it on
//! every drain session, at least every 2 s, see [`RENEW_EVERY_S`]).
//! [`Txn::expired_claims`] lists running tasks whose claim expired; the engine kills what is
//! left of each task's process group (`Running::pid`, `pid_start`) and then releases it with
//! [`Txn::release_expired`]: re-queued (attempt + 1) or ended (abandoned or cancelled).
//!
//! **Fencing.** [`Txn::spawned`] and [`Txn::finish`] take the [`Lease`]; when the claim is
//! no longer held under that token (it expired and was released, maybe re-claimed by
//! another drainer), they write nothing and return `Ok(false)`; the engine then drops its
//! result instead of recording it twice.
//!
//! **Workers.** A drainer announces itself with [`Store::worker_started`] and leaves with
//! [`Store::worker_stopped`] (defaults: nothing, as the journal needs: its drainers are in
//! the process registry).
//!
//! **Results.** [`Txn::save_result`] records one execution's [`TaskResult`] (with queue
//! length and concurrency for its metrics sample); results are written with the
//! transaction (the journal appends them to `results.jsonl` while still holding its lock,
//! right after the journal lines). [`Txn::commit`] returns the saved results, which the
//! engine then announces (notifications) after the store is unlocked. The drainer saves a
//! task's result in the same transaction as its fenced [`Txn::finish`], and only when the
//! finish was accepted, so a result is never written by a drainer that lost the claim.
//!
//! **Durability.** [`Durability::Now`]: committed means on disk. [`Durability::Soon`]:
//! visible to others at once, durable by the next [`Store::sync`] (the drainer group-commits
//! ends this way and syncs within 20 ms). A store that is always durable on commit treats
//! both alike and makes `sync` a no-op.
//!
//! **The cached view.** [`Store::view`] is the state as of the last transaction (no I/O, no
//! lock), and [`Store::changed`] says cheaply whether others may have written since; the
//! drainer uses both to decide whether a transaction is worth taking. `changed` may answer
//! `true` when nothing changed; it must not answer `false` when something did.

pub mod journal;
pub mod jsonl;
mod pg;
pub mod shared;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::model::{Status, TaskResult};
use crate::results::Cleaned;
use crate::state::task::Task;

pub use journal::{Exec, Running, State};
pub use jsonl::JsonlStore;
pub use shared::{SharedStore, host_name, lease_s, redact, url_of};

/// How often at most the engine renews its leases ([`Txn::renew`]); a store's lease
/// expiry must be well above it (say 10x).
pub const RENEW_EVERY_S: f64 = 2.0;

/// Persistence for the queue, the running tasks and the results. See the module docs.
pub trait Store {
    /// Begin a transaction (waiting a bounded time for other writers: past it, a state
    /// error, exit 3).
    fn begin(&mut self) -> Result<Box<dyn Txn + '_>>;

    /// The state as of the last transaction of this handle (empty before the first one
    /// that read it). No I/O.
    fn view(&self) -> &State;

    /// Whether another process may have changed the store since [`Store::view`] was read.
    /// Cheap (one `stat` for the journal); may be `true` spuriously, never `false` wrongly.
    fn changed(&self) -> bool;

    /// Make the commits made with [`Durability::Soon`] durable.
    fn sync(&mut self) -> Result<()>;

    /// Stored results, newest first; only task `id`'s when given (then with their reports
    /// inlined); at most `last`.
    fn results(&self, id: Option<&str>, last: usize) -> Result<Vec<TaskResult>>;

    /// Apply retention: results (and their logs and reports) older than `results_days`,
    /// metrics samples older than `metrics_days`.
    fn cleanup(&mut self, results_days: u64, metrics_days: u64) -> Result<Cleaned>;

    /// A drainer starts working on this store (before its first claim). The journal needs
    /// nothing here: its drainers are found through the process registry
    /// (`state::procs`, which the engine keeps for every store, as the local list of
    /// processes). A shared store records the worker (host, pid, token, start) so that
    /// `status` can list workers on every machine; its leases still carry their own expiry.
    fn worker_started(&mut self, worker: &Worker) -> Result<()> {
        let _ = worker;
        Ok(())
    }

    /// A drainer stops (its queue is empty, or it was told to stop). Best effort: a
    /// drainer that dies never calls it, and its leases expire instead.
    fn worker_stopped(&mut self, worker: &Worker) -> Result<()> {
        let _ = worker;
        Ok(())
    }

    /// The workers the store knows of (the journal: none; `status` reads the registry).
    fn workers(&mut self) -> Result<Vec<Worker>> {
        Ok(Vec::new())
    }
}

/// A drainer, as a shared store lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    /// The drainer's token (what its claims carry as [`Lease::drainer`]).
    pub token: String,
    pub pid: u32,
    /// The host it runs on.
    pub host: String,
    /// When it started (Unix seconds).
    pub started_at: f64,
}

/// One transaction. Reads see this transaction's own writes.
pub trait Txn {
    /// The whole state: queued and running tasks, the execution history, the next `seq`.
    fn state(&mut self) -> Result<&State>;

    /// How many tasks are queued (cheap: the journal answers from a prefix scan).
    fn queued_len(&mut self) -> Result<usize>;

    /// The id of a queued task with this dedup key, if any (cheap).
    fn queued_with_key(&mut self, key: &str) -> Result<Option<String>>;

    /// Add a task to the queue, giving it a new `seq` and `id` (both are overwritten);
    /// returns the task as stored. The caller has checked dedup and overflow.
    fn enqueue(&mut self, task: Task) -> Result<Task>;

    /// Remove a queued task (cancelled by `bgrun stop`, or dropped from a full queue).
    /// Returns `false` when it is not queued.
    fn remove_queued(&mut self, id: &str, why: Removal) -> Result<bool>;

    /// Claim a queued task for drainer `drainer` at time `at`. `None` when it is not queued
    /// (any more).
    fn claim(&mut self, id: &str, drainer: &str, at: f64) -> Result<Option<Lease>>;

    /// Claim up to `want` ready tasks in run order (adaptive priority, then FIFO; none
    /// before its `not_before`) for drainer `drainer` at time `at`, while fewer than
    /// `global_max` tasks run in the whole store; returns each task with its lease. The
    /// default claims one at a time over [`Txn::state`] with [`Txn::claim`] (the journal's
    /// way); a store that can pick the next tasks itself overrides it with one query.
    fn claim_next(
        &mut self,
        want: usize,
        global_max: usize,
        drainer: &str,
        at: f64,
    ) -> Result<Vec<(Task, Lease)>> {
        let mut claimed = Vec::new();
        while claimed.len() < want && self.state()?.running.len() < global_max {
            let state = self.state()?;
            let Some(task) =
                crate::queue::next_ready(state.queued.values(), &state.history, at).cloned()
            else {
                break;
            };
            let Some(lease) = self.claim(&task.id, drainer, at)? else {
                break;
            };
            claimed.push((task, lease));
        }
        Ok(claimed)
    }

    /// Record the process started for a claimed task (for `status`, `stop` and recovery).
    /// Fenced: `false` (and nothing written) when the lease is no longer held.
    fn spawned(&mut self, lease: &Lease, pid: u32, pid_start: u64, log: PathBuf) -> Result<bool>;

    /// Ask the drainer of a running task to stop it. `false` when it is not running.
    fn request_stop(&mut self, id: &str) -> Result<bool>;

    /// End a claimed task's execution; with `retry`, queue it again (same id, new `seq`,
    /// `not_before` set by the caller). Fenced: `false` (and nothing written) when the
    /// lease is no longer held. A status other than cancelled or dropped joins the task
    /// type's execution history.
    fn finish(&mut self, lease: &Lease, end: &End, retry: Option<Task>) -> Result<bool>;

    /// Keep this drainer's leases alive; returns the ids of tasks whose lease was lost
    /// (the engine stops them). The journal's leases live as long as the drainer's process,
    /// so it returns nothing.
    fn renew(&mut self, drainer: &str, at: f64) -> Result<Vec<String>>;

    /// Whether any claim might have expired: a cheap check before [`Txn::expired_claims`]
    /// (which may fold the whole state).
    fn may_have_expired_claims(&mut self) -> Result<bool>;

    /// Running tasks whose claim expired (their drainer is gone), except those of drainer
    /// `mine`.
    fn expired_claims(&mut self, mine: Option<&str>) -> Result<Vec<Running>>;

    /// Release an expired claim: queue the task again (`Release::Requeue`, same id, new
    /// `seq`) or end it (`Release::End`).
    fn release_expired(&mut self, id: &str, how: Release) -> Result<()>;

    /// Record one execution's result, with the queue length and concurrency at its end for
    /// the metrics sample. Written with the transaction.
    fn save_result(&mut self, result: TaskResult, queue_len: usize, concurrent: usize);

    /// Make this transaction's writes so far visible and durable now; the transaction stays
    /// open. The drainer calls it between claiming and starting tasks: a task's process
    /// never exists before its claim is on disk (issue 14). A store whose writes are only
    /// visible at commit must make the claims durable here in a way that fences a second
    /// claim.
    fn flush(&mut self) -> Result<()>;
    /// Make this transaction's writes visible (and durable per `durability`), release the
    /// store, and hand back the results saved in it, for announcing.
    fn commit(self: Box<Self>, durability: Durability) -> Result<Vec<TaskResult>>;
}

/// A claim on a running task, proof for fenced writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The task's id.
    pub id: String,
    /// The drainer that holds it (its process-registry token).
    pub drainer: String,
    /// The store's token for this claim (the journal has none and uses 0).
    pub token: u64,
}

/// How an execution ended, as the store keeps it (the full [`TaskResult`] is saved apart).
#[derive(Debug, Clone, PartialEq)]
pub struct End {
    pub task_type: String,
    pub status: Status,
    pub duration_s: f64,
    /// When it ended (Unix seconds).
    pub at: f64,
}

/// Why a queued task leaves the queue without running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Cancelled,
    Dropped,
}

/// What becomes of a running task whose claim expired.
#[derive(Debug, Clone)]
pub enum Release {
    /// Run it again: this task (attempt already incremented by the caller).
    Requeue(Box<Task>),
    /// Record it as ended.
    End(End),
}

/// When a commit must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Before `commit` returns.
    Now,
    /// By the next [`Store::sync`]; visible to others at once.
    Soon,
}

/// The store for a state dir: today always the JSON Lines journal.
pub fn open(state_dir: PathBuf, lock_timeout: Duration) -> Box<dyn Store> {
    Box::new(JsonlStore::new(state_dir, lock_timeout))
}

/// The shared store at `url` (today always PostgreSQL), its schema checked: an older one
/// asks for `bgrun store migrate`, a newer one refuses (exit 3).
pub fn open_shared(url: &str) -> anyhow::Result<Box<dyn SharedStore>> {
    Ok(Box::new(pg::PgStore::open(url)?))
}

/// The shared store at `url` without checking its schema (for `store migrate`, `store
/// status`, and the enqueue, which checks it in its own round trip).
pub fn open_shared_unchecked(url: &str) -> anyhow::Result<Box<dyn SharedStore>> {
    Ok(Box::new(pg::PgStore::open_unchecked(url)?))
}
