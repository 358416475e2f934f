//! `bgrun watch --poll` and `bgrun start` (issue 8): builds the polling watcher and the
//! plan, runs the watch session (`triggers::watch::session`: polling, debounce, settling,
//! tracking, the minute tick) and shows its events: each poll's changes, each task queued
//! and its outcome when its result appears.

use serde_json::{Value, json};

use anyhow::Result;

use crate::cli::WatchArgs;
use crate::engine::Handed;
use crate::error;
use crate::results::TaskResult;
use crate::triggers::watch::session::{self, Ended, Event, Plan};
use crate::triggers::watch::{Changes, Loaded, Options, Poll, Watcher};
use crate::{Ctx, Exit};

/// In text mode a poll prints at most this many change lines (all of them with -v).
const LINES_PER_POLL: usize = 20;

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
    let (plan, warnings) = Plan::new(&ctx.config, args.interval, args.debounce)?;
    for w in warnings {
        ctx.out.warn(w);
    }
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
    let t = std::time::Instant::now();
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
        event: json!({}),
    };
    if args.once {
        return once(&mut ui, &mut w, &plan);
    }
    let tick = if start {
        Some(ctx.launcher.argv(["tick"])?)
    } else {
        None
    };
    let root = w.root().to_path_buf();
    let ended = session::run(ctx, &mut w, &plan, tick, &mut |e| match e {
        Event::Polled {
            n,
            poll,
            first,
            counts,
        } => {
            ui.poll_notes(poll);
            if first {
                ui.started(&root, counts, &plan, poll, start);
            } else {
                ui.verbose_poll(n, poll);
            }
            if !poll.changes.is_empty() {
                ui.changes += poll.changes.len();
                if ctx.out.json {
                    ui.event = poll_json(n, poll);
                } else {
                    ui.print_changes(&poll.changes);
                }
            }
        }
        Event::Queued { batch, handed } => ui.queued(batch, handed),
        Event::Finished(r) => ui.finished(r),
        Event::Ticked(Ok(out)) => {
            for line in out.lines() {
                ctx.out.say(format!("{} tick: {line}", clock()));
            }
        }
        Event::Ticked(Err(why)) | Event::Warning(why) => ctx.out.warn(why),
        Event::Turn { polls } => ui.flush(polls),
    })?;
    ui.summary(&ended);
    Ok(Exit::Ok)
}

/// `--once`: compare with the persisted snapshot, enqueue at once (no debounce), save.
fn once(ui: &mut Ui, w: &mut Watcher, plan: &Plan) -> Result<Exit> {
    let session::Once {
        poll,
        batch,
        handed,
    } = session::once(ui.ctx, w, plan)?;
    ui.poll_notes(&poll);
    ui.verbose_poll(1, &poll);
    if !ui.ctx.out.json {
        ui.print_changes(&poll.changes);
    }
    ui.queued(&batch, &handed);
    let enqueued = ui.event["enqueued"].take();
    let enqueued = enqueued.as_array().cloned().unwrap_or_default();
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

/// The terminal side: counters and lines.
struct Ui<'a> {
    ctx: &'a Ctx,
    changes: usize,
    queued: usize,
    ok: usize,
    failed: usize,
    /// `--json`: the event this turn of the loop gathered.
    event: Value,
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

    fn started(
        &self,
        root: &std::path::Path,
        (files, dirs): (usize, usize),
        s: &Plan,
        poll: &Poll,
        start: bool,
    ) {
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
            root.display(),
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

    /// A queued task's final result: a line, or a part of this turn's JSON event.
    fn finished(&mut self, r: &TaskResult) {
        let v = json!({
            "id": r.id, "type": r.task_type, "status": r.status,
            "exit_code": r.exit_code, "duration_s": r.duration_s,
            "findings": r.findings,
        });
        match self.event.get_mut("finished").and_then(Value::as_array_mut) {
            Some(list) => list.push(v),
            None => self.event["finished"] = json!([v]),
        }
        self.outcome(r);
    }

    /// Tasks handed over: a line each (and the JSON of each in this turn's event).
    fn queued(&mut self, batch: &[(String, Changes)], handed: &[Handed]) {
        let list = session::outcomes(batch, handed);
        for (e, h) in list.iter().zip(handed) {
            if matches!(
                h,
                Handed::Submitted(crate::engine::Submitted::Queued { .. })
            ) {
                self.queued += 1;
            }
            let line = match h {
                Handed::Submitted(crate::engine::Submitted::Dropped { result }) => format!(
                    "dropped: {}",
                    result.error.clone().unwrap_or_else(|| "queue full".into())
                ),
                _ => String::new(),
            };
            self.queued_line_with(e, &line);
        }
        self.event["enqueued"] = json!(list);
    }

    /// `HH:MM:SS → TYPE queued as #ID (N files)`.
    fn queued_line_with(&self, e: &Value, dropped: &str) {
        let o = &self.ctx.out;
        let id = e["id"].as_str().unwrap_or_default();
        let line = match e["status"].as_str() {
            Some("queued") => format!("queued as #{id}"),
            Some("duplicate") => format!("already queued as #{id}"),
            Some("dropped") if !dropped.is_empty() => dropped.to_string(),
            Some("dropped") => "dropped: queue full".to_string(),
            _ => "skipped: its task type is disabled".to_string(),
        };
        let n = e["files"].as_u64().unwrap_or(0);
        o.say(format!(
            "{} {} {} {line} ({n} file{})",
            clock(),
            o.paint("36", "→"),
            e["type"].as_str().unwrap_or_default(),
            if n == 1 { "" } else { "s" }
        ));
    }

    /// `--json`: one line per turn that had something to say.
    fn flush(&mut self, polls: u64) {
        let mut event = std::mem::replace(&mut self.event, json!({}));
        if self.ctx.out.json && event.as_object().is_some_and(|o| !o.is_empty()) {
            if event.get("created").is_none() {
                for k in ["created", "modified", "deleted"] {
                    event[k] = json!([]);
                }
                event["poll"] = json!(polls);
            }
            println!("{event}");
        }
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

    fn summary(&self, e: &Ended) {
        self.ctx.out.say(format!(
            "{} stopped after {} polls: {} changes, {} tasks queued ({} succeeded, {} failed, {} still running){}; snapshot saved",
            clock(),
            e.polls,
            self.changes,
            self.queued,
            self.ok,
            self.failed,
            e.running,
            if e.waiting > 0 {
                format!(", {} task type(s) had changes still in their debounce", e.waiting)
            } else {
                String::new()
            }
        ));
    }
}
