//! `bgrun report [--output FILE]`: gather the results, metrics samples and stored reports,
//! render the self-contained HTML report (`crate::report`) and write it atomically
//! (default `<state>/report.html`). `refresh` is what a drain calls when `report.auto` is on.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::Value;

use crate::cli::ReportArgs;
use crate::results;
use crate::{Ctx, Exit};

/// Reports read for the new-vs-fixed chart (the newest runs).
const BASELINE_RUNS: usize = 200;

pub fn run(ctx: &Ctx, a: ReportArgs) -> Result<Exit> {
    let path = a
        .output
        .unwrap_or_else(|| ctx.state_dir.join("report.html"));
    write(ctx, &path)?;
    if ctx.out.json {
        super::print_json(&serde_json::json!({"report": path}))?;
    } else {
        ctx.out.say(format!("report: {}", path.display()));
    }
    Ok(Exit::Ok)
}

/// Build the report and write it to `path`.
pub fn write(ctx: &Ctx, path: &Path) -> Result<()> {
    let rs = results::list(&ctx.state_dir, None, usize::MAX)?;
    let samples = results::samples(&ctx.state_dir);
    let (current, _failed) = crate::present::formats::merge(&rs);
    let mut baseline_runs = Vec::new();
    for r in rs
        .iter()
        .filter(|r| r.report_path.is_some())
        .take(BASELINE_RUNS)
    {
        let Some(rep) = r
            .report_path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            continue;
        };
        let findings = rep.get("findings").and_then(Value::as_array);
        let has = findings.is_some_and(|f| f.iter().any(|x| x.get("baseline").is_some()))
            || rep.get("fixed").is_some();
        if !has {
            continue;
        }
        let new = findings
            .into_iter()
            .flatten()
            .filter(|f| f.get("baseline").and_then(Value::as_str) == Some("new"))
            .count() as u64;
        let fixed = rep
            .get("fixed")
            .and_then(Value::as_array)
            .map_or(0, |f| f.len() as u64);
        baseline_runs.push((r.finished_ts(), new, fixed));
    }
    baseline_runs.reverse();
    let project = ctx
        .repo
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ctx.repo.display().to_string());
    let html = crate::report::render(&crate::report::Data {
        project,
        results: &rs,
        baseline_runs,
        samples: &samples,
        current: &current,
    });
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    crate::fsutil::write_output(path, html.as_bytes())
}

/// After a drain, with `report.auto`: refresh `<state>/report.html` (a failure is a warning).
pub fn refresh(ctx: &Ctx) {
    if !ctx.config.report.auto {
        return;
    }
    let path: PathBuf = ctx.state_dir.join("report.html");
    if let Err(e) = write(ctx, &path) {
        ctx.out.warn(format!(
            "report.auto: cannot refresh {}: {e:#}",
            path.display()
        ));
    }
}
