//! Analyzers: wrap the field's own tools and normalize their findings (issue 5).
//!
//! One trait, [`Tool`]: `applies` (does the project have what the tool looks at?), `plan`
//! (the argv to run, or why it is skipped: not installed, no config), then `parse` (the raw
//! output to findings, a pure function tested on checked-in real output). [`analyze`] runs
//! every applicable tool of the asked kinds in parallel, one thread each, each child in its
//! own process group with its own timeout, and builds one [`findings::Report`].
//!
//! Contract with the engine: `bgrun analyze KIND --format json --output FILE` writes a
//! report whose top-level `findings` array holds objects with a `severity`; a custom
//! analyzer's stdout is turned into the same report by [`ingest`]. This module is an
//! adapter: it never calls the engine or the commands.

pub mod exec;
pub mod findings;
pub mod project;
pub mod sarif;

mod bandit;
mod cargo_audit;
mod clippy;
mod eslint;
mod junit;
mod npm_audit;
mod pip_audit;
mod pylint;
mod radon;
mod ruff;
mod sizes;
mod testrunners;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::Value;

pub use findings::{Counts, FailedTest, Finding, Report, Severity, Status, TestCounts, ToolRun};
pub use project::Project;

/// The four analyzer families (`bgrun analyze KIND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Security,
    Performance,
    Code,
    Tests,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Security, Kind::Performance, Kind::Code, Kind::Tests];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Security => "security",
            Kind::Performance => "performance",
            Kind::Code => "code",
            Kind::Tests => "tests",
        }
    }
}

/// Settings from `config.analysis`.
#[derive(Debug, Clone)]
pub struct Options {
    pub complexity_threshold: u64,
    pub large_file_lines: u64,
    pub tool_timeout: Duration,
    pub disabled: Vec<String>,
    /// Where each tool comes from and whether a managed one may be installed (issue 13).
    pub tools: crate::tools::Settings,
    /// The project's interpreter for its tests (`analysis.python`), absolute.
    pub python: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            complexity_threshold: 10,
            large_file_lines: 1000,
            tool_timeout: Duration::from_secs(300),
            disabled: Vec::new(),
            tools: crate::tools::Settings::default(),
            python: None,
        }
    }
}

/// A command to run for a tool.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub argv: Vec<OsString>,
    pub cwd: PathBuf,
    pub env: Vec<(OsString, OsString)>,
    /// A file the tool writes its machine-readable result to (JUnit XML), read after it ends.
    pub result_file: Option<PathBuf>,
    /// Where to look up the version: the tool's executable and its package name.
    pub version_of: Option<(PathBuf, &'static str)>,
    /// Where the tool came from (managed, project, system), for the summary.
    pub source: Option<crate::tools::Source>,
}

impl Invocation {
    pub fn new(exe: &Path, args: &[&str], cwd: &Path) -> Invocation {
        let mut argv: Vec<OsString> = vec![exe.as_os_str().to_owned()];
        argv.extend(args.iter().map(OsString::from));
        Invocation {
            argv,
            cwd: cwd.to_path_buf(),
            env: Vec::new(),
            result_file: None,
            version_of: None,
            source: None,
        }
    }

    /// A tool found by [`locate`]: its executable, version lookup and source.
    pub fn located(
        loc: &crate::tools::Located,
        package: &'static str,
        args: &[&str],
        cwd: &Path,
    ) -> Invocation {
        let mut inv = Invocation::new(&loc.exe, args, cwd).version(&loc.exe, package);
        inv.source = Some(loc.source);
        inv
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Invocation {
        self.argv.push(a.into());
        self
    }

    pub fn args<I: IntoIterator<Item = T>, T: Into<OsString>>(mut self, a: I) -> Invocation {
        self.argv.extend(a.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: &str, v: impl Into<OsString>) -> Invocation {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn version(mut self, exe: &Path, package: &'static str) -> Invocation {
        self.version_of = Some((exe.to_path_buf(), package));
        self
    }

    /// The command line for display (not for a shell).
    pub fn display(&self) -> String {
        self.argv
            .iter()
            .take(12)
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
            + if self.argv.len() > 12 { " ..." } else { "" }
    }
}

/// What a tool's process left behind.
#[derive(Debug, Clone, Default)]
pub struct Raw {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The content of [`Invocation::result_file`], when it was written.
    pub result_file: Option<Vec<u8>>,
    /// When the process started (result files older than this are stale).
    pub started: Option<std::time::SystemTime>,
}

impl Raw {
    /// The last few non-empty lines of stderr (else stdout), for a failure message.
    pub fn tail(&self) -> String {
        let text = if self.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
            String::from_utf8_lossy(&self.stderr)
        } else {
            String::from_utf8_lossy(&self.stdout)
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let start = lines.len().saturating_sub(3);
        let tail = lines[start..].join(" | ");
        if tail.len() > 600 {
            let cut = (0..=600)
                .rev()
                .find(|i| tail.is_char_boundary(*i))
                .unwrap_or(0);
            format!("{}...", &tail[..cut])
        } else {
            tail
        }
    }

    pub fn exit_text(&self) -> String {
        match (self.code, self.signal) {
            (Some(c), _) => format!("exit code {c}"),
            (_, Some(s)) => format!("killed by signal {s}"),
            _ => "ended abnormally".to_string(),
        }
    }
}

/// A tool's output, normalized.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub findings: Vec<Finding>,
    pub tests: Option<TestCounts>,
    pub metrics: Value,
    pub recommendations: Vec<String>,
}

impl Parsed {
    pub fn findings(findings: Vec<Finding>) -> Parsed {
        Parsed {
            findings,
            ..Parsed::default()
        }
    }
}

/// What to do for a tool.
pub enum Plan {
    /// Run this command, then `parse` its output.
    Run(Invocation),
    /// Computed in-process (no external tool).
    Builtin,
    /// Not run, and why (`bandit not installed (pip install bandit)`).
    Skip(String),
    /// Could not be made ready (a managed install failed), and why.
    Fail(String),
}

/// One analysis tool.
pub trait Tool: Sync {
    fn name(&self) -> &'static str;
    fn kind(&self) -> Kind;
    /// Does the project have what this tool looks at?
    fn applies(&self, p: &Project) -> bool;
    /// The command to run, or why not.
    fn plan(&self, p: &Project, o: &Options) -> Plan;
    /// Raw output to findings; `Err` is the reason the tool failed.
    fn parse(&self, raw: &Raw, p: &Project, o: &Options) -> Result<Parsed, String>;
    /// For [`Plan::Builtin`] tools: compute in-process.
    fn builtin(&self, _p: &Project, _o: &Options) -> Parsed {
        Parsed::default()
    }
}

/// Every tool, in report order.
pub fn registry() -> Vec<&'static dyn Tool> {
    vec![
        &bandit::Bandit,
        &pip_audit::PipAudit,
        &npm_audit::NpmAudit,
        &cargo_audit::CargoAudit,
        &radon::Radon(radon::Mode::Cc),
        &radon::Radon(radon::Mode::Mi),
        &radon::Radon(radon::Mode::Raw),
        &sizes::Sizes,
        &pylint::Pylint,
        &ruff::Ruff,
        &eslint::Eslint,
        &clippy::Clippy,
        &testrunners::Pytest,
        &testrunners::Unittest,
        &testrunners::NpmTest,
        &testrunners::CargoTest,
        &junit::Maven,
        &junit::Gradle,
    ]
}

/// The managed tools (by their `crate::tools` name) the analyzers would use on `repo`.
pub fn tools_needed(repo: &Path) -> Vec<&'static str> {
    let project = Project::scan(repo, repo);
    let mut out: Vec<&'static str> = Vec::new();
    for t in registry() {
        if !t.applies(&project) {
            continue;
        }
        let name = t.name();
        let name = if name.starts_with("radon-") {
            "radon"
        } else {
            name
        };
        if let Some(s) = crate::tools::spec(name)
            && s.ecosystem != crate::tools::Ecosystem::Rustup
            && !out.contains(&s.name)
        {
            out.push(s.name);
        }
    }
    out
}

/// `skipped` text for a missing tool.
/// A parser test's view of a finding: rule, file, severity, line, column.
#[cfg(test)]
pub(crate) type Row<'a> = (&'a str, &'a str, Severity, Option<u64>, Option<u64>);

#[cfg(test)]
pub(crate) fn rows(f: &[Finding]) -> Vec<Row<'_>> {
    f.iter()
        .map(|f| {
            (
                f.rule.as_str(),
                f.file.as_str(),
                f.severity,
                f.line,
                f.column,
            )
        })
        .collect()
}

pub fn not_installed(tool: &str, how: &str) -> Plan {
    Plan::Skip(format!("{tool} not installed ({how})"))
}

/// Find tool `name` from its configured source (managed by default, installed on first
/// use), or the plan that says why it cannot run. `hint`: how to install it by hand.
pub fn locate(
    p: &Project,
    o: &Options,
    name: &str,
    hint: &str,
) -> Result<crate::tools::Located, Box<Plan>> {
    o.tools.locate(name, &p.dirs(), hint).map_err(|m| {
        Box::new(match m {
            crate::tools::Missing::Skip(why) => Plan::Skip(why),
            crate::tools::Missing::Fail(why) => Plan::Fail(why),
        })
    })
}

/// Run every applicable tool of `kinds` on `root` (inside `repo`) in parallel.
pub fn analyze(kinds: &[Kind], root: &Path, repo: &Path, o: &Options) -> Report {
    let t0 = Instant::now();
    let project = Project::scan(root, repo);
    let tools: Vec<&dyn Tool> = registry()
        .into_iter()
        .filter(|t| kinds.contains(&t.kind()) && t.applies(&project))
        .collect();
    let outcomes: Vec<(ToolRun, Vec<Finding>, f64)> = std::thread::scope(|s| {
        let handles: Vec<_> = tools
            .iter()
            .map(|t| {
                let project = &project;
                s.spawn(move || run_tool(*t, project, o))
            })
            .collect();
        handles
            .into_iter()
            .zip(&tools)
            .map(|(h, t)| {
                h.join().unwrap_or_else(|_| {
                    let r = ToolRun::new(
                        t.name(),
                        t.kind().as_str(),
                        Status::Failed,
                        "bgrun's parser for it panicked (a bug: please report it)",
                    );
                    (r, Vec::new(), 0.0)
                })
            })
            .collect()
    });
    let mut report = Report {
        schema_version: 1,
        kind: match kinds {
            [k] => k.as_str().to_string(),
            _ => "all".to_string(),
        },
        root: project.root_rel.clone(),
        generated_at: crate::timefmt::rfc3339(crate::timefmt::now()),
        findings: Vec::new(),
        counts: Counts::default(),
        tools: Vec::new(),
        tests: None,
        timing: Default::default(),
    };
    for (run, findings, parse_s) in outcomes {
        report.timing.parse_s += parse_s;
        report.tools.push(run);
        report.findings.extend(findings);
    }
    report.finish();
    report.timing.wall_s = t0.elapsed().as_secs_f64();
    report.timing.bgrun_cpu_s = self_cpu_s();
    report
}

/// One tool: plan, run (with its version looked up alongside), parse.
fn run_tool(t: &dyn Tool, p: &Project, o: &Options) -> (ToolRun, Vec<Finding>, f64) {
    let kind = t.kind().as_str();
    let name = t.name();
    if o.disabled.iter().any(|d| d == name) {
        let why = "disabled in config (analysis.disabled_tools)";
        return (
            ToolRun::new(name, kind, Status::Skipped, why),
            Vec::new(),
            0.0,
        );
    }
    let start = Instant::now();
    let (mut run, parsed, parse_s) = match t.plan(p, o) {
        Plan::Skip(why) => {
            return (
                ToolRun::new(name, kind, Status::Skipped, why),
                Vec::new(),
                0.0,
            );
        }
        Plan::Fail(why) => {
            let mut r = ToolRun::new(name, kind, Status::Failed, why);
            r.duration_s = start.elapsed().as_secs_f64();
            return (r, Vec::new(), 0.0);
        }
        Plan::Builtin => {
            let parsed = t.builtin(p, o);
            let mut r = ToolRun::new(name, kind, Status::Ran, "");
            r.version = Some(format!("bgrun {}", env!("CARGO_PKG_VERSION")));
            let s = start.elapsed().as_secs_f64();
            (r, Ok(parsed), s)
        }
        Plan::Run(inv) => {
            let (raw, version) = std::thread::scope(|s| {
                let v = s.spawn(|| {
                    inv.version_of
                        .as_ref()
                        .and_then(|(e, pkg)| exec::version(e, pkg))
                });
                let raw = exec::run(&inv, o.tool_timeout);
                (raw, v.join().ok().flatten())
            });
            let mut r = ToolRun::new(name, kind, Status::Ran, "");
            r.command = Some(inv.display());
            r.version = version;
            r.source = inv.source.map(|s| s.as_str().to_string());
            match raw {
                Err(why) => {
                    r.status = Status::Failed;
                    r.why = why;
                    (r, Ok(Parsed::default()), 0.0)
                }
                Ok(raw) => {
                    let p0 = Instant::now();
                    let parsed = t.parse(&raw, p, o);
                    (r, parsed, p0.elapsed().as_secs_f64())
                }
            }
        }
    };
    run.duration_s = start.elapsed().as_secs_f64();
    match parsed {
        Ok(parsed) => {
            run.tests = parsed.tests;
            run.metrics = parsed.metrics;
            run.recommendations = parsed.recommendations;
            (run, parsed.findings, parse_s)
        }
        Err(why) => {
            run.status = Status::Failed;
            run.why = why;
            (run, Vec::new(), parse_s)
        }
    }
}

/// CPU time (user + system) of this process, children excluded.
fn self_cpu_s() -> f64 {
    // SAFETY: getrusage fills the struct we pass; RUSAGE_SELF is always valid.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
            return 0.0;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

/// Parse JSON output, or say plainly that the tool printed something else.
pub fn json_of(tool: &str, bytes: &[u8], raw: &Raw) -> Result<Value, String> {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!(
            "{tool} printed no output ({}): {}",
            raw.exit_text(),
            raw.tail()
        ));
    }
    serde_json::from_str(trimmed).map_err(|e| {
        let head: String = trimmed.chars().take(120).collect();
        format!(
            "{tool} printed output that is not JSON ({e}; {}): {head:?}",
            raw.exit_text()
        )
    })
}

/// Turn a custom analyzer's stdout (`format`: `sarif` or `findings`) into a report.
pub fn ingest(format: &str, stdout: &[u8], repo: &Path) -> Result<Value> {
    let report = match format {
        "sarif" => sarif::ingest(stdout, repo)?,
        "findings" => ingest_findings(stdout)?,
        other => anyhow::bail!("unknown report format {other:?}: expected sarif or findings"),
    };
    Ok(serde_json::to_value(report)?)
}

/// The findings JSON: a report with a `findings` array, or a bare array of findings.
fn ingest_findings(stdout: &[u8]) -> Result<Report> {
    let v: Value = serde_json::from_slice(stdout)
        .map_err(|e| anyhow::anyhow!("the output is not JSON: {e}"))?;
    let items = match &v {
        Value::Array(a) => a.clone(),
        Value::Object(m) => match m.get("findings") {
            Some(Value::Array(a)) => a.clone(),
            _ => anyhow::bail!("expected a `findings` array (or a JSON array of findings)"),
        },
        _ => anyhow::bail!("expected a JSON object with `findings` or an array"),
    };
    let mut findings = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        let s = |k: &str| it.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let u = |k: &str| it.get(k).and_then(Value::as_u64);
        let sev_word = s("severity");
        let severity = Severity::parse_loose(&sev_word).ok_or_else(|| {
            anyhow::anyhow!(
                "findings[{i}].severity: {sev_word:?} is not one of critical, high, medium, low, info"
            )
        })?;
        let tool = Some(s("tool"))
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "custom".into());
        let rule = Some(s("rule"))
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "custom".into());
        findings.push(
            Finding::new(&tool, &rule, severity, &s("file"), &s("message"))
                .at(u("line"), u("column"))
                .fix(s("fix")),
        );
    }
    let mut tools: Vec<String> = findings.iter().map(|f| f.tool.clone()).collect();
    tools.sort();
    tools.dedup();
    let mut report = empty_report("ingest");
    report.tools = tools
        .iter()
        .map(|t| ToolRun::new(t, "custom", Status::Ran, ""))
        .collect();
    report.findings = findings;
    report.finish();
    Ok(report)
}

/// A report with nothing in it yet.
pub fn empty_report(kind: &str) -> Report {
    Report {
        schema_version: 1,
        kind: kind.to_string(),
        root: String::new(),
        generated_at: crate::timefmt::rfc3339(crate::timefmt::now()),
        findings: Vec::new(),
        counts: Counts::default(),
        tools: Vec::new(),
        tests: None,
        timing: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_findings_accepts_report_and_array() {
        let out = br#"{"findings":[{"tool":"vale","rule":"Vale.Spelling","severity":"warning","file":"docs/a.md","line":3,"column":1,"message":"typo","fix":""}]}"#;
        let v = ingest("findings", out, Path::new("/r")).unwrap();
        assert_eq!(v["findings"][0]["severity"], "medium");
        assert_eq!(v["findings"][0]["line"], 3);
        assert_eq!(v["counts"]["medium"], 1);
        let v = ingest(
            "findings",
            br#"[{"severity":"high","message":"x"}]"#,
            Path::new("/r"),
        )
        .unwrap();
        assert_eq!(v["findings"][0]["tool"], "custom");
    }

    #[test]
    fn tools_needed_maps_the_applicable_analyzers_to_managed_tools() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("app.py"), "x = 1\n").unwrap();
        std::fs::write(d.path().join("test_app.py"), "def test_x():\n    pass\n").unwrap();
        std::fs::write(d.path().join("requirements.txt"), "click==8.1.7\n").unwrap();
        std::fs::write(d.path().join("web.js"), "let a = 1;\n").unwrap();
        let mut got = tools_needed(d.path());
        got.sort();
        assert_eq!(
            got,
            [
                "bandit",
                "eslint",
                "pip-audit",
                "pylint",
                "pytest",
                "radon",
                "ruff"
            ]
        );
    }

    #[test]
    fn ingest_findings_rejects_bad_input_with_a_path() {
        let e = ingest("findings", br#"[{"severity":"bad"}]"#, Path::new("/r")).unwrap_err();
        assert!(format!("{e}").contains("findings[0].severity"), "{e}");
        let e = ingest("findings", b"not json", Path::new("/r")).unwrap_err();
        assert!(format!("{e}").contains("not JSON"), "{e}");
        assert!(ingest("xml", b"", Path::new("/r")).is_err());
    }
}
