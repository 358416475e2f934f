//! Pure queue policy: effective (adaptive) priority, order, overflow victim. No I/O.
//!
//! Adaptive priority looks at a task type's last executions (at most 100, kept in state):
//! consecutive recent failures raise it (x1.5 per failure, at most x3), and a type whose
//! last ten runs all succeeded quickly (median under 5 s) is lowered slightly (x0.9).

use std::collections::{BTreeMap, VecDeque};

use crate::state::store::Exec;
use crate::state::task::Task;

/// Median duration under which a type counts as quick.
pub const QUICK_SECONDS: f64 = 5.0;

/// The multiplier adaptive priority applies to a type's base priority.
pub fn adaptive_factor(history: Option<&VecDeque<Exec>>) -> f64 {
    let Some(h) = history else { return 1.0 };
    let failing = h.iter().rev().take_while(|e| !e.ok).count();
    if failing >= 2 {
        return 1.0 + 0.5 * failing.min(4) as f64;
    }
    let recent: Vec<&Exec> = h.iter().rev().take(10).collect();
    if recent.len() >= 5 && recent.iter().all(|e| e.ok) {
        let mut d: Vec<f64> = recent.iter().map(|e| e.duration_s).collect();
        d.sort_by(f64::total_cmp);
        if d[d.len() / 2] < QUICK_SECONDS {
            return 0.9;
        }
    }
    1.0
}

/// A task's effective priority.
pub fn effective(task: &Task, history: &BTreeMap<String, VecDeque<Exec>>) -> f64 {
    task.priority as f64 * adaptive_factor(history.get(&task.task_type))
}

/// Queued tasks in run order: effective priority high to low, then arrival.
pub fn ordered<'a>(
    tasks: impl IntoIterator<Item = &'a Task>,
    history: &BTreeMap<String, VecDeque<Exec>>,
) -> Vec<(&'a Task, f64)> {
    let mut v: Vec<(&Task, f64)> = tasks
        .into_iter()
        .map(|t| (t, effective(t, history)))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.seq.cmp(&b.0.seq)));
    v
}

/// The next task to start at `now`: the first in run order that is not waiting for a retry.
pub fn next_ready<'a>(
    tasks: impl IntoIterator<Item = &'a Task>,
    history: &BTreeMap<String, VecDeque<Exec>>,
    now: f64,
) -> Option<&'a Task> {
    let mut best: Option<(&Task, f64)> = None;
    for t in tasks {
        if t.not_before.is_some_and(|nb| nb > now) {
            continue;
        }
        let e = effective(t, history);
        let better = match best {
            None => true,
            Some((b, be)) => e > be || (e == be && t.seq < b.seq),
        };
        if better {
            best = Some((t, e));
        }
    }
    best.map(|(t, _)| t)
}

/// The earliest time a waiting retry becomes ready.
pub fn next_wakeup<'a>(tasks: impl IntoIterator<Item = &'a Task>) -> Option<f64> {
    tasks
        .into_iter()
        .filter_map(|t| t.not_before)
        .min_by(f64::total_cmp)
}

/// On overflow, which task to drop: the lowest base priority; among equals the newest.
/// `incoming` competes too: when it is the lowest, it is the one dropped.
pub fn overflow_victim<'a>(
    queued: impl IntoIterator<Item = &'a Task>,
    incoming: &'a Task,
) -> &'a Task {
    let mut victim = incoming;
    for t in queued {
        if t.priority < victim.priority || (t.priority == victim.priority && t.seq > victim.seq) {
            victim = t;
        }
    }
    victim
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::task::Action;

    fn t(seq: u64, prio: i64, ty: &str) -> Task {
        Task {
            id: seq.to_string(),
            task_type: ty.into(),
            name: String::new(),
            action: Action::Analyzer {
                analyzer: "x".into(),
            },
            priority: prio,
            timeout_s: 1,
            trigger: "manual".into(),
            enqueued_at: 0.0,
            first_enqueued_at: 0.0,
            attempt: 0,
            max_retries: 0,
            retry_delay_s: 0,
            not_before: None,
            context: serde_json::Value::Null,
            seq,
        }
    }

    fn exec(ok: bool, d: f64) -> Exec {
        Exec {
            ok,
            duration_s: d,
            at: 0.0,
        }
    }

    #[test]
    fn priority_then_fifo() {
        let tasks = [
            t(1, 10, "a"),
            t(2, 100, "a"),
            t(3, 10, "a"),
            t(4, 1000, "a"),
            t(5, 100, "a"),
        ];
        let order: Vec<u64> = ordered(&tasks, &BTreeMap::new())
            .iter()
            .map(|(t, _)| t.seq)
            .collect();
        assert_eq!(order, vec![4, 2, 5, 1, 3]);
        assert_eq!(
            next_ready(&tasks, &BTreeMap::new(), 0.0).map(|t| t.seq),
            Some(4)
        );
    }

    #[test]
    fn retry_delay_is_respected_without_blocking_others() {
        let mut a = t(1, 1000, "a");
        a.not_before = Some(50.0);
        let tasks = [a, t(2, 1, "b")];
        assert_eq!(
            next_ready(&tasks, &BTreeMap::new(), 10.0).map(|t| t.seq),
            Some(2)
        );
        assert_eq!(
            next_ready(&tasks, &BTreeMap::new(), 60.0).map(|t| t.seq),
            Some(1)
        );
        assert_eq!(next_wakeup(&tasks), Some(50.0));
    }

    #[test]
    fn adaptive_raises_failing_and_lowers_quick() {
        let mut h = BTreeMap::new();
        h.insert(
            "flaky".to_string(),
            VecDeque::from(vec![exec(true, 1.0), exec(false, 1.0), exec(false, 1.0)]),
        );
        h.insert(
            "quick".to_string(),
            VecDeque::from(vec![exec(true, 0.5); 6]),
        );
        h.insert(
            "slow".to_string(),
            VecDeque::from(vec![exec(true, 60.0); 6]),
        );
        assert_eq!(adaptive_factor(h.get("flaky")), 2.0);
        assert_eq!(adaptive_factor(h.get("quick")), 0.9);
        assert_eq!(adaptive_factor(h.get("slow")), 1.0);
        assert_eq!(adaptive_factor(None), 1.0);
        // A failing medium task overtakes a quick high one? No: 10*2 < 100*0.9.
        let tasks = [t(1, 100, "quick"), t(2, 10, "flaky"), t(3, 100, "slow")];
        let order: Vec<u64> = ordered(&tasks, &h).iter().map(|(t, _)| t.seq).collect();
        assert_eq!(order, vec![3, 1, 2]);
        let many = VecDeque::from(vec![exec(false, 1.0); 10]);
        assert_eq!(adaptive_factor(Some(&many)), 3.0);
    }

    #[test]
    fn overflow_drops_lowest_newest_or_the_incoming() {
        let q = [t(1, 10, "a"), t(2, 1, "a"), t(3, 1, "a")];
        let inc = t(4, 100, "a");
        assert_eq!(overflow_victim(&q, &inc).seq, 3);
        let low = t(5, 1, "a");
        assert_eq!(overflow_victim(&q, &low).seq, 5);
    }
}
