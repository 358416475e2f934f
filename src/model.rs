//! The shared vocabulary: how an execution ended ([`Status`]), how bad a finding is
//! ([`Severity`]) and how loud a notification is ([`Level`]), one normalized finding
//! ([`Finding`]) and counts of findings ([`Counts`]), and what one execution left behind ([`TaskResult`], [`Sample`]).
//!
//! Everything here is serialized exactly as it is written to `state.jsonl`,
//! `results.jsonl` and `metrics.jsonl`: the names below are the on-disk format, and
//! `fixtures/state/v1/` holds files that every later version must still read. Pure types:
//! no I/O. The old paths (`state::task::Status`, `analyzers::Severity`, `analyzers::Counts`,
//! `analyzers::Finding`,
//! `results::{Findings, TaskResult, Sample}`, `notify::Severity`) re-export these.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Succeeded,
    Failed,
    TimedOut,
    KilledMemory,
    Cancelled,
    Abandoned,
    Dropped,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Succeeded,
        Status::Failed,
        Status::TimedOut,
        Status::KilledMemory,
        Status::Cancelled,
        Status::Abandoned,
        Status::Dropped,
    ];

    /// Read a status word as written on disk.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether the task ran and did not succeed (what counts as a failure in summaries).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Status::Failed | Status::TimedOut | Status::KilledMemory | Status::Abandoned
        )
    }

    /// Whether the task never ran to an end of its own (cancelled or dropped): left out
    /// of success rates and the adaptive-priority history.
    pub fn never_ran(self) -> bool {
        matches!(self, Status::Cancelled | Status::Dropped)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::TimedOut => "timed_out",
            Status::KilledMemory => "killed_memory",
            Status::Cancelled => "cancelled",
            Status::Abandoned => "abandoned",
            Status::Dropped => "dropped",
        }
    }

    /// Whether a retry may help.
    pub fn retryable(self) -> bool {
        matches!(self, Status::Failed | Status::TimedOut)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<str> for Status {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Status {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl AsRef<str> for Status {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// The five levels, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL_DESC: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Read a severity word, accepting common synonyms of other tools (`error`, `warning`,
    /// `moderate`, `note`...). None when the word means nothing known.
    pub fn parse_loose(word: &str) -> Option<Severity> {
        Some(match word.trim().to_ascii_lowercase().as_str() {
            "critical" | "blocker" | "fatal" => Severity::Critical,
            "high" | "error" | "major" => Severity::High,
            "medium" | "moderate" | "warning" | "warn" => Severity::Medium,
            "low" | "minor" | "note" | "convention" | "refactor" => Severity::Low,
            "info" | "none" | "informational" | "style" => Severity::Info,
            _ => return None,
        })
    }

    /// A CVSS-like score (0..10) to a severity (the common CVSS v3 bands).
    pub fn from_score(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score > 0.0 {
            Severity::Low
        } else {
            Severity::Info
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One normalized finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub tool: String,
    /// The tool's rule id (`B602`, `W0611`, `no-undef`, `cyclomatic-complexity`).
    pub rule: String,
    pub severity: Severity,
    /// Relative to the repository root, `/`-separated; empty when the finding has no file.
    pub file: String,
    /// 1-based; None when unknown.
    pub line: Option<u64>,
    /// 1-based; None when unknown.
    pub column: Option<u64>,
    pub message: String,
    /// A hint on how to fix it (may be empty).
    pub fix: String,
    /// The rule's readable name (`unused-import`), when the tool gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// Where the rule is documented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help_uri: Option<String>,
    /// Line-independent identity (see `baseline::fingerprint`); empty until computed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
    /// Against the baseline: `new` or `unchanged` (`absent` in the `fixed` list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineState>,
}

/// A finding's state against the baseline (SARIF's `baselineState` words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaselineState {
    New,
    Unchanged,
    Absent,
}

impl BaselineState {
    pub fn as_str(self) -> &'static str {
        match self {
            BaselineState::New => "new",
            BaselineState::Unchanged => "unchanged",
            BaselineState::Absent => "absent",
        }
    }
}

impl Finding {
    /// A finding with the required fields; the rest empty.
    pub fn new(tool: &str, rule: &str, severity: Severity, file: &str, message: &str) -> Finding {
        Finding {
            tool: tool.to_string(),
            rule: rule.to_string(),
            severity,
            file: file.to_string(),
            line: None,
            column: None,
            message: message.to_string(),
            fix: String::new(),
            rule_name: None,
            help_uri: None,
            fingerprint: String::new(),
            baseline: None,
        }
    }

    pub fn at(mut self, line: Option<u64>, column: Option<u64>) -> Finding {
        self.line = line.filter(|l| *l > 0);
        self.column = column.filter(|c| *c > 0);
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = fix.into();
        self
    }

    pub fn named(mut self, name: Option<&str>, uri: Option<&str>) -> Finding {
        self.rule_name = name.filter(|s| !s.is_empty()).map(str::to_string);
        self.help_uri = uri.filter(|s| !s.is_empty()).map(str::to_string);
        self
    }
}

/// Counts of findings by severity: an analyzer tool's counts and a task result's `findings`
/// (`results::Findings` is this type).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub info: u64,
}

impl Counts {
    pub fn of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Counts {
        let mut c = Counts::default();
        for f in findings {
            c.add(f.severity);
        }
        c
    }

    pub fn add(&mut self, s: Severity) {
        match s {
            Severity::Critical => self.critical += 1,
            Severity::High => self.high += 1,
            Severity::Medium => self.medium += 1,
            Severity::Low => self.low += 1,
            Severity::Info => self.info += 1,
        }
    }

    pub fn get(&self, s: Severity) -> u64 {
        match s {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Info => self.info,
        }
    }

    pub fn total(&self) -> u64 {
        self.critical + self.high + self.medium + self.low + self.info
    }

    /// Any finding at or above `min`?
    pub fn at_or_above(&self, min: Severity) -> bool {
        Severity::ALL_DESC
            .iter()
            .any(|s| *s >= min && self.get(*s) > 0)
    }
}

impl Counts {
    /// Count the `severity` of each entry of a report's `findings` array (a missing or
    /// unknown severity counts as info).
    pub fn from_report(report: &Value) -> Counts {
        let mut c = Counts::default();
        if let Some(items) = report.get("findings").and_then(Value::as_array) {
            for item in items {
                let sev = item
                    .get("severity")
                    .and_then(Value::as_str)
                    .and_then(|s| match s {
                        "critical" => Some(Severity::Critical),
                        "high" => Some(Severity::High),
                        "medium" => Some(Severity::Medium),
                        "low" => Some(Severity::Low),
                        _ => None,
                    })
                    .unwrap_or(Severity::Info);
                c.add(sev);
            }
        }
        c
    }
}

/// How loud a notification is: info < warning < error < critical (`notify::Severity` is
/// this type; a finding's [`Severity`] is a different scale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Error,
    Critical,
}

/// A config's `min_severity`: exactly one of the four words (the command line's wider
/// [`Level::parse`] also takes `warn` and any case).
impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Level, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "info" => Ok(Level::Info),
            "warning" => Ok(Level::Warning),
            "error" => Ok(Level::Error),
            "critical" => Ok(Level::Critical),
            _ => Err(serde::de::Error::custom(format!(
                "expected info, warning, error or critical, found {s:?}"
            ))),
        }
    }
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Some(Level::Info),
            "warning" | "warn" => Some(Level::Warning),
            "error" => Some(Level::Error),
            "critical" => Some(Level::Critical),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }

    pub fn icon(self) -> &'static str {
        match self {
            Level::Info => "ℹ️",
            Level::Warning => "⚠️",
            Level::Error => "❌",
            Level::Critical => "🚨",
        }
    }

    /// A colour for HTML and chat attachments.
    pub fn hex(self) -> &'static str {
        match self {
            Level::Info => "#2f81f7",
            Level::Warning => "#d29922",
            Level::Error => "#cf222e",
            Level::Critical => "#8b0000",
        }
    }
}

/// One execution's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskResult {
    pub id: String,
    #[serde(rename = "type")]
    pub task_type: String,
    pub name: String,
    pub status: Status,
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
    pub findings: Option<Counts>,
    /// The analyzer's normalized report, for analyzer tasks (kept in `report_path`; inlined
    /// when one task's results are read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub context: Value,
    #[serde(default)]
    pub argv: Vec<String>,
    /// The host that ran it, on a shared store (the local journal leaves it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl TaskResult {
    pub fn finished_ts(&self) -> f64 {
        crate::timefmt::parse_rfc3339(&self.finished_at).unwrap_or(0.0)
    }
}

/// One metrics sample, appended per execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub at: f64,
    #[serde(rename = "type")]
    pub task_type: String,
    pub status: Status,
    pub duration_s: f64,
    pub queue_s: f64,
    pub peak_rss_mb: f64,
    pub cpu_s: f64,
    pub queue_len: usize,
    pub concurrent: usize,
}

impl Sample {
    /// The sample of one execution's result, taken at `at` with the queue's length and the
    /// number of tasks running then.
    pub fn of(r: &TaskResult, at: f64, queue_len: usize, concurrent: usize) -> Sample {
        Sample {
            at,
            task_type: r.task_type.clone(),
            status: r.status,
            duration_s: r.duration_s,
            queue_s: r.queue_s,
            peak_rss_mb: r.peak_rss_mb,
            cpu_s: r.cpu_s,
            queue_len,
            concurrent,
        }
    }
}
