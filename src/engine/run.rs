//! `bgrun run`: one task now, in the foreground, bypassing the queue.

use std::time::Duration;

use anyhow::Result;

use super::Env;
use super::slot::{finish_slot, police, sample, start_slot, terminate};
use super::{NewTask, build_task, install_stop_handlers, record, stop_requested};
use crate::error;
use crate::results::TaskResult;
use crate::runner::limits::Sampler;
use crate::runner::process;
use crate::timefmt::now;

/// Run one task now, in the foreground, bypassing the queue (`bgrun run`).
pub fn run_now(env: &Env, new: &NewTask) -> Result<TaskResult> {
    let at = now();
    let mut task = build_task(env, new, 0, at)?;
    task.id = format!("run-{}", (at * 1000.0) as u64 % 100_000_000);
    crate::state::store::ensure_private_dir(&env.state_dir)?;
    install_stop_handlers();
    let grace = env.config.execution.kill_grace_seconds as f64;
    let mut slot = start_slot(env, task).map_err(|failed| error::work(failed.1))?;
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
            sample(std::slice::from_mut(&mut slot), &mut sampler, env, at);
        }
        let due = police(std::slice::from_mut(&mut slot), env, at).min(last_sample + 0.25);
        process::wait_any(
            &[&slot.child],
            Duration::from_secs_f64((due - at).clamp(0.0, 1.0)),
        );
    }
    let (_, r) = finish_slot(env, slot, now());
    record(env, &r, 0, 1)?;
    Ok(r)
}
