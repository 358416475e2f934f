//! The engine: submitting tasks, the drain loop (claims under the lock, a pool of children
//! watched for exit, timeout, memory and CPU), crash recovery, stopping, and running one
//! task in the foreground. The state lock is held only for each read-modify-write of the
//! journal (and the fork/exec of a claimed task), never while a task runs.
//!
//! `submit` queues, `drain` runs the queue, `slot` is one running task, `recover` finds
//! orphans of dead drainers, `stop` cancels and waits, `run` is `bgrun run`.

mod board;
mod drain;
mod env;
mod outbox;
mod recover;
mod run;
mod slot;
mod stop;
mod submit;
#[cfg(test)]
mod tests;
mod worker;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use crate::config::Config;
use crate::results::{self, TaskResult};
use crate::state::procs;
use crate::state::task::Arg;
use crate::store::{self, Durability, Store, Txn};
use crate::timefmt::{now, rfc3339};

pub use board::{Board, Depth, Live, RunningTask, StoreInfo, View, WorkerView, board};
pub use drain::{DrainSummary, Progress, drain};
pub use env::{Env, Launcher};
pub use recover::recover_now;
pub use run::{run_now, run_now_with};
pub use stop::{Stopped, ago, stop, wait_for};
pub use submit::{Handed, build_task, hand_over, submit};
pub use worker::{WorkerOpts, requeue_expired, work};

/// A request to queue a task.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// A configured task type, or `custom` (then `argv` is the command).
    pub task_type: String,
    pub name: Option<String>,
    /// For `custom`: the command; for a command type: extra arguments appended to it.
    pub argv: Vec<Arg>,
    pub priority: Option<i64>,
    pub timeout_s: Option<u64>,
    /// `manual`, `hook:pre-push`, `watch`, `schedule:NAME`, ...
    pub trigger: String,
    /// What triggered it (commit, refs, changed files); given to the task as `$BGRUN_CONTEXT`.
    pub context: Value,
}

impl NewTask {
    pub fn of_type(task_type: &str, trigger: &str) -> NewTask {
        NewTask {
            task_type: task_type.to_string(),
            name: None,
            argv: Vec::new(),
            priority: None,
            timeout_s: None,
            trigger: trigger.to_string(),
            context: Value::Null,
        }
    }
}

/// What became of a request.
#[derive(Debug, Clone)]
pub enum Submitted {
    /// Queued under this id; `dropped` is a lower-priority task that made room for it.
    Queued {
        id: String,
        dropped: Option<TaskResult>,
    },
    /// The same type and argv is already queued under this id: not added.
    Duplicate { id: String },
    /// The queue is full of higher-priority tasks: this one was dropped (and recorded).
    Dropped { result: TaskResult },
}

/// The analyzer behind a built-in task type.
pub fn analyzer_of(task_type: &str) -> Option<&'static str> {
    match task_type {
        "security_scan" => Some("security"),
        "performance_profile" => Some("performance"),
        "code_analysis" => Some("code"),
        "test_runner" => Some("tests"),
        _ => None,
    }
}

pub(super) fn lock_timeout(c: &Config) -> Duration {
    Duration::try_from_secs_f64(c.execution.lock_timeout_seconds.max(0.0))
        .unwrap_or(Duration::from_secs(3600))
}

/// The store of this project's queue and results.
pub fn open_store(env: &Env) -> Box<dyn Store> {
    store::open(env.state_dir.clone(), lock_timeout(&env.config))
}

/// The one way the engine ends a transaction: persist (the queue change and the results
/// saved in it), unlock, then announce each saved result (outside the lock: channels may
/// take a while). Returns the results announced.
pub(super) fn commit(
    env: &Env,
    txn: Box<dyn Txn + '_>,
    durability: Durability,
) -> Result<Vec<TaskResult>> {
    commit_then(txn, durability, |r| {
        add_to_inbox(env, r);
        announce(env, r)
    })
}

/// The terminal inbox (its own lock): what the next git command will show. Called for each
/// saved result, before it is announced.
pub(super) fn add_to_inbox(env: &Env, r: &TaskResult) {
    if let Err(e) = crate::inbox::add(&env.state_dir, r) {
        eprintln!("bgrun: warning: cannot add task {} to the inbox: {e}", r.id);
    }
}

/// [`commit`] with the announcing step given (the drainer hands results to its outbox).
pub(super) fn commit_then(
    txn: Box<dyn Txn + '_>,
    durability: Durability,
    mut announce: impl FnMut(&TaskResult),
) -> Result<Vec<TaskResult>> {
    let saved = txn.commit(durability)?;
    for r in &saved {
        announce(r);
    }
    Ok(saved)
}

/// Tell people about a result.
fn announce(env: &Env, r: &TaskResult) {
    crate::notify::on_task_finished(&env.config, &env.repo, &env.state_dir, r);
}

/// Save one result outside the queue (`bgrun run`), then announce it.
pub(super) fn record(env: &Env, r: &TaskResult, queue_len: usize, concurrent: usize) -> Result<()> {
    let mut store = open_store(env);
    let mut txn = store.begin()?;
    txn.save_result(r.clone(), queue_len, concurrent);
    commit(env, txn, Durability::Now)?;
    Ok(())
}

/// Apply retention now, under the lock.
pub fn cleanup(env: &Env) -> Result<results::Cleaned> {
    open_store(env).cleanup(
        env.config.results.retention_days,
        env.config.metrics.retention_days,
    )
}

/// Append a line to `<state>/bgrun.log`, the audit trail.
pub fn log_event(env: &Env, msg: &str) {
    log_to(&env.state_dir, msg);
}

/// Append a line to `<state_dir>/bgrun.log`, for callers without a loaded config.
pub fn log_to(state_dir: &std::path::Path, msg: &str) {
    let _ = crate::state::store::ensure_private_dir(state_dir);
    let path = state_dir.join("bgrun.log");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .custom_flags(libc::O_NOFOLLOW)
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
    {
        let _ = writeln!(f, "{} [{}] {msg}", rfc3339(now()), std::process::id());
    }
}

/// Drain the configured store until its queue is empty, at most `max_local` tasks at once
/// in this process: the journal's drain loop, or, with a store URL, the shared store's
/// worker loop (within the fleet's `max_concurrent_tasks` as well).
pub fn drain_until_empty(
    env: &Env,
    max_local: usize,
    progress: &mut dyn Progress,
) -> Result<DrainSummary> {
    let Some(url) = env.store_url() else {
        return drain(env, max_local, progress);
    };
    let fleet = env.config.execution.max_concurrent_tasks.max(1);
    let opts = WorkerOpts {
        url: url.to_string(),
        host_limit: None,
        max_local: max_local.min(fleet).max(1),
        until_empty: true,
    };
    work(env, &opts, progress)
}

/// Start a detached drainer unless one is alive (it will pick up the new tasks).
pub fn ensure_drainer(env: &Env) -> Result<Option<u32>> {
    if let Some(url) = env.store_url()
        && worker::any_worker(env, url)?
    {
        // A shared store with live workers: they drain it.
        return Ok(None);
    }
    if !procs::alive(&env.state_dir, Some("drainer")).is_empty() {
        return Ok(None);
    }
    env.launcher.spawn_drainer().map(Some)
}

static STOP: AtomicBool = AtomicBool::new(false);
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// A pipe to write to on a stop signal, so that a sleeping `poll` wakes whichever thread
/// the signal was delivered to (-1: none).
static STOP_WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
    STOP_SIGNAL.store(sig, Ordering::SeqCst);
    let fd = STOP_WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = [1u8];
        // SAFETY: write is async-signal-safe; fd is a pipe kept open by its owner.
        unsafe {
            libc::write(fd, b.as_ptr().cast(), 1);
        }
    }
}

/// Have stop signals also write a byte to `fd` (the owner keeps it open; -1 to stop).
pub(super) fn wake_on_stop(fd: std::os::fd::RawFd) {
    STOP_WAKE_FD.store(fd, Ordering::SeqCst);
}

/// Catch SIGTERM, SIGINT and SIGHUP into a flag that the loops check.
pub fn install_stop_handlers() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only stores to atomics.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = 0;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
