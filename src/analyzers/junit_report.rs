//! JUnit XML for CI test reports (GitLab `artifacts:reports:junit`, Jenkins, ...), written
//! with quick-junit: one test suite per tool. A test runner's failing tests are failing
//! test cases (its passed and skipped tests are one summary case each, as the runners
//! report counts, not names); every finding is a failing case named `RULE FILE:LINE` of
//! type SEVERITY; a tool that ran clean is one passing case; a skipped tool a skipped case;
//! a tool that failed to run an error case. Failed tasks without a report (`results`) are
//! error cases of a `bgrun tasks` suite.

use std::time::Duration;

use anyhow::Result;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::Value;

use super::ci_common::{arr, failing_tests, loc, s, u};

/// A task that failed without a report, for the `bgrun tasks` suite.
pub struct FailedTask {
    pub name: String,
    pub message: String,
}

fn secs(v: &Value) -> Duration {
    let f = v.get("duration_s").and_then(Value::as_f64).unwrap_or(0.0);
    Duration::from_secs_f64(if f.is_finite() && f > 0.0 {
        f.min(1e9)
    } else {
        0.0
    })
}

fn case(name: &str, class: &str, status: TestCaseStatus) -> TestCase {
    let mut c = TestCase::new(name, status);
    c.set_classname(class);
    c
}

fn non_success(kind: NonSuccessKind, ty: &str, message: &str, body: &str) -> TestCaseStatus {
    let mut st = TestCaseStatus::non_success(kind);
    st.set_type(ty).set_message(message);
    if !body.is_empty() {
        st.set_description(body);
    }
    st
}

/// The report (and failed tasks) as JUnit XML.
pub fn to_junit(report: &Value, failed_tasks: &[FailedTask]) -> Result<String> {
    let mut out = Report::new("bgrun");
    let mut names: Vec<&str> = arr(report, "tools").iter().map(|t| s(t, "name")).collect();
    for f in arr(report, "findings") {
        if !names.contains(&s(f, "tool")) {
            names.push(s(f, "tool"));
        }
    }
    let failures = failing_tests(report);
    for name in names {
        let tool = arr(report, "tools").iter().find(|t| s(t, "name") == name);
        let class = format!("bgrun.{name}");
        let mut suite = TestSuite::new(name);
        if let Some(t) = tool {
            suite.set_time(secs(t));
            match s(t, "status") {
                "skipped" => {
                    let mut st = TestCaseStatus::skipped();
                    st.set_message(s(t, "why"));
                    suite.add_test_case(case(name, &class, st));
                }
                "failed" => {
                    let st = non_success(NonSuccessKind::Error, "tool-failed", s(t, "why"), "");
                    suite.add_test_case(case(name, &class, st));
                }
                _ => {}
            }
            if let Some(tests) = t.get("tests") {
                for (_, f) in failures.iter().filter(|(tool, _)| *tool == name) {
                    let msg = s(f, "message");
                    let first = msg.lines().next().unwrap_or("");
                    let st = non_success(NonSuccessKind::Failure, "test-failure", first, msg);
                    suite.add_test_case(case(s(f, "name"), &class, st));
                }
                if let Some(n) = u(tests, "passed").filter(|n| *n > 0) {
                    let c = case(&format!("{n} passed"), &class, TestCaseStatus::success());
                    suite.add_test_case(c);
                }
                if let Some(n) = u(tests, "skipped").filter(|n| *n > 0) {
                    let mut st = TestCaseStatus::skipped();
                    st.set_message(format!("{n} tests skipped by the runner"));
                    suite.add_test_case(case(&format!("{n} skipped"), &class, st));
                }
            }
        }
        let mut found = 0;
        for f in arr(report, "findings")
            .iter()
            .filter(|f| s(f, "tool") == name)
        {
            // Test failures are findings too; they are cases above already.
            if s(f, "rule") == "test-failure" && tool.is_some_and(|t| t.get("tests").is_some()) {
                continue;
            }
            found += 1;
            let sev = s(f, "severity");
            let mut body = format!(
                "{} {} at {}\n{}",
                name,
                s(f, "rule"),
                loc(f),
                s(f, "message")
            );
            if !s(f, "fix").is_empty() {
                body.push_str(&format!("\nfix: {}", s(f, "fix")));
            }
            let st = non_success(NonSuccessKind::Failure, sev, s(f, "message"), &body);
            suite.add_test_case(case(&format!("{} {}", s(f, "rule"), loc(f)), &class, st));
        }
        let ran = tool.is_none_or(|t| s(t, "status") == "ran");
        if ran && found == 0 && tool.is_none_or(|t| t.get("tests").is_none()) {
            suite.add_test_case(case("no findings", &class, TestCaseStatus::success()));
        }
        out.add_test_suite(suite);
    }
    if !failed_tasks.is_empty() {
        let mut suite = TestSuite::new("bgrun tasks");
        for t in failed_tasks {
            let st = non_success(NonSuccessKind::Error, "task-failed", &t.message, "");
            suite.add_test_case(case(&t.name, "bgrun.tasks", st));
        }
        out.add_test_suite(suite);
    }
    Ok(surefire_attributes(&out.to_string()?))
}

/// quick-junit counts skipped cases in a `disabled` attribute; the surefire/Jenkins schema
/// (fixtures/schemas/junit-10.xsd) calls that `skipped` on a suite and has neither on
/// `<testsuites>`. Only tag lines are touched: in text `<` is always escaped.
fn surefire_attributes(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    for line in xml.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with("<testsuites ") || t.starts_with("<testsuite ") {
            let suites = t.starts_with("<testsuites ");
            if let Some(at) = line.find(" disabled=\"")
                && let Some(len) = line[at + 11..].find('"')
            {
                let end = at + 11 + len + 1;
                out.push_str(&line[..at]);
                if !suites {
                    out.push_str(" skipped=");
                    out.push_str(&line[at + 10..end]);
                }
                out.push_str(&line[end..]);
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_becomes_skipped_on_suites_only() {
        let x = "<testsuites name=\"b\" tests=\"1\" disabled=\"0\" errors=\"0\">\n    <testsuite name=\"t\" tests=\"1\" disabled=\"1\" errors=\"0\">\n<failure> disabled=\"2\"</failure>\n";
        assert_eq!(
            surefire_attributes(x),
            "<testsuites name=\"b\" tests=\"1\" errors=\"0\">\n    <testsuite name=\"t\" tests=\"1\" skipped=\"1\" errors=\"0\">\n<failure> disabled=\"2\"</failure>\n"
        );
    }
}
