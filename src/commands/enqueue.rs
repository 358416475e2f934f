//! `bgrun enqueue TYPE [-- ARGV]`: queue a task, start a drainer unless --no-drain.

use anyhow::Result;

use crate::cli::EnqueueArgs;
use crate::config::Priority;
use crate::engine::{self, NewTask, Submitted};
use crate::state::task::Arg;
use crate::{Ctx, Exit, error};

pub fn run(ctx: &Ctx, a: EnqueueArgs) -> Result<Exit> {
    let priority = match &a.priority {
        Some(p) => Some(
            Priority::parse(p)
                .ok_or_else(|| {
                    error::usage(format!(
                        "--priority {p:?}: expected critical, high, medium, low or an integer"
                    ))
                })?
                .0,
        ),
        None => None,
    };
    let new = NewTask {
        task_type: a.task_type.clone(),
        name: a.name.clone(),
        argv: a.argv.iter().map(|s| Arg::from_os(s)).collect(),
        priority,
        timeout_s: a.timeout,
        trigger: "manual".to_string(),
        context: serde_json::Value::Null,
    };
    let submitted = engine::submit(ctx, &[new])?;
    let mut queued = false;
    for s in &submitted {
        match s {
            Submitted::Queued { id, dropped } => {
                queued = true;
                if let Some(d) = dropped {
                    eprintln!(
                        "bgrun: queue full: dropped task {} ({}, priority {})",
                        d.id, d.task_type, d.name
                    );
                }
                if ctx.out.json {
                    super::print_json(
                        &serde_json::json!({"queued": true, "id": id, "dropped": dropped.as_ref().map(|d| &d.id)}),
                    )?;
                } else {
                    println!("{id}");
                }
            }
            Submitted::Duplicate { id } => {
                if ctx.out.json {
                    super::print_json(&serde_json::json!({"queued": false, "duplicate_of": id}))?;
                } else {
                    println!("{id}");
                    eprintln!("bgrun: not added: the same task is already queued as {id}");
                }
            }
            Submitted::Dropped { result } => {
                if ctx.out.json {
                    super::print_json(
                        &serde_json::json!({"queued": false, "dropped": true, "id": result.id}),
                    )?;
                } else {
                    eprintln!(
                        "bgrun: dropped: the queue is full ({} tasks) of tasks with higher priority; recorded as {}",
                        ctx.config.execution.max_queue_size, result.id
                    );
                }
            }
        }
    }
    if queued && !a.no_drain {
        engine::ensure_drainer(ctx)?;
    }
    Ok(Exit::Ok)
}
