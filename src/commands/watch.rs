//! `bgrun watch --poll` and `bgrun start` (issue 8): glue the polling watcher
//! (`triggers::watch`) to the engine. Each poll's changes are printed and folded into one
//! pending set per task type; when a type's debounce has passed and its files have settled
//! (re-stat'ed), one task of that type is enqueued (trigger `watch`) with the changed files in
//! its context, and a background drainer runs it. The outcome of every task enqueued here is
//! printed when its result appears. `start` also runs the scheduler's tick every minute.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};

use crate::cli::WatchArgs;
use crate::engine::{self, NewTask, Submitted};
use crate::error;
use crate::results::{self, TaskResult};
use crate::state::procs;
use crate::state::task::Arg;
use crate::triggers::watch::debounce::Pending;
use crate::triggers::watch::{Changes, Loaded, Options, Poll, Watcher};
use crate::{Ctx, Exit};

/// At most this many paths per list go into a task's context (the rest are counted).
const CONTEXT_MAX_PATHS: usize = 5000;
/// In text mode a poll prints at most this many change lines (all of them with -v).
const LINES_PER_POLL: usize = 20;
const TICK_EVERY: Duration = Duration::from_secs(60);

struct Settings {
    interval: Duration,
    /// Task type -> its debounce.
    types: BTreeMap<String, Duration>,
    enqueue: bool,
}

fn seconds(v: f64, what: &str, min: f64) -> Result<Duration> {
    if !v.is_finite() || v < min || v > 86_400.0 {
        return Err(error::usage(format!(
            "{what}: {v} is out of range (give seconds, at least {min} and at most 86400)"
        )));
    }
    Ok(Duration::from_secs_f64(v))
}

fn settings(ctx: &Ctx, args: &WatchArgs) -> Result<Settings> {
    let fw = &ctx.config.triggers.file_watch;
    let interval = match args.interval {
        Some(v) => seconds(v, "--interval", 0.05)?,
        None => seconds(
            fw.check_interval_seconds,
            "triggers.file_watch.check_interval_seconds",
            0.05,
        )?,
    };
    let flag = args
        .debounce
        .map(|v| seconds(v, "--debounce", 0.0))
        .transpose()?;
    let mut types = BTreeMap::new();
    for name in ctx.config.watch_task_types() {
        match ctx.config.task_types.get(&name) {
            Some(t) if t.enabled => {
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
            Some(_) => ctx.out.warn(format!(
                "{}: file changes will not enqueue it",
                ctx.config.disabled_type(&name).unwrap_or_default()
            )),
            None => ctx.out.warn(format!(
                "triggers.file_watch.task_types: unknown task type {name:?}: skipped"
            )),
        }
    }
    if !fw.enabled {
        ctx.out
            .warn("triggers.file_watch.enabled is false: changes are shown, no task is enqueued");
    }
    Ok(Settings {
        interval,
        types,
        enqueue: fw.enabled,
    })
}

pub fn run(ctx: &Ctx, args: WatchArgs, start: bool) -> Result<Exit> {
    if start && args.once {
        return Err(error::usage(
            "`bgrun start` runs until stopped; for one comparison use `bgrun watch --once`",
        ));
    }
    if args.full_hash_every == Some(0) {
        return Err(error::usage(
            "--full-hash-every: give a number of polls, at least 1",
        ));
    }
    let s = settings(ctx, &args)?;
    let fw = &ctx.config.triggers.file_watch;
    let opts = Options {
        root: ctx.repo.clone(),
        state_dir: ctx.state_dir.clone(),
        paths: fw.paths.clone(),
        exclude: fw.exclude_paths.clone(),
        respect_gitignore: fw.respect_gitignore && !args.no_gitignore,
        full_hash_every: args.full_hash_every.unwrap_or(0),
        // BGRUN_WATCH_THREADS=1 walks on one thread (for comparison in the benchmark).
        threads: match std::env::var("BGRUN_WATCH_THREADS").ok().as_deref() {
            Some("1") => 1,
            _ => std::thread::available_parallelism().map_or(1, |n| n.get().min(2)),
        },
    };
    let mut w = Watcher::new(opts).map_err(|e| error::usage(format!("{e:#}")))?;
    let t = Instant::now();
    let loaded = w.load();
    let load_time = t.elapsed();
    match &loaded {
        Loaded::Files(n) => {
            if ctx.out.level > 0 {
                ctx.out.say(format!(
                    "loaded the snapshot of {n} files in {:.1} ms",
                    load_time.as_secs_f64() * 1e3
                ));
            }
        }
        Loaded::Missing => {}
        Loaded::Stale => ctx.out.warn(
            "the watch snapshot was taken with other paths/exclude_paths/gitignore settings: taking a new baseline",
        ),
        Loaded::Damaged(why) => ctx.out.warn(format!(
            "ignoring the watch snapshot ({why}): taking a new baseline"
        )),
    }
    let mut ui = Ui {
        ctx,
        changes: 0,
        queued: 0,
        ok: 0,
        failed: 0,
    };
    if args.once {
        return once(&mut ui, &mut w, &s);
    }
    watch_loop(&mut ui, &mut w, &s, start)
}

/// `--once`: compare with the persisted snapshot, enqueue at once (no debounce), save.
fn once(ui: &mut Ui, w: &mut Watcher, s: &Settings) -> Result<Exit> {
    let poll = w.poll()?;
    ui.poll_notes(&poll);
    ui.verbose_poll(1, &poll);
    if !ui.ctx.out.json {
        ui.print_changes(&poll.changes);
    }
    let mut enqueued = Vec::new();
    if s.enqueue && !poll.changes.is_empty() && !s.types.is_empty() {
        let batch: Vec<(String, Changes)> = s
            .types
            .keys()
            .map(|t| (t.clone(), poll.changes.clone()))
            .collect();
        enqueued = ui.submit(&batch)?;
    }
    w.save()?;
    if ui.ctx.out.json {
        let mut v = poll_json(1, &poll);
        v["baseline"] = json!(poll.baseline);
        v["enqueued"] = json!(enqueued);
        println!("{v}");
    } else {
        let (files, dirs) = w.counts();
        if poll.baseline {
            ui.ctx.out.say(format!(
                "no previous snapshot: recorded {files} watched files in {dirs} folders; the next run reports changes against it"
            ));
        } else {
            ui.ctx.out.say(format!(
                "{} changed ({} created, {} modified, {} deleted) among {files} watched files; {} task(s) queued",
                poll.changes.len(),
                poll.changes.created.len(),
                poll.changes.modified.len(),
                poll.changes.deleted.len(),
                enqueued.len()
            ));
        }
    }
    Ok(Exit::Ok)
}

fn watch_loop(ui: &mut Ui, w: &mut Watcher, s: &Settings, start: bool) -> Result<Exit> {
    let ctx = ui.ctx;
    engine::install_stop_handlers();
    let _registration = procs::register(&ctx.state_dir, "watch")?;
    let mut pending: BTreeMap<String, Pending> = s
        .types
        .iter()
        .map(|(t, d)| (t.clone(), Pending::new(*d)))
        .collect();
    let mut tracked: Vec<(String, String)> = Vec::new();
    let mut next_poll = Instant::now();
    let mut next_tick = Instant::now();
    let mut next_results = Instant::now();
    let mut polls = 0u64;
    while !engine::stop_requested() {
        let now = Instant::now();
        let mut event = json!({});
        if now >= next_poll {
            polls += 1;
            let poll = w.poll()?;
            next_poll = (next_poll + s.interval).max(now + s.interval / 4);
            ui.poll_notes(&poll);
            if polls == 1 {
                ui.started(w, s, &poll, start);
            } else {
                ui.verbose_poll(polls, &poll);
            }
            if !poll.changes.is_empty() {
                ui.changes += poll.changes.len();
                for p in pending.values_mut() {
                    p.add(&poll.changes, now);
                }
                if ctx.out.json {
                    event = poll_json(polls, &poll);
                } else {
                    ui.print_changes(&poll.changes);
                }
            }
            if (poll.baseline || !poll.changes.is_empty())
                && let Err(e) = w.save()
            {
                ctx.out.warn(format!("{e:#}"));
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
        if !batch.is_empty() && s.enqueue {
            match ui.submit(&batch) {
                Ok(q) => {
                    for e in &q {
                        if let (Some(id), Some(t)) = (e["id"].as_str(), e["type"].as_str()) {
                            tracked.push((id.to_string(), t.to_string()));
                        }
                    }
                    event["enqueued"] = json!(q);
                }
                Err(e) => ctx
                    .out
                    .warn(format!("cannot enqueue: {}", error::render(&e))),
            }
        }
        if !tracked.is_empty() && now >= next_results {
            next_results = now + Duration::from_millis(250);
            let done = ui.finished(&mut tracked);
            if !done.is_empty() {
                event["finished"] = json!(done);
            }
        }
        if ctx.out.json && event.as_object().is_some_and(|o| !o.is_empty()) {
            if event.get("created").is_none() {
                for k in ["created", "modified", "deleted"] {
                    event[k] = json!([]);
                }
                event["poll"] = json!(polls);
            }
            println!("{event}");
        }
        if start && now >= next_tick {
            next_tick = now + TICK_EVERY;
            tick(ctx);
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
        if start {
            wake = wake.min(next_tick);
        }
        let nap = wake
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        if !nap.is_zero() {
            std::thread::sleep(nap);
        }
    }
    // Changes still waiting for their debounce are enqueued now: the snapshot saved below
    // counts them as seen, so leaving them would lose them.
    let batch: Vec<_> = pending
        .iter_mut()
        .filter(|(_, p)| !p.is_empty())
        .map(|(t, p)| (t.clone(), p.take()))
        .collect();
    if !batch.is_empty() && s.enqueue {
        match ui.submit(&batch) {
            Ok(q) => {
                for e in &q {
                    if let (Some(id), Some(t)) = (e["id"].as_str(), e["type"].as_str()) {
                        tracked.push((id.to_string(), t.to_string()));
                    }
                }
            }
            Err(e) => ctx
                .out
                .warn(format!("cannot enqueue: {}", error::render(&e))),
        }
    }
    if let Err(e) = w.save() {
        ctx.out.warn(format!("{e:#}"));
    }
    ui.summary(polls, &tracked, &pending);
    Ok(Exit::Ok)
}

/// The scheduler's minute: `bgrun tick` as a child process, so that a failing tick (a bad
/// cron expression, a broken state file) is reported and the watcher goes on.
fn tick(ctx: &Ctx) {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            ctx.out.warn(format!("cannot run `bgrun tick`: {e}"));
            return;
        }
    };
    let out = std::process::Command::new(exe)
        .args(ctx.child_args())
        .arg("tick")
        .current_dir(&ctx.repo)
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            for line in String::from_utf8_lossy(&o.stdout).lines() {
                ctx.out.say(format!("{} tick: {line}", clock()));
            }
        }
        Ok(o) => ctx.out.warn(format!(
            "`bgrun tick` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => ctx.out.warn(format!("cannot run `bgrun tick`: {e}")),
    }
}

fn clock() -> String {
    crate::timefmt::clock()
}

/// A path for a terminal line: lossy, with control characters escaped.
fn shown(p: &[u8]) -> String {
    let s = String::from_utf8_lossy(p);
    if s.chars().any(char::is_control) {
        s.escape_debug().to_string()
    } else {
        s.into_owned()
    }
}

fn lossy(list: &[Vec<u8>]) -> Vec<String> {
    list.iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

/// The JSON object of one poll (paths lossy, as CLI.md says).
fn poll_json(n: u64, p: &Poll) -> Value {
    json!({
        "poll": n,
        "created": lossy(&p.changes.created),
        "modified": lossy(&p.changes.modified),
        "deleted": lossy(&p.changes.deleted),
        "elapsed_ms": (p.elapsed.as_secs_f64() * 1e4).round() / 10.0,
    })
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

/// The terminal side: counters and lines.
struct Ui<'a> {
    ctx: &'a Ctx,
    changes: usize,
    queued: usize,
    ok: usize,
    failed: usize,
}

impl Ui<'_> {
    fn poll_notes(&self, poll: &Poll) {
        for n in &poll.notes {
            if !n.minor || self.ctx.out.level > 0 {
                self.ctx
                    .out
                    .warn(format!("{}: {} (reported once)", shown(&n.path), n.what));
            }
        }
    }

    fn started(&self, w: &Watcher, s: &Settings, poll: &Poll, start: bool) {
        let (files, dirs) = w.counts();
        let types: Vec<&str> = s.types.keys().map(String::as_str).collect();
        let on_change = if types.is_empty() || !s.enqueue {
            "nothing is enqueued".to_string()
        } else {
            format!("on change: {}", types.join(", "))
        };
        self.ctx.out.say(format!(
            "{} {} {}: {files} files in {dirs} folders, every {}s; {on_change}{}",
            clock(),
            self.ctx
                .out
                .paint("1", if start { "bgrun start" } else { "watching" }),
            w.root().display(),
            s.interval.as_secs_f64(),
            if start {
                "; schedules every minute"
            } else {
                ""
            },
        ));
        self.verbose_poll(1, poll);
        if !poll.baseline && !poll.changes.is_empty() {
            self.ctx.out.say("changes since the last snapshot:");
        }
    }

    fn verbose_poll(&self, n: u64, p: &Poll) {
        if self.ctx.out.level > 0 {
            self.ctx.out.say(format!(
                "poll {n}: {} files, {} folders ({} listed, {} hashed) in {:.1} ms",
                p.stats.files,
                p.stats.dirs,
                p.stats.dirs_listed,
                p.stats.hashed,
                p.elapsed.as_secs_f64() * 1e3
            ));
        }
    }

    fn print_changes(&self, c: &Changes) {
        let o = &self.ctx.out;
        let limit = if o.level > 0 {
            usize::MAX
        } else {
            LINES_PER_POLL
        };
        let all = c
            .created
            .iter()
            .map(|p| ("32", '+', p))
            .chain(c.modified.iter().map(|p| ("33", '~', p)))
            .chain(c.deleted.iter().map(|p| ("31", '-', p)));
        let t = clock();
        for (i, (code, sign, p)) in all.enumerate() {
            if i == limit {
                o.say(format!(
                    "{t}   ... and {} more ({} created, {} modified, {} deleted in all)",
                    c.len() - limit,
                    c.created.len(),
                    c.modified.len(),
                    c.deleted.len()
                ));
                break;
            }
            o.say(format!(
                "{t} {} {}",
                o.paint(code, &sign.to_string()),
                shown(p)
            ));
        }
    }

    /// Enqueue one task per (type, changes), start a drainer; the JSON of each outcome.
    fn submit(&mut self, batch: &[(String, Changes)]) -> Result<Vec<Value>> {
        let news: Vec<NewTask> = batch
            .iter()
            .map(|(t, c)| {
                let mut n = NewTask::of_type(t, "watch");
                n.context = context(c);
                n
            })
            .collect();
        let subs = engine::submit(self.ctx, &news)?;
        let mut out = Vec::new();
        let mut any = false;
        let o = &self.ctx.out;
        for ((t, c), sub) in batch.iter().zip(subs) {
            let (status, id, line) = match &sub {
                Submitted::Queued { id, .. } => {
                    any = true;
                    self.queued += 1;
                    ("queued", Some(id.clone()), format!("queued as #{id}"))
                }
                Submitted::Duplicate { id } => (
                    "duplicate",
                    Some(id.clone()),
                    format!("already queued as #{id}"),
                ),
                Submitted::Dropped { result } => (
                    "dropped",
                    None,
                    format!(
                        "dropped: {}",
                        result.error.clone().unwrap_or_else(|| "queue full".into())
                    ),
                ),
            };
            o.say(format!(
                "{} {} {t} {line} ({} file{})",
                clock(),
                o.paint("36", "→"),
                c.len(),
                if c.len() == 1 { "" } else { "s" }
            ));
            out.push(json!({"type": t, "status": status, "id": id, "files": c.len()}));
        }
        if any {
            engine::ensure_drainer(self.ctx)?;
        }
        Ok(out)
    }

    /// Print the tasks of `tracked` that have a final result; remove them.
    fn finished(&mut self, tracked: &mut Vec<(String, String)>) -> Vec<Value> {
        let mut done = Vec::new();
        tracked.retain(|(id, _)| {
            let r = results::list(&self.ctx.state_dir, Some(id), 1)
                .ok()
                .and_then(|v| v.into_iter().next())
                .filter(|r| !r.will_retry);
            match r {
                Some(r) => {
                    self.outcome(&r);
                    done.push(json!({
                        "id": r.id, "type": r.task_type, "status": r.status,
                        "exit_code": r.exit_code, "duration_s": r.duration_s,
                        "findings": r.findings,
                    }));
                    false
                }
                None => true,
            }
        });
        done
    }

    fn outcome(&mut self, r: &TaskResult) {
        let o = &self.ctx.out;
        let ok = r.status == "succeeded";
        if ok {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
        let mut line = format!(
            "{} {} {} #{} {} in {}",
            clock(),
            if ok {
                o.paint("32", "✓")
            } else {
                o.paint("31", "✗")
            },
            r.task_type,
            r.id,
            if ok {
                o.paint("32", r.status.as_str())
            } else {
                o.paint("31", r.status.as_str())
            },
            crate::timefmt::human_duration(r.duration_s)
        );
        if let Some(f) = r.findings.as_ref().filter(|f| f.total() > 0) {
            line.push_str(&format!(
                " ({} findings: {} critical, {} high)",
                f.total(),
                f.critical,
                f.high
            ));
        }
        if let (false, Some(e)) = (ok, &r.error) {
            line.push_str(&format!(": {e}"));
        }
        o.say(line);
    }

    fn summary(
        &self,
        polls: u64,
        tracked: &[(String, String)],
        pending: &BTreeMap<String, Pending>,
    ) {
        let waiting: usize = pending.values().filter(|p| !p.is_empty()).count();
        self.ctx.out.say(format!(
            "{} stopped after {polls} polls: {} changes, {} tasks queued ({} succeeded, {} failed, {} still running){}; snapshot saved",
            clock(),
            self.changes,
            self.queued,
            self.ok,
            self.failed,
            tracked.len(),
            if waiting > 0 {
                format!(", {waiting} task type(s) had changes still in their debounce")
            } else {
                String::new()
            }
        ));
    }
}
