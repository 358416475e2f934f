//! `bgrun hooks install|uninstall|status` (issue 7).

use anyhow::Result;

use crate::cli::HooksCommand;
use crate::{Ctx, Exit};

pub fn run(_ctx: &Ctx, _cmd: HooksCommand) -> Result<Exit> {
    Err(crate::error::not_yet("hooks"))
}
