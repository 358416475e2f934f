//! `bgrun watch --poll` and `bgrun start` (issue 8).

use anyhow::Result;

use crate::cli::WatchArgs;
use crate::{Ctx, Exit};

pub fn run(_ctx: &Ctx, _args: WatchArgs, _start: bool) -> Result<Exit> {
    Err(crate::error::not_yet("watch"))
}
