//! `bgrun metrics` and `bgrun cleanup`.

use anyhow::Result;

use crate::results;
use crate::timefmt::human_duration;
use crate::{Ctx, Exit};

pub fn run(ctx: &Ctx) -> Result<Exit> {
    let mut board = crate::engine::board(ctx)?;
    let samples = board.samples()?;
    let depth = board.depth()?;
    show(ctx, depth.queued, depth.running, &samples)
}

/// Print the metrics of `samples` with the queue's current length and running count.
fn show(ctx: &Ctx, queued: usize, running: usize, samples: &[results::Sample]) -> Result<Exit> {
    let per_type = results::aggregate(samples);
    let peak_concurrency = samples.iter().map(|s| s.concurrent).max().unwrap_or(0);
    if ctx.out.json {
        super::print_json(&serde_json::json!({
            "queue_length": queued,
            "running": running,
            "peak_concurrency": peak_concurrency,
            "per_type": per_type,
        }))?;
        return Ok(Exit::Ok);
    }
    println!(
        "queue length {}  running {}  peak concurrency {}",
        queued, running, peak_concurrency
    );
    println!(
        "{:<22} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "type", "runs", "success", "p50", "p95", "queue p50", "peak RSS"
    );
    for (t, m) in &per_type {
        let name = if t == "*" { "(all)" } else { t.as_str() };
        println!(
            "{:<22} {:>6} {:>7.0}% {:>9} {:>9} {:>9} {:>6.1} MB",
            name,
            m.executions,
            m.success_rate * 100.0,
            human_duration(m.duration_p50_s),
            human_duration(m.duration_p95_s),
            human_duration(m.queue_p50_s),
            m.peak_rss_mb
        );
    }
    Ok(Exit::Ok)
}

pub fn cleanup(ctx: &Ctx) -> Result<Exit> {
    let c = crate::engine::board(ctx)?.cleanup()?;
    if ctx.out.json {
        super::print_json(&c)?;
    } else {
        let mut more = String::new();
        if c.tasks > 0 || c.workers > 0 {
            more = format!(", {} finished tasks, {} old workers", c.tasks, c.workers);
        }
        ctx.out.say(format!(
            "removed {} results, {} logs, {} reports, {} metrics lines{more}",
            c.results, c.logs, c.reports, c.metrics_lines
        ));
    }
    Ok(Exit::Ok)
}
