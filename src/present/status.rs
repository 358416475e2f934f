//! What `bgrun status` prints (text or JSON): queued, running, the shared store's workers,
//! recent results, drainers, watchers, metrics, the unread inbox, failing channels.

use anyhow::Result;
use serde_json::json;

use super::print_json;
use crate::engine::{self, View};
use crate::inbox::Entry;
use crate::output::Output;
use crate::results::{TaskResult, TypeMetrics};
use crate::state::procs::ProcInfo;
use crate::timefmt::{human_duration, rfc3339};

/// What `status` gathered.
pub struct Overview {
    pub view: View,
    pub recent: Vec<TaskResult>,
    pub drainers: Vec<ProcInfo>,
    pub watchers: Vec<ProcInfo>,
    /// (channel, when, error) of each channel whose last delivery failed.
    pub failing: Vec<(String, String, String)>,
    pub unread: Vec<Entry>,
    /// The metrics of all task types together.
    pub all: TypeMetrics,
}

/// Show the overview.
pub fn show(out: &Output, s: &Overview) -> Result<()> {
    let Overview {
        view,
        recent,
        drainers,
        watchers,
        failing,
        unread,
        all,
    } = s;
    let ordered = &view.queued;
    let running = &view.running;
    if out.json {
        let mut v = json!({
            "queued": ordered.iter().map(|(t, eff)| json!({
                "id": t.id, "type": t.task_type, "name": t.name, "priority": t.priority,
                "what": super::what_of_action(&t.task_type, &t.action),
                "effective_priority": eff, "enqueued_at": rfc3339(t.enqueued_at),
                "trigger": t.trigger, "attempt": t.attempt,
                "not_before": t.not_before.map(rfc3339),
            })).collect::<Vec<_>>(),
            "running": running.iter().map(|r| json!({
                "id": r.task.id, "type": r.task.task_type, "name": r.task.name, "pid": r.pid,
                "what": super::what_of_action(&r.task.task_type, &r.task.action),
                "started_at": rfc3339(r.started_at), "attempt": r.task.attempt + 1,
                "trigger": r.task.trigger, "log": r.log, "host": r.host,
            })).collect::<Vec<_>>(),
            "workers": view.workers,
            "recent": recent.iter().map(|r| json!({
                "id": r.id, "type": r.task_type, "name": r.name, "status": r.status,
                "what": super::what_of_result(r),
                "exit_code": r.exit_code, "duration_s": r.duration_s, "finished_at": r.finished_at,
                "attempt": r.attempt, "trigger": r.trigger,
                "findings": r.findings.unwrap_or_default(), "error": r.error,
                "host": r.host,
            })).collect::<Vec<_>>(),
            "drainers": drainers.iter().map(|d| json!({"pid": d.pid, "started_at": rfc3339(d.started_at)})).collect::<Vec<_>>(),
            "watchers": watchers.iter().map(|d| json!({"pid": d.pid, "started_at": rfc3339(d.started_at)})).collect::<Vec<_>>(),
            "metrics": {
                "executions": all.executions, "success_rate": all.success_rate,
                "duration_p50_s": all.duration_p50_s, "duration_p95_s": all.duration_p95_s,
                "queue_p50_s": all.queue_p50_s, "peak_rss_mb": all.peak_rss_mb,
            },
            "unread": unread,
            "failing_channels": failing.iter().map(|(c, at, e)| json!({"channel": c, "at": at, "error": e})).collect::<Vec<_>>(),
        });
        if let Some(st) = &view.store {
            v["store"] = json!({
                "url": st.url, "schema_version": st.schema_version,
                "queued": view.queued_total, "running": view.running_total,
                "capped": st.capped,
            });
        }
        return print_json(&v);
    }
    let o = out;
    let plus = if view.store.as_ref().is_some_and(|s| s.capped) {
        "+"
    } else {
        ""
    };
    if let Some(st) = &view.store {
        println!(
            "{} (schema version {})",
            o.paint("1", &format!("store {}", st.url)),
            st.schema_version
        );
    }
    println!(
        "{}",
        o.paint("1", &format!("queued ({}{plus})", view.queued_total))
    );
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
            "  {:>6}  {:<40} prio {:>5} (effective {:>7.1})  {}  queued {} ago  attempt {}{wait}",
            t.id,
            super::what_of_action(&t.task_type, &t.action),
            t.priority,
            eff,
            t.trigger,
            engine::ago(t.enqueued_at),
            t.attempt
        );
    }
    if view.queued_total > 20 {
        println!("  ... and {}{plus} more", view.queued_total - 20);
    }
    println!(
        "{}",
        o.paint("1", &format!("running ({}{plus})", view.running_total))
    );
    for r in running {
        let on = match (&r.host, r.pid) {
            (Some(h), _) => format!("on {h:<20}"),
            (None, p) => format!(
                "pid {:<8}",
                p.map(|p| p.to_string()).unwrap_or_else(|| "-".into())
            ),
        };
        println!(
            "  {:>6}  {:<40} {on} since {} ({} ago)  attempt {}",
            r.task.id,
            super::what_of_action(&r.task.task_type, &r.task.action),
            rfc3339(r.started_at),
            engine::ago(r.started_at),
            r.task.attempt + 1
        );
    }
    if view.store.is_some() {
        println!(
            "{}",
            o.paint("1", &format!("workers ({})", view.workers.len()))
        );
        for w in &view.workers {
            println!(
                "  {:<24} pid {:<8} since {}  running {}",
                w.host, w.pid, w.started_at, w.running
            );
        }
    }
    println!("{}", o.paint("1", "recent"));
    if recent.is_empty() {
        println!("  (none)");
    }
    for r in recent {
        let f = super::results::counts(r);
        println!(
            "  {:>6}  {:<40} {:<13} {:>7}  {}{}{f}",
            r.id,
            super::what_of_result(r),
            o.paint(
                if r.status == "succeeded" { "32" } else { "31" },
                r.status.as_str()
            ),
            human_duration(r.duration_s),
            r.finished_at,
            r.host
                .as_deref()
                .map(|h| format!("  on {h}"))
                .unwrap_or_default()
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
    if !unread.is_empty() {
        println!(
            "{} (shown by the next git command, or here)",
            o.paint("1", &format!("unread ({})", unread.len()))
        );
        for e in unread {
            for l in e.lines() {
                println!("  {}", l.trim_start_matches("bgrun: "));
            }
        }
    }
    for (c, at, e) in failing {
        println!(
            "{} {c}: last delivery failed at {at}: {e}",
            o.paint("31", "failing channel")
        );
    }
    Ok(())
}
