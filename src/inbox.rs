//! The terminal inbox: what background tasks concluded, waiting for the person's next git
//! command in the repository. The engine adds one JSON line per background result to
//! `<state>/inbox.jsonl` (a short summary made while the report is at hand); the next
//! `bgrun hook` prints the unread ones on stderr, one or two lines each, and empties the
//! file; `bgrun status` lists them without marking them read.
//!
//! The hook's cost when there is nothing to show is one `stat`; both sides hold an
//! exclusive `flock` on the file only for their one append or their read-and-truncate, so
//! no entry is lost or shown twice.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::results::TaskResult;

/// Past this size new entries are dropped (nobody has read the inbox for a long while).
const MAX_BYTES: u64 = 1 << 20;

/// One unread result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    #[serde(rename = "type")]
    pub task_type: String,
    pub status: String,
    /// The commit the task was about (from its hook context), abbreviated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// What it concluded, in one line (`1 new high finding: bandit B602 app/runner.py:10`).
    pub summary: String,
    /// A second line when there is a cause to quote (a failing test's message, the task's
    /// last line of output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub finished_at: String,
}

impl Entry {
    /// The lines printed for it (without a trailing newline).
    pub fn lines(&self) -> Vec<String> {
        let about = self
            .commit
            .as_deref()
            .map(|c| format!(" (your commit {c})"))
            .unwrap_or_default();
        let mut v = vec![format!(
            "bgrun: {} #{}{about}: {} — bgrun results {}",
            self.task_type, self.id, self.summary, self.id
        )];
        if let Some(d) = &self.detail {
            v.push(format!("bgrun:   {d}"));
        }
        v
    }
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("inbox.jsonl")
}

/// Is this result one the inbox reports? Background results only: not `bgrun run`'s
/// (the person saw it) and not one the person cancelled.
pub fn wanted(r: &TaskResult) -> bool {
    r.trigger != "run" && r.status != "cancelled" && !r.will_retry
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn rank(sev: &str) -> u8 {
    match sev {
        "critical" => 4,
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        _ => 0,
    }
}

fn first_line(s: &str, max: usize) -> String {
    let l = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if l.chars().count() > max {
        let mut t: String = l.chars().take(max - 1).collect();
        t.push('…');
        t
    } else {
        l.to_string()
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `file:line` of a finding or test.
fn loc(v: &Value) -> String {
    match v.get("line").and_then(Value::as_u64) {
        Some(l) => format!("{}:{l}", str_of(v, "file")),
        None => str_of(v, "file").to_string(),
    }
}

/// Summarize a result for the inbox.
pub fn entry_of(r: &TaskResult) -> Entry {
    let mut summary = String::new();
    let mut detail = None;
    if let Some(rep) = &r.report {
        let failures: Vec<&Value> = rep
            .pointer("/tests/failures")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let findings: Vec<&Value> = rep
            .get("findings")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        // With a baseline, only the new findings are news.
        let has_baseline = findings.iter().any(|f| f.get("baseline").is_some());
        let news: Vec<&Value> = findings
            .iter()
            .copied()
            .filter(|f| !has_baseline || str_of(f, "baseline") == "new")
            .collect();
        let new_word = if has_baseline { "new " } else { "" };
        if let Some(first) = failures.first() {
            summary = format!(
                "{} failed: {}",
                plural(failures.len(), "test", "tests"),
                str_of(first, "name")
            );
            let why = first_line(str_of(first, "message"), 160);
            if !why.is_empty() {
                detail = Some(why);
            }
        }
        if let Some(worst) = news.iter().map(|f| rank(str_of(f, "severity"))).max() {
            let top: Vec<&&Value> = news
                .iter()
                .filter(|f| rank(str_of(f, "severity")) == worst)
                .collect();
            let f = top[0];
            let sev = str_of(f, "severity");
            let more = news.len() - 1;
            let part = format!(
                "{} {new_word}{sev} {}: {} {} {}{}",
                top.len(),
                if top.len() == 1 {
                    "finding"
                } else {
                    "findings"
                },
                str_of(f, "tool"),
                str_of(f, "rule"),
                loc(f),
                if more > 0 {
                    format!(" (+{more} more)")
                } else {
                    String::new()
                }
            );
            summary = if summary.is_empty() {
                part
            } else {
                format!("{summary}; {part}")
            };
        } else if has_baseline && summary.is_empty() {
            summary = format!("no new findings ({} known)", findings.len());
        }
    }
    if summary.is_empty() {
        summary = match (&r.error, r.status.as_str()) {
            (Some(e), s) => format!("{s}: {e}"),
            (None, s) => s.to_string(),
        };
        if r.status != "succeeded"
            && r.report.is_none()
            && let Some(log) = &r.log
        {
            let tail = crate::runner::logs::tail(log, 4096);
            let last = tail.lines().rev().find(|l| !l.trim().is_empty());
            if let Some(l) = last {
                detail = Some(format!("| {}", first_line(l, 160)));
            }
        }
    } else if r.status != "succeeded" && !summary.contains("failed") {
        summary = format!("{}: {summary}", r.status);
    }
    let commit = r
        .context
        .get("commit")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(|c| c.chars().take(7).collect());
    Entry {
        id: r.id.clone(),
        task_type: r.task_type.clone(),
        status: r.status.as_str().to_string(),
        commit,
        summary,
        detail,
        finished_at: r.finished_at.clone(),
    }
}

fn lock(f: &File) {
    // SAFETY: flock on a descriptor we own; released when it is closed.
    unsafe {
        libc::flock(f.as_raw_fd(), libc::LOCK_EX);
    }
}

/// Add a result to the inbox (called by the engine for every result it records).
pub fn add(state_dir: &Path, r: &TaskResult) -> std::io::Result<()> {
    if !wanted(r) {
        return Ok(());
    }
    let mut line = serde_json::to_vec(&entry_of(r))?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path(state_dir))?;
    lock(&f);
    if f.metadata()?.len() > MAX_BYTES {
        return Ok(());
    }
    f.write_all(&line)
}

fn parse(bytes: &[u8]) -> Vec<Entry> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

/// The unread entries, oldest first, left unread (`bgrun status`).
pub fn peek(state_dir: &Path) -> Vec<Entry> {
    std::fs::read(path(state_dir))
        .map(|b| parse(&b))
        .unwrap_or_default()
}

/// Take the unread entries and mark them read (empty the file).
pub fn take(state_dir: &Path) -> Vec<Entry> {
    let p = path(state_dir);
    // The cheap case first: nothing there.
    if std::fs::metadata(&p).map(|m| m.len() == 0).unwrap_or(true) {
        return Vec::new();
    }
    let Ok(mut f) = std::fs::OpenOptions::new().read(true).write(true).open(&p) else {
        return Vec::new();
    };
    lock(&f);
    let mut bytes = Vec::new();
    if f.seek(SeekFrom::Start(0)).is_err() || f.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    if f.set_len(0).is_err() {
        // Not emptied: show nothing rather than the same entries again and again.
        return Vec::new();
    }
    parse(&bytes)
}

/// The hook's call: print the unread results on stderr and mark them read.
pub fn show_unread(state_dir: &Path) {
    let entries = take(state_dir);
    if entries.is_empty() {
        return;
    }
    let mut err = std::io::stderr().lock();
    for e in &entries {
        for l in e.lines() {
            let _ = writeln!(err, "{l}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(report: Option<Value>, status: &str) -> TaskResult {
        serde_json::from_value(json!({
            "id": "27", "type": "security_scan", "name": "security_scan", "status": status,
            "exit_code": 0, "attempt": 1, "trigger": "hook:post-commit",
            "enqueued_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:01Z",
            "duration_s": 1.0, "queue_s": 0.0,
            "context": {"commit": "a1b2c3d4e5f6"},
            "report": report,
        }))
        .unwrap()
    }

    #[test]
    fn a_new_high_finding_reads_as_in_the_issue() {
        let rep = json!({"findings": [
            {"tool": "bandit", "rule": "B602", "severity": "high", "file": "app/runner.py", "line": 10, "baseline": "new"},
            {"tool": "bandit", "rule": "B101", "severity": "critical", "file": "a.py", "line": 1, "baseline": "unchanged"}
        ]});
        let e = entry_of(&result(Some(rep), "succeeded"));
        assert_eq!(
            e.lines(),
            vec![
                "bgrun: security_scan #27 (your commit a1b2c3d): 1 new high finding: bandit B602 app/runner.py:10 — bgrun results 27"
            ]
        );
    }

    #[test]
    fn failing_tests_quote_the_cause_on_a_second_line() {
        let rep = json!({"findings": [], "tests": {"failures": [
            {"name": "t.py::test_x", "message": "AssertionError: off\nmore"}
        ]}});
        let e = entry_of(&result(Some(rep), "failed"));
        assert_eq!(e.summary, "1 test failed: t.py::test_x");
        assert_eq!(e.detail.as_deref(), Some("AssertionError: off"));
    }

    #[test]
    fn take_empties_and_peek_does_not() {
        let d = tempfile::tempdir().unwrap();
        add(d.path(), &result(None, "succeeded")).unwrap();
        assert_eq!(peek(d.path()).len(), 1);
        assert_eq!(take(d.path()).len(), 1);
        assert!(take(d.path()).is_empty());
        let mut r = result(None, "succeeded");
        r.trigger = "run".into();
        add(d.path(), &r).unwrap();
        assert!(peek(d.path()).is_empty(), "foreground runs are not news");
    }
}
