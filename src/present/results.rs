//! How a stored result reads on the terminal (`bgrun results`): one line of the list, or
//! one task's result in full: its findings (new ones first when a baseline is known),
//! fixed findings, failing tests with their causes, failed tools, and where its output is.

use serde_json::Value;

use crate::output::Output;
use crate::results::TaskResult;
use crate::timefmt::human_duration;

/// `c1 h2 m0 l0 i3` counts, or nothing.
pub fn counts(r: &TaskResult) -> String {
    r.findings
        .as_ref()
        .map(|f| {
            format!(
                "  findings c{} h{} m{} l{} i{}",
                f.critical, f.high, f.medium, f.low, f.info
            )
        })
        .unwrap_or_default()
}

fn paint_status(out: &Output, status: &str) -> String {
    out.paint(if status == "succeeded" { "32" } else { "31" }, status)
        .to_string()
}

/// One result on one line (the list).
pub fn line(r: &TaskResult, out: &Output) -> String {
    format!(
        "{:>6}  {:<40} {:<13} attempt {}  {:>7}  {}  {}{}{}{}",
        r.id,
        super::what_of_result(r),
        paint_status(out, r.status.as_str()),
        r.attempt,
        human_duration(r.duration_s),
        r.finished_at,
        r.trigger,
        r.host
            .as_deref()
            .map(|h| format!("  on {h}"))
            .unwrap_or_default(),
        counts(r),
        r.error
            .as_deref()
            .map(|e| format!("  ({e})"))
            .unwrap_or_default(),
    )
}

fn sev_rank(s: &str) -> u8 {
    match s {
        "critical" => 0,
        "high" => 1,
        "medium" => 2,
        "low" => 3,
        _ => 4,
    }
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// `file:line:col` of a finding (or test) object.
fn location(v: &Value) -> String {
    let file = str_of(v, "file");
    match (
        v.get("line").and_then(Value::as_u64),
        v.get("column").and_then(Value::as_u64),
    ) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
        (Some(l), None) => format!("{file}:{l}"),
        _ => file.to_string(),
    }
}

/// The findings of a report, new ones (baseline "new") first, then by severity.
fn ordered_findings(report: &Value) -> Vec<&Value> {
    let mut fs: Vec<&Value> = report
        .get("findings")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    fs.sort_by_key(|f| {
        (
            str_of(f, "baseline") != "new",
            sev_rank(str_of(f, "severity")),
        )
    });
    fs
}

/// One result in full (`results ID`).
pub fn detail(r: &TaskResult, out: &Output) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "task {}  {}  {}  attempt {}  {}  finished {}  trigger {}",
        r.id,
        super::what_of_result(r),
        paint_status(out, r.status.as_str()),
        r.attempt,
        human_duration(r.duration_s),
        r.finished_at,
        r.trigger
    );
    if let Some(e) = &r.error {
        let _ = writeln!(s, "  error: {e}");
    }
    if let Some(rep) = &r.report {
        let fs = ordered_findings(rep);
        let new = fs.iter().filter(|f| str_of(f, "baseline") == "new").count();
        let _ = writeln!(
            s,
            "findings ({}{}){}",
            fs.len(),
            if new > 0 {
                format!(", {new} new")
            } else {
                String::new()
            },
            counts(r)
        );
        for f in &fs {
            let tag = match str_of(f, "baseline") {
                "new" => out.paint("1;31", "NEW ").to_string(),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "  {tag}{:<8} {} {}  {}  {}",
                str_of(f, "severity").to_uppercase(),
                str_of(f, "tool"),
                str_of(f, "rule"),
                location(f),
                str_of(f, "message")
            );
        }
        if let Some(fixed) = rep.get("fixed").and_then(Value::as_array)
            && !fixed.is_empty()
        {
            let _ = writeln!(s, "fixed since the baseline ({})", fixed.len());
            for f in fixed {
                let _ = writeln!(
                    s,
                    "  {} {}  {}  {}",
                    str_of(f, "tool"),
                    str_of(f, "rule"),
                    location(f),
                    str_of(f, "message")
                );
            }
        }
        if let Some(t) = rep.get("tests").filter(|t| t.is_object()) {
            let n = |k: &str| t.get(k).and_then(Value::as_u64).unwrap_or(0);
            let _ = writeln!(
                s,
                "tests: {} passed, {} failed, {} skipped",
                n("passed"),
                n("failed"),
                n("skipped")
            );
            for f in t
                .get("failures")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let loc = location(f);
                let _ = writeln!(
                    s,
                    "  {} {}{}",
                    out.paint("31", "FAILED"),
                    str_of(f, "name"),
                    if loc.is_empty() {
                        String::new()
                    } else {
                        format!(" ({loc})")
                    }
                );
                for l in str_of(f, "message").lines().take(12) {
                    let _ = writeln!(s, "      {l}");
                }
            }
        }
        for t in rep
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|t| str_of(t, "status") == "failed")
        {
            let _ = writeln!(
                s,
                "  tool {} failed: {}",
                str_of(t, "name"),
                str_of(t, "why")
            );
        }
    }
    match r.log.as_ref().filter(|l| l.exists()) {
        Some(log) => {
            if r.status != "succeeded" && r.report.is_none() {
                let tail =
                    crate::tasklog::last_lines(&std::fs::read(log).unwrap_or_default(), Some(10))
                        .to_vec();
                let _ = writeln!(s, "last lines of its output:");
                for l in String::from_utf8_lossy(&tail).lines() {
                    let _ = writeln!(s, "  | {l}");
                }
            }
            let _ = writeln!(s, "output: bgrun log {}  ({})", r.id, log.display());
        }
        None => {
            let _ = writeln!(s, "output: none");
        }
    }
    s
}
