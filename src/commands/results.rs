//! `bgrun results [ID] [--last N] [--format FMT]`: the list of stored results, or one task's
//! result in full: its findings (new ones first when a baseline is known), fixed findings,
//! failing tests with their causes, failed tools, and where its output is (the texts:
//! `present::results`).

use anyhow::Result;

use crate::cli::ResultsArgs;
use crate::present::results as view;
use crate::results;
use crate::{Ctx, Exit, engine, error};

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
        crate::present::formats::emit_results(&ctx.out, &ctx.repo, &rs, f)?;
        return Ok(Exit::Ok);
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
            print!("{}", view::detail(r, &ctx.out));
        }
        return Ok(Exit::Ok);
    }
    for r in &rs {
        println!("{}", view::line(r, &ctx.out));
    }
    Ok(Exit::Ok)
}
