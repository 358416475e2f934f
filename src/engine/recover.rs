//! Crash recovery: a running task whose drainer is gone has its leftover process group
//! killed, then is re-queued or recorded as abandoned.

use std::time::Duration;

use anyhow::Result;

use super::submit::base_result;
use super::{announce, log_event, open_store, persist};
use crate::Ctx;
use crate::results::TaskResult;
use crate::runner::process;
use crate::state::procs;
use crate::state::store::{Op, Scan, State, Store};
use crate::state::task::Status;
use crate::timefmt::{now, rfc3339};

/// Enqueue's cheap check: only when an open claim belongs to a dead drainer is the journal
/// folded and the orphan recovered. Returns whether anything changed.
pub(super) fn recover_orphans_fast(ctx: &Ctx, store: &mut Store, scan: &Scan) -> Result<bool> {
    if scan.open_claims.is_empty() {
        return Ok(false);
    }
    let dead = scan.open_claims.values().any(|line| {
        serde_json::from_slice::<Op>(line)
            .ok()
            .is_some_and(|op| matches!(op, Op::Claim { drainer, .. } if !procs::token_alive(&ctx.state_dir, &drainer)))
    });
    if !dead {
        return Ok(false);
    }
    let mut state = store.load()?;
    let (ops, rs) = recover(ctx, &mut state, None);
    store.append(&ops, true)?;
    for r in &rs {
        persist(ctx, store, r, state.queued.len(), state.running.len());
    }
    for r in &rs {
        announce(ctx, r);
    }
    Ok(!ops.is_empty())
}

/// For every running task whose drainer is gone: kill its leftover process group (never
/// re-run while it lives), then re-queue it (attempt + 1) or, past its retries, record it
/// as abandoned. `mine` is the caller's own drainer token, skipped.
pub(super) fn recover(
    ctx: &Ctx,
    state: &mut State,
    mine: Option<&str>,
) -> (Vec<Op>, Vec<TaskResult>) {
    let grace = Duration::from_secs(ctx.config.execution.kill_grace_seconds);
    let orphans: Vec<String> = state
        .running
        .iter()
        .filter(|(_, r)| {
            Some(r.drainer.as_str()) != mine && !procs::token_alive(&ctx.state_dir, &r.drainer)
        })
        .map(|(id, _)| id.clone())
        .collect();
    let mut ops = Vec::new();
    let mut rs = Vec::new();
    let at = now();
    for id in orphans {
        let Some(r) = state.running.get(&id).cloned() else {
            continue;
        };
        let gone = match (r.pid, r.pid_start) {
            (Some(pid), Some(start)) => process::kill_leftover_group(pid, start, grace),
            // Claimed, but its pid never reached the journal: find it by its environment.
            _ => process::kill_claimed(
                &process::claim_mark(&r.drainer, &id, r.task.attempt + 1),
                grace,
            ),
        };
        if !gone {
            log_event(
                ctx,
                &format!("task {id}: its old processes are still alive; not recovered yet"),
            );
            continue;
        }
        let made = r.task.attempt + 1;
        let key = r.task.dedup_key();
        let mut attempt_ops = if made <= r.task.max_retries && !r.stop_requested {
            let mut t = r.task.clone();
            t.attempt = made;
            t.enqueued_at = at;
            t.seq = state.next_seq;
            vec![
                Op::Recovered {
                    id: id.clone(),
                    key: String::new(),
                },
                Op::Enqueue {
                    id: id.clone(),
                    key,
                    task: Box::new(t),
                },
            ]
        } else {
            let mut res = base_result(&r.task, made, at);
            res.status = if r.stop_requested {
                Status::Cancelled
            } else {
                Status::Abandoned
            }
            .as_str()
            .to_string();
            res.started_at = Some(rfc3339(r.claimed_at));
            res.duration_s = (at - r.claimed_at).max(0.0);
            res.queue_s = (r.claimed_at - r.task.enqueued_at).max(0.0);
            res.log = r.log.clone();
            res.error =
                Some("its drainer died while it ran, and it had no retries left".to_string());
            rs.push(res);
            vec![Op::End {
                id: id.clone(),
                key: String::new(),
                task_type: r.task.task_type.clone(),
                status: if r.stop_requested {
                    Status::Cancelled
                } else {
                    Status::Abandoned
                },
                duration_s: (at - r.claimed_at).max(0.0),
                at,
            }]
        };
        log_event(
            ctx,
            &format!(
                "recovered task {id} ({}) from a dead drainer",
                r.task.task_type
            ),
        );
        for op in &attempt_ops {
            state.apply(op.clone());
        }
        ops.append(&mut attempt_ops);
    }
    (ops, rs)
}

/// Run recovery under the lock: what every command does on start.
pub fn recover_now(ctx: &Ctx) -> Result<State> {
    let mut store = open_store(ctx)?;
    let mut state = store.load()?;
    let (ops, rs) = recover(ctx, &mut state, None);
    store.append(&ops, true)?;
    if state.wants_compaction() {
        store.compact(&state)?;
    }
    for r in &rs {
        persist(ctx, &store, r, state.queued.len(), state.running.len());
    }
    drop(store);
    for r in &rs {
        announce(ctx, r);
    }
    Ok(state)
}
