//! `bgrun tick`: enqueue every schedule due since the last tick, at most once per due time,
//! then start a drainer. What the cron block calls (and `bgrun start` every minute).
//!
//! Bookkeeping lives in `<state>/schedule.json` (when each schedule was last considered, and
//! the boot time for `@reboot`), read and written under `<state>/schedule.lock`: ticks that
//! overlap see each other's writes, and a missed tick fires the latest due time once.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use crate::engine::{self, NewTask, Submitted};
use crate::state::{lock, store};
use crate::timefmt::rfc3339;
use crate::triggers::cron;
use crate::{Ctx, Exit};

pub fn run(ctx: &Ctx) -> Result<Exit> {
    let scheds = super::cron::schedules(ctx)?;
    store::ensure_private_dir(&ctx.state_dir)?;
    let timeout = Duration::try_from_secs_f64(ctx.config.execution.lock_timeout_seconds.max(0.0))
        .unwrap_or(Duration::from_secs(3600));
    let _guard = lock::acquire(&ctx.state_dir.join("schedule.lock"), timeout)?;
    let path = ctx.state_dir.join(cron::BOOK_FILE);
    let mut book = cron::Book::load(&path)?;
    let now = chrono::Utc::now().timestamp();
    let due = cron::due(&mut book, &scheds, now, cron::boot_time());
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
