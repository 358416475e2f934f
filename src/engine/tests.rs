//! The drain loop driven through the spawner seam with fake children: no process is
//! started, each "child" follows the plan in its argv (`exit CODE MS`, `hang`), and the
//! fake records the signals it gets and how many ran at once. The shared store's worker
//! (`worker.rs`) runs the same fake children against an in-memory [`SharedStore`]
//! ([`FakeShared`]): lost leases, refused results, failed turns, reconnections.

use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{DrainSummary, Env, NewTask, Progress, drain, submit};
use crate::config::{Config, Source};
use crate::model::{Status, TaskResult};
use crate::runner::process::{Ended, Spec};
use crate::runner::spawner::{Proc, Spawner};
use crate::state::task::{Arg, Task};

#[derive(Default)]
struct Seen {
    /// (task argv[1..] joined, signal) in the order received.
    signals: Vec<(String, i32)>,
    alive: usize,
    most_alive: usize,
    spawned: Vec<String>,
}

#[derive(Default)]
struct FakeSpawner {
    next_pid: AtomicU32,
    seen: Arc<Mutex<Seen>>,
}

enum Plan {
    Exit(i32, Duration),
    Hang,
}

struct FakeProc {
    pid: u32,
    what: String,
    plan: Plan,
    started: Instant,
    killed_by: AtomicI32,
    seen: Arc<Mutex<Seen>>,
}

impl Spawner for FakeSpawner {
    fn spawn(&self, spec: &Spec) -> Result<Box<dyn Proc>> {
        let words: Vec<String> = spec
            .argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let plan = match words.get(1).map(String::as_str) {
            Some("exit") => Plan::Exit(words[2].parse()?, Duration::from_millis(words[3].parse()?)),
            Some("hang") => Plan::Hang,
            _ => anyhow::bail!("no such program: {words:?}"),
        };
        let mut seen = self.seen.lock().expect("lock");
        seen.alive += 1;
        seen.most_alive = seen.most_alive.max(seen.alive);
        let what = words[1..].join(" ");
        seen.spawned.push(what.clone());
        // Above the kernel's largest pid: /proc has nothing for it.
        let pid = 5_000_000 + self.next_pid.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(FakeProc {
            pid,
            what,
            plan,
            started: Instant::now(),
            killed_by: AtomicI32::new(0),
            seen: self.seen.clone(),
        }))
    }
}

impl Proc for FakeProc {
    fn pid(&self) -> u32 {
        self.pid
    }
    fn start(&self) -> u64 {
        1
    }
    fn exited(&self) -> bool {
        self.killed_by.load(Ordering::SeqCst) != 0
            || matches!(self.plan, Plan::Exit(_, after) if self.started.elapsed() >= after)
    }
    fn signal(&self, sig: i32) {
        self.seen
            .lock()
            .expect("lock")
            .signals
            .push((self.what.clone(), sig));
        if sig == libc::SIGTERM || sig == libc::SIGKILL {
            let _ = self
                .killed_by
                .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
        }
    }
    fn reap(&mut self) -> (Ended, Vec<u8>) {
        self.seen.lock().expect("lock").alive -= 1;
        let killed = self.killed_by.load(Ordering::SeqCst);
        let code = match self.plan {
            Plan::Exit(code, _) if killed == 0 => Some(code),
            _ => None,
        };
        let ended = Ended {
            code,
            signal: (killed != 0).then_some(killed),
            maxrss_kb: 0,
            cpu_s: 0.0,
            stdout_dropped: 0,
        };
        (ended, Vec::new())
    }
}

#[derive(Default)]
struct Recorder {
    started: Vec<(String, u32)>,
    finished: Vec<(String, Status, u32)>,
}

impl Progress for Recorder {
    fn started(&mut self, task: &Task, attempt: u32) {
        self.started.push((task.name.clone(), attempt));
    }
    fn finished(&mut self, r: &TaskResult, _queued: usize) {
        self.finished.push((r.name.clone(), r.status, r.attempt));
    }
}

fn env_with(dir: &Path, fake: Arc<FakeSpawner>) -> Env {
    let mut c = Config::embedded();
    c.execution.max_retries = 1;
    c.execution.retry_delay_seconds = 0;
    c.execution.kill_grace_seconds = 1;
    c.execution.max_concurrent_tasks = 2;
    c.notifications.enabled = false;
    let mut env = Env::new(
        dir.to_path_buf(),
        dir.join(".bgrun"),
        c,
        Source::Embedded,
        None,
    );
    env.spawner = fake;
    env
}

fn task(words: &[&str], timeout_s: Option<u64>) -> NewTask {
    let mut n = NewTask::of_type("custom", "manual");
    n.argv = words.iter().map(|w| Arg::from(*w)).collect();
    n.name = Some(words[1..].join(" "));
    n.timeout_s = timeout_s;
    n
}

fn run(env: &Env, tasks: &[NewTask], max_local: usize) -> (DrainSummary, Recorder) {
    submit(env, tasks).expect("submit");
    let mut rec = Recorder::default();
    let summary = drain(env, max_local, &mut rec).expect("drain");
    (summary, rec)
}

#[test]
fn drain_runs_retries_and_times_out_fake_children() {
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Arc::new(FakeSpawner::default());
    let env = env_with(dir.path(), fake.clone());
    let (summary, rec) = run(
        &env,
        &[
            task(&["fake", "exit", "0", "20"], None),
            task(&["fake", "exit", "1", "10"], None),
            task(&["fake", "hang"], Some(1)),
        ],
        2,
    );
    let mut finished = rec.finished.clone();
    finished.sort_by(|a, b| (a.0.as_str(), a.2).cmp(&(b.0.as_str(), b.2)));
    assert_eq!(
        finished,
        [
            ("exit 0 20".to_string(), Status::Succeeded, 1),
            ("exit 1 10".to_string(), Status::Failed, 1),
            ("exit 1 10".to_string(), Status::Failed, 2),
            ("hang".to_string(), Status::TimedOut, 1),
            ("hang".to_string(), Status::TimedOut, 2),
        ]
    );
    assert_eq!(summary.ran, 5, "failures and timeouts are retried once");
    assert_eq!(summary.failed, 2, "only the final attempts count as failed");
    let seen = fake.seen.lock().expect("lock");
    assert!(
        seen.most_alive <= 2,
        "at most 2 at once: {}",
        seen.most_alive
    );
    assert_eq!(seen.alive, 0, "every child reaped");
    assert_eq!(
        seen.signals.first(),
        Some(&("hang".to_string(), libc::SIGTERM)),
        "the timeout sends TERM to the group first"
    );
    // The store has every result, and the queue is empty.
    let results = super::open_store(&env).results(None, 10).expect("results");
    assert_eq!(results.len(), 5);
    let state = super::recover_now(&env).expect("state");
    assert!(state.queued.is_empty() && state.running.is_empty());
}

#[test]
fn a_task_that_cannot_start_fails_and_the_rest_run_one_at_a_time() {
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Arc::new(FakeSpawner::default());
    let env = env_with(dir.path(), fake.clone());
    let mut broken = task(&["fake", "no-such-plan"], None);
    broken.name = Some("broken".into());
    let (summary, rec) = run(
        &env,
        &[
            broken,
            task(&["fake", "exit", "0", "5"], None),
            task(&["fake", "exit", "0", "6"], None),
            task(&["fake", "exit", "0", "7"], None),
        ],
        1,
    );
    assert_eq!(
        summary.ran, 4,
        "broken fails at once (not retried), three succeed"
    );
    assert_eq!(summary.failed, 1);
    let failures: Vec<&(String, Status, u32)> = rec
        .finished
        .iter()
        .filter(|f| f.1 == Status::Failed)
        .collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0, "broken");
    let seen = fake.seen.lock().expect("lock");
    assert_eq!(seen.most_alive, 1, "max_local 1");
    assert_eq!(seen.spawned.len(), 3);
    assert!(rec.started.iter().all(|(name, _)| name != "broken"));
}

// The shared store's worker through the `SharedStore` seam.

use std::collections::{HashSet, VecDeque};

use super::WorkerOpts;
use crate::results::Sample;
use crate::store::SharedStore;
use crate::store::shared::{
    ClaimOutcome, ClaimReq, Claimed, Enqueued, Finish, Listening, LiveRow, Renewed, Stopping,
    StoreStatus, TaskState, Turn,
};

/// The in-memory shared store every connection of one test sees.
#[derive(Default)]
struct SharedDb {
    queued: VecDeque<Task>,
    /// Running task id -> its lease token and the task.
    running: std::collections::HashMap<i64, (String, Task)>,
    next_token: u64,
    /// Leases taken away (the task "re-queued elsewhere"): renewals report them lost and
    /// their finish is refused.
    revoked: HashSet<i64>,
    /// Ids of the finished runs offered to the store (accepted or not).
    offered: Vec<String>,
    /// Results the store accepted.
    results: Vec<TaskResult>,
    /// Ids handed back unrun.
    handed_back: Vec<i64>,
    /// The next this many turns that carry finished runs fail as a lost connection would
    /// (nothing committed).
    fail_finishing_turns: usize,
    /// The next this many turns that claim commit but cannot be made durable.
    undurable_claiming_turns: usize,
    /// Connections opened.
    opens: usize,
    unregistered: bool,
}

struct FakeShared(Arc<Mutex<SharedDb>>);

impl FakeShared {
    fn db(&self) -> std::sync::MutexGuard<'_, SharedDb> {
        self.0.lock().expect("lock")
    }
}

fn store_id(id: &str) -> i64 {
    id.parse().expect("a store id")
}

impl SharedStore for FakeShared {
    fn schema_version(&mut self) -> Result<i32> {
        Ok(1)
    }
    fn latest_schema(&self) -> i32 {
        1
    }
    fn migrate(&mut self) -> Result<(i32, i32)> {
        Ok((1, 1))
    }
    fn enqueue(
        &mut self,
        _: &[Task],
        _: usize,
        _: f64,
    ) -> Result<(Vec<Enqueued>, crate::store::shared::Seen)> {
        anyhow::bail!("the worker never enqueues")
    }
    fn register_worker(&mut self) -> Result<i64> {
        Ok(7)
    }
    fn unregister_worker(&mut self, worker_id: i64) -> Result<()> {
        assert_eq!(worker_id, 7);
        self.db().unregistered = true;
        Ok(())
    }
    fn finish_and_claim(
        &mut self,
        done: &[Finish<'_>],
        claim: Option<&ClaimReq>,
        flush_worker: i64,
    ) -> Result<Turn> {
        assert_eq!(flush_worker, 7);
        let mut db = self.db();
        db.offered.extend(done.iter().map(|f| f.result.id.clone()));
        if !done.is_empty() && db.fail_finishing_turns > 0 {
            db.fail_finishing_turns -= 1;
            anyhow::bail!("connection to the store lost");
        }
        let mut accepted = Vec::new();
        for f in done {
            let id = store_id(&f.result.id);
            let held = db.running.get(&id).map(|r| r.0.as_str()) == Some(f.token);
            let ok = held && !db.revoked.contains(&id);
            if ok {
                db.running.remove(&id);
                db.results.push(f.result.clone());
                if let Some(t) = f.retry {
                    db.queued.push_back(t.clone());
                }
            }
            accepted.push(ok);
        }
        let mut out = ClaimOutcome::default();
        if let Some(c) = claim {
            while out.claimed.len() < c.want {
                let Some(task) = db.queued.pop_front() else {
                    break;
                };
                db.next_token += 1;
                let token = format!("lease-{}", db.next_token);
                db.running
                    .insert(store_id(&task.id), (token.clone(), task.clone()));
                out.claimed.push(Claimed { task, token });
            }
            out.queued_left = !db.queued.is_empty();
        }
        let durable = if claim.is_some() && db.undurable_claiming_turns > 0 {
            db.undurable_claiming_turns -= 1;
            Err(anyhow::anyhow!("the commit may not have reached the disk"))
        } else {
            Ok(())
        };
        Ok(Turn {
            accepted,
            out,
            durable,
        })
    }
    fn renew(&mut self, worker_id: i64, held: &[(i64, String)], _: f64) -> Result<Renewed> {
        assert_eq!(worker_id, 7);
        let db = self.db();
        Ok(Renewed {
            lost: held
                .iter()
                .filter(|(id, _)| db.revoked.contains(id))
                .map(|(id, _)| *id)
                .collect(),
            stop: Vec::new(),
        })
    }
    fn hand_back(&mut self, held: &[(i64, String)]) -> Result<usize> {
        let mut db = self.db();
        let mut n = 0;
        for (id, token) in held {
            if db.running.get(id).is_some_and(|r| &r.0 == token)
                && let Some((_, task)) = db.running.remove(id)
            {
                db.queued.push_back(task);
                db.handed_back.push(*id);
                n += 1;
            }
        }
        Ok(n)
    }
    fn requeue_expired(&mut self) -> Result<Vec<TaskResult>> {
        Ok(Vec::new())
    }
    fn next_expiry(&mut self) -> Result<Option<f64>> {
        Ok(None)
    }
    fn listen(&self, _wake: Box<dyn Fn() + Send>) -> Listening {
        Listening::new(Arc::new(std::sync::atomic::AtomicBool::new(false)))
    }
    fn is_closed(&self) -> bool {
        false
    }
    fn any_worker(&mut self, _: f64) -> Result<bool> {
        Ok(true)
    }
    fn status(&mut self, _: f64) -> Result<StoreStatus> {
        anyhow::bail!("not used by the worker")
    }
    fn state_of(&mut self, _: i64) -> Result<Option<TaskState>> {
        Ok(None)
    }
    fn live_rows(&mut self, _: i64) -> Result<Vec<LiveRow>> {
        Ok(Vec::new())
    }
    fn results(&mut self, _: Option<&str>, _: usize) -> Result<Vec<TaskResult>> {
        Ok(self.db().results.clone())
    }
    fn samples(&mut self, _: f64, _: i64) -> Result<Vec<Sample>> {
        Ok(Vec::new())
    }
    fn cleanup(&mut self, _: u64, _: u64) -> Result<[u64; 4]> {
        Ok([0; 4])
    }
    fn stop(&mut self, _: Option<&[i64]>) -> Result<Stopping> {
        anyhow::bail!("not used by the worker")
    }
}

/// A store holding `tasks` (ids 1, 2, ...), and an env whose leases are the shortest (3 s:
/// renewed every second).
fn shared_with(
    dir: &Path,
    fake: Arc<FakeSpawner>,
    tasks: &[NewTask],
) -> (Env, Arc<Mutex<SharedDb>>) {
    let mut env = env_with(dir, fake);
    env.config.store.lease_seconds = 3;
    let mut db = SharedDb::default();
    for (i, n) in tasks.iter().enumerate() {
        let seq = u64::try_from(i).expect("few") + 1;
        let mut t = super::submit::build_task(&env, n, seq, crate::timefmt::now()).expect("task");
        t.id = seq.to_string();
        db.queued.push_back(t);
    }
    (env, Arc::new(Mutex::new(db)))
}

/// Drain the fake store with one local slot, as `bgrun drain` with a URL does.
fn work_shared(env: &Env, db: &Arc<Mutex<SharedDb>>) -> (DrainSummary, Recorder) {
    let open = |_: &str| -> Result<Box<dyn SharedStore>> {
        db.lock().expect("lock").opens += 1;
        Ok(Box::new(FakeShared(db.clone())))
    };
    let opts = WorkerOpts {
        url: "postgres://fake/db".into(),
        host_limit: None,
        max_local: 1,
        until_empty: true,
    };
    let mut rec = Recorder::default();
    let summary = super::worker::work_on(env, &opts, &open, &mut rec).expect("work");
    (summary, rec)
}

#[test]
fn shared_worker_records_each_result_once_through_the_store() {
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Arc::new(FakeSpawner::default());
    let tasks = [
        task(&["fake", "exit", "0", "5"], None),
        task(&["fake", "exit", "1", "5"], None),
    ];
    let (env, db) = shared_with(dir.path(), fake.clone(), &tasks);
    let (summary, rec) = work_shared(&env, &db);
    let db = db.lock().expect("lock");
    let got: Vec<(&str, Status, u32)> = db
        .results
        .iter()
        .map(|r| (r.id.as_str(), r.status, r.attempt))
        .collect();
    assert_eq!(
        got,
        [
            ("1", Status::Succeeded, 1),
            ("2", Status::Failed, 1),
            ("2", Status::Failed, 2),
        ],
        "the failure is retried once (max_retries 1), through the store's queue"
    );
    assert_eq!((summary.ran, summary.failed), (3, 1));
    assert_eq!(rec.finished.len(), 3);
    assert!(db.running.is_empty() && db.queued.is_empty());
    assert_eq!(db.opens, 1, "one connection, never lost");
    assert!(db.unregistered, "the worker leaves the store when done");
}

#[test]
fn shared_worker_stops_a_run_whose_lease_is_lost_and_drops_its_result() {
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Arc::new(FakeSpawner::default());
    let (env, db) = shared_with(dir.path(), fake.clone(), &[task(&["fake", "hang"], None)]);
    // The lease is taken away as soon as the task is claimed: the first renewal (a
    // second later) reports it lost.
    db.lock().expect("lock").revoked.insert(1);
    let (summary, rec) = work_shared(&env, &db);
    let db = db.lock().expect("lock");
    assert!(
        db.offered.is_empty(),
        "its result is not even offered: {:?}",
        db.offered
    );
    assert_eq!(summary.ran, 0);
    assert_eq!(rec.started.len(), 1, "it ran");
    assert!(
        rec.finished.is_empty(),
        "and its end is not reported as a result"
    );
    let seen = fake.seen.lock().expect("lock");
    assert_eq!(
        seen.signals.first(),
        Some(&("hang".to_string(), libc::SIGTERM)),
        "the run is stopped when the renewal finds the lease lost"
    );
    assert_eq!(seen.alive, 0, "and reaped");
}

#[test]
fn shared_worker_drops_a_result_the_store_refuses() {
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Arc::new(FakeSpawner::default());
    let (env, db) = shared_with(
        dir.path(),
        fake.clone(),
        &[task(&["fake", "exit", "0", "5"], None)],
    );
    // Lost before any renewal could tell: the fenced finish refuses the result.
    db.lock().expect("lock").revoked.insert(1);
    let (summary, rec) = work_shared(&env, &db);
    let db = db.lock().expect("lock");
    assert_eq!(db.offered, ["1"], "offered once");
    assert!(db.results.is_empty(), "and refused: {:?}", db.results);
    assert_eq!(summary.ran, 0);
    assert!(rec.finished.is_empty());
    assert!(
        fake.seen.lock().expect("lock").signals.is_empty(),
        "it ran to its end"
    );
}

#[test]
fn shared_worker_keeps_results_of_a_failed_turn_for_the_next_connection() {
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Arc::new(FakeSpawner::default());
    let (env, db) = shared_with(
        dir.path(),
        fake.clone(),
        &[task(&["fake", "exit", "0", "5"], None)],
    );
    db.lock().expect("lock").fail_finishing_turns = 1;
    let (summary, rec) = work_shared(&env, &db);
    let db = db.lock().expect("lock");
    assert_eq!(
        db.opens, 2,
        "the failed turn drops the connection; a new one is opened"
    );
    assert_eq!(
        db.offered,
        ["1", "1"],
        "offered again on the new connection"
    );
    let got: Vec<(&str, Status)> = db
        .results
        .iter()
        .map(|r| (r.id.as_str(), r.status))
        .collect();
    assert_eq!(
        got,
        [("1", Status::Succeeded)],
        "recorded once, on the new connection"
    );
    assert_eq!(summary.ran, 1);
    assert_eq!(rec.finished.len(), 1);
    assert_eq!(
        fake.seen.lock().expect("lock").spawned.len(),
        1,
        "not run twice"
    );
}

#[test]
fn shared_worker_hands_back_claims_of_a_turn_not_known_durable() {
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Arc::new(FakeSpawner::default());
    let (env, db) = shared_with(
        dir.path(),
        fake.clone(),
        &[task(&["fake", "exit", "0", "5"], None)],
    );
    db.lock().expect("lock").undurable_claiming_turns = 1;
    let (summary, rec) = work_shared(&env, &db);
    let db = db.lock().expect("lock");
    assert_eq!(db.handed_back, [1], "the first claim was given back unrun");
    assert_eq!(db.opens, 2, "after reconnecting");
    let seen = fake.seen.lock().expect("lock");
    assert_eq!(
        seen.spawned.len(),
        1,
        "started once: a claim not known durable is never started"
    );
    assert_eq!(rec.started.len(), 1);
    let got: Vec<(&str, Status)> = db
        .results
        .iter()
        .map(|r| (r.id.as_str(), r.status))
        .collect();
    assert_eq!(got, [("1", Status::Succeeded)], "claimed again and run");
    assert_eq!(summary.ran, 1);
}
