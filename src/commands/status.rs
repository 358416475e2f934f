//! `bgrun status`: queued, running, recent results, drainers, failing channels (the texts:
//! `present::status`).

use anyhow::Result;

use crate::present::status::{self as view, Overview};
use crate::results;
use crate::state::procs;
use crate::{Ctx, Exit, engine};

/// `status [--new-only]`: with it, recent results count only their new findings.
pub fn run_with(ctx: &Ctx, new_only: bool) -> Result<Exit> {
    let mut board = engine::board(ctx)?;
    let view = board.view()?;
    let mut recent = board.results(None, 10)?;
    if new_only {
        results::count_only_new(&mut recent);
    }
    let overview = Overview {
        view,
        recent,
        drainers: procs::alive(&ctx.state_dir, Some("drainer")),
        watchers: procs::alive(&ctx.state_dir, Some("watch")),
        failing: crate::notify::failing_channels(&ctx.state_dir),
        unread: crate::inbox::peek(&ctx.state_dir),
        all: results::aggregate(&board.samples()?)
            .remove("*")
            .unwrap_or_default(),
    };
    view::show(&ctx.out, &overview)?;
    Ok(Exit::Ok)
}
