//! The results the engine writes for a task: the common part every result starts from,
//! and the result of a task dropped from a full queue.

use crate::results::TaskResult;
use crate::state::task::{Action, Arg, Status, Task};
use crate::timefmt::rfc3339;

pub(super) fn dropped_result(t: &Task, at: f64, max: usize) -> TaskResult {
    let mut r = base_result(t, t.attempt, at);
    r.status = Status::Dropped;
    r.error = Some(format!(
        "dropped: the queue was full ({max} tasks) and this task had the lowest priority"
    ));
    r
}

pub(super) fn base_result(t: &Task, attempt: u32, at: f64) -> TaskResult {
    TaskResult {
        id: t.id.clone(),
        task_type: t.task_type.clone(),
        name: t.name.clone(),
        status: Status::Failed,
        exit_code: None,
        signal: None,
        attempt,
        trigger: t.trigger.clone(),
        enqueued_at: rfc3339(t.enqueued_at),
        started_at: None,
        finished_at: rfc3339(at),
        duration_s: 0.0,
        queue_s: (at - t.enqueued_at).max(0.0),
        peak_rss_mb: 0.0,
        cpu_s: 0.0,
        log: None,
        error: None,
        will_retry: false,
        findings: None,
        report: None,
        report_path: None,
        context: t.context.clone(),
        argv: match &t.action {
            Action::Command { argv, .. } => argv.iter().map(Arg::lossy).collect(),
            Action::Analyzer { analyzer } => vec![format!("bgrun analyze {analyzer}")],
        },
    }
}
