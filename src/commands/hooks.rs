//! `bgrun hooks install|uninstall|status` (aliases `install-hooks`, `uninstall-hooks`).
//!
//! Installs the hooks configured in `triggers.git_hooks` into the directory git reads them
//! from (`core.hooksPath` followed; a linked worktree shares the common dir's hooks). An
//! existing hook (the user's, husky's, pre-commit's, lefthook's) is moved beside it as
//! `NAME.bgrun-orig` and run after bgrun; uninstall renames it back: same bytes, same mode.
//! The session is `triggers::hooks`', what is printed `present::hooks`'.

use anyhow::Result;

use crate::cli::HooksCommand;
use crate::present::hooks as view;
use crate::triggers::{self, hooks};
use crate::{Ctx, Exit, error};

pub fn run(ctx: &Ctx, cmd: HooksCommand) -> Result<Exit> {
    let hd = hooks::locate(&ctx.repo).map_err(|e| error::usage(e.to_string()))?;
    let (failed, not) = match cmd {
        HooksCommand::Install => {
            let names = hooks::configured(ctx)?;
            if names.is_empty() {
                view::none_configured(&ctx.out, &ctx.config_source);
                return Ok(Exit::Ok);
            }
            let exe = triggers::bgrun_exe()?;
            view::installing(&ctx.out, &hd);
            let done = hooks::install_all(&hd.dir, &names, &exe);
            (view::installed(&ctx.out, &hd, &done)?, "not installed")
        }
        HooksCommand::Uninstall => {
            let done = hooks::uninstall_all(ctx, &hd.dir);
            (view::uninstalled(&ctx.out, &hd, &done)?, "not removed")
        }
        HooksCommand::Status => {
            let status = hooks::Status::of(ctx, &hd)?;
            view::status(&ctx.out, &ctx.config, &hd, &status)?;
            (Vec::new(), "")
        }
    };
    if failed.is_empty() {
        Ok(Exit::Ok)
    } else {
        Err(error::work(format!("{not}: {}", failed.join(", "))))
    }
}
