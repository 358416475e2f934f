//! What `bgrun analyze` and `bgrun baseline` print: the console summary (tools, findings
//! grouped by severity, tests, recommendations), the per-tool progress lines on a terminal,
//! why a run fails (`--fail-on`, failed tests, no tool ran) and the baseline's lines. The
//! analysis itself is `analyzers::session`'s.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::print_json;
use crate::analyzers::baseline::Baseline;
use crate::analyzers::session::Saved;
use crate::analyzers::{self, BaselineState, Report, Severity, Status};
use crate::cli::ReportFormat;
use crate::output::Output;

/// Each tool install, announced on stderr (none when quiet).
pub fn install_progress(out: &Output) -> Option<crate::tools::Progress> {
    if out.quiet() {
        None
    } else {
        Some(std::sync::Arc::new(move |line: &str| {
            eprintln!("bgrun: {line}");
        }))
    }
}

/// Why the run fails, on stderr: no tool produced a result, tests failed, `--fail-on MIN`
/// met (or nothing was checked). True when it fails.
pub fn failed(report: &Report, fail_on: Option<Severity>) -> bool {
    let mut failed = false;
    if let Some(why) = &report.not_run {
        eprintln!("bgrun: {why}");
        failed = true;
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
        failed = true;
    }
    if let Some(min) = fail_on {
        if !report.tools.iter().any(|t| t.status == Status::Ran) {
            eprintln!(
                "bgrun: --fail-on {min}: no tool ran, so nothing was checked ({})",
                if report.tools.is_empty() {
                    "no applicable tools for this project".to_string()
                } else {
                    report.not_run.clone().unwrap_or_default()
                }
            );
            failed = true;
        } else if report.counts.at_or_above(min) {
            let n: u64 = Severity::ALL_DESC
                .iter()
                .filter(|s| **s >= min)
                .map(|s| report.counts.get(*s))
                .sum();
            eprintln!("bgrun: {n} finding(s) at or above {min} (--fail-on {min})");
            failed = true;
        }
    }
    failed
}

/// Where the report goes: into `output` (JSON unless `format` says otherwise) with the
/// summary on the terminal, else on stdout in `format` (text by default).
pub fn emit(
    out: &Output,
    repo: &Path,
    report: &Report,
    format: Option<ReportFormat>,
    output: Option<&Path>,
) -> Result<()> {
    let format = format.unwrap_or(if output.is_some() {
        ReportFormat::Json
    } else {
        ReportFormat::Text
    });
    let body = |f: ReportFormat| -> Result<Vec<u8>> {
        Ok(match f {
            ReportFormat::Json => serde_json::to_vec_pretty(report)?,
            ReportFormat::Sarif => {
                serde_json::to_vec_pretty(&analyzers::sarif::to_sarif(report, repo))?
            }
            ReportFormat::Text => text_summary(report, out).into_bytes(),
            ReportFormat::Junit | ReportFormat::Github | ReportFormat::Codequality => {
                super::formats::render(out, repo, f, &serde_json::to_value(report)?, &[])?
            }
        })
    };
    match output {
        Some(path) => {
            let mut bytes = body(format)?;
            if matches!(format, ReportFormat::Json | ReportFormat::Sarif) {
                bytes.push(b'\n');
            }
            crate::fsutil::write_output(path, &bytes)?;
            if out.json {
                print_json(report)?;
            } else if !out.quiet() {
                print!("{}", text_summary(report, out));
                println!("report: {}", path.display());
            }
        }
        None if out.json && format == ReportFormat::Text => print_json(report)?,
        None => {
            let bytes = body(format)?;
            if format != ReportFormat::Text || !out.quiet() {
                print!("{}", String::from_utf8_lossy(&bytes));
                if matches!(format, ReportFormat::Json | ReportFormat::Sarif) {
                    println!();
                }
            }
        }
    }
    Ok(())
}

/// `bgrun baseline save`.
pub fn baseline_saved(out: &Output, s: &Saved) -> Result<()> {
    let b = &s.baseline;
    if out.json {
        print_json(b)?;
    } else if !out.quiet() {
        println!(
            "baseline saved: {} finding(s) of {} ({}) from {} tool(s): {}",
            b.findings.len(),
            b.reference.as_deref().unwrap_or_default(),
            &s.sha[..s.sha.len().min(12)],
            b.tools.len(),
            s.path.display()
        );
    }
    Ok(())
}

/// `bgrun baseline show`.
pub fn baseline_shown(out: &Output, b: Option<&Baseline>) -> Result<()> {
    match b {
        Some(b) if out.json => print_json(b)?,
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
    }
    Ok(())
}

/// `bgrun baseline clear` (`removed`: there was one).
pub fn baseline_cleared(removed: bool) {
    if removed {
        println!("saved baseline removed");
    } else {
        println!("no saved baseline");
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

/// `  FAILED NAME: MESSAGE` (in red), a failing test's line.
fn failing_line(s: &mut String, out: &Output, label: &str, name: &str, message: &str) {
    use std::fmt::Write;
    let _ = writeln!(s, "  {} {name}: {message}", out.paint("31", label));
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
            let loc = loc_of(f);
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
            failing_line(&mut s, out, "FAILED", &f.name, &f.message);
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
            failing_line(&mut s, out, "NEWLY FAILING", &f.name, &f.message);
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
pub struct Bars {
    multi: indicatif::MultiProgress,
    bars: std::sync::Mutex<Vec<(String, indicatif::ProgressBar)>>,
}

impl Bars {
    fn bar(&self, tool: &str) -> Option<indicatif::ProgressBar> {
        let bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        bars.iter().find(|b| b.0 == tool).map(|b| b.1.clone())
    }
}

/// How a foreground analysis shows its progress: [`Bars`] on a terminal (not JSON, not
/// quiet), else nothing.
pub fn progress(out: &Output) -> Box<dyn analyzers::ToolProgress> {
    if out.tty && !out.json && !out.quiet() {
        Box::new(Bars::default())
    } else {
        Box::new(analyzers::Silent)
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

    /// Clear the lines once every tool ended.
    fn ended(&self) {
        let _ = self.multi.clear();
    }
}
