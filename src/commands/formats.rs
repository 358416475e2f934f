//! The CI formats of `analyze` and `results` (`--format junit|github|codequality`, and
//! json/sarif/text for results): picks the writer in `analyzers::` and where its output goes.

use anyhow::Result;

use crate::cli::ReportFormat;
use crate::results::TaskResult;
use crate::{Ctx, Exit};

pub fn emit_results(ctx: &Ctx, rs: &[TaskResult], f: ReportFormat) -> Result<Exit> {
    let _ = (ctx, rs, f);
    Err(crate::error::not_yet("results --format"))
}
