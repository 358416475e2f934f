//! `bgrun report [--output FILE]`: the self-contained HTML report (see `crate::report`).

use anyhow::Result;

use crate::cli::ReportArgs;
use crate::{Ctx, Exit};

pub fn run(ctx: &Ctx, a: ReportArgs) -> Result<Exit> {
    let _ = (ctx, a);
    Err(crate::error::not_yet("report"))
}
