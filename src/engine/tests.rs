//! The drain loop driven through the spawner seam with fake children: no process is
//! started, each "child" follows the plan in its argv (`exit CODE MS`, `hang`), and the
//! fake records the signals it gets and how many ran at once.

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
