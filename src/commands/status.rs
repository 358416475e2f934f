//! `bgrun status`: queued, running, recent results, drainers, failing channels.

use anyhow::Result;
use serde_json::json;

use crate::engine;
use crate::queue;
use crate::results;
use crate::state::procs;
use crate::timefmt::{human_duration, rfc3339};
use crate::{Ctx, Exit};

pub fn run(ctx: &Ctx) -> Result<Exit> {
    let state = engine::recover_now(ctx)?;
    let ordered = queue::ordered(state.queued.values(), &state.history);
    let mut running: Vec<_> = state.running.values().collect();
    running.sort_by_key(|r| r.task.seq);
    let recent = results::list(&ctx.state_dir, None, 10)?;
    let drainers = procs::alive(&ctx.state_dir, Some("drainer"));
    let watchers = procs::alive(&ctx.state_dir, Some("watch"));
    let failing = crate::notify::failing_channels(&ctx.state_dir);
    let all = results::aggregate(&results::samples(&ctx.state_dir))
        .remove("*")
        .unwrap_or_default();
    if ctx.out.json {
        let v = json!({
            "queued": ordered.iter().map(|(t, eff)| json!({
                "id": t.id, "type": t.task_type, "name": t.name, "priority": t.priority,
                "effective_priority": eff, "enqueued_at": rfc3339(t.enqueued_at),
                "trigger": t.trigger, "attempt": t.attempt,
                "not_before": t.not_before.map(rfc3339),
            })).collect::<Vec<_>>(),
            "running": running.iter().map(|r| json!({
                "id": r.task.id, "type": r.task.task_type, "name": r.task.name, "pid": r.pid,
                "started_at": rfc3339(r.claimed_at), "attempt": r.task.attempt + 1,
                "trigger": r.task.trigger, "log": r.log,
            })).collect::<Vec<_>>(),
            "recent": recent.iter().map(|r| json!({
                "id": r.id, "type": r.task_type, "name": r.name, "status": r.status,
                "exit_code": r.exit_code, "duration_s": r.duration_s, "finished_at": r.finished_at,
                "attempt": r.attempt, "trigger": r.trigger,
                "findings": r.findings.unwrap_or_default(), "error": r.error,
            })).collect::<Vec<_>>(),
            "drainers": drainers.iter().map(|d| json!({"pid": d.pid, "started_at": rfc3339(d.started_at)})).collect::<Vec<_>>(),
            "watchers": watchers.iter().map(|d| json!({"pid": d.pid, "started_at": rfc3339(d.started_at)})).collect::<Vec<_>>(),
            "metrics": {
                "executions": all.executions, "success_rate": all.success_rate,
                "duration_p50_s": all.duration_p50_s, "duration_p95_s": all.duration_p95_s,
                "queue_p50_s": all.queue_p50_s, "peak_rss_mb": all.peak_rss_mb,
            },
            "failing_channels": failing.iter().map(|(c, at, e)| json!({"channel": c, "at": at, "error": e})).collect::<Vec<_>>(),
        });
        super::print_json(&v)?;
        return Ok(Exit::Ok);
    }
    let o = &ctx.out;
    println!("{}", o.paint("1", &format!("queued ({})", ordered.len())));
    for (t, eff) in ordered.iter().take(20) {
        let wait = t
            .not_before
            .map(|nb| {
                format!(
                    "  retry in {}",
                    human_duration((nb - crate::timefmt::now()).max(0.0))
                )
            })
            .unwrap_or_default();
        println!(
            "  {:>6}  {:<20} prio {:>5} (effective {:>7.1})  {}  queued {} ago  attempt {}{wait}",
            t.id,
            t.task_type,
            t.priority,
            eff,
            t.trigger,
            engine::ago(t.enqueued_at),
            t.attempt
        );
    }
    if ordered.len() > 20 {
        println!("  ... and {} more", ordered.len() - 20);
    }
    println!("{}", o.paint("1", &format!("running ({})", running.len())));
    for r in &running {
        println!(
            "  {:>6}  {:<20} pid {:<8} since {} ({} ago)  attempt {}",
            r.task.id,
            r.task.task_type,
            r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            rfc3339(r.claimed_at),
            engine::ago(r.claimed_at),
            r.task.attempt + 1
        );
    }
    println!("{}", o.paint("1", "recent"));
    if recent.is_empty() {
        println!("  (none)");
    }
    for r in &recent {
        let f = r
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
            "  {:>6}  {:<20} {:<13} {:>7}  {}{f}",
            r.id,
            r.task_type,
            o.paint(
                if r.status == "succeeded" { "32" } else { "31" },
                r.status.as_str()
            ),
            human_duration(r.duration_s),
            r.finished_at
        );
    }
    println!(
        "{} {}",
        o.paint("1", "drainers"),
        if drainers.is_empty() {
            "none".to_string()
        } else {
            drainers
                .iter()
                .map(|d| d.pid.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    if all.executions > 0 {
        println!(
            "{} {} runs, {:.0}% succeeded, p50 {}, p95 {}, queue p50 {}",
            o.paint("1", "metrics"),
            all.executions,
            all.success_rate * 100.0,
            human_duration(all.duration_p50_s),
            human_duration(all.duration_p95_s),
            human_duration(all.queue_p50_s)
        );
    }
    if !watchers.is_empty() {
        println!(
            "{} {}",
            o.paint("1", "watchers"),
            watchers
                .iter()
                .map(|d| d.pid.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for (c, at, e) in &failing {
        println!(
            "{} {c}: last delivery failed at {at}: {e}",
            o.paint("31", "failing channel")
        );
    }
    Ok(Exit::Ok)
}
