//! `bgrun analyze KIND [PATH|FILE...] [--changed] [--since REF] [--full] [--new-only]`: run
//! the analyzers in the foreground (every applicable tool in parallel, through the result
//! cache), compare with the baseline, print a summary grouped by severity, write the
//! normalized report (`--output`, JSON by default, or SARIF). Also `bgrun baseline`.
//!
//! The changed set: `--changed`, `--since REF`, else the trigger's (`$BGRUN_CONTEXT`, as a
//! built-in analyzer task gets it), else everything.
//!
//! Exit: 0 when the work ran (findings alone do not fail it); 1 when `--fail-on` is met, a
//! test failed, or no applicable tool produced a result; 2 for usage errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::analyzers::baseline::{self, Baseline};
use crate::analyzers::cache::Cache;
use crate::analyzers::changed::{self, ChangeSet};
use crate::analyzers::{self, BaselineState, Kind, Options, Report, Request, Severity, Status};
use crate::cli::{AnalyzeArgs, AnalyzeKind, BaselineCommand, ReportFormat, SeverityArg};
use crate::output::Output;
use crate::{Ctx, Exit, error};

fn kinds_of(k: AnalyzeKind) -> Vec<Kind> {
    match k {
        AnalyzeKind::Security => vec![Kind::Security],
        AnalyzeKind::Performance => vec![Kind::Performance],
        AnalyzeKind::Code => vec![Kind::Code],
        AnalyzeKind::Tests => vec![Kind::Tests],
        AnalyzeKind::All => Kind::ALL.to_vec(),
    }
}

fn options(ctx: &Ctx) -> Options {
    let a = &ctx.config.analysis;
    Options {
        complexity_threshold: a.complexity_threshold,
        large_file_lines: a.large_file_lines,
        tool_timeout: Duration::from_secs(a.tool_timeout_seconds.max(1)),
        disabled: a.disabled_tools.clone(),
        tools: tool_settings(ctx, a.install_tools),
        python: a.python.as_ref().map(|p| ctx.repo.join(p)),
    }
}

fn result_cache(ctx: &Ctx) -> Cache {
    let mb = ctx.config.analysis.cache_max_mb;
    Cache::new(ctx.state_dir.join("cache"), mb.saturating_mul(1024 * 1024))
}

/// `--changed`, `--since REF`, or the trigger's context; None: everything. bgrun's own
/// state directory is never part of it.
fn change_set(ctx: &Ctx, args: &AnalyzeArgs) -> Result<Option<ChangeSet>> {
    let mut cs = raw_change_set(ctx, args)?;
    if let (Some(cs), Ok(rel)) = (cs.as_mut(), ctx.state_dir.strip_prefix(&ctx.repo)) {
        cs.drop_under(&rel.to_string_lossy());
    }
    Ok(cs)
}

fn raw_change_set(ctx: &Ctx, args: &AnalyzeArgs) -> Result<Option<ChangeSet>> {
    if args.changed {
        return changed::working(&ctx.repo)
            .map(Some)
            .map_err(|e| error::usage(format!("--changed: {e} (is this a git repository?)")));
    }
    if let Some(r) = &args.since {
        return changed::since(&ctx.repo, r).map(Some).map_err(|e| {
            error::usage(format!(
                "--since {r}: {e} (give a commit, branch or tag: git log --oneline)"
            ))
        });
    }
    let Some(path) = std::env::var_os("BGRUN_CONTEXT") else {
        return Ok(None);
    };
    let context = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    Ok(match context {
        Some(c) => changed::from_context(&ctx.repo, &c),
        None => {
            ctx.out.warn(format!(
                "$BGRUN_CONTEXT {}: unreadable; analyzing everything",
                Path::new(&path).display()
            ));
            None
        }
    })
}

pub fn run(ctx: &Ctx, args: AnalyzeArgs) -> Result<Exit> {
    let kinds = kinds_of(args.kind);
    let (root, only) = resolve_paths(&ctx.repo, &args.paths)?;
    let a = &ctx.config.analysis;
    let known: Vec<&str> = analyzers::registry().iter().map(|t| t.name()).collect();
    for d in &a.disabled_tools {
        if !known.contains(&d.as_str()) {
            ctx.out.warn(format!(
                "analysis.disabled_tools: unknown tool {d:?} (known: {})",
                known.join(", ")
            ));
        }
    }
    let mut opts = options(ctx);
    if args.no_install {
        opts.tools.install = false;
    }
    let req = Request {
        only: only.clone(),
        changed: change_set(ctx, &args)?,
        cache: Some(result_cache(ctx)),
        full: args.full,
    };
    let mut report = if ctx.out.tty && !ctx.out.json && !ctx.out.quiet() {
        let bars = Bars::default();
        let r = analyzers::analyze_with_progress(&kinds, &root, &ctx.repo, &opts, &req, &bars);
        bars.done();
        r
    } else {
        analyzers::analyze_with(&kinds, &root, &ctx.repo, &opts, &req)
    };
    apply_baseline(ctx, &mut report, &kinds, only.as_deref(), &opts);
    if args.new_only {
        report
            .findings
            .retain(|f| f.baseline != Some(BaselineState::Unchanged));
        report.finish();
    }

    let format = args.format.unwrap_or(if args.output.is_some() {
        ReportFormat::Json
    } else {
        ReportFormat::Text
    });
    let body = |f: ReportFormat| -> Result<Vec<u8>> {
        Ok(match f {
            ReportFormat::Json => serde_json::to_vec_pretty(&report)?,
            ReportFormat::Sarif => {
                serde_json::to_vec_pretty(&analyzers::sarif::to_sarif(&report, &ctx.repo))?
            }
            ReportFormat::Text => text_summary(&report, &ctx.out).into_bytes(),
            ReportFormat::Junit | ReportFormat::Github | ReportFormat::Codequality => {
                super::formats::render(ctx, f, &serde_json::to_value(&report)?, &[])?
            }
        })
    };
    match &args.output {
        Some(path) => {
            let mut bytes = body(format)?;
            if matches!(format, ReportFormat::Json | ReportFormat::Sarif) {
                bytes.push(b'\n');
            }
            crate::state::store::write_atomic(path, &bytes, false)?;
            if ctx.out.json {
                super::print_json(&report)?;
            } else if !ctx.out.quiet() {
                print!("{}", text_summary(&report, &ctx.out));
                println!("report: {}", path.display());
            }
        }
        None if ctx.out.json && format == ReportFormat::Text => super::print_json(&report)?,
        None => {
            let bytes = body(format)?;
            if format != ReportFormat::Text || !ctx.out.quiet() {
                print!("{}", String::from_utf8_lossy(&bytes));
                if matches!(format, ReportFormat::Json | ReportFormat::Sarif) {
                    println!();
                }
            }
        }
    }

    let mut exit = Exit::Ok;
    if let Some(why) = &report.not_run {
        eprintln!("bgrun: {why}");
        exit = Exit::WorkFailed;
    }
    if report.tests_failed() {
        let t = report.tests.clone().unwrap_or_default();
        let errors = if t.errors > 0 {
            format!(", {} errors", t.errors)
        } else {
            String::new()
        };
        eprintln!(
            "bgrun: tests failed: {} failed{errors}, {} passed, {} skipped",
            t.failed, t.passed, t.skipped
        );
        exit = Exit::WorkFailed;
    }
    if let Some(min) = args.fail_on {
        let min = severity_of(min);
        if !report.tools.iter().any(|t| t.status == Status::Ran) {
            eprintln!(
                "bgrun: --fail-on {min}: no tool ran, so nothing was checked ({})",
                if report.tools.is_empty() {
                    "no applicable tools for this project".to_string()
                } else {
                    report.not_run.clone().unwrap_or_default()
                }
            );
            exit = Exit::WorkFailed;
        } else if report.counts.at_or_above(min) {
            let n: u64 = Severity::ALL_DESC
                .iter()
                .filter(|s| **s >= min)
                .map(|s| report.counts.get(*s))
                .sum();
            eprintln!("bgrun: {n} finding(s) at or above {min} (--fail-on {min})");
            exit = Exit::WorkFailed;
        }
    }
    Ok(exit)
}

/// Where the analyzers take their tools from: the config's pins, `$BGRUN_TOOL_SOURCE` for
/// the rest (default managed), installing on first use unless `--no-install` or
/// `analysis.install_tools: false`; each install is announced on stderr.
pub fn tool_settings(ctx: &Ctx, allow_install: bool) -> crate::tools::Settings {
    let a = &ctx.config.analysis;
    let out = ctx.out;
    let progress: Option<crate::tools::Progress> = if out.quiet() {
        None
    } else {
        Some(std::sync::Arc::new(move |line: &str| {
            eprintln!("bgrun: {line}");
        }))
    };
    crate::tools::Settings {
        pins: a.tool_pins(),
        default_source: crate::tools::default_source_from_env()
            .unwrap_or(crate::tools::Source::Managed),
        install: allow_install && a.install_tools,
        install_timeout: Duration::from_secs(a.install_timeout_seconds.max(1)),
        cache: crate::tools::Cache::from_env(),
        progress,
    }
}

/// Where baselines live.
fn baseline_dir(ctx: &Ctx) -> PathBuf {
    ctx.state_dir.join("baseline")
}

/// The findings of commit `sha` (its tree exported to a scratch directory, analyzed
/// through the same cache).
fn findings_at(
    ctx: &Ctx,
    sha: &str,
    kinds: &[Kind],
    root_rel: &str,
    opts: &Options,
) -> Result<Report> {
    let scratch = ctx.state_dir.join("tmp").join(format!(
        "tree-{}-{}",
        std::process::id(),
        &sha[..sha.len().min(12)]
    ));
    let _ = std::fs::remove_dir_all(&scratch);
    let result = changed::export(&ctx.repo, sha, &scratch).map(|()| {
        let root = if root_rel.is_empty() {
            scratch.clone()
        } else {
            scratch.join(root_rel)
        };
        let req = Request {
            cache: Some(result_cache(ctx)),
            ..Request::default()
        };
        analyzers::analyze_with(kinds, &root, &scratch, opts, &req)
    });
    let _ = std::fs::remove_dir_all(&scratch);
    result.map_err(|e| error::state(format!("cannot read the tree of {sha}: {e}")))
}

/// Which baseline: the saved one; else the merge-base with the upstream branch; else the
/// previous full result.
fn select_baseline(ctx: &Ctx, report: &Report, kinds: &[Kind], opts: &Options) -> Option<Baseline> {
    let dir = baseline_dir(ctx);
    if let Some(b) = baseline::load(&baseline::path(&dir, "all", "", "saved")) {
        return Some(b);
    }
    if let Some(mb) = changed::upstream_merge_base(&ctx.repo) {
        let p = baseline::path(&dir, &report.kind, &report.root, "merge-base");
        if let Some(b) = baseline::load(&p).filter(|b| b.commit.as_deref() == Some(mb.as_str())) {
            return Some(b);
        }
        if let Ok(r) = findings_at(ctx, &mb, kinds, &report.root, opts) {
            let b = Baseline::of(&r, "merge-base", Some(mb));
            save(&p, &b);
            return Some(b);
        }
    }
    baseline::load(&baseline::path(
        &dir,
        &report.kind,
        &report.root,
        "previous",
    ))
}

fn save(path: &Path, b: &Baseline) {
    if let Some(d) = path.parent() {
        let _ = crate::state::store::ensure_private_dir(d);
    }
    if let Ok(bytes) = serde_json::to_vec(b) {
        let _ = crate::state::store::write_atomic(path, &bytes, false);
    }
}

/// Compare with the baseline; then keep this result as the next run's "previous" (a tool
/// that did not run now keeps its previous findings there).
fn apply_baseline(
    ctx: &Ctx,
    report: &mut Report,
    kinds: &[Kind],
    only: Option<&[String]>,
    opts: &Options,
) {
    let root = report.root.clone();
    let in_scope = |f: &str| {
        (root.is_empty() || analyzers::selected(std::slice::from_ref(&root), f))
            && only.is_none_or(|o| analyzers::selected(o, f))
    };
    let base = select_baseline(ctx, report, kinds, opts);
    if let Some(b) = &base {
        let renames = b
            .commit
            .as_deref()
            .and_then(|c| changed::since(&ctx.repo, c).ok())
            .map(|cs| cs.renamed)
            .unwrap_or_default();
        let info = baseline::compare(report, b, &renames, &in_scope);
        report.baseline = Some(info);
    }
    if only.is_some() || report.not_run.is_some() {
        return;
    }
    let prev_path = baseline::path(&baseline_dir(ctx), &report.kind, &report.root, "previous");
    let mut next = Baseline::of(report, "previous", changed::resolve(&ctx.repo, "HEAD"));
    if let Some(old) = baseline::load(&prev_path) {
        for t in &old.tools {
            if !next.tools.contains(t) {
                next.findings
                    .extend(old.findings.iter().filter(|f| &f.tool == t).cloned());
                next.tools.push(t.clone());
            }
        }
    }
    save(&prev_path, &next);
}

/// `bgrun baseline save [--ref REF] [--kind KIND] | show | clear`.
pub fn baseline_cmd(ctx: &Ctx, c: BaselineCommand) -> Result<Exit> {
    let path = baseline::path(&baseline_dir(ctx), "all", "", "saved");
    match c {
        BaselineCommand::Save { reference, kind } => {
            let r = reference.unwrap_or_else(|| "HEAD".to_string());
            let sha = changed::resolve(&ctx.repo, &r).ok_or_else(|| {
                error::usage(format!(
                    "--ref {r}: names no commit (give a commit, branch or tag: git log --oneline)"
                ))
            })?;
            let kinds = kinds_of(kind.unwrap_or(AnalyzeKind::All));
            let report = findings_at(ctx, &sha, &kinds, "", &options(ctx))?;
            let mut b = Baseline::of(&report, "saved", Some(sha.clone()));
            b.reference = Some(r.clone());
            save(&path, &b);
            if ctx.out.json {
                super::print_json(&b)?;
            } else if !ctx.out.quiet() {
                println!(
                    "baseline saved: {} finding(s) of {r} ({}) from {} tool(s): {}",
                    b.findings.len(),
                    &sha[..sha.len().min(12)],
                    b.tools.len(),
                    path.display()
                );
            }
        }
        BaselineCommand::Show => match baseline::load(&path) {
            Some(b) if ctx.out.json => super::print_json(&b)?,
            Some(b) => println!(
                "saved baseline: {} finding(s) of {} ({}), taken {}",
                b.findings.len(),
                b.reference.as_deref().unwrap_or("?"),
                b.commit.as_deref().unwrap_or("?"),
                b.generated_at
            ),
            None => println!(
                "no saved baseline: findings are compared with the merge-base with the upstream branch, else the previous full result"
            ),
        },
        BaselineCommand::Clear => match std::fs::remove_file(&path) {
            Ok(()) => println!("saved baseline removed"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!("no saved baseline")
            }
            Err(e) => {
                return Err(error::state(format!(
                    "cannot remove {}: {e}",
                    path.display()
                )));
            }
        },
    }
    Ok(Exit::Ok)
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

/// PATH|FILE arguments (relative to the current directory, like git), each inside the
/// repo. One directory: it becomes the analyzed root (its own tool configs apply). Files
/// or several paths: the repo is the root and the run is limited to them.
fn resolve_paths(repo: &Path, paths: &[PathBuf]) -> Result<(PathBuf, Option<Vec<String>>)> {
    let repo_c = repo.canonicalize().unwrap_or_else(|_| repo.to_path_buf());
    let mut rels = Vec::new();
    let mut dirs = Vec::new();
    for p in paths {
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()?.join(p)
        };
        let canon = abs.canonicalize().map_err(|e| {
            error::usage(format!(
                "PATH {}: {e} (give a file or directory inside the project)",
                p.display()
            ))
        })?;
        let Ok(rel) = canon.strip_prefix(&repo_c) else {
            return Err(error::usage(format!(
                "PATH {}: outside the project {} (use -C to pick another project)",
                p.display(),
                repo.display()
            )));
        };
        let rel = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        dirs.push(canon.is_dir());
        rels.push((canon, rel));
    }
    match (rels.as_slice(), dirs.as_slice()) {
        ([], _) => Ok((repo.to_path_buf(), None)),
        ([(canon, _)], [true]) => Ok((canon.clone(), None)),
        _ => Ok((
            repo.to_path_buf(),
            Some(rels.into_iter().map(|(_, r)| r).collect()),
        )),
    }
}

fn loc_of(f: &analyzers::Finding) -> String {
    match (f.line, f.column) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}", f.file),
        (Some(l), None) => format!("{}:{l}", f.file),
        _ => f.file.clone(),
    }
}

/// After a tool's status: its findings, what came from the cache, or that it was reused.
fn tool_note(t: &analyzers::ToolRun) -> String {
    if t.status != Status::Ran {
        return String::new();
    }
    let mut parts = Vec::new();
    if t.counts.total() > 0 {
        parts.push(format!("{} findings", t.counts.total()));
    }
    if let Some(why) = &t.reused {
        parts.push(why.clone());
    } else if let (Some(run), Some(cached)) = (t.files_run, t.files_cached) {
        parts.push(format!("{run} file(s) run, {cached} cached"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

fn paint_sev(out: &Output, s: Severity) -> String {
    let code = match s {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
        Severity::Info => "2",
    };
    out.paint(code, &s.as_str().to_uppercase()).into()
}

/// The console summary: tools, findings grouped by severity, tests, recommendations.
pub fn text_summary(r: &Report, out: &Output) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let c = &r.counts;
    let _ = writeln!(
        s,
        "analyze {}: {} finding(s): {} critical, {} high, {} medium, {} low, {} info ({:.1}s)",
        r.kind,
        c.total(),
        c.critical,
        c.high,
        c.medium,
        c.low,
        c.info,
        r.timing.wall_s
    );
    if r.tools.is_empty() {
        let _ = writeln!(s, "no applicable tools for this project");
    }
    for t in &r.tools {
        let status = match t.status {
            Status::Ran => out.paint("32", "ran"),
            Status::Skipped => out.paint("33", &format!("skipped: {}", t.why)),
            Status::Failed => out.paint("31", &format!("failed: {}", t.why)),
        };
        let _ = writeln!(
            s,
            "  {:<12} {:<14} {:>6.1}s  {status}{}",
            t.name,
            match (&t.version, &t.source) {
                (Some(v), Some(src)) => format!("{v} ({src})"),
                (None, Some(src)) => format!("- ({src})"),
                (v, None) => v.clone().unwrap_or_else(|| "-".into()),
            },
            t.duration_s,
            tool_note(t)
        );
    }
    if let Some(cs) = &r.changed {
        let _ = writeln!(
            s,
            "changed ({}): {} file(s), {} deleted, {} renamed",
            cs.source,
            cs.changed.len(),
            cs.deleted.len(),
            cs.renamed.len()
        );
    }
    if let Some(b) = &r.baseline {
        let _ = writeln!(
            s,
            "against the {} baseline ({}{}): {} new, {} unchanged, {} fixed",
            b.source,
            b.reference
                .as_deref()
                .map(|x| format!("{x} "))
                .unwrap_or_default(),
            b.commit
                .as_deref()
                .map(|c| &c[..c.len().min(12)])
                .unwrap_or(&b.generated_at),
            b.new,
            b.unchanged,
            b.fixed
        );
    }
    let cap = if out.level > 0 { usize::MAX } else { 20 };
    for sev in Severity::ALL_DESC {
        let group: Vec<_> = r.findings.iter().filter(|f| f.severity == sev).collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(s, "{} ({})", paint_sev(out, sev), group.len());
        for f in group.iter().take(cap) {
            let loc = match (f.line, f.column) {
                (Some(l), Some(c)) => format!("{}:{l}:{c}", f.file),
                (Some(l), None) => format!("{}:{l}", f.file),
                _ => f.file.clone(),
            };
            let tag = if f.baseline == Some(BaselineState::New) {
                format!("{} ", out.paint("1", "NEW"))
            } else {
                String::new()
            };
            let _ = writeln!(s, "  {tag}{loc}  {} {}  {}", f.tool, f.rule, f.message);
            if !f.fix.is_empty() {
                let _ = writeln!(s, "      fix: {}", f.fix);
            }
        }
        if group.len() > cap {
            let _ = writeln!(
                s,
                "  ... and {} more (-v shows all; --output FILE writes them all)",
                group.len() - cap
            );
        }
    }
    if let Some(t) = &r.tests {
        let _ = writeln!(
            s,
            "tests: {} passed, {} failed, {}{} skipped",
            t.passed,
            t.failed,
            if t.errors > 0 {
                format!("{} errors, ", t.errors)
            } else {
                String::new()
            },
            t.skipped
        );
        for f in &t.failures {
            let _ = writeln!(
                s,
                "  {} {}: {}",
                out.paint("31", "FAILED"),
                f.name,
                f.message
            );
        }
    }
    if !r.fixed.is_empty() {
        let _ = writeln!(s, "fixed ({}):", r.fixed.len());
        for f in r.fixed.iter().take(cap) {
            let _ = writeln!(s, "  {}  {} {}  {}", loc_of(f), f.tool, f.rule, f.message);
        }
    }
    if let Some(b) = &r.baseline {
        for f in &b.newly_failing {
            let _ = writeln!(
                s,
                "  {} {}: {}",
                out.paint("31", "NEWLY FAILING"),
                f.name,
                f.message
            );
        }
        for n in &b.newly_passing {
            let _ = writeln!(s, "  {} {n}", out.paint("32", "NEWLY PASSING"));
        }
    }
    let recs: Vec<&String> = r.tools.iter().flat_map(|t| &t.recommendations).collect();
    if !recs.is_empty() {
        let _ = writeln!(s, "recommendations:");
        for rec in recs.iter().take(cap) {
            let _ = writeln!(s, "  - {rec}");
        }
    }
    s
}

/// Per-tool progress on a terminal: one spinner line per tool (on stderr), each replaced by
/// the tool's outcome when it ends.
#[derive(Default)]
struct Bars {
    multi: indicatif::MultiProgress,
    bars: std::sync::Mutex<Vec<(String, indicatif::ProgressBar)>>,
}

impl Bars {
    fn bar(&self, tool: &str) -> Option<indicatif::ProgressBar> {
        let bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        bars.iter().find(|b| b.0 == tool).map(|b| b.1.clone())
    }

    fn done(&self) {
        let _ = self.multi.clear();
    }
}

impl analyzers::ToolProgress for Bars {
    fn planned(&self, tools: &[&str]) {
        let style = indicatif::ProgressStyle::with_template("{spinner} {prefix:<12} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        for t in tools {
            let b = self.multi.add(indicatif::ProgressBar::new_spinner());
            b.set_style(style.clone());
            b.set_prefix(t.to_string());
            b.set_message("waiting");
            bars.push((t.to_string(), b));
        }
    }

    fn started(&self, tool: &str) {
        if let Some(b) = self.bar(tool) {
            b.set_message("running");
            b.enable_steady_tick(Duration::from_millis(120));
        }
    }

    fn finished(&self, run: &analyzers::ToolRun, findings: usize) {
        if let Some(b) = self.bar(&run.name) {
            let what = match run.status {
                Status::Ran => format!("done in {:.1}s, {findings} finding(s)", run.duration_s),
                _ => run.status_line(),
            };
            b.finish_with_message(what);
        }
    }
}
