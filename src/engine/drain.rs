//! The drain loop: harvest exited children, then (only when there is something to record,
//! claim or check) one read-modify-write of the journal that records ends and retries,
//! recovers orphans and claims what fits, then sleep until a child exits or something is due.
//!
//! Ends are group-committed: appended at once (every process sees them), fsynced at most
//! every `SYNC_EVERY` and always before the drainer exits, so a burst of short tasks does
//! not pay one fsync each. Enqueues stay synchronously durable.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;

use super::outbox::Outbox;
use super::recover::recover;
use super::slot::{Slot, finish_slot, police, retry_of, sample, start_slot, terminate};
use super::{
    Env, cleanup, commit_then, install_stop_handlers, log_event, open_store, stop_requested,
};
use crate::model::Status;
use crate::queue;
use crate::results::{self, TaskResult};
use crate::runner::limits::Sampler;
use crate::runner::spawner::Proc;
use crate::state::procs::{self, Registration};
use crate::state::store::{Running, State};
use crate::state::task::Task;
use crate::store::{Durability, End, Lease, RENEW_EVERY_S, Store, Txn, Worker};
use crate::timefmt::now;

/// The longest an appended end waits for its fsync.
const SYNC_EVERY: f64 = 0.02;

/// What one drain did.
#[derive(Debug, Default)]
pub struct DrainSummary {
    pub ran: usize,
    pub failed: usize,
    pub results: Vec<TaskResult>,
}

/// Progress reporting for the drain loop.
pub trait Progress {
    fn started(&mut self, task: &Task, attempt: u32);
    fn finished(&mut self, r: &TaskResult, queued: usize);
}

/// Run queued tasks until the queue is empty, with at most `max_local` of ours at once and
/// `execution.max_concurrent_tasks` across every live drainer.
pub fn drain(env: &Env, max_local: usize, progress: &mut dyn Progress) -> Result<DrainSummary> {
    crate::fsutil::ensure_private_dir(&env.state_dir)?;
    let reg = procs::register(&env.state_dir, "drainer")?;
    install_stop_handlers();
    crate::runner::escape::become_subreaper();
    let mut store = open_store(env);
    let worker = Worker {
        token: reg.info.token.clone(),
        pid: std::process::id(),
        host: std::env::var("HOSTNAME").unwrap_or_default(),
        started_at: now(),
    };
    store.worker_started(&worker)?;
    let mut d = Drainer {
        env,
        me: reg.info.token.clone(),
        reg: Some(reg),
        global_max: env.config.execution.max_concurrent_tasks.max(1),
        max_local: max_local.max(1),
        grace: env.config.execution.kill_grace_seconds as f64,
        slots: Vec::new(),
        leases: HashMap::new(),
        sampler: Sampler::new(),
        last_sample: 0.0,
        last_recovery: 0.0,
        unsynced: false,
        last_sync: 0.0,
        summary: DrainSummary::default(),
        outbox: Outbox::start(env),
    };
    loop {
        let at = now();
        let done = d.harvest(at);
        let stopping = stop_requested();
        if stopping {
            d.cancel_all(at);
        }
        if d.needs_lock(&*store, at, &done, stopping)
            && d.session(&mut *store, at, done, stopping, progress)?
        {
            break;
        }
        d.sync_if_due(&mut *store, now())?;
        d.sleep(store.view());
    }
    d.sync_if_due(&mut *store, f64::INFINITY)?;
    let Drainer {
        outbox, summary, ..
    } = d;
    // The queue is done: now wait for the last announcements.
    outbox.close();
    if let Err(e) = store.worker_stopped(&worker) {
        eprintln!("bgrun: warning: {e:#}");
    }
    drop(store);
    if results::cleanup_is_due(&env.state_dir, 300.0)
        && let Err(e) = cleanup(env)
    {
        eprintln!("bgrun: warning: cleanup failed: {e:#}");
    }
    Ok(summary)
}

struct Drainer<'a> {
    env: &'a Env,
    /// This drainer's token in the process registry, recorded in its claims.
    me: String,
    reg: Option<Registration>,
    global_max: usize,
    max_local: usize,
    grace: f64,
    slots: Vec<Slot>,
    /// The claims of our running tasks, by task id.
    leases: HashMap<String, Lease>,
    sampler: Sampler,
    last_sample: f64,
    last_recovery: f64,
    /// Committed lines wait for their fsync.
    unsynced: bool,
    last_sync: f64,
    summary: DrainSummary,
    /// Announcements leave through here, so no channel stalls the loop.
    outbox: Outbox,
}

impl Drainer<'_> {
    /// Reap the children that exited (no lock needed).
    fn harvest(&mut self, at: f64) -> Vec<(Task, TaskResult)> {
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.slots.len() {
            if self.slots[i].child.exited() {
                let slot = self.slots.swap_remove(i);
                done.push(finish_slot(self.env, slot, at));
            } else {
                i += 1;
            }
        }
        done
    }

    fn cancel_all(&mut self, at: f64) {
        for s in self.slots.iter_mut().filter(|s| !s.cancelled) {
            s.cancelled = true;
            terminate(s, self.grace, at);
        }
    }

    /// Take the lock only when there is something to record, claim or check: a finished
    /// child, a store that others changed, a retry that came due, recovery, a stop.
    fn needs_lock(
        &self,
        store: &dyn Store,
        at: f64,
        done: &[(Task, TaskResult)],
        stopping: bool,
    ) -> bool {
        let state = store.view();
        let ready = self.slots.len() < self.max_local
            && state.running.len() < self.global_max
            && queue::next_ready(state.queued.values(), &state.history, at).is_some();
        !done.is_empty()
            || at - self.last_recovery > RENEW_EVERY_S
            || stopping
            || ready
            || store.changed()
    }

    /// One transaction. Returns whether the drain is over.
    fn session(
        &mut self,
        store: &mut dyn Store,
        at: f64,
        mut done: Vec<(Task, TaskResult)>,
        stopping: bool,
        progress: &mut dyn Progress,
    ) -> Result<bool> {
        let env = self.env;
        let mut txn = store.begin()?;
        let mut durable = self.record_ends(&mut *txn, &mut done, stopping, at)?;
        self.honour_stop_requests(&txn.state()?.running, at);
        if at - self.last_recovery > RENEW_EVERY_S {
            self.last_recovery = at;
            for id in txn.renew(&self.me, at)? {
                self.lease_lost(&id, at);
            }
            durable |= recover(env, &mut *txn, Some(&self.me))? > 0;
        }
        // The results of the tasks that ended go into the transaction before claiming: the
        // claim's flush writes their end lines, and a result must be on disk before its end.
        {
            let state = txn.state()?;
            let (queued, running) = (state.queued.len(), state.running.len());
            for (_, r) in done.drain(..) {
                txn.save_result(r, queued, running);
            }
        }
        let started = if stopping {
            Vec::new()
        } else {
            self.claim(&mut *txn, &mut done, &mut durable, at)?
        };
        let state = txn.state()?;
        let (queued_now, running_now) = (state.queued.len(), state.running.len());
        let finished = self.slots.is_empty() && (stopping || state.queued.is_empty());
        if finished {
            // Unregister while the lock is held: an enqueue that follows sees no drainer
            // and starts one; an enqueue that came first was seen above.
            self.reg.take();
        }
        for (_, r) in done {
            txn.save_result(r, queued_now, running_now);
        }
        let outbox = &self.outbox;
        let saved = commit_then(txn, Durability::Soon, |r| {
            super::add_to_inbox(env, r);
            outbox.send(env, r)
        })?;
        self.unsynced |= durable;
        for (task, attempt) in &started {
            progress.started(task, *attempt);
        }
        for r in saved {
            progress.finished(&r, queued_now);
            self.summary.ran += 1;
            if r.status.is_failure() && !r.will_retry {
                self.summary.failed += 1;
            }
            self.summary.results.push(r);
        }
        Ok(finished)
    }

    /// A claim the store says we no longer hold: stop the task, its end is not ours to record.
    fn lease_lost(&mut self, id: &str, at: f64) {
        self.leases.remove(id);
        for s in self.slots.iter_mut().filter(|s| s.task.id == id) {
            s.cancelled = true;
            terminate(s, self.grace, at);
        }
        log_event(
            self.env,
            &format!("task {id}: this drainer lost its claim; stopping it"),
        );
    }

    /// fsync what was committed once `SYNC_EVERY` has passed since the last fsync.
    fn sync_if_due(&mut self, store: &mut dyn Store, at: f64) -> Result<()> {
        if self.unsynced && at - self.last_sync >= SYNC_EVERY {
            store.sync()?;
            self.unsynced = false;
            self.last_sync = now();
        }
        Ok(())
    }

    /// End the finished tasks in the store, queueing their retries. A task whose claim was
    /// lost is left out of `done` (another drainer owns it now). Returns whether anything
    /// was written.
    fn record_ends(
        &mut self,
        txn: &mut dyn Txn,
        done: &mut Vec<(Task, TaskResult)>,
        stopping: bool,
        at: f64,
    ) -> Result<bool> {
        let mut lost = Vec::new();
        for (task, r) in done.iter_mut() {
            let stop_asked = txn
                .state()?
                .running
                .get(&task.id)
                .is_some_and(|x| x.stop_requested);
            if stop_asked && r.status != Status::Cancelled {
                r.status = Status::Cancelled;
                r.error = Some("stopped by `bgrun stop`".to_string());
            }
            let retry = if stopping {
                None
            } else {
                retry_of(task, r.status, r.attempt, at)
            };
            r.will_retry = retry.is_some();
            let lease = self.leases.remove(&task.id).unwrap_or_else(|| Lease {
                id: task.id.clone(),
                drainer: self.me.clone(),
                token: 0,
            });
            let end = End {
                task_type: task.task_type.clone(),
                status: r.status,
                duration_s: r.duration_s,
                at,
            };
            if !txn.finish(&lease, &end, retry)? {
                lost.push(task.id.clone());
            }
        }
        if !lost.is_empty() {
            for id in &lost {
                log_event(
                    self.env,
                    &format!("task {id}: its claim was lost before it ended; result dropped"),
                );
            }
            done.retain(|(t, _)| !lost.contains(&t.id));
        }
        Ok(!done.is_empty())
    }

    /// Stop requests from `bgrun stop` for our running tasks.
    fn honour_stop_requests(&mut self, running: &HashMap<String, Running>, at: f64) {
        for s in self.slots.iter_mut() {
            if !s.cancelled && running.get(&s.task.id).is_some_and(|r| r.stop_requested) {
                s.cancelled = true;
                terminate(s, self.grace, at);
            }
        }
    }

    /// Claim what fits, here and across drainers, make the claims durable, then start them
    /// (issue 14: a child never exists before its claim is on disk; a drainer killed in
    /// between leaves a claim without a pid, which recovery resolves by the child's
    /// `BGRUN_CLAIM` mark). A task that cannot start ends at once as failed (it joins `done`).
    fn claim(
        &mut self,
        txn: &mut dyn Txn,
        done: &mut Vec<(Task, TaskResult)>,
        durable: &mut bool,
        at: f64,
    ) -> Result<Vec<(Task, u32)>> {
        let mut started = Vec::new();
        let want = self.max_local.saturating_sub(self.slots.len());
        let claimed = txn.claim_next(want, self.global_max, &self.me, at)?;
        if claimed.is_empty() {
            return Ok(started);
        }
        txn.flush()?;
        for (task, lease) in claimed {
            match start_slot(self.env, task, &self.me) {
                Ok(slot) => {
                    txn.spawned(
                        &lease,
                        slot.child.pid(),
                        slot.child.start(),
                        slot.log.clone(),
                    )?;
                    started.push((slot.task.clone(), slot.attempt));
                    self.leases.insert(slot.task.id.clone(), lease);
                    self.slots.push(slot);
                }
                Err(failed) => {
                    let (task, why) = *failed;
                    let r = task.spawn_failed_result(at, why);
                    let end = End {
                        task_type: task.task_type.clone(),
                        status: Status::Failed,
                        duration_s: 0.0,
                        at,
                    };
                    txn.finish(&lease, &end, None)?;
                    *durable = true;
                    done.push((task, r));
                }
            }
        }
        Ok(started)
    }

    /// Police limits, then sleep until a child exits or something is due.
    fn sleep(&mut self, view: &State) {
        let at = now();
        let sampling_due =
            at - self.last_sample >= 0.25 && self.slots.iter().any(|s| at - s.started > 0.2);
        if sampling_due {
            self.last_sample = at;
            sample(&mut self.slots, &mut self.sampler, self.env, at);
        }
        let mut due = police(&mut self.slots, self.env, at);
        if self.unsynced {
            due = due.min(self.last_sync + SYNC_EVERY);
        }
        if let Some(first) = self.slots.iter().map(|s| s.started).min_by(f64::total_cmp) {
            due = due.min((self.last_sample + 0.25).max(first + 0.2));
        }
        let queued = &view.queued;
        if let Some(w) = queue::next_wakeup(queued.values()) {
            due = due.min(w.max(at + 0.01));
        }
        let can_claim_more = self.slots.len() < self.max_local
            && queued
                .values()
                .any(|t| t.not_before.is_none_or(|nb| nb <= at));
        if can_claim_more && view.running.len() >= self.global_max {
            // Others hold the global slots: look again soon.
            due = due.min(at + 0.05);
        }
        let wait = Duration::from_secs_f64((due - at).clamp(0.0, 1.0));
        let children: Vec<&dyn Proc> = self.slots.iter().map(|s| &*s.child).collect();
        if children.is_empty() {
            std::thread::sleep(wait.max(Duration::from_millis(5)));
        } else {
            self.env.spawner.wait_any(&children, wait);
        }
    }
}
