//! The watch session's live terminal view (`bgrun watch`, `bgrun start`): each poll's
//! changes, each task queued and its outcome when its result appears, the `--json` event of
//! each turn, the `--once` summary and the closing line. It shows the typed events of
//! `triggers::watch::session`; it decides nothing.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::engine::{Handed, Submitted};
use crate::output::Output;
use crate::results::TaskResult;
use crate::triggers::watch::session::{self, Ended, Event, Once, Plan};
use crate::triggers::watch::{Changes, Loaded, Poll};

/// In text mode a poll prints at most this many change lines (all of them with -v).
const LINES_PER_POLL: usize = 20;

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

/// The terminal side of one session: counters and lines.
pub struct View<'a> {
    out: &'a Output,
    changes: usize,
    queued: usize,
    ok: usize,
    failed: usize,
    /// `--json`: the event this turn of the loop gathered.
    event: Value,
}

impl<'a> View<'a> {
    pub fn new(out: &'a Output) -> View<'a> {
        View {
            out,
            changes: 0,
            queued: 0,
            ok: 0,
            failed: 0,
            event: json!({}),
        }
    }

    /// How loading the persisted snapshot went (`took`: how long it took).
    pub fn loaded(&self, loaded: &Loaded, took: Duration) {
        match loaded {
            Loaded::Files(n) => {
                if self.out.level > 0 {
                    self.out.say(format!(
                        "loaded the snapshot of {n} files in {:.1} ms",
                        took.as_secs_f64() * 1e3
                    ));
                }
            }
            Loaded::Missing => {}
            Loaded::Stale => self.out.warn(
                "the watch snapshot was taken with other paths/exclude_paths/gitignore settings: taking a new baseline",
            ),
            Loaded::Damaged(why) => self.out.warn(format!(
                "ignoring the watch snapshot ({why}): taking a new baseline"
            )),
        }
    }

    /// One step of the running session (`root` watched, `start`: `bgrun start`).
    pub fn event(&mut self, e: Event, root: &Path, plan: &Plan, start: bool) {
        match e {
            Event::Polled {
                n,
                poll,
                first,
                counts,
            } => {
                self.poll_notes(poll);
                if first {
                    self.started(root, counts, plan, poll, start);
                } else {
                    self.verbose_poll(n, poll);
                }
                if !poll.changes.is_empty() {
                    self.changes += poll.changes.len();
                    if self.out.json {
                        self.event = poll_json(n, poll);
                    } else {
                        self.print_changes(&poll.changes);
                    }
                }
            }
            Event::Queued { batch, handed } => self.queued(batch, handed),
            Event::Finished(r) => self.finished(r),
            Event::Ticked(Ok(out)) => {
                for line in out.lines() {
                    self.out.say(format!("{} tick: {line}", clock()));
                }
            }
            Event::Ticked(Err(why)) | Event::Warning(why) => self.out.warn(why),
            Event::Turn { polls } => self.flush(polls),
        }
    }

    /// `--once`: the poll, the tasks queued and one closing line (or one JSON object);
    /// `(files, dirs)`: what is watched now.
    pub fn once(&mut self, once: &Once, (files, dirs): (usize, usize)) {
        let Once {
            poll,
            batch,
            handed,
        } = once;
        self.poll_notes(poll);
        self.verbose_poll(1, poll);
        if !self.out.json {
            self.print_changes(&poll.changes);
        }
        self.queued(batch, handed);
        let enqueued = self.event["enqueued"].take();
        let enqueued = enqueued.as_array().cloned().unwrap_or_default();
        if self.out.json {
            let mut v = poll_json(1, poll);
            v["baseline"] = json!(poll.baseline);
            v["enqueued"] = json!(enqueued);
            println!("{v}");
        } else if poll.baseline {
            self.out.say(format!(
                "no previous snapshot: recorded {files} watched files in {dirs} folders; the next run reports changes against it"
            ));
        } else {
            self.out.say(format!(
                "{} changed ({} created, {} modified, {} deleted) among {files} watched files; {} task(s) queued",
                poll.changes.len(),
                poll.changes.created.len(),
                poll.changes.modified.len(),
                poll.changes.deleted.len(),
                enqueued.len()
            ));
        }
    }

    fn poll_notes(&self, poll: &Poll) {
        for n in &poll.notes {
            if !n.minor || self.out.level > 0 {
                self.out
                    .warn(format!("{}: {} (reported once)", shown(&n.path), n.what));
            }
        }
    }

    fn started(
        &self,
        root: &Path,
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
        self.out.say(format!(
            "{} {} {}: {files} files in {dirs} folders, every {}s; {on_change}{}",
            clock(),
            self.out
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
            self.out.say("changes since the last snapshot:");
        }
    }

    fn verbose_poll(&self, n: u64, p: &Poll) {
        if self.out.level > 0 {
            self.out.say(format!(
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
        let o = self.out;
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
            if matches!(h, Handed::Submitted(Submitted::Queued { .. })) {
                self.queued += 1;
            }
            let line = match h {
                Handed::Submitted(Submitted::Dropped { result }) => format!(
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
        let o = self.out;
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
        if self.out.json && event.as_object().is_some_and(|o| !o.is_empty()) {
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
        let o = self.out;
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

    /// The closing line of a session stopped by a signal.
    pub fn summary(&self, e: &Ended) {
        self.out.say(format!(
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
