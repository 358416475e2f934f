//! `bgrun notify` (issue 6).

use anyhow::Result;

use crate::cli::NotifyArgs;
use crate::{Ctx, Exit};

pub fn run(_ctx: &Ctx, _args: NotifyArgs) -> Result<Exit> {
    Err(crate::error::not_yet("notify"))
}
