//! `bgrun cron install|uninstall|list`: this repo's schedules as one marked block in the
//! user's crontab (the crontab session: `triggers::crontab`; what is printed:
//! `present::cron`).

use anyhow::Result;

use crate::cli::CronCommand;
use crate::present::cron as view;
use crate::triggers::crontab;
use crate::{Ctx, Exit};

pub fn run(ctx: &Ctx, cmd: CronCommand) -> Result<Exit> {
    match cmd {
        CronCommand::Install => {
            let scheds = crontab::schedules(ctx)?;
            if scheds.is_empty() {
                view::none_configured(&ctx.out);
                view::uninstalled(&ctx.out, crontab::uninstall(ctx)?)?;
            } else {
                view::installed(&ctx.out, crontab::install(ctx, &scheds)?, scheds.len())?;
            }
        }
        CronCommand::Uninstall => view::uninstalled(&ctx.out, crontab::uninstall(ctx)?)?,
        CronCommand::List => {
            let scheds = crontab::schedules(ctx)?;
            let now = chrono::Local::now().timestamp();
            let block = crontab::block_state(ctx, &scheds);
            view::list(&ctx.out, &ctx.repo, block, &scheds, now)?;
        }
    }
    Ok(Exit::Ok)
}
