//! The engine: submitting tasks, the drain loop (claims under the lock, a pool of children
//! watched for exit, timeout, memory and CPU), crash recovery, stopping, and running one
//! task in the foreground. The state lock is held only for each read-modify-write of the
//! journal (and the fork/exec of a claimed task), never while a task runs.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::Ctx;
use crate::config::Config;
use crate::error;
use crate::queue;
use crate::results::{self, Findings, Sample, TaskResult};
use crate::runner::limits::{Sampler, Throttle};
use crate::runner::process::{self, Child, Spec};
use crate::state::procs;
use crate::state::store::{Cache, Op, Scan, State, Store};
use crate::state::task::{Action, Arg, Status, Task};
use crate::timefmt::{self, now, rfc3339};

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

fn lock_timeout(c: &Config) -> Duration {
    Duration::from_secs_f64(c.execution.lock_timeout_seconds.max(0.0))
}

pub fn open_store(ctx: &Ctx) -> Result<Store> {
    Store::open(&ctx.state_dir, lock_timeout(&ctx.config))
}

/// Turn a request into a task (validating it against the config: exit 2 when wrong).
pub fn build_task(ctx: &Ctx, new: &NewTask, seq: u64, at: f64) -> Result<Task> {
    let c = &ctx.config;
    let (action, priority, timeout, retries, name) = if new.task_type == "custom" {
        if new.argv.is_empty() {
            return Err(error::usage(
                "`custom` needs a command after `--`, e.g. `bgrun enqueue custom -- make lint`",
            ));
        }
        let action = Action::Command {
            argv: new.argv.clone(),
            cwd: None,
            env: Default::default(),
            report: None,
        };
        let name = new
            .argv
            .iter()
            .map(Arg::lossy)
            .collect::<Vec<_>>()
            .join(" ");
        (
            action,
            10,
            c.execution.task_timeout_seconds,
            c.execution.max_retries,
            name,
        )
    } else {
        let Some(t) = c.task_types.get(&new.task_type) else {
            let known: Vec<&str> = c.task_types.keys().map(String::as_str).collect();
            return Err(error::usage(format!(
                "unknown task type {:?}: configured types are {} (or `custom -- ARGV`)",
                new.task_type,
                known.join(", ")
            )));
        };
        if !t.enabled {
            return Err(error::usage(format!(
                "task type {:?} is disabled (task_types.{}.enabled in {})",
                new.task_type, new.task_type, ctx.config_source
            )));
        }
        let action = match (&t.command, analyzer_of(&new.task_type)) {
            (Some(cmd), _) => {
                let mut argv: Vec<Arg> = cmd.iter().map(|s| Arg::from(s.as_str())).collect();
                argv.extend(new.argv.iter().cloned());
                Action::Command {
                    argv,
                    cwd: t.cwd.as_ref().map(PathBuf::from),
                    env: t.env.clone(),
                    report: t.report.clone(),
                }
            }
            (None, Some(a)) => {
                if !new.argv.is_empty() {
                    return Err(error::usage(format!(
                        "{} is a built-in analyzer and takes no arguments after `--`",
                        new.task_type
                    )));
                }
                Action::Analyzer {
                    analyzer: a.to_string(),
                }
            }
            (None, None) => {
                return Err(error::usage(format!(
                    "task_types.{}.command: not set",
                    new.task_type
                )));
            }
        };
        let retries = t.max_retries.unwrap_or(c.execution.max_retries);
        (
            action,
            t.priority.0,
            c.timeout_for(t),
            retries,
            new.task_type.clone(),
        )
    };
    Ok(Task {
        id: seq.to_string(),
        task_type: new.task_type.clone(),
        name: new.name.clone().unwrap_or(name),
        action,
        priority: new.priority.unwrap_or(priority),
        timeout_s: new.timeout_s.unwrap_or(timeout),
        trigger: new.trigger.clone(),
        enqueued_at: at,
        first_enqueued_at: at,
        attempt: 0,
        max_retries: retries,
        retry_delay_s: c.execution.retry_delay_seconds,
        not_before: None,
        context: new.context.clone(),
        seq,
    })
}

/// Queue tasks under one lock. Duplicates are not added; on overflow the lowest-priority
/// task is dropped and recorded. Returns at once; see [`ensure_drainer`].
pub fn submit(ctx: &Ctx, news: &[NewTask]) -> Result<Vec<Submitted>> {
    let at = now();
    // Validate everything before taking the lock: a bad request changes nothing.
    let mut tasks = Vec::with_capacity(news.len());
    for n in news {
        tasks.push(build_task(ctx, n, 0, at)?);
    }
    let mut store = open_store(ctx)?;
    let mut scan = store.scan()?;
    if recover_orphans_fast(ctx, &mut store, &scan)? {
        scan = store.scan()?;
    }
    let mut ops = Vec::new();
    let mut out = Vec::new();
    let mut dropped_results = Vec::new();
    let mut full_state: Option<State> = None;
    for mut task in tasks {
        let key = task.dedup_key();
        if let Some(id) = scan.queued_with(&key) {
            out.push(Submitted::Duplicate { id: id.to_string() });
            continue;
        }
        task.seq = scan.next_seq;
        task.id = task.seq.to_string();
        scan.next_seq += 1;
        if scan.queued >= ctx.config.execution.max_queue_size {
            // Overflow: rare, so the whole journal is folded to find the victim.
            if full_state.is_none() {
                let mut st = store.load()?;
                for op in &ops {
                    st.apply(Op::clone(op));
                }
                full_state = Some(st);
            }
            let st = full_state.as_mut().context("state")?;
            let victim = queue::overflow_victim(st.queued.values(), &task).clone();
            let result = dropped_result(&victim, at, ctx.config.execution.max_queue_size);
            if victim.id == task.id {
                dropped_results.push(result.clone());
                out.push(Submitted::Dropped { result });
                continue;
            }
            let op = Op::Drop {
                id: victim.id.clone(),
                key: victim.dedup_key(),
            };
            st.apply(op.clone());
            ops.push(op);
            scan.remove_key(&victim.dedup_key());
            scan.queued -= 1;
            dropped_results.push(result.clone());
            let op = Op::Enqueue {
                id: task.id.clone(),
                key: key.clone(),
                task: Box::new(task.clone()),
            };
            st.apply(op.clone());
            ops.push(op);
            scan.add_key(&key, task.seq);
            scan.queued += 1;
            out.push(Submitted::Queued {
                id: task.id.clone(),
                dropped: Some(result),
            });
            continue;
        }
        if let Some(st) = full_state.as_mut() {
            st.apply(Op::Enqueue {
                id: task.id.clone(),
                key: key.clone(),
                task: Box::new(task.clone()),
            });
        }
        ops.push(Op::Enqueue {
            id: task.id.clone(),
            key: key.clone(),
            task: Box::new(task.clone()),
        });
        scan.add_key(&key, task.seq);
        scan.queued += 1;
        out.push(Submitted::Queued {
            id: task.id,
            dropped: None,
        });
    }
    store.append(&ops, true)?;
    if scan.lines > 4 * scan.queued + 20_000 {
        let st = store.load()?;
        store.compact(&st)?;
    }
    for r in &dropped_results {
        persist(ctx, &store, r, scan.queued, 0);
    }
    drop(store);
    for r in &dropped_results {
        announce(ctx, r);
        log_event(
            ctx,
            &format!("dropped task {} ({}): the queue is full", r.id, r.task_type),
        );
    }
    Ok(out)
}

fn dropped_result(t: &Task, at: f64, max: usize) -> TaskResult {
    let mut r = base_result(t, t.attempt, at);
    r.status = Status::Dropped.as_str().to_string();
    r.error = Some(format!(
        "dropped: the queue was full ({max} tasks) and this task had the lowest priority"
    ));
    r
}

fn base_result(t: &Task, attempt: u32, at: f64) -> TaskResult {
    TaskResult {
        id: t.id.clone(),
        task_type: t.task_type.clone(),
        name: t.name.clone(),
        status: String::new(),
        exit_code: None,
        signal: None,
        attempt,
        trigger: t.trigger.clone(),
        enqueued_at: rfc3339(t.enqueued_at),
        started_at: None,
        finished_at: rfc3339(at),
        duration_s: 0.0,
        queue_s: (at - t.enqueued_at).max(0.0),
        peak_rss_mb: 0.0,
        cpu_s: 0.0,
        log: None,
        error: None,
        will_retry: false,
        findings: None,
        report: None,
        report_path: None,
        context: t.context.clone(),
        argv: match &t.action {
            Action::Command { argv, .. } => argv.iter().map(Arg::lossy).collect(),
            Action::Analyzer { analyzer } => vec![format!("bgrun analyze {analyzer}")],
        },
    }
}

/// Save a result and its metrics sample; `_locked` proves the state lock is held, so that
/// the retention rewrite of the same files cannot lose these appends.
fn persist(ctx: &Ctx, _locked: &Store, r: &TaskResult, queue_len: usize, concurrent: usize) {
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
fn announce(ctx: &Ctx, r: &TaskResult) {
    crate::notify::on_task_finished(&ctx.config, &ctx.repo, &ctx.state_dir, r);
}

/// Persist under a short lock, then announce.
fn record(ctx: &Ctx, r: &TaskResult, queue_len: usize, concurrent: usize) -> Result<()> {
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
    let path = ctx.state_dir.join("bgrun.log");
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

// ---------------------------------------------------------------------------------------
// Recovery

/// Enqueue's cheap check: only when an open claim belongs to a dead drainer is the journal
/// folded and the orphan recovered. Returns whether anything changed.
fn recover_orphans_fast(ctx: &Ctx, store: &mut Store, scan: &Scan) -> Result<bool> {
    if scan.open_claims.is_empty() {
        return Ok(false);
    }
    let dead = scan.open_claims.values().any(|line| {
        serde_json::from_slice::<Op>(line)
            .ok()
            .is_some_and(|op| matches!(op, Op::Claim { drainer, .. } if !procs::token_alive(&ctx.state_dir, &drainer)))
    });
    if !dead {
        return Ok(false);
    }
    let mut state = store.load()?;
    let (ops, rs) = recover(ctx, &mut state, None);
    store.append(&ops, true)?;
    for r in &rs {
        persist(ctx, store, r, state.queued.len(), state.running.len());
    }
    for r in &rs {
        announce(ctx, r);
    }
    Ok(!ops.is_empty())
}

/// For every running task whose drainer is gone: kill its leftover process group (never
/// re-run while it lives), then re-queue it (attempt + 1) or, past its retries, record it
/// as abandoned. `mine` is the caller's own drainer token, skipped.
fn recover(ctx: &Ctx, state: &mut State, mine: Option<&str>) -> (Vec<Op>, Vec<TaskResult>) {
    let grace = Duration::from_secs(ctx.config.execution.kill_grace_seconds);
    let orphans: Vec<String> = state
        .running
        .iter()
        .filter(|(_, r)| {
            Some(r.drainer.as_str()) != mine && !procs::token_alive(&ctx.state_dir, &r.drainer)
        })
        .map(|(id, _)| id.clone())
        .collect();
    let mut ops = Vec::new();
    let mut rs = Vec::new();
    let at = now();
    for id in orphans {
        let Some(r) = state.running.get(&id).cloned() else {
            continue;
        };
        if let (Some(pid), Some(start)) = (r.pid, r.pid_start)
            && !process::kill_leftover_group(pid, start, grace)
        {
            log_event(
                ctx,
                &format!(
                    "task {id}: its old process group {pid} is still alive; not recovered yet"
                ),
            );
            continue;
        }
        let made = r.task.attempt + 1;
        let key = r.task.dedup_key();
        let mut attempt_ops = if made <= r.task.max_retries && !r.stop_requested {
            let mut t = r.task.clone();
            t.attempt = made;
            t.enqueued_at = at;
            t.seq = state.next_seq;
            vec![
                Op::Recovered {
                    id: id.clone(),
                    key: String::new(),
                },
                Op::Enqueue {
                    id: id.clone(),
                    key,
                    task: Box::new(t),
                },
            ]
        } else {
            let mut res = base_result(&r.task, made, at);
            res.status = if r.stop_requested {
                Status::Cancelled
            } else {
                Status::Abandoned
            }
            .as_str()
            .to_string();
            res.started_at = Some(rfc3339(r.claimed_at));
            res.duration_s = (at - r.claimed_at).max(0.0);
            res.queue_s = (r.claimed_at - r.task.enqueued_at).max(0.0);
            res.log = r.log.clone();
            res.error =
                Some("its drainer died while it ran, and it had no retries left".to_string());
            rs.push(res);
            vec![Op::End {
                id: id.clone(),
                key: String::new(),
                task_type: r.task.task_type.clone(),
                status: if r.stop_requested {
                    Status::Cancelled
                } else {
                    Status::Abandoned
                },
                duration_s: (at - r.claimed_at).max(0.0),
                at,
            }]
        };
        log_event(
            ctx,
            &format!(
                "recovered task {id} ({}) from a dead drainer",
                r.task.task_type
            ),
        );
        for op in &attempt_ops {
            state.apply(op.clone());
        }
        ops.append(&mut attempt_ops);
    }
    (ops, rs)
}

/// Run recovery under the lock: what every command does on start.
pub fn recover_now(ctx: &Ctx) -> Result<State> {
    let mut store = open_store(ctx)?;
    let mut state = store.load()?;
    let (ops, rs) = recover(ctx, &mut state, None);
    store.append(&ops, true)?;
    if state.wants_compaction() {
        store.compact(&state)?;
    }
    for r in &rs {
        persist(ctx, &store, r, state.queued.len(), state.running.len());
    }
    drop(store);
    for r in &rs {
        announce(ctx, r);
    }
    Ok(state)
}

// ---------------------------------------------------------------------------------------
// Signals

static STOP: AtomicBool = AtomicBool::new(false);
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
    STOP_SIGNAL.store(sig, Ordering::SeqCst);
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

// ---------------------------------------------------------------------------------------
// Running tasks

/// A task being run by this process.
struct Slot {
    task: Task,
    attempt: u32,
    child: Child,
    started: f64,
    deadline: f64,
    kill_at: Option<f64>,
    timed_out: bool,
    killed_memory: bool,
    cancelled: bool,
    peak_rss: u64,
    cpu_ms: u64,
    throttle: Throttle,
    report: Option<PathBuf>,
    log: PathBuf,
}

fn nice_and_ioprio(c: &Config) -> (i32, Option<(u32, u32)>) {
    match c.resource_limits.priority.as_str() {
        "low" => (19, Some((3, 0))),
        "high" => (0, Some((2, 4))),
        _ => (10, Some((2, 7))),
    }
}

fn spec_for(ctx: &Ctx, task: &Task, attempt: u32) -> Result<(Spec, Option<PathBuf>)> {
    let log = process::log_path(&ctx.state_dir, &task.id, attempt);
    let mut env: Vec<(OsString, OsString)> = vec![
        ("BGRUN_TASK_ID".into(), task.id.clone().into()),
        ("BGRUN_TASK_TYPE".into(), task.task_type.clone().into()),
        ("BGRUN_TRIGGER".into(), task.trigger.clone().into()),
        ("BGRUN_ATTEMPT".into(), attempt.to_string().into()),
        ("BGRUN_REPO".into(), ctx.repo.clone().into()),
    ];
    let mut report = None;
    if !task.context.is_null() {
        let dir = ctx.state_dir.join("reports");
        crate::state::store::ensure_private_dir(&dir)?;
        let p = dir.join(format!("{}-{attempt}.context.json", task.id));
        std::fs::write(&p, serde_json::to_vec(&task.context)?)?;
        env.push(("BGRUN_CONTEXT".into(), p.into()));
    }
    let (argv, cwd, capture) = match &task.action {
        Action::Command {
            argv,
            cwd,
            env: extra,
            report: rep,
        } => {
            for (k, v) in extra {
                env.push((k.into(), v.into()));
            }
            let cwd = match cwd {
                Some(c) if c.is_absolute() => c.clone(),
                Some(c) => ctx.repo.join(c),
                None => ctx.repo.clone(),
            };
            (argv.iter().map(Arg::to_os).collect(), cwd, rep.is_some())
        }
        Action::Analyzer { analyzer } => {
            let dir = ctx.state_dir.join("reports");
            crate::state::store::ensure_private_dir(&dir)?;
            let out = dir.join(format!("{}-{attempt}.json", task.id));
            let exe = std::env::current_exe().context("cannot find the bgrun executable")?;
            let mut argv: Vec<OsString> = vec![exe.into()];
            argv.extend(ctx.child_args());
            argv.extend([
                "analyze".into(),
                analyzer.into(),
                "--format".into(),
                "json".into(),
                "--output".into(),
            ]);
            argv.push(out.clone().into());
            report = Some(out);
            (argv, ctx.repo.clone(), false)
        }
    };
    let (nice, ioprio) = nice_and_ioprio(&ctx.config);
    Ok((
        Spec {
            argv,
            cwd,
            env,
            log,
            log_cap: ctx.config.execution.log_max_kb * 1024,
            nice,
            ioprio,
            capture_stdout: capture,
        },
        report,
    ))
}

fn start_slot(ctx: &Ctx, task: Task) -> Result<Slot, Box<(Task, String)>> {
    let attempt = task.attempt + 1;
    let (spec, report) = match spec_for(ctx, &task, attempt) {
        Ok(s) => s,
        Err(e) => return Err(Box::new((task, format!("{e:#}")))),
    };
    match process::spawn(&spec) {
        Ok(child) => {
            let started = now();
            Ok(Slot {
                deadline: started + task.timeout_s as f64,
                task,
                attempt,
                child,
                started,
                kill_at: None,
                timed_out: false,
                killed_memory: false,
                cancelled: false,
                peak_rss: 0,
                cpu_ms: 0,
                throttle: Throttle::default(),
                report,
                log: spec.log,
            })
        }
        Err(e) => Err(Box::new((task, format!("{e:#}")))),
    }
}

/// Terminate a slot's group: TERM now (with CONT, in case it is paused), KILL after grace.
fn terminate(slot: &mut Slot, grace: f64, at: f64) {
    process::signal_group(slot.child.pid, libc::SIGTERM);
    process::signal_group(slot.child.pid, libc::SIGCONT);
    slot.throttle.paused_until = None;
    if slot.kill_at.is_none() {
        slot.kill_at = Some(at + grace);
    }
}

/// Timeouts, kill deadlines, throttle resumes; returns the next time something is due.
fn police(slots: &mut [Slot], ctx: &Ctx, at: f64) -> f64 {
    let grace = ctx.config.execution.kill_grace_seconds as f64;
    let mut next = at + 1.0;
    for s in slots.iter_mut() {
        if !s.timed_out && !s.cancelled && !s.killed_memory && at >= s.deadline {
            s.timed_out = true;
            terminate(s, grace, at);
        }
        if let Some(k) = s.kill_at {
            if at >= k {
                process::signal_group(s.child.pid, libc::SIGKILL);
            } else {
                next = next.min(k);
            }
        }
        if let Some(p) = s.throttle.paused_until {
            if at >= p {
                process::signal_group(s.child.pid, libc::SIGCONT);
                s.throttle.paused_until = None;
            } else {
                next = next.min(p);
            }
        }
        if !s.timed_out {
            next = next.min(s.deadline);
        }
    }
    next
}

/// Sample the trees: kill over the memory limit, pause over the CPU limit.
fn sample(slots: &mut [Slot], sampler: &mut Sampler, ctx: &Ctx, at: f64) {
    let ids: Vec<u32> = slots.iter().map(|s| s.child.pid).collect();
    let usage = sampler.sample(&ids);
    let max_mem = ctx.config.resource_limits.max_memory_mb * 1024 * 1024;
    let max_cpu = ctx.config.resource_limits.max_cpu_percent;
    for s in slots.iter_mut() {
        let Some(u) = usage.get(&s.child.pid) else {
            continue;
        };
        s.peak_rss = s.peak_rss.max(u.rss_bytes);
        s.cpu_ms = s.cpu_ms.max(u.cpu_ms);
        if u.rss_bytes > max_mem && !s.killed_memory {
            s.killed_memory = true;
            process::signal_group(s.child.pid, libc::SIGKILL);
            process::signal_group(s.child.pid, libc::SIGCONT);
            continue;
        }
        if max_cpu < 100.0
            && s.kill_at.is_none()
            && let Some(pause) = s.throttle.observe(at, u.cpu_ms, sampler.cpus, max_cpu)
        {
            process::signal_group(s.child.pid, libc::SIGSTOP);
            s.throttle.paused_until = Some(at + pause);
            s.throttle.paused_total_s += pause;
        }
    }
}

/// Build the result of a finished slot.
fn finish_slot(ctx: &Ctx, mut slot: Slot, at: f64) -> (Task, TaskResult) {
    let (ended, stdout) = slot.child.reap();
    let mut r = base_result(&slot.task, slot.attempt, at);
    r.started_at = Some(rfc3339(slot.started));
    r.duration_s = (at - slot.started).max(0.0);
    r.queue_s = (slot.started - slot.task.enqueued_at).max(0.0);
    r.exit_code = ended.code;
    r.signal = ended.signal;
    r.peak_rss_mb = (slot.peak_rss.max(ended.maxrss_kb * 1024)) as f64 / (1024.0 * 1024.0);
    r.cpu_s = ended.cpu_s.max(slot.cpu_ms as f64 / 1000.0);
    r.log = Some(slot.log.clone());
    let mut status = if slot.cancelled {
        Status::Cancelled
    } else if slot.killed_memory {
        r.error = Some(format!(
            "killed: its process tree used over resource_limits.max_memory_mb ({} MB)",
            ctx.config.resource_limits.max_memory_mb
        ));
        Status::KilledMemory
    } else if slot.timed_out {
        r.error = Some(format!("timed out after {}s", slot.task.timeout_s));
        Status::TimedOut
    } else if ended.code == Some(0) {
        Status::Succeeded
    } else {
        Status::Failed
    };
    // Reports: a built-in analyzer's file, or a custom analyzer's stdout.
    let report = match (&slot.report, &slot.task.action) {
        (Some(path), _) => std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok()),
        (
            None,
            Action::Command {
                report: Some(fmt), ..
            },
        ) if matches!(status, Status::Succeeded | Status::Failed) => {
            match crate::analyzers::ingest(fmt, &stdout, &ctx.repo) {
                Ok(v) => Some(v),
                Err(e) => {
                    r.error = Some(format!("cannot read its {fmt} report: {e:#}"));
                    status = Status::Failed;
                    None
                }
            }
        }
        _ => None,
    };
    if let Some(rep) = report {
        r.findings = Some(Findings::from_report(&rep));
        r.report_path = match &slot.report {
            Some(p) => Some(p.clone()),
            None => save_report(ctx, &slot.task.id, slot.attempt, &rep),
        };
        r.report = Some(rep);
    }
    if status == Status::Failed && r.error.is_none() {
        r.error = Some(match (ended.code, ended.signal) {
            (Some(c), _) => format!("exited with code {c}"),
            (_, Some(s)) => format!("killed by signal {s}"),
            _ => "ended abnormally".to_string(),
        });
    }
    r.status = status.as_str().to_string();
    (slot.task, r)
}

/// Keep an ingested report in its own file, as analyzer reports are.
fn save_report(ctx: &Ctx, id: &str, attempt: u32, report: &Value) -> Option<PathBuf> {
    let dir = ctx.state_dir.join("reports");
    crate::state::store::ensure_private_dir(&dir).ok()?;
    let path = dir.join(format!("{id}-{attempt}.json"));
    let bytes = serde_json::to_vec_pretty(report).ok()?;
    crate::state::store::write_atomic(&path, &bytes, false).ok()?;
    Some(path)
}

fn retry_of(task: &Task, status: Status, attempt: u32, at: f64) -> Option<Task> {
    if !status.retryable() || attempt > task.max_retries {
        return None;
    }
    let mut t = task.clone();
    t.attempt = attempt;
    t.enqueued_at = at;
    t.not_before = Some(at + task.retry_delay_s as f64);
    Some(t)
}

/// What one drain did.
#[derive(Debug, Default)]
pub struct DrainSummary {
    pub ran: usize,
    pub failed: usize,
    pub results: Vec<TaskResult>,
}

/// Progress reporting for the drain loop.
pub trait Progress {
    fn started(&mut self, task: &Task, attempt: u32);
    fn finished(&mut self, r: &TaskResult, queued: usize);
}

/// Run queued tasks until the queue is empty, with at most `max_local` of ours at once and
/// `execution.max_concurrent_tasks` across every live drainer.
pub fn drain(ctx: &Ctx, max_local: usize, progress: &mut dyn Progress) -> Result<DrainSummary> {
    crate::state::store::ensure_private_dir(&ctx.state_dir)?;
    let reg = procs::register(&ctx.state_dir, "drainer")?;
    let me = reg.info.token.clone();
    install_stop_handlers();
    let global_max = ctx.config.execution.max_concurrent_tasks.max(1);
    let max_local = max_local.max(1);
    let grace = ctx.config.execution.kill_grace_seconds as f64;
    let mut cache = Cache::default();
    let mut slots: Vec<Slot> = Vec::new();
    let mut sampler = Sampler::new();
    let mut last_sample = 0.0;
    let mut last_recovery = 0.0;
    let mut summary = DrainSummary::default();
    let mut reg = Some(reg);
    let mut handles = None;
    loop {
        let at = now();
        // Harvest exited children (outside the lock).
        let mut done: Vec<(Task, TaskResult)> = Vec::new();
        let mut i = 0;
        while i < slots.len() {
            if slots[i].child.exited() {
                let slot = slots.swap_remove(i);
                done.push(finish_slot(ctx, slot, at));
            } else {
                i += 1;
            }
        }
        let stopping = stop_requested();
        if stopping {
            for s in slots.iter_mut() {
                if !s.cancelled {
                    s.cancelled = true;
                    terminate(s, grace, at);
                }
            }
        }
        // Take the lock only when there is something to record, claim or check: a finished
        // child, a journal that others appended to, a retry that came due, recovery, a stop.
        let recovery_due = at - last_recovery > 2.0;
        let ready = slots.len() < max_local
            && cache.state.running.len() < global_max
            && queue::next_ready(cache.state.queued.values(), &cache.state.history, at).is_some();
        let need_lock = cache.ino == 0
            || !done.is_empty()
            || recovery_due
            || stopping
            || ready
            || Store::changed_since(&ctx.state_dir, &cache);
        if need_lock {
            // One read-modify-write of the journal.
            let mut store = match handles.take() {
                Some(h) => Store::relock(h, lock_timeout(&ctx.config))?,
                None => open_store(ctx)?,
            };
            store.refresh(&mut cache)?;
            let mut ops: Vec<Op> = Vec::new();
            let mut durable = false;
            for (task, r) in &mut done {
                if r.status != "cancelled"
                    && cache
                        .state
                        .running
                        .get(&task.id)
                        .is_some_and(|x| x.stop_requested)
                {
                    r.status = Status::Cancelled.as_str().to_string();
                    r.error = Some("stopped by `bgrun stop`".to_string());
                }
                let status = status_of(&r.status);
                let retry = if stopping {
                    None
                } else {
                    retry_of(task, status, r.attempt, at)
                };
                r.will_retry = retry.is_some();
                ops.push(Op::End {
                    id: task.id.clone(),
                    key: String::new(),
                    task_type: task.task_type.clone(),
                    status,
                    duration_s: r.duration_s,
                    at,
                });
                if let Some(mut t) = retry {
                    t.seq = cache.state.next_seq;
                    ops.push(Op::Enqueue {
                        id: t.id.clone(),
                        key: t.dedup_key(),
                        task: Box::new(t),
                    });
                }
                durable = true;
            }
            for op in &ops {
                cache.state.apply(op.clone());
            }
            // Stop requests from `bgrun stop` for our tasks.
            for s in slots.iter_mut() {
                if !s.cancelled
                    && cache
                        .state
                        .running
                        .get(&s.task.id)
                        .is_some_and(|r| r.stop_requested)
                {
                    s.cancelled = true;
                    terminate(s, grace, at);
                }
            }
            let mut recovered = Vec::new();
            if recovery_due {
                last_recovery = at;
                let (rops, rs) = recover(ctx, &mut cache.state, Some(&me));
                if !rops.is_empty() {
                    durable = true;
                }
                ops.extend(rops);
                recovered = rs;
            }
            // Claim and start what fits.
            let mut started: Vec<(Task, u32)> = Vec::new();
            while !stopping && slots.len() < max_local && cache.state.running.len() < global_max {
                let Some(task) =
                    queue::next_ready(cache.state.queued.values(), &cache.state.history, at)
                        .cloned()
                else {
                    break;
                };
                let claim = Op::Claim {
                    id: task.id.clone(),
                    key: task.dedup_key(),
                    drainer: me.clone(),
                    at,
                };
                cache.state.apply(claim.clone());
                ops.push(claim);
                match start_slot(ctx, task) {
                    Ok(slot) => {
                        let op = Op::Spawned {
                            id: slot.task.id.clone(),
                            key: String::new(),
                            pid: slot.child.pid,
                            pid_start: slot.child.start,
                            log: slot.log.clone(),
                        };
                        cache.state.apply(op.clone());
                        ops.push(op);
                        started.push((slot.task.clone(), slot.attempt));
                        slots.push(slot);
                    }
                    Err(failed) => {
                        let (task, why) = *failed;
                        let mut r = base_result(&task, task.attempt + 1, at);
                        r.status = Status::Failed.as_str().to_string();
                        r.error = Some(why);
                        let op = Op::End {
                            id: task.id.clone(),
                            key: String::new(),
                            task_type: task.task_type.clone(),
                            status: Status::Failed,
                            duration_s: 0.0,
                            at,
                        };
                        cache.state.apply(op.clone());
                        ops.push(op);
                        durable = true;
                        done.push((task, r));
                    }
                }
            }
            store.append(&ops, durable)?;
            cache.offset = store.end_offset();
            if cache.state.wants_compaction() {
                store.compact(&cache.state)?;
                cache.ino = store.ino();
                cache.offset = store.end_offset();
            }
            let queued_now = cache.state.queued.len();
            let running_now = cache.state.running.len();
            let finished_all = slots.is_empty() && (stopping || cache.state.queued.is_empty());
            if finished_all {
                // Unregister while the lock is held: an enqueue that follows sees no drainer
                // and starts one; an enqueue that came first was seen above.
                reg.take();
            }
            for r in recovered.iter().chain(done.iter().map(|(_, r)| r)) {
                persist(ctx, &store, r, queued_now, running_now);
            }
            handles = Some(store.unlock());
            for r in &recovered {
                announce(ctx, r);
            }
            summary.results.extend(recovered);
            for (task, attempt) in &started {
                progress.started(task, *attempt);
            }
            for (_, r) in &done {
                announce(ctx, r);
                progress.finished(r, queued_now);
                summary.ran += 1;
                if !r.will_retry
                    && matches!(
                        r.status.as_str(),
                        "failed" | "timed_out" | "killed_memory" | "abandoned"
                    )
                {
                    summary.failed += 1;
                }
            }
            summary.results.extend(done.into_iter().map(|(_, r)| r));
            if finished_all {
                break;
            }
        }
        // Sleep until a child exits or something is due.
        let at = now();
        if !slots.is_empty()
            && at - last_sample >= 0.25
            && slots.iter().any(|s| at - s.started > 0.2)
        {
            last_sample = at;
            sample(&mut slots, &mut sampler, ctx, at);
        }
        let mut due = police(&mut slots, ctx, at);
        if let Some(first) = slots.iter().map(|s| s.started).min_by(f64::total_cmp) {
            due = due.min((last_sample + 0.25).max(first + 0.2));
        }
        if let Some(w) = queue::next_wakeup(cache.state.queued.values()) {
            due = due.min(w.max(at + 0.01));
        }
        let can_claim_more = slots.len() < max_local
            && cache
                .state
                .queued
                .values()
                .any(|t| t.not_before.is_none_or(|nb| nb <= at));
        if can_claim_more && cache.state.running.len() >= global_max {
            // Others hold the global slots: look again soon.
            due = due.min(at + 0.05);
        }
        let wait = (due - at).clamp(0.0, 1.0);
        let children: Vec<&Child> = slots.iter().map(|s| &s.child).collect();
        if children.is_empty() {
            std::thread::sleep(Duration::from_secs_f64(wait.max(0.005)));
        } else {
            process::wait_any(&children, Duration::from_secs_f64(wait));
        }
    }
    drop(handles);
    if results::cleanup_is_due(&ctx.state_dir, 300.0)
        && let Err(e) = cleanup(ctx)
    {
        eprintln!("bgrun: warning: cleanup failed: {e:#}");
    }
    Ok(summary)
}

fn status_of(s: &str) -> Status {
    match s {
        "succeeded" => Status::Succeeded,
        "timed_out" => Status::TimedOut,
        "killed_memory" => Status::KilledMemory,
        "cancelled" => Status::Cancelled,
        "abandoned" => Status::Abandoned,
        "dropped" => Status::Dropped,
        _ => Status::Failed,
    }
}

/// Run one task now, in the foreground, bypassing the queue (`bgrun run`).
pub fn run_now(ctx: &Ctx, new: &NewTask) -> Result<TaskResult> {
    let at = now();
    let mut task = build_task(ctx, new, 0, at)?;
    task.id = format!("run-{}", (at * 1000.0) as u64 % 100_000_000);
    crate::state::store::ensure_private_dir(&ctx.state_dir)?;
    install_stop_handlers();
    let grace = ctx.config.execution.kill_grace_seconds as f64;
    let mut slot = start_slot(ctx, task).map_err(|failed| error::work(failed.1))?;
    let mut sampler = Sampler::new();
    let mut last_sample = now();
    loop {
        if slot.child.exited() {
            break;
        }
        let at = now();
        if stop_requested() && !slot.cancelled {
            slot.cancelled = true;
            terminate(&mut slot, grace, at);
        }
        if at - last_sample >= 0.25 {
            last_sample = at;
            sample(std::slice::from_mut(&mut slot), &mut sampler, ctx, at);
        }
        let due = police(std::slice::from_mut(&mut slot), ctx, at).min(last_sample + 0.25);
        process::wait_any(
            &[&slot.child],
            Duration::from_secs_f64((due - at).clamp(0.0, 1.0)),
        );
    }
    let (_, r) = finish_slot(ctx, slot, now());
    record(ctx, &r, 0, 1)?;
    Ok(r)
}

// ---------------------------------------------------------------------------------------
// Stopping and waiting

/// What `stop` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Stopped {
    pub removed: Vec<String>,
    pub signalled: Vec<String>,
    pub not_found: Vec<String>,
    pub processes: Vec<u32>,
}

/// Cancel tasks: queued ones are removed (recorded as cancelled), running ones are asked
/// to stop (their drainer records them) and their group gets SIGTERM now and SIGKILL after
/// the grace period. With `all`, drainers and watchers are stopped too.
pub fn stop(ctx: &Ctx, ids: &[String], all: bool) -> Result<Stopped> {
    let mut out = Stopped::default();
    let at = now();
    let mut store = open_store(ctx)?;
    let mut state = store.load()?;
    let targets: Vec<String> = if all {
        state
            .queued
            .keys()
            .chain(state.running.keys())
            .cloned()
            .collect()
    } else {
        ids.to_vec()
    };
    let mut ops = Vec::new();
    let mut cancelled = Vec::new();
    let mut groups = Vec::new();
    for id in targets {
        if let Some(t) = state.queued.get(&id) {
            ops.push(Op::Cancel {
                id: id.clone(),
                key: t.dedup_key(),
            });
            let mut r = base_result(t, t.attempt, at);
            r.status = Status::Cancelled.as_str().to_string();
            r.error = Some("cancelled by `bgrun stop` before it started".to_string());
            cancelled.push(r);
            out.removed.push(id);
        } else if let Some(r) = state.running.get(&id) {
            ops.push(Op::StopRequest {
                id: id.clone(),
                key: String::new(),
            });
            if let (Some(pid), Some(start)) = (r.pid, r.pid_start) {
                groups.push((pid, start));
            }
            out.signalled.push(id);
        } else {
            out.not_found.push(id);
        }
    }
    for op in &ops {
        state.apply(op.clone());
    }
    store.append(&ops, true)?;
    for r in &cancelled {
        persist(ctx, &store, r, state.queued.len(), state.running.len());
    }
    drop(store);
    for r in &cancelled {
        announce(ctx, r);
    }
    for (pid, start) in &groups {
        if process::proc_start_time(*pid).is_none_or(|s| s == *start) {
            process::signal_group(*pid, libc::SIGCONT);
            process::signal_group(*pid, libc::SIGTERM);
        }
    }
    if all {
        for p in procs::alive(&ctx.state_dir, None) {
            if p.pid != std::process::id() {
                // SAFETY: plain kill of a registered bgrun process.
                unsafe {
                    libc::kill(p.pid as i32, libc::SIGTERM);
                }
                out.processes.push(p.pid);
            }
        }
    }
    // Give the groups their grace, then make sure.
    let grace = Instant::now() + Duration::from_secs(ctx.config.execution.kill_grace_seconds);
    while Instant::now() < grace && groups.iter().any(|(p, _)| process::group_alive(*p)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for (pid, _) in &groups {
        process::signal_group(*pid, libc::SIGKILL);
    }
    Ok(out)
}

/// Wait until every task in `ids` has a final result (no retry pending), or `timeout`.
pub fn wait_for(ctx: &Ctx, ids: &[String], timeout: Duration) -> Result<Vec<TaskResult>> {
    let deadline = Instant::now() + timeout;
    let mut found: HashMap<String, TaskResult> = HashMap::new();
    loop {
        for id in ids {
            if found.contains_key(id) {
                continue;
            }
            if let Some(r) = results::list(&ctx.state_dir, Some(id), 1)?
                .into_iter()
                .next()
                && !r.will_retry
            {
                found.insert(id.clone(), r);
            }
        }
        if found.len() == ids.len() {
            return Ok(ids.iter().filter_map(|i| found.remove(i)).collect());
        }
        if Instant::now() >= deadline {
            return Err(error::work(format!(
                "gave up waiting for tasks {} after {}s",
                ids.join(", "),
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Seconds since `ts` as a short human duration.
pub fn ago(ts: f64) -> String {
    timefmt::human_duration((now() - ts).max(0.0))
}
