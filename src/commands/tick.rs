//! `bgrun tick` (issue 7).

use anyhow::Result;

use crate::{Ctx, Exit};

pub fn run(_ctx: &Ctx) -> Result<Exit> {
    Err(crate::error::not_yet("tick"))
}
