//! Results and metrics on disk: one JSON result per execution, as one line of
//! `<state>/results.jsonl` (an analyzer's full report stays in its own file under
//! `<state>/reports/`, named by `report_path`), and one metrics sample per execution in
//! `<state>/metrics.jsonl`. Lines are appended whole (one `write` on an O_APPEND file, so
//! concurrent writers never interleave and nothing is half-written but a torn last line after
//! a crash, which readers skip); creating no file per execution keeps a drain of many small
//! tasks cheap. Appends and the retention rewrite both happen under the state lock, so the
//! rewrite (temp, fsync, rename) cannot lose an append.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::state::store::write_atomic;
use crate::timefmt;

pub use crate::model::{Counts as Findings, Sample, TaskResult};

/// The findings of a report marked `"baseline": "new"`, counted by severity (all of them when
/// the report was not compared with a baseline: then everything is new).
pub fn new_findings(report: &Value) -> Findings {
    if report.get("baseline").is_none_or(Value::is_null) {
        return Findings::from_report(report);
    }
    let mut only_new = report.clone();
    if let Some(Value::Array(items)) = only_new.get_mut("findings") {
        items.retain(|f| f.get("baseline").and_then(Value::as_str) == Some("new"));
    }
    Findings::from_report(&only_new)
}

/// For `--new-only`: each result's findings become the count of its report's new ones.
pub fn count_only_new(rs: &mut [TaskResult]) {
    for r in rs {
        if let Some(rep) = stored_report(r) {
            r.findings = Some(new_findings(&rep));
        }
    }
}

/// A result's analyzer report: inlined, else read from its file under `<state>/reports/`.
pub fn stored_report(r: &TaskResult) -> Option<Value> {
    r.report.clone().or_else(|| {
        let p = r.report_path.as_ref()?;
        serde_json::from_slice(&std::fs::read(p).ok()?).ok()
    })
}

/// Reports read for the report's new-vs-fixed chart (the newest runs).
const BASELINE_RUNS: usize = 200;

/// Per analyzer run, oldest first, of the newest [`BASELINE_RUNS`] with a stored report that
/// has baseline data: (finished at, new findings, fixed findings). `rs` is newest first.
pub fn baseline_runs(rs: &[TaskResult]) -> Vec<(f64, u64, u64)> {
    let mut runs: Vec<(f64, u64, u64)> = rs
        .iter()
        .filter(|r| r.report_path.is_some())
        .take(BASELINE_RUNS)
        .filter_map(|r| {
            let (new, fixed) = new_and_fixed(&stored_report(r)?)?;
            Some((r.finished_ts(), new, fixed))
        })
        .collect();
    runs.reverse();
    runs
}

/// The new and fixed findings of a report, when it has baseline data.
fn new_and_fixed(rep: &Value) -> Option<(u64, u64)> {
    let findings = rep.get("findings").and_then(Value::as_array);
    let has = findings.is_some_and(|f| f.iter().any(|x| x.get("baseline").is_some()))
        || rep.get("fixed").is_some();
    if !has {
        return None;
    }
    let new = findings
        .into_iter()
        .flatten()
        .filter(|f| f.get("baseline").and_then(Value::as_str) == Some("new"))
        .count() as u64;
    let fixed = rep
        .get("fixed")
        .and_then(Value::as_array)
        .map_or(0, |f| f.len() as u64);
    Some((new, fixed))
}

pub fn results_path(state_dir: &Path) -> PathBuf {
    state_dir.join("results.jsonl")
}

/// Append one line to a JSON Lines file (created 0600), in one write.
fn append_line(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .custom_flags(libc::O_NOFOLLOW)
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // Whole or not at all: a short write (a full disk) is cut back off, so that no torn
    // line can get the next one glued onto it. Appends happen under the state lock.
    let mut before = f.metadata().map(|m| m.len()).ok();
    if let Some(len) = before
        && let Some(whole) = whole_prefix(&f, len)
        && whole < len
    {
        // A torn last line from a crash: cut it, or this line would be glued onto it.
        if f.set_len(whole).is_ok() {
            before = Some(whole);
        }
    }
    if let Err(e) = f.write_all(&line) {
        let kept = match before.map(|b| f.set_len(b)) {
            Some(Ok(())) => "the file was kept as it was before this line",
            _ => "the file may end in a torn line, which readers skip",
        };
        return Err(anyhow::anyhow!(
            "cannot append to {}: {e}; this line was not written and {kept}",
            path.display()
        ));
    }
    Ok(())
}

/// The length of `f` up to its last newline (None when that cannot be read). Only the
/// last 64 KiB are looked at; a longer torn tail is left alone.
fn whole_prefix(f: &std::fs::File, len: u64) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    if len == 0 {
        return Some(0);
    }
    let mut last = [0u8; 1];
    f.read_exact_at(&mut last, len - 1).ok()?;
    if last[0] == b'\n' {
        return Some(len);
    }
    let start = len.saturating_sub(64 * 1024);
    let mut buf = vec![0u8; (len - start) as usize];
    f.read_exact_at(&mut buf, start).ok()?;
    match buf.iter().rposition(|b| *b == b'\n') {
        Some(i) => Some(start + i as u64 + 1),
        None if start == 0 => Some(0),
        None => None,
    }
}

/// Store a result (call with the state lock held). The report, if any, is left in its file.
pub fn save(state_dir: &Path, r: &TaskResult) -> Result<()> {
    if r.report.is_some() {
        let mut slim = r.clone();
        slim.report = None;
        append_line(&results_path(state_dir), &slim)
    } else {
        append_line(&results_path(state_dir), r)
    }
}

/// Stored results, newest first; only task `id` when given (then with their reports
/// inlined); at most `last`.
pub fn list(state_dir: &Path, id: Option<&str>, last: usize) -> Result<Vec<TaskResult>> {
    let Ok(bytes) = std::fs::read(results_path(state_dir)) else {
        return Ok(Vec::new());
    };
    let want = id.map(|i| format!("{{\"id\":{},", serde_json::Value::String(i.to_string())));
    let mut out = Vec::new();
    for line in bytes.rsplit(|b| *b == b'\n') {
        if out.len() >= last {
            break;
        }
        if line.is_empty()
            || want
                .as_ref()
                .is_some_and(|w| !line.starts_with(w.as_bytes()))
        {
            continue;
        }
        match serde_json::from_slice::<TaskResult>(line) {
            Ok(mut r) => {
                if id.is_some()
                    && r.report.is_none()
                    && let Some(p) = &r.report_path
                {
                    r.report = std::fs::read(p)
                        .ok()
                        .and_then(|b| serde_json::from_slice(&b).ok());
                }
                out.push(r)
            }
            Err(_) => continue, // a torn last line from a crash
        }
    }
    Ok(out)
}

pub fn metrics_path(state_dir: &Path) -> PathBuf {
    state_dir.join("metrics.jsonl")
}

/// Append a sample (call with the state lock held).
pub fn append_sample(state_dir: &Path, s: &Sample) -> Result<()> {
    append_line(&metrics_path(state_dir), s)
}

pub fn samples(state_dir: &Path) -> Vec<Sample> {
    let Ok(text) = std::fs::read_to_string(metrics_path(state_dir)) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Aggregates per task type for `bgrun metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TypeMetrics {
    pub executions: usize,
    pub succeeded: usize,
    pub success_rate: f64,
    pub duration_p50_s: f64,
    pub duration_p95_s: f64,
    pub queue_p50_s: f64,
    pub peak_rss_mb: f64,
    pub cpu_s_total: f64,
    pub statuses: BTreeMap<String, usize>,
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn aggregate(samples: &[Sample]) -> BTreeMap<String, TypeMetrics> {
    let mut by: BTreeMap<String, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        by.entry(s.task_type.clone()).or_default().push(s);
        by.entry("*".to_string()).or_default().push(s);
    }
    by.into_iter()
        .map(|(k, v)| {
            let mut m = TypeMetrics {
                executions: v.len(),
                ..Default::default()
            };
            let ran: Vec<&&Sample> = v
                .iter()
                .filter(|s| s.status != "dropped" && s.status != "cancelled")
                .collect();
            m.succeeded = v.iter().filter(|s| s.status == "succeeded").count();
            m.success_rate = if ran.is_empty() {
                0.0
            } else {
                m.succeeded as f64 / ran.len() as f64
            };
            let mut d: Vec<f64> = ran.iter().map(|s| s.duration_s).collect();
            d.sort_by(f64::total_cmp);
            let mut q: Vec<f64> = ran.iter().map(|s| s.queue_s).collect();
            q.sort_by(f64::total_cmp);
            m.duration_p50_s = percentile(&d, 50.0);
            m.duration_p95_s = percentile(&d, 95.0);
            m.queue_p50_s = percentile(&q, 50.0);
            m.peak_rss_mb = v.iter().map(|s| s.peak_rss_mb).fold(0.0, f64::max);
            m.cpu_s_total = v.iter().map(|s| s.cpu_s).sum();
            for s in &v {
                *m.statuses.entry(s.status.to_string()).or_insert(0) += 1;
            }
            (k, m)
        })
        .collect()
}

/// What retention removed.
#[derive(Debug, Default, Serialize)]
pub struct Cleaned {
    pub results: usize,
    pub logs: usize,
    pub reports: usize,
    pub metrics_lines: usize,
    /// Finished tasks removed (a shared store keeps them as rows; the journal compacts).
    #[serde(skip_serializing_if = "is_zero")]
    pub tasks: usize,
    /// Stopped or silent workers removed (a shared store).
    #[serde(skip_serializing_if = "is_zero")]
    pub workers: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Apply retention (call with the state lock held): results and their logs and reports
/// older than `results_days`, metrics older than `metrics_days`. The JSON Lines files are
/// rewritten atomically.
pub fn cleanup(state_dir: &Path, results_days: u64, metrics_days: u64) -> Result<Cleaned> {
    let now = timefmt::now();
    let mut c = Cleaned::default();
    let cutoff = std::time::SystemTime::now()
        .checked_sub(std::time::Duration::from_secs(
            results_days.saturating_mul(86400),
        ))
        .unwrap_or(std::time::UNIX_EPOCH);
    for (sub, count) in [("logs", &mut c.logs), ("reports", &mut c.reports)] {
        let Ok(rd) = std::fs::read_dir(state_dir.join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|m| m < cutoff);
            if old && std::fs::remove_file(e.path()).is_ok() {
                *count += 1;
            }
        }
    }
    c.results = prune_lines(
        &results_path(state_dir),
        "finished_at",
        now - results_days.saturating_mul(86400) as f64,
    )?;
    c.metrics_lines = prune_lines(
        &metrics_path(state_dir),
        "at",
        now - metrics_days.saturating_mul(86400) as f64,
    )?;
    let _ = write_atomic(
        &state_dir.join("last-cleanup"),
        timefmt::rfc3339(now).as_bytes(),
        false,
    );
    Ok(c)
}

/// Drop the lines whose time field (`at`: Unix seconds, or RFC 3339) is before `keep_after`.
fn prune_lines(path: &Path, field: &str, keep_after: f64) -> Result<usize> {
    let Ok(text) = std::fs::read(path) else {
        return Ok(0);
    };
    let mut kept = Vec::with_capacity(text.len());
    let mut dropped = 0;
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let at = serde_json::from_slice::<Value>(line)
            .ok()
            .and_then(|v| match v.get(field) {
                Some(Value::Number(n)) => n.as_f64(),
                Some(Value::String(s)) => timefmt::parse_rfc3339(s),
                _ => None,
            });
        match at {
            Some(at) if at < keep_after => dropped += 1,
            None => dropped += 1, // unreadable: a torn line
            _ => {
                kept.extend_from_slice(line);
                kept.push(b'\n');
            }
        }
    }
    if dropped > 0 {
        write_atomic(path, &kept, true)?;
    }
    Ok(dropped)
}

/// Whether the last cleanup is older than `every` seconds (the default cadence is 5 minutes).
pub fn cleanup_is_due(state_dir: &Path, every: f64) -> bool {
    match std::fs::metadata(state_dir.join("last-cleanup")).and_then(|m| m.modified()) {
        Ok(t) => t.elapsed().map(|e| e.as_secs_f64() > every).unwrap_or(true),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_reports_with_baseline_data_count() {
        let rep = json!({"findings": [{"baseline": "new"}, {"baseline": "unchanged"}, {}],
                         "fixed": [{}, {}]});
        assert_eq!(new_and_fixed(&rep), Some((1, 2)));
        assert_eq!(new_and_fixed(&json!({"fixed": []})), Some((0, 0)));
        assert_eq!(
            new_and_fixed(&json!({"findings": [{"severity": "low"}]})),
            None
        );
    }
}
