//! What `bgrun run` says once its task ended: the result line, its findings and log (or
//! the result as JSON), and the body of its `--output` file in the chosen format.

use std::path::Path;

use anyhow::Result;

use super::{formats, print_json, what_of_result};
use crate::cli::ReportFormat;
use crate::error;
use crate::output::Output;
use crate::results::TaskResult;
use crate::timefmt::human_duration;

/// The `--output` file of `run`: the result, or its stored report, as JSON, or a CI format
/// (not SARIF: that is `analyze`'s).
pub fn output_body(
    out: &Output,
    repo: &Path,
    format: Option<ReportFormat>,
    r: &TaskResult,
) -> Result<Vec<u8>> {
    Ok(match (format, &r.report) {
        (Some(ReportFormat::Sarif), _) => {
            return Err(error::usage(
                "--format sarif: use `bgrun analyze KIND --format sarif` for SARIF reports",
            ));
        }
        (Some(f @ (ReportFormat::Junit | ReportFormat::Github | ReportFormat::Codequality)), _) => {
            let (report, failed) = formats::merge(std::slice::from_ref(r));
            formats::render(out, repo, f, &report, &failed)?
        }
        (_, Some(rep)) => serde_json::to_vec_pretty(rep)?,
        _ => serde_json::to_vec_pretty(r)?,
    })
}

/// The result on the console.
pub fn result(out: &Output, r: &TaskResult) -> Result<()> {
    if out.json {
        return print_json(r);
    }
    out.say(format!(
        "{} {} in {}{}",
        what_of_result(r),
        r.status,
        human_duration(r.duration_s),
        r.error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    ));
    if let Some(f) = &r.findings {
        out.say(format!(
            "findings: {} critical, {} high, {} medium, {} low, {} info",
            f.critical, f.high, f.medium, f.low, f.info
        ));
    }
    if let Some(log) = r.log.as_ref().filter(|l| l.exists()) {
        out.say(format!("log: {}", log.display()));
    }
    Ok(())
}
