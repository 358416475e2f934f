//! The drainer of the shared PostgreSQL store: `bgrun worker` (long-running) and `bgrun
//! drain` with a store URL (until the queue is empty). It claims leased tasks, runs them
//! in local slots (the same process pool, limits and logs as the local drainer; logs stay
//! on this host), renews its leases while they run, and records each result fenced by its
//! lease token.
//!
//! It speaks only the [`SharedStore`] trait (one round trip a turn: fenced finishes,
//! results, samples and the next claims), never SQL. It sleeps in `poll` on its children's
//! pidfds and a pipe that the store's listener ([`SharedStore::listen`]) writes to when a
//! task is queued: no polling of the queue. The only timers are lease work (renewal at a
//! third of the lease, and the next lease expiry in the fleet to re-queue it) and a long
//! safety timeout.
//!
//! The database may go away: children keep running, finished results wait in memory, and
//! the connection is re-opened with backoff; a result whose lease was lost meanwhile is
//! refused by the store and dropped here (the task re-ran elsewhere). SIGTERM stops
//! claiming, stops the running tasks and hands them back to the queue unrun.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};

use super::Env;
use super::outbox::Outbox;
use super::slot::{Slot, finish_slot, police, retry_of, sample, start_slot, terminate};
use super::{DrainSummary, Progress, announce, install_stop_handlers, log_event, stop_requested};
use crate::results::{Sample, TaskResult};
use crate::runner::limits::Sampler;
use crate::runner::process;
use crate::state::task::Task;
use crate::store::shared::{ClaimReq, Enqueued, Finish};
use crate::store::{self, SharedStore};
use crate::timefmt::now;

/// How the drainer runs.
#[derive(Debug, Clone)]
pub struct WorkerOpts {
    pub url: String,
    /// Tasks of this host at once, across its workers (`--host-limit`).
    pub host_limit: Option<usize>,
    /// Tasks of this process at once.
    pub max_local: usize,
    /// Exit when the queue is empty (`drain`) instead of waiting for more (`worker`).
    pub until_empty: bool,
}

/// The longest sleep without a reason to wake.
const SAFETY_WAIT: f64 = 60.0;
const BACKOFF_MIN: f64 = 0.2;
const BACKOFF_MAX: f64 = 2.0;

/// A finished run waiting to be recorded.
struct Pending {
    token: String,
    result: TaskResult,
    retry: Option<Task>,
    sample: Sample,
}

struct Held {
    token: String,
    /// The lease was lost: the run was stopped and its result will not be recorded.
    lost: bool,
    /// Stopped to be handed back (SIGTERM).
    handing_back: bool,
}

/// A self-pipe the listener thread writes to; the worker polls its read end.
struct Wake {
    read: OwnedFd,
    write: Arc<OwnedFd>,
}

impl Wake {
    fn new() -> Result<Wake> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: fds is a valid array of two ints.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // SAFETY: pipe2 returned two fresh descriptors that we now own.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Wake {
            read,
            write: Arc::new(write),
        })
    }

    fn drain(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reading into a valid buffer from our non-blocking pipe.
        while unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {
        }
    }
}

fn poke(fd: &OwnedFd) {
    let b = [1u8];
    // SAFETY: writing one byte from a valid buffer; a full pipe already means "wake".
    unsafe {
        libc::write(fd.as_raw_fd(), b.as_ptr().cast(), 1);
    }
}

/// Opens a connection to the shared store at a URL (schema checked): [`store::open_shared`],
/// or a fake in tests.
pub(super) type Opener<'a> = &'a dyn Fn(&str) -> Result<Box<dyn SharedStore>>;

/// Run the shared queue: until stopped (`worker`), or until it is empty (`drain`).
pub fn work(env: &Env, opts: &WorkerOpts, progress: &mut dyn Progress) -> Result<DrainSummary> {
    work_on(env, opts, &store::open_shared, progress)
}

/// [`work`] with the store's connections opened by `open`.
pub(super) fn work_on(
    env: &Env,
    opts: &WorkerOpts,
    open: Opener<'_>,
    progress: &mut dyn Progress,
) -> Result<DrainSummary> {
    install_stop_handlers();
    crate::runner::escape::become_subreaper();
    crate::state::store::ensure_private_dir(&env.state_dir)?;
    // The first connection is checked (schema, reachability): a bad URL fails at once.
    let mut first = open(&opts.url)?;
    let worker_id = first.register_worker()?;
    let wake = Wake::new()?;
    super::wake_on_stop(wake.write.as_raw_fd());
    let poke_fd = wake.write.clone();
    let listening = first.listen(Box::new(move || poke(&poke_fd)));
    let lease = store::lease_s(env.config.store.lease_seconds);
    let mut w = Worker {
        env,
        opts,
        open,
        worker_id,
        lease,
        db: Some(first),
        next_connect: 0.0,
        backoff: BACKOFF_MIN,
        slots: Vec::new(),
        held: HashMap::new(),
        pending: Vec::new(),
        handback: Vec::new(),
        sampler: Sampler::new(),
        last_sample: 0.0,
        next_renew: 0.0,
        next_expiry_check: 0.0,
        claim_again_at: None,
        next_ready: None,
        queue_empty: false,
        woken: true,
        stop_deadline: None,
        summary: DrainSummary::default(),
        outbox: Outbox::start(env),
    };
    log_event(
        env,
        &format!(
            "worker {worker_id} started on {} ({})",
            store::host_name(),
            store::redact(&opts.url)
        ),
    );
    let result = w.run(&wake, progress);
    super::wake_on_stop(-1);
    let Worker {
        outbox,
        summary,
        mut db,
        ..
    } = w;
    outbox.close();
    drop(listening);
    if let Some(db) = db.as_mut() {
        let _ = db.unregister_worker(worker_id);
    }
    log_event(env, &format!("worker {worker_id} stopped"));
    result.map(|()| summary)
}

struct Worker<'a> {
    env: &'a Env,
    opts: &'a WorkerOpts,
    open: Opener<'a>,
    worker_id: i64,
    lease: f64,
    db: Option<Box<dyn SharedStore>>,
    next_connect: f64,
    backoff: f64,
    slots: Vec<Slot>,
    held: HashMap<String, Held>,
    pending: Vec<Pending>,
    /// Stopped runs to hand back: (id, token).
    handback: Vec<(i64, String)>,
    sampler: Sampler,
    last_sample: f64,
    next_renew: f64,
    next_expiry_check: f64,
    /// The fleet or host was full: look again then (nobody notifies a freed slot).
    claim_again_at: Option<f64>,
    next_ready: Option<f64>,
    queue_empty: bool,
    /// A notification came since the last claim.
    woken: bool,
    /// After SIGTERM: give up handing back (the database is gone) after this.
    stop_deadline: Option<f64>,
    summary: DrainSummary,
    /// Notifications leave through here, so a slow channel never stalls the loop.
    outbox: Outbox,
}

impl Worker<'_> {
    fn run(&mut self, wake: &Wake, progress: &mut dyn Progress) -> Result<()> {
        let mut stopping = false;
        loop {
            let at = now();
            self.harvest(at);
            if stop_requested() && !stopping {
                stopping = true;
                self.stop_deadline = Some(at + self.lease);
                let grace = self.env.config.execution.kill_grace_seconds as f64;
                for s in self.slots.iter_mut() {
                    if let Some(h) = self.held.get_mut(&s.task.id) {
                        h.handing_back = true;
                    }
                    s.cancelled = true;
                    terminate(s, grace, at);
                }
            }
            self.ensure_db(at);
            if self.db.is_some()
                && let Err(e) = self.talk(at, stopping, progress)
            {
                let closed = self.db.as_ref().is_none_or(|d| d.is_closed());
                self.warn(&format!(
                    "the store failed: {e:#}{}",
                    if closed { "; reconnecting" } else { "" }
                ));
                self.db = None;
                self.next_connect = now() + self.backoff;
                self.backoff = (self.backoff * 2.0).min(BACKOFF_MAX);
            }
            let idle = self.slots.is_empty() && self.pending.is_empty();
            if stopping && idle {
                let gave_up = self.stop_deadline.is_some_and(|d| now() > d);
                if self.handback.is_empty() || gave_up {
                    return Ok(());
                }
            }
            if self.opts.until_empty && idle && self.queue_empty && self.db.is_some() {
                return Ok(());
            }
            self.sleep(wake);
        }
    }

    fn warn(&self, msg: &str) {
        eprintln!("bgrun: worker: {msg}");
        log_event(self.env, &format!("worker {}: {msg}", self.worker_id));
    }

    /// Reap exited children into pending results (or hand-backs, or nothing if fenced).
    fn harvest(&mut self, at: f64) {
        let mut i = 0;
        while i < self.slots.len() {
            if !self.slots[i].child.exited() {
                i += 1;
                continue;
            }
            let slot = self.slots.swap_remove(i);
            let concurrent = self.slots.len() + 1;
            let (task, mut r) = finish_slot(self.env, slot, at);
            let Some(h) = self.held.remove(&task.id) else {
                continue;
            };
            if h.lost {
                self.warn(&format!(
                    "task {}: its lease was lost (re-queued elsewhere); this run's result is \
                     not recorded",
                    task.id
                ));
                continue;
            }
            if h.handing_back {
                if let Ok(id) = task.id.parse::<i64>() {
                    self.handback.push((id, h.token));
                }
                continue;
            }
            let retry = retry_of(&task, r.status, r.attempt, at);
            r.will_retry = retry.is_some();
            let sample = Sample::of(&r, at, 0, concurrent);
            self.pending.push(Pending {
                token: h.token,
                result: r,
                retry,
                sample,
            });
        }
    }

    fn ensure_db(&mut self, at: f64) {
        if self.db.is_some() || at < self.next_connect {
            return;
        }
        match (self.open)(&self.opts.url) {
            Ok(db) => {
                self.db = Some(db);
                self.backoff = BACKOFF_MIN;
                self.next_renew = 0.0;
                self.next_expiry_check = 0.0;
                log_event(
                    self.env,
                    &format!("worker {}: reconnected to the store", self.worker_id),
                );
            }
            Err(_) => {
                self.next_connect = at + self.backoff;
                self.backoff = (self.backoff * 2.0).min(BACKOFF_MAX);
            }
        }
    }

    /// Everything that needs the database, in order: record results, renew leases,
    /// re-queue expired ones, hand back, claim.
    fn talk(&mut self, at: f64, stopping: bool, progress: &mut dyn Progress) -> Result<()> {
        let Some(db) = self.db.as_mut() else {
            return Ok(());
        };
        if !self.handback.is_empty() {
            db.hand_back(&self.handback).context("handing tasks back")?;
            self.handback.clear();
        }
        if at >= self.next_renew {
            let held: Vec<(i64, String)> = self
                .held
                .iter()
                .filter(|(_, h)| !h.lost)
                .filter_map(|(id, h)| Some((id.parse().ok()?, h.token.clone())))
                .collect();
            let renewed = db
                .renew(self.worker_id, &held, self.lease)
                .context("renewing leases")?;
            self.next_renew = at + self.lease / 3.0;
            let grace = self.env.config.execution.kill_grace_seconds as f64;
            for (id, lost) in renewed
                .lost
                .iter()
                .map(|i| (i, true))
                .chain(renewed.stop.iter().map(|i| (i, false)))
            {
                let id = id.to_string();
                if lost && let Some(h) = self.held.get_mut(&id) {
                    h.lost = true;
                }
                if let Some(s) = self
                    .slots
                    .iter_mut()
                    .find(|s| s.task.id == id && !s.cancelled)
                {
                    s.cancelled = true;
                    terminate(s, grace, at);
                }
            }
        }
        if at >= self.next_expiry_check {
            requeue_expired(self.env, db.as_mut())?;
            // Seconds until the soonest lease in the fleet expires, by the store's clock.
            let next = db.next_expiry()?;
            // Look a little after the soonest expiry (its holder may renew it first), and at
            // least every third of a lease: leases claimed since may belong to a worker that
            // dies before we look again.
            let every = self.lease / 3.0;
            self.next_expiry_check = now() + next.map_or(every, |d| (d.max(0.0) + 0.2).min(every));
        }
        // One transaction records every finished run and claims (asynchronous commit),
        // then one synchronous commit makes both durable; only then are results announced
        // and claimed tasks started.
        let free = if stopping {
            0
        } else {
            self.opts.max_local.saturating_sub(self.slots.len())
        };
        let due = free > 0 && (self.claim_again_at.is_none_or(|t| at >= t) || self.woken);
        if self.pending.is_empty() && !due {
            return Ok(());
        }
        let finishes: Vec<Finish<'_>> = self
            .pending
            .iter()
            .map(|p| Finish {
                token: &p.token,
                result: &p.result,
                retry: p.retry.as_ref(),
                sample: &p.sample,
            })
            .collect();
        let req = due.then(|| ClaimReq {
            worker_id: self.worker_id,
            want: free,
            fleet_max: self.env.config.execution.max_concurrent_tasks.max(1),
            host_limit: self.opts.host_limit,
            lease_s: self.lease,
        });
        let turn = db
            .finish_and_claim(&finishes, req.as_ref(), self.worker_id)
            .context("recording results and claiming")?;
        drop(finishes);
        let (accepted, out) = (turn.accepted, turn.out);
        if let Err(e) = turn.durable {
            // The claims may or may not have reached the disk: give them back unrun once
            // reconnected (a lost claim matches nothing). The results stay pending: a
            // second try is refused by the fence if the first one was kept after all.
            for c in &out.claimed {
                if let Ok(id) = c.task.id.parse::<i64>() {
                    self.handback.push((id, c.token.clone()));
                }
            }
            return Err(e).context("making results and claims durable");
        }
        for (p, accepted) in std::mem::take(&mut self.pending).into_iter().zip(accepted) {
            if !accepted {
                self.warn(&format!(
                    "task {}: the store refused the result (the lease was lost and the task \
                     re-queued)",
                    p.result.id
                ));
                continue;
            }
            self.outbox.send(self.env, &p.result);
            progress.finished(&p.result, 0);
            self.summary.ran += 1;
            if p.result.status.is_failure() && !p.result.will_retry {
                self.summary.failed += 1;
            }
            self.summary.results.push(p.result);
        }
        if !due {
            return Ok(());
        }
        self.woken = false;
        self.queue_empty = !out.queued_left && out.claimed.is_empty();
        self.next_ready = out.next_ready;
        self.claim_again_at = out.full.then_some(at + 0.05);
        for c in out.claimed {
            let token = c.token;
            match start_slot(self.env, c.task, &format!("worker-{}", self.worker_id)) {
                Ok(slot) => {
                    progress.started(&slot.task, slot.attempt);
                    self.held.insert(
                        slot.task.id.clone(),
                        Held {
                            token,
                            lost: false,
                            handing_back: false,
                        },
                    );
                    self.slots.push(slot);
                }
                Err(failed) => {
                    let (task, why) = *failed;
                    let r = task.spawn_failed_result(at, why);
                    // A child that never started: its result has no duration, memory or CPU.
                    let sample = Sample::of(&r, at, 0, self.slots.len());
                    self.pending.push(Pending {
                        token,
                        result: r,
                        retry: None,
                        sample,
                    });
                }
            }
        }
        if !self.pending.is_empty() {
            // A start failure: record it on the next turn at once.
            self.claim_again_at = Some(at);
        }
        Ok(())
    }

    /// Police the slots, then sleep until a child exits, a notification comes, or a
    /// lease/retry/reconnect timer is due.
    fn sleep(&mut self, wake: &Wake) {
        let at = now();
        let sampling_due =
            at - self.last_sample >= 0.25 && self.slots.iter().any(|s| at - s.started > 0.2);
        if sampling_due {
            self.last_sample = at;
            sample(&mut self.slots, &mut self.sampler, self.env, at);
        }
        let mut due = if self.slots.is_empty() {
            at + SAFETY_WAIT
        } else {
            police(&mut self.slots, self.env, at)
        };
        if let Some(first) = self.slots.iter().map(|s| s.started).min_by(f64::total_cmp) {
            due = due.min((self.last_sample + 0.25).max(first + 0.2));
        }
        if !self.held.is_empty() {
            due = due.min(self.next_renew);
        }
        due = due.min(self.next_expiry_check);
        if let Some(t) = self.claim_again_at {
            due = due.min(t);
        }
        if let Some(nb) = self.next_ready {
            due = due.min(nb.max(at + 0.01));
        }
        if self.db.is_none() || !self.pending.is_empty() || !self.handback.is_empty() {
            due = due.min(self.next_connect.max(at + 0.05));
        }
        let wait = Duration::from_secs_f64((due - at).clamp(0.0, SAFETY_WAIT));
        let fds = self.slots.iter().map(|s| s.child.wait_fd());
        process::wait_fds_or(fds, wake.read.as_raw_fd(), wait);
        let mut fd = libc::pollfd {
            fd: wake.read.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        let ready = unsafe { libc::poll(&mut fd, 1, 0) } > 0;
        if ready {
            wake.drain();
            self.woken = true;
            // A notification may be a stop request: look at our leases now.
            self.next_renew = 0.0;
        }
    }
}

/// Queue built tasks in the shared store (what [`super::submit`] does with a store URL):
/// re-queue expired leases, then dedup and overflow in the database.
pub(super) fn submit_shared(env: &Env, url: &str, tasks: &[Task]) -> Result<Vec<super::Submitted>> {
    use super::Submitted;
    // The enqueue checks the schema version and looks for expired leases and live workers
    // in the same round trip, so nothing else is asked when nothing is to be done.
    let mut db = store::open_shared_unchecked(url)?;
    let (out, seen) = db.enqueue(
        tasks,
        env.config.execution.max_queue_size,
        store::lease_s(env.config.store.lease_seconds),
    )?;
    WORKER_SEEN.store(if seen.worker_alive { 2 } else { 1 }, Ordering::SeqCst);
    if seen.expired {
        requeue_expired(env, db.as_mut())?;
    }
    let mut subs = Vec::with_capacity(out.len());
    for e in out {
        subs.push(match e {
            Enqueued::Queued { id, dropped } => {
                if let Some(r) = &dropped {
                    dropped_now(env, r);
                }
                Submitted::Queued { id, dropped }
            }
            Enqueued::Duplicate { id } => Submitted::Duplicate { id },
            Enqueued::Dropped { result } => {
                dropped_now(env, &result);
                Submitted::Dropped { result }
            }
        });
    }
    Ok(subs)
}

fn dropped_now(env: &Env, r: &TaskResult) {
    announce(env, r);
    log_event(
        env,
        &format!("dropped task {} ({}): the queue is full", r.id, r.task_type),
    );
}

/// Re-queue (or end as abandoned) the tasks whose lease expired, logging and announcing
/// each lost run's result. Every command that opens the shared store calls this.
pub fn requeue_expired(env: &Env, db: &mut dyn SharedStore) -> Result<()> {
    for r in db.requeue_expired().context("re-queueing expired leases")? {
        log_event(
            env,
            &format!(
                "task {}: lease expired; {}",
                r.id,
                if r.will_retry {
                    "re-queued"
                } else {
                    "abandoned"
                }
            ),
        );
        announce(env, &r);
    }
    Ok(())
}

/// What this process's last enqueue saw: 0 nothing yet, 1 no live worker, 2 a live worker.
static WORKER_SEEN: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Whether a worker of the shared store is alive anywhere: what the enqueue just before
/// saw (no second connection), else asked now.
pub(super) fn any_worker(env: &Env, url: &str) -> Result<bool> {
    match WORKER_SEEN.swap(0, Ordering::SeqCst) {
        1 => return Ok(false),
        2 => return Ok(true),
        _ => {}
    }
    let mut db = store::open_shared(url)?;
    db.any_worker(store::lease_s(env.config.store.lease_seconds))
}
