//! `bgrun enqueue TYPE [-- ARGV]`: queue a task, start a drainer unless --no-drain. What it
//! says of the request is `present::enqueue`'s.

use anyhow::Result;

use crate::cli::EnqueueArgs;
use crate::config::Priority;
use crate::engine::{self, NewTask, Submitted};
use crate::present::enqueue as view;
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
    let max_queue = ctx.config.execution.max_queue_size;
    for s in &submitted {
        view::submitted(&ctx.out, s, max_queue)?;
    }
    let queued = submitted
        .iter()
        .any(|s| matches!(s, Submitted::Queued { .. }));
    if queued && !a.no_drain {
        engine::ensure_drainer(ctx)?;
    }
    Ok(Exit::Ok)
}
