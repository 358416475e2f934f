//! `bgrun log ID [--follow] [--lines N]`: a task's output, read back from its log; with
//! `--follow`, printed as it is written until the task has ended (a queued task is waited
//! for; a retry's new log is followed on).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::cli::LogArgs;
use crate::results;
use crate::tasklog::{self, Follower};
use crate::{Ctx, Exit, engine, error};

pub fn run(ctx: &Ctx, a: LogArgs) -> Result<Exit> {
    let id = a.id.as_str();
    let last = results::list(&ctx.state_dir, Some(id), 1)?
        .into_iter()
        .next();
    let finished = last.as_ref().is_some_and(|r| !r.will_retry);
    if !finished {
        let state = engine::recover_now(ctx)?;
        let live = state.queued.contains_key(id) || state.running.contains_key(id);
        // A `bgrun run` in another terminal is in no queue: its log is the evidence.
        let running_elsewhere = tasklog::latest(&ctx.state_dir, id).is_some();
        if !live && last.is_none() && !running_elsewhere {
            return Err(error::usage(format!(
                "no task with id {id:?} (see `bgrun status` and `bgrun results` for ids)"
            )));
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let current = tasklog::latest(&ctx.state_dir, id);
    let mut offset = 0;
    if let Some((_, path)) = &current {
        let bytes = std::fs::read(path).unwrap_or_default();
        out.write_all(tasklog::last_lines(&bytes, a.lines))?;
        out.flush()?;
        offset = bytes.len() as u64;
    }
    if !a.follow || finished {
        if current.is_none() && !ctx.out.quiet() {
            eprintln!(
                "bgrun: task {id} has no output{}",
                if finished { "" } else { " yet" }
            );
        }
        return Ok(Exit::Ok);
    }
    // Follow: the newest attempt's log, switching when a retry starts a new one, until the
    // task's final result is recorded.
    let mut attempt = current.as_ref().map(|c| c.0).unwrap_or(0);
    let mut follower = current.map(|(_, p)| Follower::new(p, offset));
    let mut next_check = Instant::now();
    loop {
        let mut done = false;
        if Instant::now() >= next_check {
            next_check = Instant::now() + Duration::from_millis(200);
            done = results::list(&ctx.state_dir, Some(id), 1)?
                .first()
                .is_some_and(|r| !r.will_retry);
            if let Some((n, p)) = tasklog::latest(&ctx.state_dir, id)
                && (n > attempt || follower.is_none())
            {
                if let Some(f) = follower.as_mut() {
                    f.pump(&mut out)?;
                }
                attempt = n;
                follower = Some(Follower::new(p, 0));
            }
        }
        if let Some(f) = follower.as_mut() {
            f.pump(&mut out)?;
        }
        if done {
            return Ok(Exit::Ok);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
