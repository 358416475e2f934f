//! `bgrun hook NAME` (issue 7).

use anyhow::Result;

use crate::cli::HookArgs;
use crate::{Ctx, Exit};

pub fn run(_ctx: &Ctx, _args: HookArgs) -> Result<Exit> {
    Err(crate::error::not_yet("hook"))
}
