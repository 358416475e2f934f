//! Which task results notify, and with which event. Pure: no I/O.
//!
//! - A result that will be retried notifies nothing (its last attempt will).
//! - cancelled and dropped are the user's or the queue's decision: nothing.
//! - failed / abandoned -> task_failed, timed_out -> task_timed_out, killed_memory ->
//!   high_resource_usage, when the type has `notification_on_issues` or
//!   `notification_on_complete` (a type with both off is silent).
//! - succeeded with findings and `notification_on_issues` -> issues_found (one event,
//!   replacing task_completed); `code_analysis` only on high issue counts (any critical or
//!   high finding, or `CODE_ANALYSIS_MANY` findings in all); info findings alone never notify.
//! - `test_runner` notifies on failures only.
//! - otherwise succeeded with `notification_on_complete` -> task_completed.

use crate::config::Config;
use crate::results::{Findings, TaskResult};

use super::events::{self, Notification};

/// A code analysis run notifies when it has at least this many findings (or any high).
pub const CODE_ANALYSIS_MANY: u64 = 50;

pub fn events_for(config: &Config, r: &TaskResult) -> Vec<Notification> {
    if r.will_retry {
        return Vec::new();
    }
    let (on_complete, on_issues) = config
        .task_types
        .get(&r.task_type)
        .map(|t| (t.notification_on_complete, t.notification_on_issues))
        .unwrap_or((false, true));
    let failure = match r.status.as_str() {
        "failed" | "abandoned" => Some(events::task_failed(r)),
        "timed_out" => Some(events::task_timed_out(r)),
        "killed_memory" => Some(events::high_resource_usage(
            r,
            config.resource_limits.max_memory_mb,
        )),
        "succeeded" => None,
        _ => return Vec::new(),
    };
    if let Some(n) = failure {
        return if on_issues || on_complete {
            vec![n]
        } else {
            Vec::new()
        };
    }
    if r.task_type == "test_runner" {
        return Vec::new();
    }
    let findings = r
        .findings
        .or_else(|| r.report.as_ref().map(Findings::from_report))
        .unwrap_or_default();
    if on_issues && notable(&r.task_type, &findings) {
        return vec![events::issues_found(r, &findings)];
    }
    if on_complete {
        return vec![events::task_completed(r)];
    }
    Vec::new()
}

fn notable(task_type: &str, f: &Findings) -> bool {
    let real = f.critical + f.high + f.medium + f.low;
    if task_type == "code_analysis" {
        f.critical + f.high > 0 || real >= CODE_ANALYSIS_MANY
    } else {
        real > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Severity;
    use serde_json::json;

    fn config() -> Config {
        crate::config::parse("{}", "test").expect("defaults").0
    }

    fn result(task_type: &str, status: &str) -> TaskResult {
        serde_json::from_value(json!({
            "id": "t1", "type": task_type, "name": "", "status": status, "exit_code": 1,
            "attempt": 1, "trigger": "manual", "enqueued_at": "2024-01-01T00:00:00Z",
            "finished_at": "2024-01-01T00:00:01Z", "duration_s": 1.0, "queue_s": 0.0,
        }))
        .expect("result")
    }

    fn events(r: &TaskResult) -> Vec<String> {
        events_for(&config(), r)
            .into_iter()
            .map(|n| n.event)
            .collect()
    }

    #[test]
    fn failures_map_to_their_events() {
        assert_eq!(events(&result("security_scan", "failed")), ["task_failed"]);
        assert_eq!(
            events(&result("security_scan", "timed_out")),
            ["task_timed_out"]
        );
        assert_eq!(
            events(&result("security_scan", "killed_memory")),
            ["high_resource_usage"]
        );
        assert!(events(&result("security_scan", "cancelled")).is_empty());
    }

    #[test]
    fn retried_results_are_silent() {
        let mut r = result("security_scan", "failed");
        r.will_retry = true;
        assert!(events(&r).is_empty());
    }

    #[test]
    fn test_runner_notifies_on_failures_only() {
        let mut c = config();
        if let Some(t) = c.task_types.get_mut("test_runner") {
            t.notification_on_complete = true;
        }
        assert!(events_for(&c, &result("test_runner", "succeeded")).is_empty());
        assert_eq!(events(&result("test_runner", "failed")), ["task_failed"]);
    }

    #[test]
    fn on_complete_and_on_issues() {
        // security_scan: both on by default.
        let mut r = result("security_scan", "succeeded");
        assert_eq!(events(&r), ["task_completed"]);
        r.findings = Some(Findings {
            high: 2,
            low: 1,
            ..Default::default()
        });
        r.report = Some(json!({"findings": [
            {"severity": "low", "message": "l"},
            {"severity": "high", "message": "h1", "file": "a.py", "line": 3, "rule": "B1"},
            {"severity": "high", "message": "h2"},
        ]}));
        let n = events_for(&config(), &r);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].event, "issues_found");
        assert_eq!(n[0].severity, Severity::Error);
        assert_eq!(n[0].metadata["counts"]["high"], 2);
        assert_eq!(n[0].metadata["top_findings"][0]["message"], "h1");
        assert!(n[0].text_body().contains("a.py:3 B1: h1"));
        // A type with on_complete off and only info findings: silent.
        let mut p = result("performance_profile", "succeeded");
        p.findings = Some(Findings {
            info: 9,
            ..Default::default()
        });
        assert!(events(&p).is_empty());
    }

    #[test]
    fn code_analysis_on_high_issue_counts_only() {
        let mut r = result("code_analysis", "succeeded");
        r.findings = Some(Findings {
            medium: 3,
            ..Default::default()
        });
        assert!(events(&r).is_empty());
        r.findings = Some(Findings {
            medium: CODE_ANALYSIS_MANY,
            ..Default::default()
        });
        assert_eq!(events(&r), ["issues_found"]);
        r.findings = Some(Findings {
            critical: 1,
            ..Default::default()
        });
        let n = events_for(&config(), &r);
        assert_eq!(n[0].severity, Severity::Critical);
    }
}
