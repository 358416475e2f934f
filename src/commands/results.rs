//! `bgrun results [ID] [--last N]`.

use anyhow::Result;

use crate::cli::ResultsArgs;
use crate::results;
use crate::timefmt::human_duration;
use crate::{Ctx, Exit};

pub fn run(ctx: &Ctx, a: ResultsArgs) -> Result<Exit> {
    let rs = results::list(&ctx.state_dir, a.id.as_deref(), a.last.unwrap_or(20))?;
    if ctx.out.json {
        super::print_json(&rs)?;
        return Ok(Exit::Ok);
    }
    if rs.is_empty() {
        ctx.out.say("no results yet");
    }
    for r in &rs {
        let findings = r
            .findings
            .as_ref()
            .map(|f| {
                format!(
                    "  findings c{} h{} m{} l{} i{}",
                    f.critical, f.high, f.medium, f.low, f.info
                )
            })
            .unwrap_or_default();
        println!(
            "{:>6}  {:<20} {:<13} attempt {}  {:>7}  {}  {}{}{}",
            r.id,
            r.task_type,
            ctx.out.paint(
                if r.status == "succeeded" { "32" } else { "31" },
                r.status.as_str()
            ),
            r.attempt,
            human_duration(r.duration_s),
            r.finished_at,
            r.trigger,
            findings,
            r.error
                .as_deref()
                .map(|e| format!("  ({e})"))
                .unwrap_or_default(),
        );
    }
    Ok(Exit::Ok)
}
