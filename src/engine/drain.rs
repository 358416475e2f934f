//! The drain loop: harvest exited children, then (only when there is something to record,
//! claim or check) one read-modify-write of the journal that records ends and retries,
//! recovers orphans and claims what fits, then sleep until a child exits or something is due.
//!
//! Ends are group-committed: appended at once (every process sees them), fsynced at most
//! every `SYNC_EVERY` and always before the drainer exits, so a burst of short tasks does
//! not pay one fsync each. Enqueues stay synchronously durable.

use std::time::Duration;

use anyhow::Result;

use super::recover::recover;
use super::slot::{Slot, finish_slot, police, retry_of, sample, start_slot, status_of, terminate};
use super::submit::base_result;
use super::{
    announce, cleanup, install_stop_handlers, lock_timeout, open_store, persist, stop_requested,
};
use crate::Ctx;
use crate::queue;
use crate::results::{self, TaskResult};
use crate::runner::limits::Sampler;
use crate::runner::process::{self, Child};
use crate::state::procs::{self, Registration};
use crate::state::store::{Cache, Handles, Op, Store};
use crate::state::task::{Status, Task};
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
pub fn drain(ctx: &Ctx, max_local: usize, progress: &mut dyn Progress) -> Result<DrainSummary> {
    crate::state::store::ensure_private_dir(&ctx.state_dir)?;
    let reg = procs::register(&ctx.state_dir, "drainer")?;
    install_stop_handlers();
    crate::runner::escape::become_subreaper();
    let mut d = Drainer {
        ctx,
        me: reg.info.token.clone(),
        reg: Some(reg),
        global_max: ctx.config.execution.max_concurrent_tasks.max(1),
        max_local: max_local.max(1),
        grace: ctx.config.execution.kill_grace_seconds as f64,
        cache: Cache::default(),
        slots: Vec::new(),
        sampler: Sampler::new(),
        last_sample: 0.0,
        last_recovery: 0.0,
        handles: None,
        unsynced: false,
        last_sync: 0.0,
        summary: DrainSummary::default(),
    };
    loop {
        let at = now();
        let done = d.harvest(at);
        let stopping = stop_requested();
        if stopping {
            d.cancel_all(at);
        }
        if d.needs_lock(at, &done, stopping) && d.session(at, done, stopping, progress)? {
            break;
        }
        d.sync_if_due(now())?;
        d.sleep();
    }
    d.sync_if_due(f64::INFINITY)?;
    drop(d.handles.take());
    if results::cleanup_is_due(&ctx.state_dir, 300.0)
        && let Err(e) = cleanup(ctx)
    {
        eprintln!("bgrun: warning: cleanup failed: {e:#}");
    }
    Ok(d.summary)
}

struct Drainer<'a> {
    ctx: &'a Ctx,
    /// This drainer's token in the process registry, recorded in its claims.
    me: String,
    reg: Option<Registration>,
    global_max: usize,
    max_local: usize,
    grace: f64,
    /// The journal as last read, refreshed incrementally under the lock.
    cache: Cache,
    slots: Vec<Slot>,
    sampler: Sampler,
    last_sample: f64,
    last_recovery: f64,
    /// The lock and journal files, kept open between sessions.
    handles: Option<Handles>,
    /// Appended lines wait for their fsync.
    unsynced: bool,
    last_sync: f64,
    summary: DrainSummary,
}

/// What a session changed, to be appended as one write.
#[derive(Default)]
struct Batch {
    ops: Vec<Op>,
    durable: bool,
}

impl Batch {
    fn push(&mut self, d: &mut Drainer, op: Op, durable: bool) {
        d.cache.state.apply(op.clone());
        self.ops.push(op);
        self.durable |= durable;
    }
}

impl Drainer<'_> {
    /// Reap the children that exited (no lock needed).
    fn harvest(&mut self, at: f64) -> Vec<(Task, TaskResult)> {
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.slots.len() {
            if self.slots[i].child.exited() {
                let slot = self.slots.swap_remove(i);
                done.push(finish_slot(self.ctx, slot, at));
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
    /// child, a journal that others appended to, a retry that came due, recovery, a stop.
    fn needs_lock(&self, at: f64, done: &[(Task, TaskResult)], stopping: bool) -> bool {
        let state = &self.cache.state;
        let ready = self.slots.len() < self.max_local
            && state.running.len() < self.global_max
            && queue::next_ready(state.queued.values(), &state.history, at).is_some();
        self.cache.ino == 0
            || !done.is_empty()
            || at - self.last_recovery > 2.0
            || stopping
            || ready
            || Store::changed_since(&self.ctx.state_dir, &self.cache)
    }

    /// One read-modify-write of the journal. Returns whether the drain is over.
    fn session(
        &mut self,
        at: f64,
        mut done: Vec<(Task, TaskResult)>,
        stopping: bool,
        progress: &mut dyn Progress,
    ) -> Result<bool> {
        let ctx = self.ctx;
        let mut store = match self.handles.take() {
            Some(h) => Store::relock(h, lock_timeout(&ctx.config))?,
            None => open_store(ctx)?,
        };
        store.refresh(&mut self.cache)?;
        let mut batch = Batch::default();
        self.record_ends(&mut batch, &mut done, stopping, at);
        self.honour_stop_requests(at);
        let mut recovered = Vec::new();
        if at - self.last_recovery > 2.0 {
            self.last_recovery = at;
            let (ops, rs) = recover(ctx, &mut self.cache.state, Some(&self.me));
            batch.durable |= !ops.is_empty();
            batch.ops.extend(ops);
            recovered = rs;
        }
        let claimed = if stopping {
            Vec::new()
        } else {
            self.claim(&mut batch, at)
        };
        // A claim is durable before its child exists: a drainer killed (or a disk full)
        // between the two leaves a claim without a pid, which recovery resolves, never a
        // child whose task is still queued for another drainer to run again.
        if claimed.is_empty() {
            store.append(&batch.ops, false)?;
            self.unsynced |= batch.durable;
        } else {
            store.append(&batch.ops, true)?;
            self.unsynced = false;
            self.last_sync = now();
        }
        let mut spawned = Batch::default();
        let started = self.spawn_claimed(&mut spawned, claimed, &mut done, at);
        store.append(&spawned.ops, false)?;
        self.unsynced |= spawned.durable;
        self.cache.offset = store.end_offset();
        if self.cache.state.wants_compaction() {
            self.cache.state.lines = store.compact(&self.cache.state)?;
            self.cache.ino = store.ino();
            self.cache.offset = store.end_offset();
        }
        let queued_now = self.cache.state.queued.len();
        let running_now = self.cache.state.running.len();
        let finished = self.slots.is_empty() && (stopping || self.cache.state.queued.is_empty());
        if finished {
            // Unregister while the lock is held: an enqueue that follows sees no drainer
            // and starts one; an enqueue that came first was seen above.
            self.reg.take();
        }
        for r in recovered.iter().chain(done.iter().map(|(_, r)| r)) {
            persist(ctx, &store, r, queued_now, running_now);
        }
        self.handles = Some(store.unlock());
        for (task, attempt) in &started {
            progress.started(task, *attempt);
        }
        for r in recovered
            .into_iter()
            .chain(done.into_iter().map(|(_, r)| r))
        {
            announce(ctx, &r);
            progress.finished(&r, queued_now);
            self.summary.ran += 1;
            let final_failure = matches!(
                r.status.as_str(),
                "failed" | "timed_out" | "killed_memory" | "abandoned"
            );
            if final_failure && !r.will_retry {
                self.summary.failed += 1;
            }
            self.summary.results.push(r);
        }
        Ok(finished)
    }

    /// fsync what was appended once `SYNC_EVERY` has passed since the last fsync.
    fn sync_if_due(&mut self, at: f64) -> Result<()> {
        if self.unsynced && at - self.last_sync >= SYNC_EVERY {
            if let Some(h) = &self.handles {
                h.sync()?;
            }
            self.unsynced = false;
            self.last_sync = now();
        }
        Ok(())
    }

    /// End the finished tasks in the journal, queueing their retries.
    fn record_ends(
        &mut self,
        batch: &mut Batch,
        done: &mut [(Task, TaskResult)],
        stopping: bool,
        at: f64,
    ) {
        for (task, r) in done.iter_mut() {
            let stop_asked = self
                .cache
                .state
                .running
                .get(&task.id)
                .is_some_and(|x| x.stop_requested);
            if stop_asked && r.status != "cancelled" {
                r.status = Status::Cancelled.as_str().to_string();
                r.error = Some("stopped by `bgrun stop`".to_string());
            }
            let status = status_of(&r.status);
            let retry = if stopping {
                None
            } else {
                retry_of(task, status, r.attempt, at)
            };
            r.will_retry = retry.is_some();
            let end = Op::End {
                id: task.id.clone(),
                key: String::new(),
                task_type: task.task_type.clone(),
                status,
                duration_s: r.duration_s,
                at,
            };
            batch.push(self, end, true);
            if let Some(mut t) = retry {
                t.seq = self.cache.state.next_seq;
                let op = Op::Enqueue {
                    id: t.id.clone(),
                    key: t.dedup_key(),
                    task: Box::new(t),
                };
                batch.push(self, op, true);
            }
        }
    }

    /// Stop requests from `bgrun stop` for our running tasks.
    fn honour_stop_requests(&mut self, at: f64) {
        let running = &self.cache.state.running;
        for s in self.slots.iter_mut() {
            if !s.cancelled && running.get(&s.task.id).is_some_and(|r| r.stop_requested) {
                s.cancelled = true;
                terminate(s, self.grace, at);
            }
        }
    }

    /// Claim what fits, here and across drainers (started once the claims are durable).
    fn claim(&mut self, batch: &mut Batch, at: f64) -> Vec<Task> {
        let mut claimed = Vec::new();
        while self.slots.len() + claimed.len() < self.max_local
            && self.cache.state.running.len() < self.global_max
        {
            let state = &self.cache.state;
            let Some(task) = queue::next_ready(state.queued.values(), &state.history, at).cloned()
            else {
                break;
            };
            let claim = Op::Claim {
                id: task.id.clone(),
                key: task.dedup_key(),
                drainer: self.me.clone(),
                at,
            };
            batch.push(self, claim, true);
            claimed.push(task);
        }
        claimed
    }

    /// Start the claimed tasks. A task that cannot start ends at once as failed (it joins
    /// `done`).
    fn spawn_claimed(
        &mut self,
        batch: &mut Batch,
        claimed: Vec<Task>,
        done: &mut Vec<(Task, TaskResult)>,
        at: f64,
    ) -> Vec<(Task, u32)> {
        let mut started = Vec::new();
        for task in claimed {
            match start_slot(self.ctx, task, &self.me) {
                Ok(slot) => {
                    let op = Op::Spawned {
                        id: slot.task.id.clone(),
                        key: String::new(),
                        pid: slot.child.pid,
                        pid_start: slot.child.start,
                        log: slot.log.clone(),
                    };
                    batch.push(self, op, false);
                    started.push((slot.task.clone(), slot.attempt));
                    self.slots.push(slot);
                }
                Err(failed) => {
                    let (task, why) = *failed;
                    let mut r = base_result(&task, task.attempt + 1, at);
                    r.status = Status::Failed.as_str().to_string();
                    r.error = Some(why);
                    let end = Op::End {
                        id: task.id.clone(),
                        key: String::new(),
                        task_type: task.task_type.clone(),
                        status: Status::Failed,
                        duration_s: 0.0,
                        at,
                    };
                    batch.push(self, end, true);
                    done.push((task, r));
                }
            }
        }
        started
    }

    /// Police limits, then sleep until a child exits or something is due.
    fn sleep(&mut self) {
        let at = now();
        let sampling_due =
            at - self.last_sample >= 0.25 && self.slots.iter().any(|s| at - s.started > 0.2);
        if sampling_due {
            self.last_sample = at;
            sample(&mut self.slots, &mut self.sampler, self.ctx, at);
        }
        let mut due = police(&mut self.slots, self.ctx, at);
        if self.unsynced {
            due = due.min(self.last_sync + SYNC_EVERY);
        }
        if let Some(first) = self.slots.iter().map(|s| s.started).min_by(f64::total_cmp) {
            due = due.min((self.last_sample + 0.25).max(first + 0.2));
        }
        let queued = &self.cache.state.queued;
        if let Some(w) = queue::next_wakeup(queued.values()) {
            due = due.min(w.max(at + 0.01));
        }
        let can_claim_more = self.slots.len() < self.max_local
            && queued
                .values()
                .any(|t| t.not_before.is_none_or(|nb| nb <= at));
        if can_claim_more && self.cache.state.running.len() >= self.global_max {
            // Others hold the global slots: look again soon.
            due = due.min(at + 0.05);
        }
        let wait = Duration::from_secs_f64((due - at).clamp(0.0, 1.0));
        let children: Vec<&Child> = self.slots.iter().map(|s| &s.child).collect();
        if children.is_empty() {
            std::thread::sleep(wait.max(Duration::from_millis(5)));
        } else {
            process::wait_any(&children, wait);
        }
    }
}
