//! What `bgrun metrics` and `bgrun cleanup` say: the queue, the peak concurrency and per
//! task type runs, success rate, duration and queue-wait percentiles and peak memory; what
//! retention removed.

use anyhow::Result;

use super::print_json;
use crate::output::Output;
use crate::results::{Cleaned, Sample};
use crate::timefmt::human_duration;

/// Print the metrics of `samples` with the queue's current length and running count.
pub fn metrics(out: &Output, queued: usize, running: usize, samples: &[Sample]) -> Result<()> {
    let per_type = crate::results::aggregate(samples);
    let peak_concurrency = samples.iter().map(|s| s.concurrent).max().unwrap_or(0);
    if out.json {
        return print_json(&serde_json::json!({
            "queue_length": queued,
            "running": running,
            "peak_concurrency": peak_concurrency,
            "per_type": per_type,
        }));
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
    Ok(())
}

/// What `cleanup` removed.
pub fn cleaned(out: &Output, c: &Cleaned) -> Result<()> {
    if out.json {
        return print_json(c);
    }
    let mut more = String::new();
    if c.tasks > 0 || c.workers > 0 {
        more = format!(", {} finished tasks, {} old workers", c.tasks, c.workers);
    }
    out.say(format!(
        "removed {} results, {} logs, {} reports, {} metrics lines{more}",
        c.results, c.logs, c.reports, c.metrics_lines
    ));
    Ok(())
}
