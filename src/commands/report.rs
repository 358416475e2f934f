//! `bgrun report [--output FILE]`: gather the results, metrics samples and stored reports,
//! render the self-contained HTML report (`crate::report`) and write it atomically
//! (default `<state>/report.html`). `refresh` is what a drain calls when `report.auto` is on.
//! The new-vs-fixed chart's points are `results::baseline_runs`; the console line is
//! `present::report`'s.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::ReportArgs;
use crate::present::report as view;
use crate::results;
use crate::{Ctx, Exit};

pub fn run(ctx: &Ctx, a: ReportArgs) -> Result<Exit> {
    let path = a
        .output
        .unwrap_or_else(|| ctx.state_dir.join("report.html"));
    write(ctx, &path)?;
    view::written(&ctx.out, &path)?;
    Ok(Exit::Ok)
}

/// Build the report and write it to `path`.
pub fn write(ctx: &Ctx, path: &Path) -> Result<()> {
    let rs = results::list(&ctx.state_dir, None, usize::MAX)?;
    let samples = results::samples(&ctx.state_dir);
    let (current, _failed) = crate::present::formats::merge(&rs);
    let html = crate::report::render(&crate::report::Data {
        project: view::project(&ctx.repo),
        results: &rs,
        baseline_runs: results::baseline_runs(&rs),
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
