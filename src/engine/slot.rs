//! One running task: how it is started (argv, env, nice, I/O class, capped log), policed
//! (timeout, memory, CPU duty cycle) and turned into a result.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use serde_json::Value;

use super::Env;
use crate::results::{Findings, TaskResult};
use crate::runner::limits::{Sampler, Throttle};
use crate::runner::process::{self, Spec};
use crate::runner::spawner::Proc;
use crate::state::task::{Action, Arg, Status, Task};
use crate::timefmt::{now, rfc3339};

/// A task being run by this process.
pub(super) struct Slot {
    pub(super) task: Task,
    pub(super) attempt: u32,
    pub(super) child: Box<dyn Proc>,
    pub(super) started: f64,
    pub(super) deadline: f64,
    pub(super) kill_at: Option<f64>,
    pub(super) timed_out: bool,
    pub(super) killed_memory: bool,
    pub(super) cancelled: bool,
    pub(super) peak_rss: u64,
    pub(super) cpu_ms: u64,
    pub(super) throttle: Throttle,
    pub(super) report: Option<PathBuf>,
    pub(super) log: PathBuf,
}

pub(super) fn spec_for(env: &Env, task: &Task, attempt: u32) -> Result<(Spec, Option<PathBuf>)> {
    let log = process::log_path(&env.state_dir, &task.id, attempt);
    let mut vars: Vec<(OsString, OsString)> = vec![
        ("BGRUN_TASK_ID".into(), task.id.clone().into()),
        ("BGRUN_TASK_TYPE".into(), task.task_type.clone().into()),
        ("BGRUN_TRIGGER".into(), task.trigger.clone().into()),
        ("BGRUN_ATTEMPT".into(), attempt.to_string().into()),
        ("BGRUN_REPO".into(), env.repo.clone().into()),
    ];
    let mut report = None;
    if !task.context.is_null() {
        let dir = env.state_dir.join("reports");
        crate::state::store::ensure_private_dir(&dir)?;
        let p = dir.join(format!("{}-{attempt}.context.json", task.id));
        crate::state::store::write_atomic(&p, &serde_json::to_vec(&task.context)?, false)?;
        vars.push(("BGRUN_CONTEXT".into(), p.into()));
    }
    let (argv, cwd, capture) = match &task.action {
        Action::Command {
            argv,
            cwd,
            env: extra,
            report: rep,
        } => {
            for (k, v) in extra {
                vars.push((k.into(), v.into()));
            }
            let cwd = match cwd {
                Some(c) if c.is_absolute() => c.clone(),
                Some(c) => env.repo.join(c),
                None => env.repo.clone(),
            };
            (argv.iter().map(Arg::to_os).collect(), cwd, rep.is_some())
        }
        Action::Analyzer { analyzer } => {
            let dir = env.state_dir.join("reports");
            crate::state::store::ensure_private_dir(&dir)?;
            let out = dir.join(format!("{}-{attempt}.json", task.id));
            let mut argv = env.launcher.analyze_argv(analyzer, &out)?;
            // `drain --no-install` (or analysis.install_tools: false) reaches the child.
            if !env.config.analysis.install_tools {
                argv.push("--no-install".into());
            }
            report = Some(out);
            (argv, env.repo.clone(), false)
        }
    };
    let (nice, ioprio) = env.config.resource_limits.nice_and_ioprio();
    Ok((
        Spec {
            argv,
            cwd,
            env: vars,
            log,
            log_cap: env.config.execution.log_max_kb.saturating_mul(1024),
            nice,
            ioprio,
            capture_stdout: capture,
            env_remove: crate::runner::scrub::secret_vars(&env.config),
        },
        report,
    ))
}

pub(super) fn start_slot(
    env: &Env,
    task: Task,
    drainer: &str,
) -> Result<Slot, Box<(Task, String)>> {
    let attempt = task.attempt + 1;
    let (mut spec, report) = match spec_for(env, &task, attempt) {
        Ok(s) => s,
        Err(e) => return Err(Box::new((task, format!("{e:#}")))),
    };
    spec.env.push((
        process::CLAIM_VAR.into(),
        process::claim_mark(drainer, &task.id, attempt).into(),
    ));
    match env.spawner.spawn(&spec) {
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
pub(super) fn terminate(slot: &mut Slot, grace: f64, at: f64) {
    slot.child.signal(libc::SIGTERM);
    slot.child.signal(libc::SIGCONT);
    slot.throttle.paused_until = None;
    if slot.kill_at.is_none() {
        slot.kill_at = Some(at + grace);
    }
}

/// Timeouts, kill deadlines, throttle resumes; returns the next time something is due.
pub(super) fn police(slots: &mut [Slot], env: &Env, at: f64) -> f64 {
    let grace = env.config.execution.kill_grace_seconds as f64;
    let mut next = at + 1.0;
    for s in slots.iter_mut() {
        if !s.timed_out && !s.cancelled && !s.killed_memory && at >= s.deadline {
            s.timed_out = true;
            terminate(s, grace, at);
        }
        if let Some(k) = s.kill_at {
            if at >= k {
                s.child.signal(libc::SIGKILL);
            } else {
                next = next.min(k);
            }
        }
        if let Some(p) = s.throttle.paused_until {
            if at >= p {
                s.child.signal(libc::SIGCONT);
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
pub(super) fn sample(slots: &mut [Slot], sampler: &mut Sampler, env: &Env, at: f64) {
    let ids: Vec<u32> = slots.iter().map(|s| s.child.pid()).collect();
    let usage = sampler.sample(&ids);
    let tree = crate::runner::escape::Tree::read_under(std::process::id());
    let me = std::process::id();
    for s in slots.iter_mut() {
        s.child.track_escapees(&tree, me);
    }
    let max_mem = env
        .config
        .resource_limits
        .max_memory_mb
        .saturating_mul(1024 * 1024);
    let max_cpu = env.config.resource_limits.max_cpu_percent;
    for s in slots.iter_mut() {
        let Some(u) = usage.get(&s.child.pid()) else {
            continue;
        };
        s.peak_rss = s.peak_rss.max(u.rss_bytes);
        s.cpu_ms = s.cpu_ms.max(u.cpu_ms);
        if u.rss_bytes > max_mem && !s.killed_memory {
            s.killed_memory = true;
            s.child.signal(libc::SIGKILL);
            s.child.signal(libc::SIGCONT);
            continue;
        }
        if max_cpu < 100.0
            && s.kill_at.is_none()
            && let Some(pause) = s.throttle.observe(at, u.cpu_ms, sampler.cpus, max_cpu)
        {
            s.child.signal(libc::SIGSTOP);
            s.throttle.paused_until = Some(at + pause);
            s.throttle.paused_total_s += pause;
        }
    }
}

/// Build the result of a finished slot.
pub(super) fn finish_slot(env: &Env, mut slot: Slot, at: f64) -> (Task, TaskResult) {
    let (ended, stdout) = slot.child.reap();
    let mut r = slot.task.base_result(slot.attempt, at);
    r.started_at = Some(rfc3339(slot.started));
    r.duration_s = (at - slot.started).max(0.0);
    r.queue_s = (slot.started - slot.task.enqueued_at).max(0.0);
    r.exit_code = ended.code;
    r.signal = ended.signal;
    r.peak_rss_mb =
        (slot.peak_rss.max(ended.maxrss_kb.saturating_mul(1024))) as f64 / (1024.0 * 1024.0);
    r.cpu_s = ended.cpu_s.max(slot.cpu_ms as f64 / 1000.0);
    // A task that printed nothing has no log file: name none rather than a missing path.
    r.log = slot.log.exists().then(|| slot.log.clone());
    let mut status = if slot.cancelled {
        Status::Cancelled
    } else if slot.killed_memory {
        r.error = Some(format!(
            "killed: its process tree used over resource_limits.max_memory_mb ({} MB)",
            env.config.resource_limits.max_memory_mb
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
        ) if matches!(status, Status::Succeeded | Status::Failed) && ended.stdout_dropped > 0 => {
            r.error = Some(format!(
                "its {fmt} report on stdout is over execution.log_max_kb ({} KiB); \
                 {} more bytes were dropped and the report was not read",
                env.config.execution.log_max_kb, ended.stdout_dropped
            ));
            status = Status::Failed;
            None
        }
        (
            None,
            Action::Command {
                report: Some(fmt), ..
            },
        ) if matches!(status, Status::Succeeded | Status::Failed) => {
            match crate::analyzers::ingest(fmt.as_str(), &stdout, &env.repo) {
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
            None => save_report(env, &slot.task.id, slot.attempt, &rep),
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
    r.status = status;
    (slot.task, r)
}

/// Keep an ingested report in its own file, as analyzer reports are.
pub(super) fn save_report(env: &Env, id: &str, attempt: u32, report: &Value) -> Option<PathBuf> {
    let dir = env.state_dir.join("reports");
    crate::state::store::ensure_private_dir(&dir).ok()?;
    let path = dir.join(format!("{id}-{attempt}.json"));
    let bytes = serde_json::to_vec_pretty(report).ok()?;
    crate::state::store::write_atomic(&path, &bytes, false).ok()?;
    Some(path)
}

pub(super) fn retry_of(task: &Task, status: Status, attempt: u32, at: f64) -> Option<Task> {
    if !status.retryable() || attempt > task.max_retries {
        return None;
    }
    let mut t = task.clone();
    t.attempt = attempt;
    t.enqueued_at = at;
    t.not_before = Some(at + task.retry_delay_s as f64);
    Some(t)
}
