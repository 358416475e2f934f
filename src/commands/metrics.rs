//! `bgrun metrics` and `bgrun cleanup` over the configured store (`engine::board`); what
//! they say is `present::metrics`'s.

use anyhow::Result;

use crate::present::metrics as view;
use crate::{Ctx, Exit};

pub fn run(ctx: &Ctx) -> Result<Exit> {
    let mut board = crate::engine::board(ctx)?;
    let samples = board.samples()?;
    let depth = board.depth()?;
    view::metrics(&ctx.out, depth.queued, depth.running, &samples)?;
    Ok(Exit::Ok)
}

pub fn cleanup(ctx: &Ctx) -> Result<Exit> {
    let c = crate::engine::board(ctx)?.cleanup()?;
    view::cleaned(&ctx.out, &c)?;
    Ok(Exit::Ok)
}
