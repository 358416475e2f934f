//! `bgrun tick`: enqueue every schedule due since the last tick (the trigger:
//! `triggers::tick`) and say what became of each. What the cron block calls (and `bgrun
//! start` every minute).

use anyhow::Result;

use crate::engine::Handed;
use crate::triggers::tick;
use crate::{Ctx, Exit};

pub fn run(ctx: &Ctx) -> Result<Exit> {
    let scheds = crate::triggers::crontab::schedules(ctx)?;
    let fired = tick::tick(ctx, &scheds)?;
    for f in &fired {
        match (&f.handed, f.line()) {
            (Handed::Skipped { why }, _) => ctx.out.warn(format!("{}: {why}; not queued", f.key)),
            (_, Some(what)) => ctx.out.say(format!("{}: {what}", f.key)),
            (_, None) => {}
        }
    }
    if fired.is_empty() && ctx.out.level > 0 {
        ctx.out.say("nothing due");
    }
    Ok(Exit::Ok)
}
