//! `bgrun analyze` (issue 5).

use anyhow::Result;

use crate::cli::AnalyzeArgs;
use crate::{Ctx, Exit};

pub fn run(_ctx: &Ctx, _args: AnalyzeArgs) -> Result<Exit> {
    Err(crate::error::not_yet("analyze"))
}
