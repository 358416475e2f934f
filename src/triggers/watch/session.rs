//! The watch session (`bgrun watch --poll`, `bgrun start`): polls the [`Watcher`], folds
//! each poll's changes into one pending set per task type, and when a type's debounce has
//! passed and its files have settled (re-stat'ed), hands one task of that type (trigger
//! `watch`, the changed files in its context) to the engine. It follows every task it
//! queued until its result appears, runs the scheduler's tick every minute for `start`, and
//! saves the snapshot. What the terminal shows is the caller's: every step is an [`Event`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};

use super::debounce::Pending;
use super::{Changes, Poll, Watcher};
use crate::config::Config;
use crate::engine::{self, Env, Handed, NewTask};
use crate::error;
use crate::results::{self, TaskResult};
use crate::state::procs;
use crate::state::task::Arg;

/// At most this many paths per list go into a task's context (the rest are counted).
const CONTEXT_MAX_PATHS: usize = 5000;
const TICK_EVERY: Duration = Duration::from_secs(60);

/// What the session does, from the config and the command line.
#[derive(Debug, Clone)]
pub struct Plan {
    pub interval: Duration,
    /// Task type -> its debounce.
    pub types: BTreeMap<String, Duration>,
    /// `triggers.file_watch.enabled`: false shows changes and queues nothing.
    pub enqueue: bool,
}

fn seconds(v: f64, what: &str, min: f64) -> Result<Duration> {
    if !v.is_finite() || v < min || v > 86_400.0 {
        return Err(error::usage(format!(
            "{what}: {v} is out of range (give seconds, at least {min} and at most 86400)"
        )));
    }
    Ok(Duration::from_secs_f64(v))
}

impl Plan {
    /// The plan of `triggers.file_watch`, `--interval` and `--debounce` overriding; the
    /// warnings to show (a disabled or unknown task type, watching disabled).
    pub fn new(
        config: &Config,
        interval: Option<f64>,
        debounce: Option<f64>,
    ) -> Result<(Plan, Vec<String>)> {
        let fw = &config.triggers.file_watch;
        let interval = match interval {
            Some(v) => seconds(v, "--interval", 0.05)?,
            None => seconds(
                fw.check_interval_seconds,
                "triggers.file_watch.check_interval_seconds",
                0.05,
            )?,
        };
        let flag = debounce
            .map(|v| seconds(v, "--debounce", 0.0))
            .transpose()?;
        let mut types = BTreeMap::new();
        let mut warnings = Vec::new();
        for name in config.watch_task_types() {
            let Some(t) = config.task_types.get(&name) else {
                warnings.push(format!(
                    "triggers.file_watch.task_types: unknown task type {name:?}: skipped"
                ));
                continue;
            };
            if let Some(why) = config.disabled_type(&name) {
                warnings.push(format!("{why}: file changes will not enqueue it"));
                continue;
            }
            // A task type's own debounce_seconds wins when set away from the default
            // (1 s); otherwise triggers.file_watch.debounce_seconds applies.
            let v = if (t.debounce_seconds - 1.0).abs() > f64::EPSILON {
                t.debounce_seconds
            } else {
                fw.debounce_seconds
            };
            let d = match flag {
                Some(d) => d,
                None => seconds(v, &format!("task_types.{name}.debounce_seconds"), 0.0)?,
            };
            types.insert(name, d);
        }
        if !fw.enabled {
            warnings.push(
                "triggers.file_watch.enabled is false: changes are shown, no task is enqueued"
                    .into(),
            );
        }
        Ok((
            Plan {
                interval,
                types,
                enqueue: fw.enabled,
            },
            warnings,
        ))
    }
}

/// A step of the session, for the caller to show.
pub enum Event<'a> {
    /// Poll number `n` (the first one: `first`); `counts`: (files, folders) watched now.
    Polled {
        n: u64,
        poll: &'a Poll,
        first: bool,
        counts: (usize, usize),
    },
    /// Tasks handed to the engine: one (type, its changes) per outcome.
    Queued {
        batch: &'a [(String, Changes)],
        handed: &'a [Handed],
    },
    /// A task it queued has its final result.
    Finished(&'a TaskResult),
    /// The minute's `bgrun tick` said this (its stdout), or failed (why).
    Ticked(Result<String, String>),
    /// Something went wrong and the session goes on.
    Warning(String),
    /// The end of one turn of the loop (a place to flush what a turn gathered).
    Turn { polls: u64 },
}

/// How the session ended.
pub struct Ended {
    pub polls: u64,
    /// Tasks it queued without a final result yet.
    pub running: usize,
    /// Task types whose changes were still in their debounce at the stop (they were queued).
    pub waiting: usize,
}

/// What `--once` did: the poll, and one (type, its changes) per outcome.
pub struct Once {
    pub poll: Poll,
    pub batch: Vec<(String, Changes)>,
    pub handed: Vec<Handed>,
}

/// `--once`: compare with the persisted snapshot, queue at once (no debounce), save.
pub fn once(env: &Env, w: &mut Watcher, plan: &Plan) -> Result<Once> {
    let poll = w.poll()?;
    let mut batch = Vec::new();
    let mut handed = Vec::new();
    if plan.enqueue && !poll.changes.is_empty() && !plan.types.is_empty() {
        batch = plan
            .types
            .keys()
            .map(|t| (t.clone(), poll.changes.clone()))
            .collect();
        handed = hand_over(env, &batch)?;
    }
    w.save()?;
    Ok(Once {
        poll,
        batch,
        handed,
    })
}

/// The JSON of each outcome: `{"type", "status", "id", "files"}`.
pub fn outcomes(batch: &[(String, Changes)], handed: &[Handed]) -> Vec<Value> {
    use crate::engine::Submitted;
    batch
        .iter()
        .zip(handed)
        .map(|((t, c), h)| {
            let status = match h {
                Handed::Skipped { .. } => "skipped",
                Handed::Submitted(Submitted::Queued { .. }) => "queued",
                Handed::Submitted(Submitted::Duplicate { .. }) => "duplicate",
                Handed::Submitted(Submitted::Dropped { .. }) => "dropped",
            };
            json!({"type": t, "status": status, "id": h.queued_id(), "files": c.len()})
        })
        .collect()
}

/// Run until a stop is requested (SIGINT, SIGTERM); `tick` is the argv of `bgrun tick`,
/// run every minute (for `bgrun start`).
pub fn run(
    env: &Env,
    w: &mut Watcher,
    plan: &Plan,
    tick: Option<Vec<OsString>>,
    sink: &mut dyn FnMut(Event),
) -> Result<Ended> {
    engine::install_stop_handlers();
    let _registration = procs::register(&env.state_dir, "watch")?;
    let mut pending: BTreeMap<String, Pending> = plan
        .types
        .iter()
        .map(|(t, d)| (t.clone(), Pending::new(*d)))
        .collect();
    let mut tracked: Vec<String> = Vec::new();
    let mut next_poll = Instant::now();
    let mut next_tick = Instant::now();
    let mut next_results = Instant::now();
    let mut polls = 0u64;
    while !engine::stop_requested() {
        let now = Instant::now();
        if now >= next_poll {
            polls += 1;
            let poll = w.poll()?;
            next_poll = (next_poll + plan.interval).max(now + plan.interval / 4);
            sink(Event::Polled {
                n: polls,
                poll: &poll,
                first: polls == 1,
                counts: w.counts(),
            });
            if !poll.changes.is_empty() {
                for p in pending.values_mut() {
                    p.add(&poll.changes, now);
                }
            }
            if (poll.baseline || !poll.changes.is_empty())
                && let Err(e) = w.save()
            {
                sink(Event::Warning(format!("{e:#}")));
            }
        }
        let now = Instant::now();
        let mut batch = Vec::new();
        for (t, p) in pending.iter_mut() {
            if p.due(now) {
                if w.settled(p.paths()) || p.capped(now) {
                    batch.push((t.clone(), p.take()));
                } else {
                    p.postpone(now);
                }
            }
        }
        if !batch.is_empty() && plan.enqueue {
            queue(env, &batch, &mut tracked, sink);
        }
        if !tracked.is_empty() && now >= next_results {
            next_results = now + Duration::from_millis(250);
            finished(env, &mut tracked, sink);
        }
        sink(Event::Turn { polls });
        if let Some(argv) = tick.as_ref().filter(|_| now >= next_tick) {
            next_tick = now + TICK_EVERY;
            sink(Event::Ticked(run_tick(env, argv)));
        }
        // Sleep until the next thing to do, waking often enough to see a stop request.
        let mut wake = next_poll;
        for p in pending.values() {
            if let Some(d) = p.deadline() {
                wake = wake.min(d);
            }
        }
        if !tracked.is_empty() {
            wake = wake.min(next_results);
        }
        if tick.is_some() {
            wake = wake.min(next_tick);
        }
        let nap = wake
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        if !nap.is_zero() {
            std::thread::sleep(nap);
        }
    }
    // Changes still waiting for their debounce are queued now: the snapshot saved below
    // counts them as seen, so leaving them would lose them.
    let batch: Vec<_> = pending
        .iter_mut()
        .filter(|(_, p)| !p.is_empty())
        .map(|(t, p)| (t.clone(), p.take()))
        .collect();
    if !batch.is_empty() && plan.enqueue {
        queue(env, &batch, &mut tracked, sink);
    }
    if let Err(e) = w.save() {
        sink(Event::Warning(format!("{e:#}")));
    }
    Ok(Ended {
        polls,
        running: tracked.len(),
        waiting: pending.values().filter(|p| !p.is_empty()).count(),
    })
}

/// Hand one task per (type, changes) to the engine; follow the ones now in the queue.
fn queue(
    env: &Env,
    batch: &[(String, Changes)],
    tracked: &mut Vec<String>,
    sink: &mut dyn FnMut(Event),
) {
    match hand_over(env, batch) {
        Ok(handed) => {
            tracked.extend(
                handed
                    .iter()
                    .filter_map(|h| h.queued_id().map(str::to_string)),
            );
            sink(Event::Queued {
                batch,
                handed: &handed,
            });
        }
        Err(e) => sink(Event::Warning(format!(
            "cannot enqueue: {}",
            error::render(&e)
        ))),
    }
}

fn hand_over(env: &Env, batch: &[(String, Changes)]) -> Result<Vec<Handed>> {
    let news: Vec<NewTask> = batch
        .iter()
        .map(|(t, c)| {
            let mut n = NewTask::of_type(t, "watch");
            n.context = context(c);
            n
        })
        .collect();
    engine::hand_over(env, &news)
}

/// The tasks of `tracked` that have a final result are shown and forgotten.
fn finished(env: &Env, tracked: &mut Vec<String>, sink: &mut dyn FnMut(Event)) {
    tracked.retain(|id| {
        let r = results::list(&env.state_dir, Some(id), 1)
            .ok()
            .and_then(|v| v.into_iter().next())
            .filter(|r| !r.will_retry);
        match r {
            Some(r) => {
                sink(Event::Finished(&r));
                false
            }
            None => true,
        }
    });
}

/// The scheduler's minute: `bgrun tick` as a child process, so that a failing tick (a bad
/// cron expression, a broken state file) is reported and the watcher goes on.
fn run_tick(env: &Env, argv: &[OsString]) -> Result<String, String> {
    let Some((exe, args)) = argv.split_first() else {
        return Err("cannot run `bgrun tick`: no command".into());
    };
    let out = std::process::Command::new(exe)
        .args(args)
        .current_dir(&env.repo)
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err(format!(
            "`bgrun tick` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run `bgrun tick`: {e}")),
    }
}

/// A task's context: the changed files as exact bytes (a string, or `{"hex": ..}` when
/// not UTF-8, like argv).
fn context(c: &Changes) -> Value {
    let mut v = json!({});
    for (k, list) in [
        ("created", &c.created),
        ("modified", &c.modified),
        ("deleted", &c.deleted),
    ] {
        let args: Vec<Arg> = list
            .iter()
            .take(CONTEXT_MAX_PATHS)
            .map(|p| Arg(p.clone()))
            .collect();
        v[k] = serde_json::to_value(args).unwrap_or(Value::Null);
        if list.len() > CONTEXT_MAX_PATHS {
            v[format!("{k}_truncated")] = json!(list.len() - CONTEXT_MAX_PATHS);
        }
    }
    v
}
