//! `bgrun run`: one task now, in the foreground, bypassing the queue.

use std::time::Duration;

use anyhow::Result;

use super::slot::{finish_slot, police, sample, start_slot, terminate};
use super::{NewTask, build_task, install_stop_handlers, record, stop_requested};
use crate::results::TaskResult;
use crate::runner::limits::Sampler;
use crate::runner::process;
use crate::timefmt::now;
use crate::{Ctx, error};

/// Run one task now, in the foreground, bypassing the queue (`bgrun run`).
pub fn run_now(ctx: &Ctx, new: &NewTask) -> Result<TaskResult> {
    let at = now();
    let mut task = build_task(ctx, new, 0, at)?;
    task.id = format!("run-{}", (at * 1000.0) as u64 % 100_000_000);
    crate::state::store::ensure_private_dir(&ctx.state_dir)?;
    install_stop_handlers();
    crate::runner::escape::become_subreaper();
    let grace = ctx.config.execution.kill_grace_seconds as f64;
    let me = format!("run-{}", std::process::id());
    let mut slot = start_slot(ctx, task, &me).map_err(|failed| error::work(failed.1))?;
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
