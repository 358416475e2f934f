//! The CI formats of `analyze` and `results` (`--format junit|github|codequality`, and
//! sarif/json for results): picks the writer in `analyzers::` and where its output goes.
//! `github` prints workflow commands and appends a Markdown summary to
//! `$GITHUB_STEP_SUMMARY` when that is set.

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::analyzers::junit_report::FailedTask;
use crate::analyzers::{self, codequality, github, junit_report};
use crate::cli::ReportFormat;
use crate::output::Output;
use crate::results::{Findings, TaskResult};

/// The body of `report` in a CI format (`Json`/`Text` are the callers' own).
pub fn render(
    console: &Output,
    repo: &std::path::Path,
    f: ReportFormat,
    report: &Value,
    failed: &[FailedTask],
) -> Result<Vec<u8>> {
    Ok(match f {
        ReportFormat::Junit => junit_report::to_junit(report, failed)?.into_bytes(),
        ReportFormat::Codequality => {
            let mut b = serde_json::to_vec_pretty(&codequality::to_codequality(report))?;
            b.push(b'\n');
            b
        }
        ReportFormat::Github => {
            let mut out = github::to_commands(report);
            for t in failed {
                out.push_str(&format!(
                    "::error title={}::{}\n",
                    github::escape_property(&format!("bgrun: {} failed", t.name)),
                    github::escape_data(&t.message)
                ));
            }
            if let Some(p) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty())
                && let Err(e) = append(std::path::Path::new(&p), github::to_summary(report))
            {
                console.warn(format!("GITHUB_STEP_SUMMARY: {e:#}"));
            }
            out.into_bytes()
        }
        ReportFormat::Sarif => {
            let typed: analyzers::Report = serde_json::from_value(report.clone())
                .context("the stored report cannot be read as a normalized report")?;
            let mut b = serde_json::to_vec_pretty(&analyzers::sarif::to_sarif(&typed, repo))?;
            b.push(b'\n');
            b
        }
        ReportFormat::Json | ReportFormat::Text => {
            let mut b = serde_json::to_vec_pretty(report)?;
            b.push(b'\n');
            b
        }
    })
}

fn append(path: &std::path::Path, text: String) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot append to {}", path.display()))
}

/// One report out of results: the newest result of each task type (its stored report),
/// merged; failed tasks without a report become `FailedTask`s.
pub fn merge(rs: &[TaskResult]) -> (Value, Vec<FailedTask>) {
    let mut merged = serde_json::to_value(analyzers::empty_report("all")).unwrap_or(Value::Null);
    let mut findings: Vec<Value> = Vec::new();
    let mut tools: Vec<Value> = Vec::new();
    let mut fixed: Vec<Value> = Vec::new();
    let mut failed = Vec::new();
    let mut seen = BTreeSet::new();
    for r in rs {
        if !seen.insert(r.task_type.clone()) {
            continue;
        }
        match crate::results::stored_report(r) {
            Some(rep) => {
                let take = |k: &str| rep.get(k).and_then(Value::as_array).cloned();
                findings.extend(take("findings").unwrap_or_default());
                tools.extend(take("tools").unwrap_or_default());
                fixed.extend(take("fixed").unwrap_or_default());
            }
            None if r.status != "succeeded" => failed.push(FailedTask {
                name: format!("{} #{}", super::what_of_result(r), r.id),
                message: r
                    .error
                    .clone()
                    .unwrap_or_else(|| r.status.as_str().to_string()),
            }),
            None => {}
        }
    }
    let counts = Findings::from_report(&serde_json::json!({ "findings": findings }));
    merged["counts"] = serde_json::to_value(counts).unwrap_or(Value::Null);
    merged["findings"] = Value::Array(findings);
    merged["tools"] = Value::Array(tools);
    if !fixed.is_empty() {
        merged["fixed"] = Value::Array(fixed);
    }
    (merged, failed)
}

/// `results [ID] --format F`.
pub fn emit_results(
    out: &Output,
    repo: &std::path::Path,
    rs: &[TaskResult],
    f: ReportFormat,
) -> Result<()> {
    let (report, failed) = merge(rs);
    let body = render(out, repo, f, &report, &failed)?;
    std::io::stdout().write_all(&body)?;
    Ok(())
}
