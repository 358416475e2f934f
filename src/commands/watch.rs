//! `bgrun watch --poll` and `bgrun start` (issue 8): checks the arguments, builds the
//! polling watcher and the plan, runs the watch session (`triggers::watch::session`:
//! polling, debounce, settling, tracking, the minute tick) and hands its events to the
//! terminal view (`present::watch`).

use anyhow::Result;

use crate::cli::WatchArgs;
use crate::error;
use crate::present::watch::View;
use crate::triggers::watch::session::{self, Plan};
use crate::triggers::watch::{Options, Watcher};
use crate::{Ctx, Exit};

pub fn run(ctx: &Ctx, args: WatchArgs, start: bool) -> Result<Exit> {
    if start && args.once {
        return Err(error::usage(
            "`bgrun start` runs until stopped; for one comparison use `bgrun watch --once`",
        ));
    }
    if args.full_hash_every == Some(0) {
        return Err(error::usage(
            "--full-hash-every: give a number of polls, at least 1",
        ));
    }
    let (plan, warnings) = Plan::new(&ctx.config, args.interval, args.debounce)?;
    for w in warnings {
        ctx.out.warn(w);
    }
    let opts = Options::of(ctx, !args.no_gitignore, args.full_hash_every.unwrap_or(0));
    let mut w = Watcher::new(opts).map_err(|e| error::usage(format!("{e:#}")))?;
    let t = std::time::Instant::now();
    let loaded = w.load();
    let mut view = View::new(&ctx.out);
    view.loaded(&loaded, t.elapsed());
    if args.once {
        let once = session::once(ctx, &mut w, &plan)?;
        view.once(&once, w.counts());
        return Ok(Exit::Ok);
    }
    let tick = if start {
        Some(ctx.launcher.argv(["tick"])?)
    } else {
        None
    };
    let root = w.root().to_path_buf();
    let ended = session::run(ctx, &mut w, &plan, tick, &mut |e| {
        view.event(e, &root, &plan, start)
    })?;
    view.summary(&ended);
    Ok(Exit::Ok)
}
