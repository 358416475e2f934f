//! The engine: submitting tasks, the drain loop (claims under the lock, a pool of children
//! watched for exit, timeout, memory and CPU), crash recovery, stopping, and running one
//! task in the foreground. The state lock is held only for each read-modify-write of the
//! journal (and the fork/exec of a claimed task), never while a task runs.
//!
//! `submit` queues, `drain` runs the queue, `slot` is one running task, `recover` finds
//! orphans of dead drainers, `stop` cancels and waits, `run` is `bgrun run`.

mod drain;
mod recover;
mod run;
mod slot;
mod stop;
mod submit;
mod worker;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::Ctx;
use crate::config::Config;
use crate::results::{self, Sample, TaskResult};
use crate::state::procs;
use crate::state::store::Store;
use crate::state::task::Arg;
use crate::timefmt::{now, rfc3339};

pub use drain::{DrainSummary, Progress, drain};
pub use recover::recover_now;
pub use run::run_now;
pub use stop::{Stopped, ago, stop, wait_for};
pub use submit::{build_task, submit};
pub use worker::{WorkerOpts, work};

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
    Duration::from_secs_f64(c.execution.lock_timeout_seconds.max(0.0))
}

pub fn open_store(ctx: &Ctx) -> Result<Store> {
    Store::open(&ctx.state_dir, lock_timeout(&ctx.config))
}

/// Save a result and its metrics sample; `_locked` proves the state lock is held, so that
/// the retention rewrite of the same files cannot lose these appends.
pub(super) fn persist(
    ctx: &Ctx,
    _locked: &Store,
    r: &TaskResult,
    queue_len: usize,
    concurrent: usize,
) {
    if let Err(e) = results::save(&ctx.state_dir, r) {
        eprintln!(
            "bgrun: warning: cannot save the result of task {}: {e:#}",
            r.id
        );
    }
    let s = Sample {
        at: r.finished_ts(),
        task_type: r.task_type.clone(),
        status: r.status.clone(),
        duration_s: r.duration_s,
        queue_s: r.queue_s,
        peak_rss_mb: r.peak_rss_mb,
        cpu_s: r.cpu_s,
        queue_len,
        concurrent,
    };
    if let Err(e) = results::append_sample(&ctx.state_dir, &s) {
        eprintln!("bgrun: warning: cannot append metrics: {e:#}");
    }
}

/// Tell people about a result (outside the lock: channels may take a while).
pub(super) fn announce(ctx: &Ctx, r: &TaskResult) {
    crate::notify::on_task_finished(&ctx.config, &ctx.repo, &ctx.state_dir, r);
}

/// Persist under a short lock, then announce.
pub(super) fn record(ctx: &Ctx, r: &TaskResult, queue_len: usize, concurrent: usize) -> Result<()> {
    let store = open_store(ctx)?;
    persist(ctx, &store, r, queue_len, concurrent);
    drop(store);
    announce(ctx, r);
    Ok(())
}

/// Apply retention now, under the lock.
pub fn cleanup(ctx: &Ctx) -> Result<results::Cleaned> {
    let _store = open_store(ctx)?;
    results::cleanup(
        &ctx.state_dir,
        ctx.config.results.retention_days,
        ctx.config.metrics.retention_days,
    )
}

/// Append a line to `<state>/bgrun.log`, the audit trail.
pub fn log_event(ctx: &Ctx, msg: &str) {
    log_to(&ctx.state_dir, msg);
}

/// Append a line to `<state_dir>/bgrun.log`, for callers without a loaded config.
pub fn log_to(state_dir: &std::path::Path, msg: &str) {
    let _ = crate::state::store::ensure_private_dir(state_dir);
    let path = state_dir.join("bgrun.log");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
    {
        let _ = writeln!(f, "{} [{}] {msg}", rfc3339(now()), std::process::id());
    }
}

/// Start a detached drainer unless one is alive (it will pick up the new tasks).
pub fn ensure_drainer(ctx: &Ctx) -> Result<Option<u32>> {
    if !procs::alive(&ctx.state_dir, Some("drainer")).is_empty() {
        return Ok(None);
    }
    spawn_detached(ctx, &["drain", "--background"]).map(Some)
}

/// Start `bgrun <args>` fully detached: a new session, stdin from /dev/null, output to
/// `<state>/drainer.log`; reaped by a thread here, or by init once this process exits.
pub fn spawn_detached(ctx: &Ctx, args: &[&str]) -> Result<u32> {
    let exe = std::env::current_exe().context("cannot find the bgrun executable")?;
    crate::state::store::ensure_private_dir(&ctx.state_dir)?;
    let log_path = ctx.state_dir.join("drainer.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(ctx.child_args()).args(args);
    cmd.stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    cmd.current_dir(&ctx.repo);
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start a background drainer")?;
    let pid = child.id();
    std::thread::spawn(move || child.wait());
    Ok(pid)
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
