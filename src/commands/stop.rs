//! `bgrun stop [ID...] [--all]`.

use anyhow::Result;

use crate::cli::StopArgs;
use crate::engine;
use crate::{Ctx, Exit, error};

pub fn run(ctx: &Ctx, a: StopArgs) -> Result<Exit> {
    if a.ids.is_empty() && !a.all {
        return Err(error::usage(
            "name the task ids to stop, or --all (see `bgrun status`)",
        ));
    }
    let s = engine::board(ctx)?.stop(&a.ids, a.all)?;
    if ctx.out.json {
        super::print_json(&s)?;
    } else {
        for id in &s.removed {
            ctx.out.say(format!("removed queued task {id}"));
        }
        for id in &s.signalled {
            ctx.out.say(format!("stopped running task {id}"));
        }
        for p in &s.processes {
            ctx.out.say(format!("stopped bgrun process {p}"));
        }
        for id in &s.not_found {
            eprintln!("bgrun: no queued or running task {id}");
        }
    }
    Ok(if s.not_found.is_empty() {
        Exit::Ok
    } else {
        Exit::WorkFailed
    })
}
