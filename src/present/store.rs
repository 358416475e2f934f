//! What the shared store's own commands say (`store migrate|status`, `worker`): the
//! schema versions, the store's status, a worker's progress lines and its summary.

use anyhow::Result;
use serde_json::json;

use super::print_json;
use crate::engine::{DrainSummary, Progress};
use crate::output::Output;
use crate::results::TaskResult;
use crate::state::task::Task;
use crate::store::shared::StoreStatus;
use crate::timefmt::{now, rfc3339};

/// `store migrate`: the schema went `from` one version `to` another (the same: current).
pub fn migrated(out: &Output, url: &str, from: i32, to: i32) -> Result<()> {
    if out.json {
        print_json(&json!({"from": from, "to": to, "url": url}))?;
    } else if from == to {
        out.say(format!("store schema is current (version {to})"));
    } else {
        out.say(format!("store schema migrated from version {from} to {to}"));
    }
    Ok(())
}

/// `store status`.
pub fn status(json: bool, s: &StoreStatus) -> Result<()> {
    if json {
        return print_json(s);
    }
    let plus = if s.capped { "+" } else { "" };
    println!("store      {}", s.url);
    println!(
        "schema     version {} (this bgrun: {}){}",
        s.schema_version,
        s.latest_version,
        if s.schema_version < s.latest_version {
            "  run `bgrun store migrate`"
        } else {
            ""
        }
    );
    println!(
        "tasks      {}{plus} queued, {}{plus} running, {}{plus} done",
        s.queued, s.running, s.done
    );
    println!("workers    {} alive", s.workers.len());
    for w in &s.workers {
        println!(
            "  {:<24} pid {:<8} since {}  running {}",
            w.host, w.pid, w.started_at, w.running
        );
    }
    Ok(())
}

/// Progress lines of a worker, each starting with the time (none when `quiet`).
pub struct Lines {
    pub quiet: bool,
}

impl Progress for Lines {
    fn started(&mut self, t: &Task, attempt: u32) {
        if !self.quiet {
            println!(
                "{}started {} {} (attempt {attempt})",
                self.when(),
                t.id,
                t.task_type
            );
        }
    }
    fn finished(&mut self, r: &TaskResult, _queued: usize) {
        if !self.quiet {
            let retry = if r.will_retry { " (will retry)" } else { "" };
            println!(
                "{}{} {} {}{retry}{}",
                self.when(),
                r.status,
                r.id,
                r.task_type,
                r.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        }
    }
}

impl Lines {
    fn when(&self) -> String {
        format!("{} ", rfc3339(now()))
    }
}

/// What a worker did, once it stops.
pub fn summary(out: &Output, s: &DrainSummary) -> Result<()> {
    if out.json {
        print_json(&json!({"ran": s.ran, "failed": s.failed, "results": s.results}))
    } else {
        out.say(format!("drained: {} ran, {} failed", s.ran, s.failed));
        Ok(())
    }
}
