//! `bgrun tick`: enqueue every schedule due since the last tick, at most once per due time,
//! then start a drainer. What the cron block calls (and `bgrun start` every minute).
//!
//! Bookkeeping lives in `<state>/schedule.json` (when each schedule was last considered, and
//! the boot time for `@reboot`), read and written under `<state>/schedule.lock`: ticks that
//! overlap see each other's writes, and a missed tick fires the latest due time once.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::engine::{self, NewTask, Submitted};
use crate::state::{lock, store};
use crate::timefmt::rfc3339;
use crate::triggers::cron::{Schedule, When};
use crate::{Ctx, Exit, error};

const FILE: &str = "schedule.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Book {
    schema_version: u32,
    /// Boot time (Unix seconds) seen by the last tick.
    boot_time: Option<i64>,
    /// Schedule key -> the tick time up to which its due times are accounted for.
    last: BTreeMap<String, i64>,
}

/// The machine's boot time from /proc/stat.
fn boot_time() -> Option<i64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Which schedules are due now; updates the book.
fn due(book: &mut Book, scheds: &[Schedule], now: i64, boot: Option<i64>) -> Vec<(usize, i64)> {
    let mut out = Vec::new();
    let rebooted = match (book.boot_time, boot) {
        (Some(old), Some(b)) => (old - b).abs() > 5,
        // First tick ever: a boot in the last 10 minutes counts.
        (None, Some(b)) => now - b < 600,
        _ => false,
    };
    for (i, s) in scheds.iter().enumerate() {
        // A schedule seen for the first time owes the last minute (so a tick at 02:00:03
        // fires `0 2 * * *`); a long gap is capped to two days of history.
        let last = book
            .last
            .get(&s.key)
            .copied()
            .unwrap_or(now - 60)
            .max(now - 2 * 86_400);
        if now < last {
            continue; // the clock went back: wait until it catches up
        }
        let d = match s.when {
            When::Reboot => rebooted.then_some(boot.unwrap_or(now)),
            _ => s.due_between(last, now),
        };
        if let Some(d) = d {
            out.push((i, d));
        }
    }
    if boot.is_some() {
        book.boot_time = boot;
    }
    let keys: std::collections::BTreeSet<&str> = scheds.iter().map(|s| s.key.as_str()).collect();
    book.last.retain(|k, _| keys.contains(k.as_str()));
    for s in scheds {
        let e = book.last.entry(s.key.clone()).or_insert(now);
        *e = (*e).max(now);
    }
    out
}

pub fn run(ctx: &Ctx) -> Result<Exit> {
    let scheds = super::cron::schedules(ctx)?;
    store::ensure_private_dir(&ctx.state_dir)?;
    let timeout = Duration::from_secs_f64(ctx.config.execution.lock_timeout_seconds.max(0.0));
    let _guard = lock::acquire(&ctx.state_dir.join("schedule.lock"), timeout)?;
    let path = ctx.state_dir.join(FILE);
    let mut book: Book = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            error::state(format!(
                "{}: unreadable ({e}); delete it to start the schedule bookkeeping afresh \
                 (due times since the last tick are then forgotten)",
                path.display()
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Book::default(),
        Err(e) => return Err(error::state(format!("cannot read {}: {e}", path.display()))),
    };
    book.schema_version = 1;
    let now = chrono::Utc::now().timestamp();
    let due = due(&mut book, &scheds, now, boot_time());
    let mut news = Vec::new();
    let mut fired = Vec::new();
    for (i, at) in &due {
        let s = &scheds[*i];
        if let Some(why) = ctx.config.disabled_type(&s.task_type) {
            ctx.out.warn(format!("{}: {why}; not queued", s.key));
            continue;
        }
        let trigger = if s.key.starts_with("schedule:") {
            s.key.clone()
        } else {
            format!("schedule:{}", s.key)
        };
        let mut n = NewTask::of_type(&s.task_type, &trigger);
        if s.key.starts_with("schedule:") {
            n.name = Some(s.name.clone());
        }
        n.context = json!({"schedule": s.describe(), "due": rfc3339(*at as f64)});
        news.push(n);
        fired.push(s);
    }
    let submitted = if news.is_empty() {
        Vec::new()
    } else {
        engine::submit(ctx, &news)?
    };
    // Only once the tasks are queued is the due time accounted for.
    let bytes = serde_json::to_vec_pretty(&book)?;
    store::write_atomic(&path, &bytes, true)?;
    drop(_guard);
    let mut queued = false;
    for (s, r) in fired.iter().zip(&submitted) {
        let what = match r {
            Submitted::Queued { id, .. } => {
                queued = true;
                format!("queued {} (task {id})", s.task_type)
            }
            Submitted::Duplicate { id } => format!("{} already queued (task {id})", s.task_type),
            Submitted::Dropped { result } => {
                format!("{} dropped: the queue is full ({})", s.task_type, result.id)
            }
        };
        engine::log_event(ctx, &format!("tick: {}: {what}", s.key));
        ctx.out.say(format!("{}: {what}", s.key));
    }
    if fired.is_empty() {
        if ctx.out.level > 0 {
            ctx.out.say("nothing due");
        }
        engine::log_event(ctx, "tick: nothing due");
    }
    if queued {
        engine::ensure_drainer(ctx)?;
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triggers::cron::parse_when;

    fn sched(key: &str, when: When) -> Schedule {
        Schedule {
            key: key.into(),
            name: key.into(),
            task_type: "t".into(),
            when,
        }
    }

    #[test]
    fn overlapping_and_missed_ticks_fire_once_per_due_time() {
        let s = vec![
            sched("every", When::Every { minutes: 5 }),
            sched("cron", parse_when("*/10 * * * *").unwrap()),
        ];
        let t0 = 1_700_000_400; // a multiple of 600
        let mut book = Book::default();
        // First sight: the last minute is owed.
        assert_eq!(due(&mut book, &s, t0 + 3, None).len(), 2);
        // An overlapping tick a second later owes nothing.
        assert!(due(&mut book, &s, t0 + 4, None).is_empty());
        // A tick 2 h later (many missed due times): each fires once.
        assert_eq!(due(&mut book, &s, t0 + 7200 + 1, None).len(), 2);
        assert!(due(&mut book, &s, t0 + 7200 + 30, None).is_empty());
    }

    #[test]
    fn reboot_fires_once_per_boot() {
        let s = vec![sched("r", When::Reboot)];
        let mut book = Book {
            boot_time: Some(1000),
            ..Book::default()
        };
        assert!(due(&mut book, &s, 5000, Some(1000)).is_empty());
        assert_eq!(due(&mut book, &s, 9000, Some(8000)).len(), 1);
        assert!(due(&mut book, &s, 9060, Some(8000)).is_empty());
    }
}
