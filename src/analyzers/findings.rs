//! The one findings model every analyzer normalizes to, and the report around it.
//!
//! A [`Finding`] is `{tool, rule, severity, file, line, column, message, fix}` with the file
//! relative to the repository root; a [`ToolRun`] is one tool's summary (ran / skipped /
//! failed with why, version, duration, counts by severity). This module owns no I/O.
//!
//! # Severity mapping
//!
//! Each tool's own vocabulary maps onto five levels, in this one table (README-ANALYZERS.md
//! repeats it):
//!
//! | tool | its level | bgrun severity |
//! |---|---|---|
//! | bandit | `HIGH` / `MEDIUM` / `LOW` issue_severity | high / medium / low |
//! | npm audit | `critical` / `high` / `moderate` / `low` / `info` | critical / high / medium / low / info |
//! | pip-audit | a known vulnerability (no level given) | high |
//! | cargo-audit | vulnerability with CVSS >= 9 / >= 7 / >= 4 / lower or none | critical / high / medium / low (none: high) |
//! | cargo-audit | warning (unmaintained, yanked, unsound) | low |
//! | radon cc | complexity above `analysis.complexity_threshold`, rank C / D / E-F | low / medium / high |
//! | radon mi | maintainability rank C (index < 10) | medium |
//! | bgrun-sizes | file above `analysis.large_file_lines` / above twice that | low / medium |
//! | pylint | `fatal` / `error` / `warning` / `refactor`, `convention` / `info` | high / high / medium / low / info |
//! | ruff | syntax error (no code), `E9xx`, `F63x`, `F7xx`, `F82x` / other `F` and `S` / the rest | high / medium / low |
//! | eslint | fatal parse error / severity 2 (error) / severity 1 (warning) | high / medium / low |
//! | clippy | `error` / `warning` / other | high / medium / low |
//! | test runners | a failing or erroring test | high |
//! | SARIF ingest | `security-severity` >= 9 / >= 7 / >= 4 / > 0, else level `error` / `warning` / `note` / `none` | critical / high / medium / low, else high / medium / low / info |

use serde::{Deserialize, Serialize};

pub use crate::model::{BaselineState, Counts, Finding, Severity};

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What the report says about its baseline.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BaselineInfo {
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "ref")]
    pub reference: Option<String>,
    pub generated_at: String,
    pub new: u64,
    pub unchanged: u64,
    pub fixed: u64,
    /// Tests failing now that passed (or did not fail) at the baseline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub newly_failing: Vec<FailedTest>,
    /// Tests failing at the baseline that do not fail now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub newly_passing: Vec<String>,
}

/// Did a tool run?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ran,
    Skipped,
    Failed,
}

/// One test, as a runner reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedTest {
    pub name: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

/// A test runner's counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestCounts {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Tests that errored (setup, collection, an exception outside an assertion), counted
    /// apart from `failed`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors: u64,
    /// Failing (and erroring) tests with their messages.
    pub failures: Vec<FailedTest>,
}

/// One tool's summary in the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolRun {
    pub name: String,
    /// security | performance | code | tests
    pub kind: String,
    pub status: Status,
    /// Why it was skipped or failed (empty when it ran).
    pub why: String,
    pub version: Option<String>,
    /// Where the tool came from: managed, project or system (issue 13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub duration_s: f64,
    pub counts: Counts,
    /// The command line, for the curious (argv joined with spaces; not for a shell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestCounts>,
    /// Tool-specific metrics (radon raw totals, file sizes...).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub metrics: serde_json::Value,
    /// Recommendations in words (performance).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recommendations: Vec<String>,
    /// Files the tool was given this run (file-local tools; the rest came from the cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_run: Option<u64>,
    /// Files whose result came from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_cached: Option<u64>,
    /// Not run because its inputs did not change: `unchanged since <time>` (the result of
    /// that run stands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused: Option<String>,
}

impl ToolRun {
    pub fn new(name: &str, kind: &str, status: Status, why: impl Into<String>) -> ToolRun {
        ToolRun {
            name: name.to_string(),
            kind: kind.to_string(),
            status,
            why: why.into(),
            version: None,
            source: None,
            duration_s: 0.0,
            counts: Counts::default(),
            command: None,
            tests: None,
            metrics: serde_json::Value::Null,
            recommendations: Vec::new(),
            files_run: None,
            files_cached: None,
            reused: None,
        }
    }

    /// `ran`, `skipped: why` or `failed: why`.
    pub fn status_line(&self) -> String {
        match self.status {
            Status::Ran => "ran".to_string(),
            Status::Skipped => format!("skipped: {}", self.why),
            Status::Failed => format!("failed: {}", self.why),
        }
    }
}

/// Totals of the test runners in a report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestTotals {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors: u64,
    pub failures: Vec<FailedTest>,
}

/// Where bgrun's own time went (for the overhead budget).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timing {
    pub wall_s: f64,
    /// CPU time of the bgrun process itself (user + system), excluding its children.
    pub bgrun_cpu_s: f64,
    /// Wall time spent parsing and normalizing tool output.
    pub parse_s: f64,
}

/// The normalized report (`--format json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    /// security | performance | code | tests | all | ingest
    pub kind: String,
    pub root: String,
    pub generated_at: String,
    pub findings: Vec<Finding>,
    pub counts: Counts,
    pub tools: Vec<ToolRun>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestTotals>,
    #[serde(default)]
    pub timing: Timing,
    /// The changed set this run was about (absent: everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<super::changed::ChangeSet>,
    /// The baseline the findings were compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineInfo>,
    /// Findings of the baseline that are gone now (`baseline: "absent"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixed: Vec<Finding>,
    /// Set when no applicable tool produced a result: why (the run is then not a success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_run: Option<String>,
}

impl Report {
    /// Sort findings (most severe first, then by file and line), fill the counts.
    pub fn finish(&mut self) {
        self.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.file.cmp(&b.file))
                .then_with(|| a.line.cmp(&b.line))
                .then_with(|| a.column.cmp(&b.column))
                .then_with(|| a.tool.cmp(&b.tool))
                .then_with(|| a.rule.cmp(&b.rule))
        });
        self.counts = Counts::of(&self.findings);
        for t in &mut self.tools {
            t.counts = Counts::of(self.findings.iter().filter(|f| f.tool == t.name));
        }
        let runners: Vec<&TestCounts> =
            self.tools.iter().filter_map(|t| t.tests.as_ref()).collect();
        if !runners.is_empty() || self.kind == "tests" {
            let mut tt = TestTotals::default();
            for r in runners {
                tt.passed += r.passed;
                tt.failed += r.failed;
                tt.skipped += r.skipped;
                tt.errors += r.errors;
                tt.failures.extend(r.failures.iter().cloned());
            }
            self.tests = Some(tt);
        }
    }

    /// Did a test fail, or a test runner fail to run?
    pub fn tests_failed(&self) -> bool {
        self.tools.iter().any(|t| {
            t.kind == "tests"
                && (t.status == Status::Failed
                    || t.tests.as_ref().is_some_and(|c| c.failed + c.errors > 0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_order_and_words() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
        assert_eq!(Severity::parse_loose("moderate"), Some(Severity::Medium));
        assert_eq!(Severity::parse_loose("ERROR"), Some(Severity::High));
        assert_eq!(Severity::parse_loose("bogus"), None);
        assert_eq!(Severity::from_score(9.8), Severity::Critical);
        assert_eq!(Severity::from_score(5.0), Severity::Medium);
    }

    #[test]
    fn counts_and_threshold() {
        let f = [
            Finding::new("t", "r", Severity::Low, "a", "m"),
            Finding::new("t", "r", Severity::Medium, "a", "m"),
        ];
        let c = Counts::of(&f);
        assert_eq!((c.low, c.medium, c.total()), (1, 1, 2));
        assert!(c.at_or_above(Severity::Medium));
        assert!(!c.at_or_above(Severity::High));
    }

    #[test]
    fn finding_serializes_to_the_cli_shape() {
        let f = Finding::new("bandit", "B602", Severity::High, "app/x.py", "shell")
            .at(Some(3), Some(1))
            .fix("use a list");
        let v = serde_json::to_value(&f).unwrap();
        for k in [
            "tool", "rule", "severity", "file", "line", "column", "message", "fix",
        ] {
            assert!(v.get(k).is_some(), "{k} missing: {v}");
        }
        assert_eq!(v["severity"], "high");
    }
}
