//! `bgrun results [ID] [--last N] [--format FMT]`: the list of stored results, or one task's
//! result in full: its findings (new ones first when a baseline is known), fixed findings,
//! failing tests with their causes, failed tools, and where its output is.

use anyhow::Result;
use serde_json::Value;

use crate::cli::ResultsArgs;
use crate::output::Output;
use crate::results::{self, TaskResult};
use crate::timefmt::human_duration;
use crate::{Ctx, Exit, engine, error, present};

pub fn run(ctx: &Ctx, a: ResultsArgs) -> Result<Exit> {
    let mut board = engine::board(ctx)?;
    let mut rs = board.results(a.id.as_deref(), a.last.unwrap_or(20))?;
    if a.new_only {
        results::count_only_new(&mut rs);
    }
    if let Some(id) = a.id.as_deref()
        && rs.is_empty()
    {
        let Some(live) = board.live(id)? else {
            return Err(error::usage(format!(
                "no result for task id {id:?} (see `bgrun results` for the ids kept; \
                 results older than results.retention_days are removed)"
            )));
        };
        let where_ = live.as_str();
        if ctx.out.json {
            super::print_json(&rs)?;
        } else {
            ctx.out.say(format!(
                "task {id} is {where_}: no result yet (`bgrun log {id} --follow` shows its output)"
            ));
        }
        return Ok(Exit::Ok);
    }
    let f = a.format.unwrap_or(crate::cli::ReportFormat::Text);
    if !matches!(
        f,
        crate::cli::ReportFormat::Text | crate::cli::ReportFormat::Json
    ) {
        return super::formats::emit_results(ctx, &rs, f);
    }
    if ctx.out.json || f == crate::cli::ReportFormat::Json {
        super::print_json(&rs)?;
        return Ok(Exit::Ok);
    }
    if rs.is_empty() {
        ctx.out.say("no results yet");
    }
    if a.id.is_some() {
        for r in &rs {
            print!("{}", detail(r, &ctx.out));
        }
        return Ok(Exit::Ok);
    }
    for r in &rs {
        println!("{}", line(r, &ctx.out));
    }
    Ok(Exit::Ok)
}

/// `c1 h2 m0 l0 i3` counts, or nothing.
pub(crate) fn counts(r: &TaskResult) -> String {
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
fn line(r: &TaskResult, out: &Output) -> String {
    format!(
        "{:>6}  {:<40} {:<13} attempt {}  {:>7}  {}  {}{}{}{}",
        r.id,
        present::what_of_result(r),
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
pub(crate) fn location(v: &Value) -> String {
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
pub(crate) fn ordered_findings(report: &Value) -> Vec<&Value> {
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
fn detail(r: &TaskResult, out: &Output) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "task {}  {}  {}  attempt {}  {}  finished {}  trigger {}",
        r.id,
        present::what_of_result(r),
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
