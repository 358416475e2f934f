//! What `bgrun cron install|uninstall|list` prints: what changed in the crontab, and this
//! repo's schedules with their next fire times (text or JSON). The crontab session is
//! `triggers::crontab`'s.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::print_json;
use crate::output::Output;
use crate::triggers::cron::Schedule;
use crate::triggers::crontab::Block;

/// `install` wrote (or found) the block of `n` schedules.
pub fn installed(out: &Output, changed: bool, n: usize) -> Result<()> {
    if out.json {
        print_json(&json!({"changed": changed, "schedules": n}))?;
    } else if changed {
        out.say(format!(
            "installed {n} schedule(s) in the crontab; `bgrun cron list` shows the next fire times"
        ));
    } else {
        out.say("the crontab is already up to date");
    }
    Ok(())
}

/// `install` with nothing to schedule removes the block.
pub fn none_configured(out: &Output) {
    out.say(
        "no schedules configured (triggers.scheduled.tasks, task_types.*.auto_trigger.interval_minutes); \
         removing this repo's block if any",
    );
}

/// `uninstall` removed the block (or found none).
pub fn uninstalled(out: &Output, changed: bool) -> Result<()> {
    if out.json {
        print_json(&json!({"changed": changed}))?;
    } else if changed {
        out.say("removed this repo's block from the crontab");
    } else {
        out.say("this repo has no block in the crontab");
    }
    Ok(())
}

fn block_label(b: Block) -> &'static str {
    match b {
        Block::Absent => "not installed",
        Block::Current => "installed",
        Block::Outdated => "outdated (run `bgrun cron install`)",
        Block::Unknown => "unknown",
    }
}

/// `list`: the block's state and each schedule with its next fire time after `now`.
pub fn list(out: &Output, repo: &Path, block: Block, scheds: &[Schedule], now: i64) -> Result<()> {
    let installed = block_label(block);
    let local = |ts: i64| {
        chrono::DateTime::from_timestamp(ts, 0)
            .map(|d| d.with_timezone(&chrono::Local).to_rfc3339())
    };
    if out.json {
        let items: Vec<_> = scheds
            .iter()
            .map(|s| {
                json!({
                    "key": s.key,
                    "name": s.name,
                    "task_type": s.task_type,
                    "schedule": s.describe(),
                    "cron": s.crontab_time(),
                    "next": s.next_after(now).and_then(local),
                })
            })
            .collect();
        return print_json(&json!({"repo": repo, "crontab": installed, "schedules": items}));
    }
    println!("crontab block: {installed}");
    if scheds.is_empty() {
        println!("no schedules configured");
    }
    for s in scheds {
        let next = match s.next_after(now).and_then(local) {
            Some(t) => t,
            None => "at the first tick after boot".to_string(),
        };
        println!(
            "{:<28} {:<20} {:<16} next: {next}",
            s.key,
            s.task_type,
            s.describe()
        );
    }
    Ok(())
}
