//! GitHub Actions output: workflow commands (`::error file=F,line=L,col=C,title=T::MESSAGE`)
//! that annotate the changed lines, and a Markdown summary for `$GITHUB_STEP_SUMMARY`.
//! Critical and high findings and failing tests are errors, medium and low warnings, info
//! notices. Values are escaped as the Actions toolkit does (`%`, CR, LF; in properties
//! also `:` and `,`), so any file name or message is one well-formed command.

use std::fmt::Write;

use serde_json::Value;

use super::ci_common::{arr, failing_tests, loc, s, u};

/// Escape a command's message.
pub fn escape_data(v: &str) -> String {
    v.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escape a property value.
pub fn escape_property(v: &str) -> String {
    escape_data(v).replace(':', "%3A").replace(',', "%2C")
}

fn level(sev: &str) -> &'static str {
    match sev {
        "critical" | "high" => "error",
        "medium" | "low" => "warning",
        _ => "notice",
    }
}

fn command(level: &str, props: &[(&str, String)], message: &str) -> String {
    let props: Vec<String> = props
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", escape_property(v)))
        .collect();
    let sep = if props.is_empty() { "" } else { " " };
    format!(
        "::{level}{sep}{}::{}",
        props.join(","),
        escape_data(message)
    )
}

/// One workflow command per finding, failing test and failed tool.
pub fn to_commands(report: &Value) -> String {
    let mut out = String::new();
    let runners: Vec<&str> = arr(report, "tools")
        .iter()
        .filter(|t| t.get("tests").is_some())
        .map(|t| s(t, "name"))
        .collect();
    for f in arr(report, "findings") {
        // A test runner's failures are annotated once, as failing tests (below).
        if s(f, "rule") == "test-failure" && runners.contains(&s(f, "tool")) {
            continue;
        }
        let num = |k: &str| u(f, k).map(|n| n.to_string()).unwrap_or_default();
        let mut title = format!("{} {}", s(f, "tool"), s(f, "rule"));
        if s(f, "baseline") == "new" {
            title.push_str(" (new)");
        }
        let mut msg = s(f, "message").to_string();
        if !s(f, "fix").is_empty() {
            msg.push_str(&format!("\nfix: {}", s(f, "fix")));
        }
        let props = [
            ("file", s(f, "file").to_string()),
            ("line", num("line")),
            ("col", num("column")),
            ("title", title),
        ];
        let _ = writeln!(out, "{}", command(level(s(f, "severity")), &props, &msg));
    }
    for (tool, t) in failing_tests(report) {
        let props = [
            ("file", s(t, "file").to_string()),
            (
                "line",
                u(t, "line").map(|n| n.to_string()).unwrap_or_default(),
            ),
            ("title", format!("{tool}: {} failed", s(t, "name"))),
        ];
        let _ = writeln!(out, "{}", command("error", &props, s(t, "message")));
    }
    for t in arr(report, "tools")
        .iter()
        .filter(|t| s(t, "status") == "failed")
    {
        let props = [("title", format!("bgrun: {} failed to run", s(t, "name")))];
        let _ = writeln!(out, "{}", command("warning", &props, s(t, "why")));
    }
    out
}

/// Markdown cells cannot hold `|` or newlines.
fn cell(v: &str) -> String {
    v.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The step summary: counts by severity, the findings (the first 100), failing tests.
pub fn to_summary(report: &Value) -> String {
    let mut md = String::new();
    let findings = arr(report, "findings");
    let _ = writeln!(md, "## bgrun: {} finding(s)\n", findings.len());
    let c = report.get("counts").cloned().unwrap_or(Value::Null);
    let _ = writeln!(md, "| critical | high | medium | low | info |");
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|");
    let n = |k: &str| u(&c, k).unwrap_or(0);
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {} |\n",
        n("critical"),
        n("high"),
        n("medium"),
        n("low"),
        n("info")
    );
    if !findings.is_empty() {
        let _ = writeln!(md, "| severity | tool | rule | location | message |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for f in findings.iter().take(100) {
            let new = if s(f, "baseline") == "new" {
                " (new)"
            } else {
                ""
            };
            let _ = writeln!(
                md,
                "| {}{new} | {} | {} | `{}` | {} |",
                s(f, "severity"),
                cell(s(f, "tool")),
                cell(s(f, "rule")),
                cell(&loc(f)),
                cell(s(f, "message"))
            );
        }
        if findings.len() > 100 {
            let _ = writeln!(md, "\n… and {} more.", findings.len() - 100);
        }
        md.push('\n');
    }
    let tests = failing_tests(report);
    if !tests.is_empty() {
        let _ = writeln!(md, "### Failing tests\n");
        for (tool, t) in tests {
            let first = s(t, "message").lines().next().unwrap_or("");
            let _ = writeln!(md, "- **{}** ({tool}): {}", cell(s(t, "name")), cell(first));
        }
        md.push('\n');
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A parser for workflow commands, as the Actions runner reads them: `::NAME PROPS::MSG`,
    /// properties `k=v` split on `,`, values and message unescaped.
    type Command = (String, Vec<(String, String)>, String);

    fn parse(line: &str) -> Option<Command> {
        fn unescape(v: &str) -> String {
            v.replace("%0D", "\r")
                .replace("%0A", "\n")
                .replace("%3A", ":")
                .replace("%2C", ",")
                .replace("%25", "%")
        }
        let rest = line.strip_prefix("::")?;
        let (head, msg) = rest.split_once("::")?;
        let (name, props) = head.split_once(' ').unwrap_or((head, ""));
        let props = props
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), unescape(v))
            })
            .collect();
        Some((name.to_string(), props, unescape(msg)))
    }

    #[test]
    fn error_lines_parse_back_to_the_finding_with_odd_names() {
        let report = json!({
            "findings": [
                {"tool": "bandit", "rule": "B602", "severity": "high", "file": "app/a, b:c%.py",
                 "line": 10, "column": 4, "message": "shell=True\nsecond line: 100%", "fix": ""},
                {"tool": "ruff", "rule": "F401", "severity": "low", "file": "x.py", "line": 1,
                 "message": "unused", "fix": "remove it", "baseline": "new"},
                {"tool": "radon-mi", "rule": "mi", "severity": "info", "file": "", "message": "ok"}
            ],
            "tools": [
                {"name": "pytest", "status": "ran", "tests": {"failures": [
                    {"name": "t.py::test_x", "message": "AssertionError", "file": "t.py", "line": 3}]}},
                {"name": "eslint", "status": "failed", "why": "crashed"}
            ]
        });
        let text = to_commands(&report);
        let lines: Vec<_> = text.lines().map(|l| parse(l).expect(l)).collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert_eq!(lines[0].0, "error");
        assert_eq!(
            lines[0].1,
            vec![
                ("file".into(), "app/a, b:c%.py".into()),
                ("line".into(), "10".into()),
                ("col".into(), "4".into()),
                ("title".into(), "bandit B602".into()),
            ]
        );
        assert_eq!(lines[0].2, "shell=True\nsecond line: 100%");
        assert_eq!(lines[1].0, "warning");
        assert_eq!(lines[1].1.last().unwrap().1, "ruff F401 (new)");
        assert_eq!(lines[1].2, "unused\nfix: remove it");
        assert_eq!(lines[2].0, "notice");
        assert_eq!(lines[2].1, vec![("title".into(), "radon-mi mi".into())]);
        assert_eq!(lines[3].0, "error");
        assert_eq!(lines[3].1[0], ("file".into(), "t.py".into()));
        assert_eq!(lines[4].0, "warning");
        assert!(text.lines().all(|l| !l.contains('\r')));
        let md = to_summary(&report);
        assert!(
            md.contains(
                "| high | bandit | B602 | `app/a, b:c%.py:10` | shell=True second line: 100% |"
            ),
            "{md}"
        );
        assert!(
            md.contains("- **t.py::test_x** (pytest): AssertionError"),
            "{md}"
        );
    }
}
