//! `bgrun analyze KIND [PATH|FILE...] [--changed] [--since REF] [--full] [--new-only]`: run
//! the analyzers in the foreground (every applicable tool in parallel, through the result
//! cache), compare with the baseline, print a summary grouped by severity, write the
//! normalized report (`--output`, JSON by default, or SARIF). Also `bgrun baseline`.
//! The analysis and the baselines are `analyzers::session`'s, the texts, the progress and
//! where the report goes `present::analyze`'s.
//!
//! Exit: 0 when the work ran (findings alone do not fail it); 1 when `--fail-on` is met, a
//! test failed, or no applicable tool produced a result; 2 for usage errors.

use anyhow::Result;

use crate::analyzers::session::{Ask, Project};
use crate::analyzers::{self, Kind, Options, Severity};
use crate::cli::{AnalyzeArgs, AnalyzeKind, BaselineCommand, SeverityArg};
use crate::present::analyze as view;
use crate::{Ctx, Exit};

fn kinds_of(k: AnalyzeKind) -> Vec<Kind> {
    match k {
        AnalyzeKind::Security => vec![Kind::Security],
        AnalyzeKind::Performance => vec![Kind::Performance],
        AnalyzeKind::Code => vec![Kind::Code],
        AnalyzeKind::Tests => vec![Kind::Tests],
        AnalyzeKind::All => Kind::ALL.to_vec(),
    }
}

fn severity_of(s: SeverityArg) -> Severity {
    match s {
        SeverityArg::Info => Severity::Info,
        SeverityArg::Low => Severity::Low,
        SeverityArg::Medium => Severity::Medium,
        SeverityArg::High => Severity::High,
        SeverityArg::Critical => Severity::Critical,
    }
}

fn project(ctx: &Ctx) -> Project<'_> {
    Project {
        repo: &ctx.repo,
        state_dir: &ctx.state_dir,
        analysis: &ctx.config.analysis,
    }
}

/// The analyzers' options; tools are installed on first use unless `--no-install`.
fn options(ctx: &Ctx, allow_install: bool) -> Options {
    let progress = view::install_progress(&ctx.out);
    project(ctx).options(ctx.config.analysis.tool_settings(allow_install, progress))
}

pub fn run(ctx: &Ctx, args: AnalyzeArgs) -> Result<Exit> {
    let ask = Ask {
        kinds: &kinds_of(args.kind),
        paths: &args.paths,
        changed: args.changed,
        since: args.since.as_deref(),
        full: args.full,
        new_only: args.new_only,
    };
    let opts = options(ctx, !args.no_install);
    let progress = view::progress(&ctx.out);
    let report = project(ctx).analyze(&ask, &opts, &*progress, &mut |w| ctx.out.warn(w))?;
    let (format, output) = (args.format, args.output.as_deref());
    view::emit(&ctx.out, &ctx.repo, &report, format, output)?;
    let failed = view::failed(&report, args.fail_on.map(severity_of));
    Ok(if failed { Exit::WorkFailed } else { Exit::Ok })
}

/// `bgrun baseline save [--ref REF] [--kind KIND] | show | clear`.
pub fn baseline_cmd(ctx: &Ctx, c: BaselineCommand) -> Result<Exit> {
    let p = project(ctx);
    match c {
        BaselineCommand::Save { reference, kind } => {
            let kinds = kinds_of(kind.unwrap_or(AnalyzeKind::All));
            let opts = options(ctx, ctx.config.analysis.install_tools);
            view::baseline_saved(&ctx.out, &p.save_baseline(reference, &kinds, &opts)?)?;
        }
        BaselineCommand::Show => {
            let b = analyzers::baseline::load(&p.saved_path());
            view::baseline_shown(&ctx.out, b.as_ref())?;
        }
        BaselineCommand::Clear => view::baseline_cleared(p.clear_baseline()?),
    }
    Ok(Exit::Ok)
}
