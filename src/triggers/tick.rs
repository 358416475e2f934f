//! The scheduler's tick (`bgrun tick`, and `bgrun start` every minute): every schedule due
//! since the last tick is handed to the engine, at most once per due time.
//!
//! Bookkeeping lives in `<state>/schedule.json` (when each schedule was last considered, and
//! the boot time for `@reboot`), read and written under `<state>/schedule.lock`: ticks that
//! overlap see each other's writes, and a missed tick fires the latest due time once. The
//! due-time policy itself is [`super::cron::due`].

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::cron::{self, Schedule};
use crate::engine::{self, Env, Handed, NewTask};
use crate::fsutil::{ensure_private_dir, write_atomic};
use crate::state::lock;
use crate::timefmt::rfc3339;

/// One schedule that was due, and what became of its task.
pub struct Fired {
    /// The schedule's key (`schedule:NAME`, or the task type's auto trigger).
    pub key: String,
    pub task_type: String,
    pub handed: Handed,
}

/// Hand every schedule of `scheds` due now to the engine (which starts a drainer when one is
/// queued); the due times are accounted for only once the tasks are queued.
pub fn tick(env: &Env, scheds: &[Schedule]) -> Result<Vec<Fired>> {
    ensure_private_dir(&env.state_dir)?;
    let timeout = Duration::try_from_secs_f64(env.config.execution.lock_timeout_seconds.max(0.0))
        .unwrap_or(Duration::from_secs(3600));
    let _guard = lock::acquire(&env.state_dir.join("schedule.lock"), timeout)?;
    let path = env.state_dir.join(cron::BOOK_FILE);
    let mut book = cron::Book::load(&path)?;
    let now = chrono::Utc::now().timestamp();
    let due = cron::due(&mut book, scheds, now, cron::boot_time());
    let mut news = Vec::with_capacity(due.len());
    for (i, at) in &due {
        let s = &scheds[*i];
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
    }
    let handed = if news.is_empty() {
        Vec::new()
    } else {
        engine::hand_over(env, &news)?
    };
    // Only once the tasks are queued is the due time accounted for.
    let bytes = serde_json::to_vec_pretty(&book)?;
    write_atomic(&path, &bytes, true)?;
    drop(_guard);
    let fired: Vec<Fired> = due
        .iter()
        .zip(handed)
        .map(|((i, _), handed)| Fired {
            key: scheds[*i].key.clone(),
            task_type: scheds[*i].task_type.clone(),
            handed,
        })
        .collect();
    for f in &fired {
        if let Some(what) = f.line() {
            engine::log_event(env, &format!("tick: {}: {what}", f.key));
        }
    }
    if fired.is_empty() {
        engine::log_event(env, "tick: nothing due");
    }
    Ok(fired)
}

impl Fired {
    /// What became of it, as the log and the terminal say it; None when it was skipped.
    pub fn line(&self) -> Option<String> {
        use crate::engine::Submitted;
        let t = &self.task_type;
        match &self.handed {
            Handed::Skipped { .. } => None,
            Handed::Submitted(Submitted::Queued { id, .. }) => {
                Some(format!("queued {t} (task {id})"))
            }
            Handed::Submitted(Submitted::Duplicate { id }) => {
                Some(format!("{t} already queued (task {id})"))
            }
            Handed::Submitted(Submitted::Dropped { result }) => {
                Some(format!("{t} dropped: the queue is full ({})", result.id))
            }
        }
    }
}
