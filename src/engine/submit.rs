//! Queueing: a request becomes a task (checked against the config), duplicates are not
//! added, and on overflow the lowest-priority task is dropped, visibly.

use anyhow::{Context, Result};

use super::Env;
use super::outcome::dropped_result;
use super::recover::recover_orphans_fast;
use super::{NewTask, Submitted, analyzer_of, announce, log_event, open_store, persist};
use crate::error;
use crate::queue;
use crate::state::store::{Op, State};
use crate::state::task::{Action, Arg, Task};
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
        if !t.enabled {
            return Err(error::usage(format!(
                "task type {:?} is disabled (task_types.{}.enabled in {})",
                new.task_type, new.task_type, env.config_source
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
pub fn submit(env: &Env, news: &[NewTask]) -> Result<Vec<Submitted>> {
    let at = now();
    // Validate everything before taking the lock: a bad request changes nothing.
    let mut tasks = Vec::with_capacity(news.len());
    for n in news {
        tasks.push(build_task(env, n, 0, at)?);
    }
    let mut store = open_store(env)?;
    let mut scan = store.scan()?;
    if recover_orphans_fast(env, &mut store, &scan)? {
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
        if scan.queued >= env.config.execution.max_queue_size {
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
            let result = dropped_result(&victim, at, env.config.execution.max_queue_size);
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
        persist(env, &store, r, scan.queued, 0);
    }
    drop(store);
    for r in &dropped_results {
        announce(env, r);
        log_event(
            env,
            &format!("dropped task {} ({}): the queue is full", r.id, r.task_type),
        );
    }
    Ok(out)
}
