//! `bgrun analyze KIND [PATH|FILE...] [--changed] [--since REF] [--full] [--new-only]`: run
//! the analyzers in the foreground (every applicable tool in parallel, through the result
//! cache), compare with the baseline, print a summary grouped by severity, write the
//! normalized report (`--output`, JSON by default, or SARIF). Also `bgrun baseline`.
//! The analysis and the baselines are `analyzers::session`'s, the texts and where the report
//! goes `present::analyze`'s.
//!
//! Exit: 0 when the work ran (findings alone do not fail it); 1 when `--fail-on` is met, a
//! test failed, or no applicable tool produced a result; 2 for usage errors.

use anyhow::Result;

use crate::analyzers::session::{self, Project};
use crate::analyzers::{self, BaselineState, Kind, Options, Request, Severity};
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
    let kinds = kinds_of(args.kind);
    let (root, only) = session::resolve_paths(&ctx.repo, &args.paths)?;
    for w in session::unknown_disabled(&ctx.config.analysis) {
        ctx.out.warn(w);
    }
    let p = project(ctx);
    let opts = options(ctx, !args.no_install);
    let changed = p.change_set(args.changed, args.since.as_deref())?;
    if let Some(w) = changed.warning {
        ctx.out.warn(w);
    }
    let req = Request {
        only: only.clone(),
        changed: changed.set,
        cache: Some(p.cache()),
        full: args.full,
    };
    let mut report = if ctx.out.tty && !ctx.out.json && !ctx.out.quiet() {
        let bars = view::Bars::default();
        let r = analyzers::analyze_with_progress(&kinds, &root, &ctx.repo, &opts, &req, &bars);
        bars.done();
        r
    } else {
        analyzers::analyze_with(&kinds, &root, &ctx.repo, &opts, &req)
    };
    p.apply_baseline(&mut report, &kinds, only.as_deref(), &opts);
    if args.new_only {
        report
            .findings
            .retain(|f| f.baseline != Some(BaselineState::Unchanged));
        report.finish();
    }

    view::emit(
        &ctx.out,
        &ctx.repo,
        &report,
        args.format,
        args.output.as_deref(),
    )?;
    if view::failed(&report, args.fail_on.map(severity_of)) {
        Ok(Exit::WorkFailed)
    } else {
        Ok(Exit::Ok)
    }
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
