//! `bgrun analyze security|performance|code|tests|all [PATH]`: run the analyzers in the
//! foreground (every applicable tool in parallel), print a summary grouped by severity,
//! write the normalized report (`--output`, JSON by default, or SARIF).
//!
//! Exit: 0 when the work ran (findings alone do not fail it); 1 when `--fail-on` is met or
//! a test failed (a failing test run is a failed task); 2 for usage errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::analyzers::{self, Kind, Options, Report, Severity, Status};
use crate::cli::{AnalyzeArgs, AnalyzeKind, ReportFormat, SeverityArg};
use crate::output::Output;
use crate::{Ctx, Exit, error};

pub fn run(ctx: &Ctx, args: AnalyzeArgs) -> Result<Exit> {
    let kinds: Vec<Kind> = match args.kind {
        AnalyzeKind::Security => vec![Kind::Security],
        AnalyzeKind::Performance => vec![Kind::Performance],
        AnalyzeKind::Code => vec![Kind::Code],
        AnalyzeKind::Tests => vec![Kind::Tests],
        AnalyzeKind::All => Kind::ALL.to_vec(),
    };
    let root = resolve_root(&ctx.repo, args.path.as_deref())?;
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
    let opts = Options {
        complexity_threshold: a.complexity_threshold,
        large_file_lines: a.large_file_lines,
        tool_timeout: Duration::from_secs(a.tool_timeout_seconds.max(1)),
        disabled: a.disabled_tools.clone(),
    };
    let report = analyzers::analyze(&kinds, &root, &ctx.repo, &opts);

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
        })
    };
    match &args.output {
        Some(path) => {
            let mut bytes = body(format)?;
            if format != ReportFormat::Text {
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
                if format != ReportFormat::Text {
                    println!();
                }
            }
        }
    }

    let mut exit = Exit::Ok;
    if report.tests_failed() {
        let t = report.tests.clone().unwrap_or_default();
        eprintln!(
            "bgrun: tests failed: {} failed, {} passed, {} skipped",
            t.failed, t.passed, t.skipped
        );
        exit = Exit::WorkFailed;
    }
    if let Some(min) = args.fail_on {
        let min = severity_of(min);
        if report.counts.at_or_above(min) {
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

fn severity_of(s: SeverityArg) -> Severity {
    match s {
        SeverityArg::Info => Severity::Info,
        SeverityArg::Low => Severity::Low,
        SeverityArg::Medium => Severity::Medium,
        SeverityArg::High => Severity::High,
        SeverityArg::Critical => Severity::Critical,
    }
}

/// PATH (relative to the current directory, like git) must be a directory in the repo.
fn resolve_root(repo: &Path, path: Option<&Path>) -> Result<PathBuf> {
    let Some(p) = path else {
        return Ok(repo.to_path_buf());
    };
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    };
    let canon = abs.canonicalize().map_err(|e| {
        error::usage(format!(
            "PATH {}: {e} (give a directory inside the project)",
            p.display()
        ))
    })?;
    if !canon.is_dir() {
        return Err(error::usage(format!(
            "PATH {}: not a directory (give a directory inside the project)",
            p.display()
        )));
    }
    let repo_c = repo.canonicalize().unwrap_or_else(|_| repo.to_path_buf());
    if !canon.starts_with(&repo_c) {
        return Err(error::usage(format!(
            "PATH {}: outside the project {} (use -C to pick another project)",
            p.display(),
            repo.display()
        )));
    }
    Ok(canon)
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
            t.version.as_deref().unwrap_or("-"),
            t.duration_s,
            if t.status == Status::Ran && t.counts.total() > 0 {
                format!(" ({} findings)", t.counts.total())
            } else {
                String::new()
            }
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
            let _ = writeln!(s, "  {loc}  {} {}  {}", f.tool, f.rule, f.message);
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
            "tests: {} passed, {} failed, {} skipped",
            t.passed, t.failed, t.skipped
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
    let recs: Vec<&String> = r.tools.iter().flat_map(|t| &t.recommendations).collect();
    if !recs.is_empty() {
        let _ = writeln!(s, "recommendations:");
        for rec in recs.iter().take(cap) {
            let _ = writeln!(s, "  - {rec}");
        }
    }
    s
}
