//! Events, severities and the built-in templates (task_completed, task_failed,
//! task_timed_out, issues_found, high_resource_usage, custom), plus the text and HTML
//! bodies that the channels render. Pure: no I/O.

use serde::Serialize;
use serde_json::{Value, json};

use crate::html::escape;
use crate::results::{Findings, TaskResult};
use crate::timefmt;

pub use crate::model::Level as Severity;

/// One notification, as every channel receives it.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    /// RFC 3339.
    pub at: String,
    pub event: String,
    pub severity: Severity,
    pub title: String,
    pub message: String,
    /// Structured details (task id, counts, top findings, ...).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub metadata: Value,
}

impl Notification {
    pub fn new(event: &str, severity: Severity, title: String, message: String) -> Notification {
        Notification {
            at: timefmt::rfc3339(timefmt::now()),
            event: event.to_string(),
            severity,
            title,
            message,
            metadata: Value::Null,
        }
    }

    /// `bgrun notify`: a custom event.
    pub fn custom(severity: Severity, title: &str, message: &str) -> Notification {
        Notification::new("custom", severity, title.to_string(), message.to_string())
    }

    /// The plain-text body (email text part, file log readers).
    pub fn text_body(&self) -> String {
        let mut s = format!(
            "{} [{}] {}\n\n{}\n",
            self.severity.icon(),
            self.severity.as_str().to_uppercase(),
            self.title,
            self.message
        );
        if let Some(top) = self.metadata.get("top_findings").and_then(Value::as_array) {
            s.push_str("\nTop findings:\n");
            for f in top {
                s.push_str(&format!("  - {}\n", finding_line(f)));
            }
        }
        s.push_str(&format!("\nevent: {}\ntime: {}\n", self.event, self.at));
        if let Some(id) = self.metadata.get("task_id").and_then(Value::as_str) {
            s.push_str(&format!("task: {id}\n"));
        }
        s.push_str("-- \nsent by bgrun\n");
        s
    }

    /// The HTML body (email HTML part); every piece of text is escaped.
    pub fn html_body(&self) -> String {
        let mut s = format!(
            "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n\
             <h2 style=\"color:{}\">{} [{}] {}</h2>\n<p>{}</p>\n",
            self.severity.hex(),
            self.severity.icon(),
            self.severity.as_str().to_uppercase(),
            escape(&self.title),
            escape(&self.message).replace('\n', "<br>")
        );
        if let Some(top) = self.metadata.get("top_findings").and_then(Value::as_array) {
            s.push_str("<h3>Top findings</h3>\n<ul>\n");
            for f in top {
                s.push_str(&format!("<li>{}</li>\n", escape(&finding_line(f))));
            }
            s.push_str("</ul>\n");
        }
        s.push_str(&format!(
            "<p style=\"color:#666\">event: {}<br>time: {}</p>\n</body></html>\n",
            escape(&self.event),
            escape(&self.at)
        ));
        s
    }
}

/// `severity file:line rule: message` of a normalized finding.
fn finding_line(f: &Value) -> String {
    let get = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("");
    let line = f.get("line").and_then(Value::as_u64);
    let place = match line {
        Some(l) => format!("{}:{l}", get("file")),
        None => get("file").to_string(),
    };
    format!(
        "{} {} {}: {}",
        get("severity"),
        place,
        get("rule"),
        get("message")
    )
}

fn task_meta(r: &TaskResult) -> Value {
    json!({
        "task_id": r.id, "task_type": r.task_type, "name": r.name, "status": r.status,
        "exit_code": r.exit_code, "duration_s": r.duration_s, "attempt": r.attempt,
        "trigger": r.trigger,
    })
}

fn label(r: &TaskResult) -> &str {
    if r.name.is_empty() {
        &r.task_type
    } else {
        &r.name
    }
}

pub fn task_completed(r: &TaskResult) -> Notification {
    let mut n = Notification::new(
        "task_completed",
        Severity::Info,
        format!("{} completed", label(r)),
        format!("{} finished in {:.1}s.", label(r), r.duration_s),
    );
    n.metadata = task_meta(r);
    n
}

pub fn task_failed(r: &TaskResult) -> Notification {
    let why = match (&r.error, r.exit_code, r.signal) {
        (Some(e), _, _) => e.clone(),
        (None, Some(c), _) => format!("exit code {c}"),
        (None, None, Some(s)) => format!("killed by signal {s}"),
        _ => r.status.to_string(),
    };
    let mut n = Notification::new(
        "task_failed",
        Severity::Error,
        format!("{} failed", label(r)),
        format!("{} failed after {:.1}s: {why}", label(r), r.duration_s),
    );
    n.metadata = task_meta(r);
    if let Some(log) = &r.log {
        n.message.push_str(&format!("\nlog: {}", log.display()));
    }
    n
}

pub fn task_timed_out(r: &TaskResult) -> Notification {
    let mut n = Notification::new(
        "task_timed_out",
        Severity::Error,
        format!("{} timed out", label(r)),
        format!(
            "{} was stopped after {:.1}s, past its timeout.",
            label(r),
            r.duration_s
        ),
    );
    n.metadata = task_meta(r);
    n
}

pub fn high_resource_usage(r: &TaskResult, limit_mb: u64) -> Notification {
    let mut n = Notification::new(
        "high_resource_usage",
        Severity::Error,
        format!("{} used too much memory", label(r)),
        format!(
            "{} was killed at {:.0} MB of memory (limit {limit_mb} MB).",
            label(r),
            r.peak_rss_mb
        ),
    );
    n.metadata = task_meta(r);
    n.metadata["resource"] = json!("memory");
    n.metadata["peak_rss_mb"] = json!(r.peak_rss_mb);
    n.metadata["limit_mb"] = json!(limit_mb);
    n
}

/// The severity an issues_found event carries: that of its worst finding.
pub fn issues_severity(f: &Findings) -> Severity {
    if f.critical > 0 {
        Severity::Critical
    } else if f.high > 0 {
        Severity::Error
    } else if f.medium > 0 {
        Severity::Warning
    } else {
        Severity::Info
    }
}

/// How many findings `issues_found` lists.
pub const TOP_FINDINGS: usize = 5;

pub fn issues_found(r: &TaskResult, f: &Findings) -> Notification {
    let mut top: Vec<Value> = r
        .report
        .as_ref()
        .and_then(|rep| rep.get("findings"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let rank = |v: &Value| match v.get("severity").and_then(Value::as_str) {
        Some("critical") => 0,
        Some("high") => 1,
        Some("medium") => 2,
        Some("low") => 3,
        _ => 4,
    };
    top.sort_by_key(rank);
    top.truncate(TOP_FINDINGS);
    let counts = format!(
        "{} critical, {} high, {} medium, {} low, {} info",
        f.critical, f.high, f.medium, f.low, f.info
    );
    let mut n = Notification::new(
        "issues_found",
        issues_severity(f),
        format!("{}: {} issues found", label(r), f.total()),
        format!("{} found {} issues: {counts}.", label(r), f.total()),
    );
    n.metadata = task_meta(r);
    n.metadata["counts"] = json!(f);
    n.metadata["top_findings"] = Value::Array(top);
    n
}

/// `tool rule file:line` of a finding in a report.
fn finding_ref(v: &Value) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    let loc = match v.get("line").and_then(Value::as_u64) {
        Some(l) => format!("{}:{l}", s("file")),
        None => s("file").to_string(),
    };
    format!("{} {} {loc}", s("tool"), s("rule"))
        .trim()
        .to_string()
}

/// An analyzer run compared with its baseline: `issues_found` about what is new
/// (`2 new: bandit B602 app/runner.py:10, ...; 1 fixed`). None when nothing notable is new.
pub fn new_issues(r: &TaskResult) -> Option<Notification> {
    let rep = r.report.as_ref()?;
    rep.get("baseline")?;
    let new: Vec<&Value> = rep
        .get("findings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|f| f.get("baseline").and_then(Value::as_str) == Some("new"))
        .filter(|f| f.get("severity").and_then(Value::as_str) != Some("info"))
        .collect();
    if new.is_empty() {
        return None;
    }
    let fixed = rep
        .get("fixed")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut f = Findings::default();
    for v in &new {
        match v.get("severity").and_then(Value::as_str) {
            Some("critical") => f.critical += 1,
            Some("high") => f.high += 1,
            Some("medium") => f.medium += 1,
            Some("low") => f.low += 1,
            _ => f.info += 1,
        }
    }
    let mut named: Vec<String> = new
        .iter()
        .take(TOP_FINDINGS)
        .map(|v| finding_ref(v))
        .collect();
    if new.len() > TOP_FINDINGS {
        named.push("…".to_string());
    }
    let mut n = Notification::new(
        "issues_found",
        issues_severity(&f),
        format!("{}: {} new issue(s)", label(r), new.len()),
        format!(
            "{} new: {}{}",
            new.len(),
            named.join(", "),
            if fixed > 0 {
                format!("; {fixed} fixed")
            } else {
                String::new()
            }
        ),
    );
    n.metadata = task_meta(r);
    n.metadata["counts"] = json!(f);
    n.metadata["new"] = json!(new.len());
    n.metadata["fixed"] = json!(fixed);
    n.metadata["top_findings"] =
        Value::Array(new.into_iter().take(TOP_FINDINGS).cloned().collect());
    Some(n)
}

/// The newly failing tests (with their causes) and newly passing ones of a test run
/// compared with its baseline; without a baseline, every failing test.
pub fn test_changes(r: &TaskResult) -> (Vec<String>, Vec<String>) {
    let Some(rep) = r.report.as_ref() else {
        return (Vec::new(), Vec::new());
    };
    let cause = |v: &Value| {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
        let at = match (s("file"), v.get("line").and_then(Value::as_u64)) {
            ("", _) => String::new(),
            (f, Some(l)) => format!(" ({f}:{l})"),
            (f, None) => format!(" ({f})"),
        };
        let msg = s("message").lines().next().unwrap_or("").to_string();
        format!("{}: {msg}{at}", s("name"))
    };
    let failing: Vec<String> = match rep.pointer("/baseline/newly_failing") {
        Some(Value::Array(a)) => a.iter().map(cause).collect(),
        _ if rep.get("baseline").is_some() => Vec::new(),
        _ => rep
            .pointer("/tests/failures")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(cause).collect())
            .unwrap_or_default(),
    };
    let passing: Vec<String> = rep
        .pointer("/baseline/newly_passing")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    (failing, passing)
}

/// A test run that now passes tests that failed before.
pub fn tests_pass_again(r: &TaskResult, passing: &[String]) -> Notification {
    let mut n = Notification::new(
        "task_completed",
        Severity::Info,
        format!("{}: {} test(s) pass again", label(r), passing.len()),
        format!("newly passing: {}", passing.join(", ")),
    );
    n.metadata = task_meta(r);
    n.metadata["newly_passing"] = json!(passing);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Info < Severity::Warning);
        assert!(Severity::Error < Severity::Critical);
        assert_eq!(Severity::parse("CRITICAL"), Some(Severity::Critical));
        assert_eq!(Severity::parse("fatal"), None);
    }

    #[test]
    fn html_is_escaped() {
        let n = Notification::custom(Severity::Info, "<b>x</b>", "a & b");
        let h = n.html_body();
        assert!(h.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(h.contains("a &amp; b"));
        assert!(!h.contains("<b>x"));
    }
}
