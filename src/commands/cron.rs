//! `bgrun cron install|uninstall|list` (issue 7).

use anyhow::Result;

use crate::cli::CronCommand;
use crate::{Ctx, Exit};

pub fn run(_ctx: &Ctx, _cmd: CronCommand) -> Result<Exit> {
    Err(crate::error::not_yet("cron"))
}
