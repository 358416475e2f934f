//! `bgrun drain`: run the queue in the foreground; a progress bar on a TTY, lines otherwise
//! (`present::drain`).

use anyhow::Result;

use crate::cli::DrainArgs;
use crate::engine;
use crate::present::drain::{Bar, Lines};
use crate::{Ctx, Exit};

pub fn run(ctx: &Ctx, a: DrainArgs) -> Result<Exit> {
    if a.background {
        // Started detached by another bgrun: leave its session and terminal.
        crate::runner::detach::new_session();
    }
    // `--no-install` reaches the analyzer tasks through the config they are started with.
    let mut owned = ctx.clone();
    if a.no_install {
        owned.env.config.analysis.install_tools = false;
    }
    let ctx = &owned;
    let max = a
        .max_concurrent
        .unwrap_or(ctx.config.execution.max_concurrent_tasks);
    let summary = if ctx.out.tty && !a.background && !ctx.out.json && !ctx.out.quiet() {
        let mut p = Bar::new(ctx.out);
        let s = engine::drain_until_empty(ctx, max, &mut p);
        p.finish();
        s?
    } else {
        let mut p = Lines {
            out: ctx.out,
            background: a.background,
        };
        engine::drain_until_empty(ctx, max, &mut p)?
    };
    if ctx.store_url.is_none() {
        // The HTML report is of this state dir's results.
        super::report::refresh(ctx);
    }
    if ctx.out.json {
        super::print_json(&serde_json::json!({
            "ran": summary.ran,
            "failed": summary.failed,
            "results": summary.results,
        }))?;
    } else if !a.background {
        ctx.out.say(format!(
            "drained: {} ran, {} failed",
            summary.ran, summary.failed
        ));
    }
    Ok(if summary.failed > 0 {
        Exit::WorkFailed
    } else {
        Exit::Ok
    })
}
