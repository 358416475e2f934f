//! Results and metrics on disk: one JSON file per execution in `<state>/results/`, named
//! `<finished ms>-<id>-<attempt>.json` so that name order is time order; one JSON line per
//! execution in `<state>/metrics.jsonl`. Retention deletes old files and lines.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::state::store::{ensure_private_dir, write_atomic};
use crate::timefmt;

/// Counts of findings by severity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Findings {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub info: u64,
}

impl Findings {
    pub fn total(&self) -> u64 {
        self.critical + self.high + self.medium + self.low + self.info
    }

    /// Count the `severity` of each entry of a report's `findings` array.
    pub fn from_report(report: &Value) -> Findings {
        let mut f = Findings::default();
        if let Some(items) = report.get("findings").and_then(Value::as_array) {
            for item in items {
                match item
                    .get("severity")
                    .and_then(Value::as_str)
                    .unwrap_or("info")
                {
                    "critical" => f.critical += 1,
                    "high" => f.high += 1,
                    "medium" => f.medium += 1,
                    "low" => f.low += 1,
                    _ => f.info += 1,
                }
            }
        }
        f
    }
}

/// One execution's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskResult {
    pub id: String,
    #[serde(rename = "type")]
    pub task_type: String,
    pub name: String,
    /// succeeded | failed | timed_out | killed_memory | cancelled | abandoned | dropped
    pub status: String,
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub attempt: u32,
    pub trigger: String,
    pub enqueued_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    pub finished_at: String,
    pub duration_s: f64,
    pub queue_s: f64,
    #[serde(default)]
    pub peak_rss_mb: f64,
    #[serde(default)]
    pub cpu_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Will it run again (retry scheduled)?
    #[serde(default)]
    pub will_retry: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<Findings>,
    /// The analyzer's normalized report, for analyzer tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Value>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub context: Value,
    #[serde(default)]
    pub argv: Vec<String>,
}

impl TaskResult {
    pub fn finished_ts(&self) -> f64 {
        timefmt::parse_rfc3339(&self.finished_at).unwrap_or(0.0)
    }
}

pub fn results_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("results")
}

/// Store a result (a new file: temp + rename, never a partial file).
pub fn save(state_dir: &Path, r: &TaskResult) -> Result<PathBuf> {
    let dir = results_dir(state_dir);
    ensure_private_dir(&dir)?;
    let ms = (r.finished_ts() * 1000.0) as u64;
    let path = dir.join(format!("{ms:014}-{}-{}.json", sanitize(&r.id), r.attempt));
    write_atomic(&path, &serde_json::to_vec_pretty(r)?, false)?;
    Ok(path)
}

fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Stored results, newest first; only task `id` when given; at most `last`.
pub fn list(state_dir: &Path, id: Option<&str>, last: usize) -> Result<Vec<TaskResult>> {
    let dir = results_dir(state_dir);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        .collect();
    names.sort_unstable_by(|a, b| b.cmp(a));
    let want = id.map(|i| format!("-{}-", sanitize(i)));
    let mut out = Vec::new();
    for n in names {
        if out.len() >= last {
            break;
        }
        if let Some(w) = &want
            && !n[14..].starts_with(w.as_str())
        {
            continue;
        }
        let path = dir.join(&n);
        match std::fs::read(&path)
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(serde_json::from_slice(&b)?))
        {
            Ok(r) => out.push(r),
            Err(e) => eprintln!(
                "bgrun: warning: skipping unreadable result {}: {e}",
                path.display()
            ),
        }
    }
    Ok(out)
}

/// One metrics sample, appended per execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub at: f64,
    #[serde(rename = "type")]
    pub task_type: String,
    pub status: String,
    pub duration_s: f64,
    pub queue_s: f64,
    pub peak_rss_mb: f64,
    pub cpu_s: f64,
    pub queue_len: usize,
    pub concurrent: usize,
}

pub fn metrics_path(state_dir: &Path) -> PathBuf {
    state_dir.join("metrics.jsonl")
}

/// Append a sample as one whole line (O_APPEND writes of one buffer do not interleave).
pub fn append_sample(state_dir: &Path, s: &Sample) -> Result<()> {
    let mut line = serde_json::to_vec(s)?;
    line.push(b'\n');
    let path = metrics_path(state_dir);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    f.write_all(&line)?;
    Ok(())
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
                *m.statuses.entry(s.status.clone()).or_insert(0) += 1;
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
}

/// Apply retention: results, logs and reports older than `results_days`, metrics lines
/// older than `metrics_days` (the metrics file is rewritten atomically).
pub fn cleanup(state_dir: &Path, results_days: u64, metrics_days: u64) -> Result<Cleaned> {
    let now = timefmt::now();
    let mut c = Cleaned::default();
    let cutoff =
        std::time::SystemTime::now() - std::time::Duration::from_secs(results_days * 86400);
    for (sub, count) in [
        ("results", &mut c.results),
        ("logs", &mut c.logs),
        ("reports", &mut c.reports),
    ] {
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
    let path = metrics_path(state_dir);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let keep_after = now - (metrics_days * 86400) as f64;
        let mut kept = String::with_capacity(text.len());
        for line in text.lines() {
            let at = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v.get("at").and_then(Value::as_f64));
            match at {
                Some(at) if at < keep_after => c.metrics_lines += 1,
                _ => {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
        }
        if c.metrics_lines > 0 {
            write_atomic(&path, kept.as_bytes(), true)?;
        }
    }
    let _ = std::fs::write(state_dir.join("last-cleanup"), timefmt::rfc3339(now));
    Ok(c)
}

/// Run cleanup when the last one is older than `every` seconds (default cadence 5 minutes).
pub fn cleanup_if_due(state_dir: &Path, results_days: u64, metrics_days: u64, every: f64) {
    let marker = state_dir.join("last-cleanup");
    let due = match std::fs::metadata(&marker).and_then(|m| m.modified()) {
        Ok(t) => t.elapsed().map(|e| e.as_secs_f64() > every).unwrap_or(true),
        Err(_) => true,
    };
    if due && let Err(e) = cleanup(state_dir, results_days, metrics_days) {
        eprintln!("bgrun: warning: cleanup failed: {e:#}");
    }
}
