//! Crash recovery: a running task whose claim expired (its drainer is gone) has its
//! leftover process group killed, then is re-queued or recorded as abandoned.

use std::time::Duration;

use anyhow::Result;

use super::{Env, commit, log_event, open_store};
use crate::model::Status;
use crate::runner::process;
use crate::state::store::State;
use crate::store::{Durability, End, Release, Txn};
use crate::timefmt::{now, rfc3339};

/// Enqueue's cheap check: only when a claim may have expired is the state folded and the
/// orphans recovered. Returns whether anything changed.
pub(super) fn recover_orphans_fast(env: &Env, txn: &mut dyn Txn) -> Result<bool> {
    if !txn.may_have_expired_claims()? {
        return Ok(false);
    }
    Ok(recover(env, txn, None)? > 0)
}

/// For every running task whose claim expired: kill its leftover process group (never
/// re-run while it lives), then re-queue it (attempt + 1) or, past its retries, record it
/// as abandoned (cancelled when a stop was asked). `mine` is the caller's own drainer
/// token, skipped. Returns how many were released.
pub(super) fn recover(env: &Env, txn: &mut dyn Txn, mine: Option<&str>) -> Result<usize> {
    let grace = Duration::from_secs(env.config.execution.kill_grace_seconds);
    let at = now();
    let mut released = 0;
    let mut results = Vec::new();
    for r in txn.expired_claims(mine)? {
        let id = r.task.id.clone();
        let gone = match (r.pid, r.pid_start) {
            (Some(pid), Some(start)) => process::kill_leftover_group(pid, start, grace),
            // Claimed, but its pid never reached the store (the drainer died between the
            // durable claim and the spawn record): find the child by its environment.
            _ => process::kill_claimed(
                &process::claim_mark(&r.drainer, &id, r.task.attempt + 1),
                grace,
            ),
        };
        if !gone {
            log_event(
                env,
                &format!("task {id}: its old processes are still alive; not recovered yet"),
            );
            continue;
        }
        let made = r.task.attempt + 1;
        if made <= r.task.max_retries && !r.stop_requested {
            let mut t = r.task.clone();
            t.attempt = made;
            t.enqueued_at = at;
            txn.release_expired(&id, Release::Requeue(Box::new(t)))?;
        } else {
            let status = if r.stop_requested {
                Status::Cancelled
            } else {
                Status::Abandoned
            };
            let mut res = r.task.base_result(made, at);
            res.status = status;
            res.started_at = Some(rfc3339(r.claimed_at));
            res.duration_s = (at - r.claimed_at).max(0.0);
            res.queue_s = (r.claimed_at - r.task.enqueued_at).max(0.0);
            res.log = r.log.clone();
            res.error =
                Some("its drainer died while it ran, and it had no retries left".to_string());
            let end = End {
                task_type: r.task.task_type.clone(),
                status,
                duration_s: res.duration_s,
                at,
            };
            txn.release_expired(&id, Release::End(end))?;
            results.push(res);
        }
        released += 1;
        log_event(
            env,
            &format!(
                "recovered task {id} ({}) from a dead drainer",
                r.task.task_type
            ),
        );
    }
    if !results.is_empty() {
        let st = txn.state()?;
        let (queued, running) = (st.queued.len(), st.running.len());
        for res in results {
            txn.save_result(res, queued, running);
        }
    }
    Ok(released)
}

/// Run recovery in one transaction: what every command does on start. Returns the state.
pub fn recover_now(env: &Env) -> Result<State> {
    let mut store = open_store(env);
    let mut txn = store.begin()?;
    recover(env, &mut *txn, None)?;
    let state = txn.state()?.clone();
    commit(env, txn, Durability::Now)?;
    Ok(state)
}
