//! `bgrun tools list|install [TOOL...]|update|which TOOL|prune|dir`: the managed, pinned
//! tool environments of issue 13 (the cache itself is `crate::tools`, several tools at
//! once `tools::batch`, what is printed `present::tools`).
//!
//! Exit: 0 done; 1 an install or a registry lookup failed (the others still ran); 2 an
//! unknown tool or a bad config.

use std::time::Duration;

use anyhow::Result;

use crate::cli::ToolsCommand;
use crate::present::tools as view;
use crate::tools::{self, Cache, Spec, batch};
use crate::{Ctx, Exit, error};

fn cache() -> Result<Cache> {
    Cache::from_env().map_err(|e| error::usage(e.to_string()))
}

fn spec_arg(name: &str) -> Result<&'static Spec> {
    tools::spec(name).ok_or_else(|| {
        let known: Vec<&str> = tools::TABLE.iter().map(|s| s.name).collect();
        error::usage(format!(
            "unknown tool {name:?} (known: {})",
            known.join(", ")
        ))
    })
}

pub fn run(ctx: &Ctx, c: ToolsCommand) -> Result<Exit> {
    let s = ctx
        .config
        .analysis
        .tool_settings(true, crate::present::analyze::install_progress(&ctx.out));
    // The managed tools this project's analyzers use (when no TOOL is named).
    let needed = || crate::analyzers::tools_needed(&ctx.repo);
    let failed = match c {
        ToolsCommand::Dir => view::dir(&ctx.out, &cache()?).map(|()| false)?,
        ToolsCommand::List => view::list(&ctx.out, &s, &cache()?).map(|()| false)?,
        ToolsCommand::Which { tool, repeat } => {
            let spec = spec_arg(&tool)?;
            !view::which(&ctx.out, spec, &batch::which(s, spec, &ctx.repo, repeat))?
        }
        ToolsCommand::Install { tools } => {
            let c = cache()?;
            let specs = if tools.is_empty() {
                batch::managed_of(&s, &needed())
            } else {
                tools.iter().map(|n| spec_arg(n)).collect::<Result<_>>()?
            };
            if specs.is_empty() {
                view::nothing_to_install(&ctx.out);
            }
            let done =
                batch::install_all(&c, &s, &specs, |sp, v| view::installing(&ctx.out, sp, v));
            view::installed(&ctx.out, done)?
        }
        ToolsCommand::Update => {
            // Every pin (the tools this project uses and the ones already pinned) moves to
            // the newest release; the team config is rewritten.
            let specs = batch::updatable(needed(), ctx.config.analysis.tools.keys());
            let a = &ctx.config.analysis;
            let timeout = Duration::from_secs(a.install_timeout_seconds.clamp(1, 120));
            let latest = batch::latest_all(&s, &specs, timeout);
            view::latest(&ctx.out, &latest);
            let path = crate::config::team_config(&ctx.config_source, &ctx.repo);
            let pins = batch::new_pins(&latest);
            if !pins.is_empty() {
                crate::config::write_pins(&path, &pins)?;
            }
            view::updated(&ctx.out, &path, &latest, !pins.is_empty())?;
            latest.iter().any(|l| l.new.is_err())
        }
        ToolsCommand::Prune { days } => {
            // Incomplete environments and debris, and complete ones unused for `days` days
            // (never this project's current pins).
            let unused = Duration::from_secs(days.saturating_mul(86_400));
            view::pruned(&ctx.out, &cache()?.prune(&batch::kept(&s), unused))?;
            false
        }
    };
    Ok(if failed { Exit::WorkFailed } else { Exit::Ok })
}
