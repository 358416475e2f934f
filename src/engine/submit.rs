//! Queueing: a request becomes a task (checked against the config), duplicates are not
//! added, and on overflow the lowest-priority task is dropped, visibly.

use anyhow::Result;

use super::Env;
use super::recover::recover_orphans_fast;
use super::{NewTask, Submitted, analyzer_of, commit, log_event, open_store};
use crate::error;
use crate::queue;
use crate::state::task::{Action, Arg, Task};
use crate::store::{Durability, Removal};
use crate::timefmt::now;
use std::path::PathBuf;

/// Turn a request into a task (validating it against the config: exit 2 when wrong).
pub fn build_task(env: &Env, new: &NewTask, seq: u64, at: f64) -> Result<Task> {
    let c = &env.config;
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
        if let Some(why) = env.config.disabled_type(&new.task_type) {
            return Err(error::usage(format!("{why} in {}", env.config_source)));
        }
        let action = match (&t.command, analyzer_of(&new.task_type)) {
            (Some(cmd), _) => {
                let mut argv: Vec<Arg> = cmd.iter().map(|s| Arg::from(s.as_str())).collect();
                argv.extend(new.argv.iter().cloned());
                Action::Command {
                    argv,
                    cwd: t.cwd.as_ref().map(PathBuf::from),
                    env: t.env.clone(),
                    report: t.report,
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

/// Queue tasks in one transaction. Duplicates are not added; on overflow the
/// lowest-priority task is dropped and recorded. Returns at once; see [`super::ensure_drainer`].
pub fn submit(env: &Env, news: &[NewTask]) -> Result<Vec<Submitted>> {
    let at = now();
    // Validate everything before taking the lock: a bad request changes nothing.
    let mut tasks = Vec::with_capacity(news.len());
    for n in news {
        tasks.push(build_task(env, n, 0, at)?);
    }
    if let Some(url) = env.store_url() {
        return super::worker::submit_shared(env, url, &tasks);
    }
    let max = env.config.execution.max_queue_size;
    let mut store = open_store(env);
    let mut txn = store.begin()?;
    recover_orphans_fast(env, &mut *txn)?;
    let mut out = Vec::new();
    let mut dropped = Vec::new();
    for mut task in tasks {
        if let Some(id) = txn.queued_with_key(&task.dedup_key())? {
            out.push(Submitted::Duplicate { id });
            continue;
        }
        if txn.queued_len()? < max {
            let task = txn.enqueue(task)?;
            out.push(Submitted::Queued {
                id: task.id,
                dropped: None,
            });
            continue;
        }
        // Overflow: rare, so the whole state is folded to find the victim. The newcomer
        // competes with the seq it would get.
        let st = txn.state()?;
        task.seq = st.next_seq;
        task.id = task.seq.to_string();
        let victim = queue::overflow_victim(st.queued.values(), &task).clone();
        let result = victim.dropped_result(at, max);
        dropped.push(result.clone());
        if victim.id == task.id {
            out.push(Submitted::Dropped { result });
            continue;
        }
        txn.remove_queued(&victim.id, Removal::Dropped)?;
        let task = txn.enqueue(task)?;
        out.push(Submitted::Queued {
            id: task.id,
            dropped: Some(result),
        });
    }
    if !dropped.is_empty() {
        let queued = txn.queued_len()?;
        for r in &dropped {
            txn.save_result(r.clone(), queued, 0);
        }
    }
    commit(env, txn, Durability::Now)?;
    for r in &dropped {
        log_event(
            env,
            &format!("dropped task {} ({}): the queue is full", r.id, r.task_type),
        );
    }
    Ok(out)
}

/// What became of one request a trigger handed over (see [`hand_over`]).
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per request, short-lived; as large as Submitted itself"
)]
pub enum Handed {
    /// Its task type is disabled in the config (why, for the warning): not queued.
    Skipped { why: String },
    /// Submitted: queued, already queued, or dropped on overflow.
    Submitted(Submitted),
}

impl Handed {
    /// The task's id, when it is (or already was) in the queue.
    pub fn queued_id(&self) -> Option<&str> {
        match self {
            Handed::Submitted(Submitted::Queued { id, .. } | Submitted::Duplicate { id }) => {
                Some(id)
            }
            _ => None,
        }
    }
}

/// The one door of the triggers (hook, watch, tick): a request of a disabled task type is
/// skipped here, and only here; the rest are queued in one transaction ([`submit`]); when
/// one was queued, a drainer is started. One outcome per request, in order.
pub fn hand_over(env: &Env, news: &[NewTask]) -> Result<Vec<Handed>> {
    let mut skipped = Vec::with_capacity(news.len());
    let mut go = Vec::new();
    for n in news {
        let why = env.config.disabled_type(&n.task_type);
        if why.is_none() {
            go.push(n.clone());
        }
        skipped.push(why);
    }
    let mut submitted = if go.is_empty() {
        Vec::new()
    } else {
        submit(env, &go)?
    }
    .into_iter();
    let out: Vec<Handed> = skipped
        .into_iter()
        .map(|why| match why {
            Some(why) => Handed::Skipped { why },
            None => submitted
                .next()
                .map_or(Handed::Skipped { why: String::new() }, Handed::Submitted),
        })
        .collect();
    if out
        .iter()
        .any(|h| matches!(h, Handed::Submitted(Submitted::Queued { .. })))
    {
        super::ensure_drainer(env)?;
    }
    Ok(out)
}
