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

pub mod baseline;
pub mod cache;
pub mod changed;
pub mod error;
pub mod exec;
pub mod findings;
pub mod project;
pub mod sarif;
pub mod session;
// CI writers (issue 15), beside sarif.
pub mod ci_common;
pub mod codequality;
pub mod github;
pub mod junit_report;

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

pub use error::Error;
pub use findings::{
    BaselineState, Counts, FailedTest, Finding, Report, Severity, Status, TestCounts, ToolRun,
};
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

    /// How the process ended (`exit code N`...).
    pub fn exit(&self) -> error::ToolExit {
        error::ToolExit {
            code: self.code,
            signal: self.signal,
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
    fn parse(&self, raw: &Raw, p: &Project, o: &Options) -> Result<Parsed, Error>;
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

/// What a run covers beyond its kinds: the files named, the change it is about, the cache.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Repo-relative files or directories the user named (None: everything under root).
    pub only: Option<Vec<String>>,
    /// The change this run is about (None: everything; project-wide tools always run).
    pub changed: Option<changed::ChangeSet>,
    /// The result cache (None: no cache at all).
    pub cache: Option<cache::Cache>,
    /// `--full`: do not read the cache (results are still written to it).
    pub full: bool,
}

/// Which inputs a tool's result depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Findings of a file depend on that file alone: run on the files not in the cache.
    PerFile(&'static [&'static str]),
    /// The whole set of these languages' files, as one result (aggregate metrics).
    Whole(&'static [&'static str]),
    /// Dependency manifests and lockfiles (the audits).
    Manifests,
    /// Any source file (builds, test runners).
    Sources,
    /// In-process and cheap: always computed.
    Always,
}

const PY: &[&str] = &["python"];
const JS: &[&str] = &["javascript", "typescript"];

fn scope_of(tool: &str) -> Scope {
    match tool {
        "bandit" | "ruff" | "pylint" => Scope::PerFile(PY),
        "eslint" => Scope::PerFile(JS),
        "radon-cc" | "radon-mi" | "radon-raw" => Scope::Whole(PY),
        "pip-audit" | "npm-audit" | "cargo-audit" => Scope::Manifests,
        "sizes" => Scope::Always,
        _ => Scope::Sources,
    }
}

/// The tool's own config files (their content is part of its cache key).
fn config_files(tool: &str) -> &'static [&'static str] {
    match tool {
        "bandit" => &[".bandit", "pyproject.toml", "bandit.yaml", "bandit.yml"],
        "ruff" => &["pyproject.toml", "ruff.toml", ".ruff.toml"],
        "pylint" => &[
            ".pylintrc",
            "pylintrc",
            ".pylintrc.toml",
            "pyproject.toml",
            "setup.cfg",
            "tox.ini",
        ],
        "radon-cc" | "radon-mi" | "radon-raw" => &["radon.cfg", "setup.cfg"],
        "eslint" => &[
            "eslint.config.js",
            "eslint.config.mjs",
            "eslint.config.cjs",
            "eslint.config.ts",
            "package.json",
        ],
        // Project-wide tools: their settings files (manifests are their inputs already).
        "clippy" => &[
            "clippy.toml",
            ".clippy.toml",
            "rust-toolchain",
            "rust-toolchain.toml",
            ".cargo/config.toml",
            ".cargo/config",
        ],
        "cargo-test" => &[
            "rust-toolchain",
            "rust-toolchain.toml",
            ".cargo/config.toml",
            ".cargo/config",
        ],
        "cargo-audit" => &[".cargo/audit.toml", "audit.toml"],
        "npm-audit" => &[".npmrc"],
        "pip-audit" => &["pip.conf"],
        "pytest" => &[
            "pytest.ini",
            ".pytest.ini",
            "pyproject.toml",
            "setup.cfg",
            "tox.ini",
        ],
        "npm-test" => &[
            ".npmrc",
            "jest.config.js",
            "jest.config.cjs",
            "jest.config.mjs",
            "jest.config.ts",
            "vitest.config.js",
            "vitest.config.mjs",
            "vitest.config.ts",
        ],
        "maven" => &[".mvn/maven.config", ".mvn/jvm.config"],
        "gradle" => &[
            "gradle.properties",
            "settings.gradle",
            "settings.gradle.kts",
        ],
        _ => &[],
    }
}

/// Is this repo-relative path a dependency manifest or lockfile?
pub fn is_manifest(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    (name.starts_with("requirements") && name.ends_with(".txt"))
        || [
            "pyproject.toml",
            "setup.py",
            "setup.cfg",
            "Pipfile",
            "Pipfile.lock",
            "poetry.lock",
            "uv.lock",
            "package.json",
            "package-lock.json",
            "npm-shrinkwrap.json",
            "yarn.lock",
            "pnpm-lock.yaml",
            "Cargo.toml",
            "Cargo.lock",
            "pom.xml",
            "build.gradle",
            "build.gradle.kts",
        ]
        .contains(&name)
}

/// Is this path a source file (by extension) or a build manifest?
pub fn is_source(path: &str) -> bool {
    project::lang_of(Path::new(path)).is_some() || is_manifest(path)
}

/// Is `file` (repo-relative) one of the named paths, or under one?
pub fn selected(only: &[String], file: &str) -> bool {
    only.iter().any(|o| {
        o.is_empty()
            || file == o
            || file
                .strip_prefix(o.as_str())
                .is_some_and(|r| r.starts_with('/'))
    })
}

/// Run every applicable tool of `kinds` on `root` (inside `repo`) in parallel.
/// Told when each tool starts and ends (per-tool progress on a terminal). Tools run in
/// parallel, so the calls come from several threads.
pub trait ToolProgress: Sync {
    /// The tools that will run, before any starts.
    fn planned(&self, _tools: &[&str]) {}
    fn started(&self, _tool: &str) {}
    fn finished(&self, _run: &ToolRun, _findings: usize) {}
    /// Every tool has finished (the report is being put together).
    fn ended(&self) {}
}

/// No progress shown.
pub struct Silent;
impl ToolProgress for Silent {}

pub fn analyze(kinds: &[Kind], root: &Path, repo: &Path, o: &Options) -> Report {
    analyze_with(kinds, root, repo, o, &Request::default())
}

/// [`analyze`] for a request: named files, a changed set, the cache.
pub fn analyze_with(
    kinds: &[Kind],
    root: &Path,
    repo: &Path,
    o: &Options,
    req: &Request,
) -> Report {
    analyze_with_progress(kinds, root, repo, o, req, &Silent)
}

/// [`analyze_with`], reporting each tool's start and end to `progress`.
pub fn analyze_with_progress(
    kinds: &[Kind],
    root: &Path,
    repo: &Path,
    o: &Options,
    req: &Request,
    progress: &dyn ToolProgress,
) -> Report {
    let t0 = Instant::now();
    let mut project = Project::scan(root, repo);
    if let Some(only) = &req.only {
        let keep: Vec<bool> = project
            .files
            .iter()
            .map(|f| selected(only, &project.rel(&f.rel.to_string_lossy())))
            .collect();
        let mut it = keep.iter();
        project.files.retain(|_| *it.next().unwrap_or(&false));
    }
    let tools: Vec<&dyn Tool> = registry()
        .into_iter()
        .filter(|t| kinds.contains(&t.kind()) && t.applies(&project))
        .collect();
    progress.planned(&tools.iter().map(|t| t.name()).collect::<Vec<_>>());
    let outcomes: Vec<(ToolRun, Vec<Finding>, f64)> = std::thread::scope(|s| {
        let handles: Vec<_> = tools
            .iter()
            .map(|t| {
                let project = &project;
                s.spawn(move || {
                    progress.started(t.name());
                    let out = run_scoped(*t, project, o, req);
                    progress.finished(&out.0, out.1.len());
                    out
                })
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
    progress.ended();
    let mut report = empty_report(match kinds {
        [k] => k.as_str(),
        _ => "all",
    });
    report.root = project.root_rel.clone();
    for (run, findings, parse_s) in outcomes {
        report.timing.parse_s += parse_s;
        report.tools.push(run);
        report.findings.extend(findings);
    }
    report.finish();
    baseline::fingerprint_all(&mut report.findings, repo);
    if !report.tools.is_empty() && !report.tools.iter().any(|t| t.status == Status::Ran) {
        let why: Vec<String> = report
            .tools
            .iter()
            .map(|t| format!("{} {}", t.name, t.status_line()))
            .collect();
        report.not_run = Some(format!("no tool ran: {}", why.join("; ")));
    }
    if let Some(c) = &req.cache {
        c.trim();
    }
    report.changed = req.changed.clone();
    report.timing.wall_s = t0.elapsed().as_secs_f64();
    report.timing.bgrun_cpu_s = self_cpu_s();
    report
}

/// A tool within a request: skipped when disabled or its inputs are not among the named
/// files; reused when its inputs did not change; else run (through the cache when it can).
fn run_scoped(
    t: &dyn Tool,
    p: &Project,
    o: &Options,
    req: &Request,
) -> (ToolRun, Vec<Finding>, f64) {
    let (name, kind) = (t.name(), t.kind().as_str());
    if o.disabled.iter().any(|d| d == name) {
        let why = "disabled in config (analysis.disabled_tools)";
        return (
            ToolRun::new(name, kind, Status::Skipped, why),
            Vec::new(),
            0.0,
        );
    }
    let scope = scope_of(name);
    let inputs = |path: &str| match scope {
        Scope::Manifests => is_manifest(path),
        _ => is_source(path),
    };
    if let (Some(only), Scope::Manifests | Scope::Sources) = (&req.only, scope) {
        let named_inputs = only.iter().any(|o| {
            inputs(o)
                || p.files
                    .iter()
                    .any(|f| inputs(&p.rel(&f.rel.to_string_lossy())))
        });
        if !named_inputs {
            let why = "its inputs are not among the given paths (name the project to run it)";
            return (
                ToolRun::new(name, kind, Status::Skipped, why),
                Vec::new(),
                0.0,
            );
        }
    }
    let project_wide = matches!(scope, Scope::Manifests | Scope::Sources);
    // In an incremental run (a changed set is known), a project-wide tool whose inputs are
    // byte for byte those of its last run, run by the same tool (version, executable, its
    // own config files, bgrun's options), is not run again: that result stands. A tool
    // whose version cannot be read is never reused (as it is never cached).
    let inputs_digest = if project_wide && req.cache.is_some() {
        reuse_key(t, p, o, scope)
    } else {
        None
    };
    if let (Some(_), Some(cache), Some(digest), false) =
        (&req.changed, &req.cache, &inputs_digest, req.full)
        && let Some(last) = cache
            .last(name, &p.root_rel)
            .filter(|l| &l.inputs == digest)
    {
        let mut run = last.run;
        run.reused = Some(format!("unchanged since {}", last.generated_at));
        run.duration_s = 0.0;
        return (run, last.findings, 0.0);
    }
    let (run, findings, parse_s) = match (scope, &req.cache) {
        (Scope::PerFile(langs), Some(cache)) => run_per_file(t, p, o, cache, langs, req.full),
        (Scope::Whole(langs), Some(cache)) => run_whole(t, p, o, cache, langs, req.full),
        _ => run_tool(t, p, o),
    };
    if let (Some(cache), Some(inputs), Status::Ran) = (&req.cache, inputs_digest, run.status) {
        cache.put_last(
            name,
            &p.root_rel,
            &cache::LastRun::now(inputs, &run, &findings),
        );
    }
    (run, findings, parse_s)
}

/// What a project-wide tool's last result is reused by: the tool (as [`tool_key`]: name,
/// version, executable, its config files, bgrun's options) and its inputs. None when the
/// tool would not run or its version cannot be read.
fn reuse_key(t: &dyn Tool, p: &Project, o: &Options, scope: Scope) -> Option<String> {
    let Plan::Run(inv) = t.plan(p, o) else {
        return None;
    };
    let tk = tool_key(t, p, o, &inv)?;
    let inputs = inputs_digest(p, scope);
    Some(cache::digest(&[tk.as_bytes(), inputs.as_bytes()]))
}

/// A digest of what a project-wide tool reads: the manifests at the analyzed directory
/// (and the repo root), plus every source file for [`Scope::Sources`].
fn inputs_digest(p: &Project, scope: Scope) -> String {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut dirs = vec![p.root.clone()];
    if p.root != p.repo {
        dirs.push(p.repo.clone());
    }
    for d in &dirs {
        let mut names: Vec<String> = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_manifest(n))
            .collect();
        names.sort();
        for n in names {
            parts.push(n.clone().into_bytes());
            parts.push(std::fs::read(d.join(&n)).unwrap_or_default());
        }
    }
    if scope == Scope::Sources {
        for f in &p.files {
            parts.push(f.rel.as_os_str().as_encoded_bytes().to_vec());
            parts.push(std::fs::read(p.root.join(&f.rel)).unwrap_or_default());
        }
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    cache::digest(&refs)
}

/// The part of a cache key shared by every file of one tool in one run: the tool, its
/// version, its config files' content, bgrun's options. None when the version is unknown
/// (then nothing is cached: a stale answer is worse than none).
fn tool_key(t: &dyn Tool, p: &Project, o: &Options, inv: &Invocation) -> Option<String> {
    let limit = o.tool_timeout.min(Duration::from_secs(20));
    // Without a package to look up, the command's own `--version` (cargo, a test runner).
    let (exe, version) = match &inv.version_of {
        Some((exe, pkg)) => (exe.clone(), exec::version_within(exe, pkg, limit)?),
        None => {
            let exe = PathBuf::from(inv.argv.first()?);
            let v = exec::command_version(&exe, limit)?;
            (exe, v)
        }
    };
    let mut parts: Vec<Vec<u8>> = vec![
        t.name().as_bytes().to_vec(),
        version.into_bytes(),
        exe.as_os_str().as_encoded_bytes().to_vec(),
        format!("{}/{}", o.complexity_threshold, o.large_file_lines).into_bytes(),
        p.root_rel.as_bytes().to_vec(),
    ];
    let mut dirs = vec![p.root.clone()];
    if p.root != p.repo {
        dirs.push(p.repo.clone());
    }
    for d in &dirs {
        for c in config_files(t.name()) {
            parts.push(c.as_bytes().to_vec());
            parts.push(std::fs::read(d.join(c)).unwrap_or_default());
        }
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    Some(format!("{}:{}", t.name(), cache::digest(&refs)))
}

/// A file-local tool: each file's findings from the cache, the tool run on the rest.
fn run_per_file(
    t: &dyn Tool,
    p: &Project,
    o: &Options,
    cache: &cache::Cache,
    langs: &[&str],
    full: bool,
) -> (ToolRun, Vec<Finding>, f64) {
    let (name, kind) = (t.name(), t.kind().as_str());
    let start = Instant::now();
    let inv = match t.plan(p, o) {
        Plan::Run(inv) => inv,
        _ => return run_tool(t, p, o),
    };
    let Some(tk) = tool_key(t, p, o, &inv) else {
        return run_tool(t, p, o);
    };
    let mut cached: Vec<(
        project::SourceFile,
        String,
        Option<cache::Key>,
        Vec<Finding>,
    )> = Vec::new();
    let mut misses: Vec<(project::SourceFile, String, Option<cache::Key>)> = Vec::new();
    for f in p.files.iter().filter(|f| langs.contains(&f.lang)) {
        let rel = p.rel(&f.rel.to_string_lossy());
        let key = std::fs::read(p.root.join(&f.rel))
            .ok()
            .map(|b| cache::Key::new(&tk, &rel, &b));
        match key.as_ref().filter(|_| !full).and_then(|k| cache.get(k)) {
            Some(fs) => cached.push((f.clone(), rel, key, fs)),
            None => misses.push((f.clone(), rel, key)),
        }
    }
    // Findings that belong to no checked file: pylint's on its config (`pyproject.toml:
    // unrecognized-option`, `Command line`). They depend on the tool and its config (the
    // tool key), not on any one file, and come with every run: kept as one entry. When
    // that entry is missing (damaged, an older cache) one file runs again to get them.
    let extras_name = format!("extras:{tk}");
    let stored_extras = if full {
        None
    } else {
        cache.last(&extras_name, &p.root_rel)
    };
    if misses.is_empty()
        && stored_extras.is_none()
        && let Some((f, rel, key, _)) = cached.pop()
    {
        misses.push((f, rel, key));
    }
    let mut found: Vec<Finding> = cached.into_iter().flat_map(|c| c.3).collect();
    let hits = count_in(&p.files, langs).saturating_sub(misses.len() as u64);
    let mut run = ToolRun::new(name, kind, Status::Ran, "");
    run.version = inv
        .version_of
        .as_ref()
        .and_then(|(e, pkg)| exec::version(e, pkg));
    run.source = inv.source.map(|s| s.as_str().to_string());
    run.files_cached = Some(hits);
    run.files_run = Some(misses.len() as u64);
    let mut parse_s = 0.0;
    if misses.is_empty() {
        found.extend(stored_extras.map(|l| l.findings).unwrap_or_default());
    } else {
        let mut sub = p.clone();
        sub.files = misses.iter().map(|(f, _, _)| f.clone()).collect();
        let (r, fresh, ps) = run_tool(t, &sub, o);
        parse_s = ps;
        if r.status != Status::Ran {
            return (r, Vec::new(), ps);
        }
        run.command = r.command;
        run.metrics = r.metrics;
        run.recommendations = r.recommendations;
        let mut by_file: std::collections::HashMap<&str, Vec<Finding>> = misses
            .iter()
            .map(|(_, rel, _)| (rel.as_str(), Vec::new()))
            .collect();
        let (mut config_level, mut elsewhere) = (Vec::new(), Vec::new());
        for f in fresh {
            match by_file.get_mut(f.file.as_str()) {
                Some(v) => v.push(f),
                None if project::lang_of(Path::new(&f.file))
                    .is_none_or(|l| !langs.contains(&l)) =>
                {
                    config_level.push(f)
                }
                // On a checked language's file the tool was not given: reported, not kept.
                None => elsewhere.push(f),
            }
        }
        for (_, rel, key) in &misses {
            let fs = by_file.remove(rel.as_str()).unwrap_or_default();
            if let Some(k) = key {
                cache.put(k, &fs);
            }
            found.extend(fs);
        }
        let last = cache::LastRun::now(String::new(), &run, &config_level);
        cache.put_last(&extras_name, &p.root_rel, &last);
        found.append(&mut config_level);
        found.append(&mut elsewhere);
    }
    run.duration_s = start.elapsed().as_secs_f64();
    (run, found, parse_s)
}

/// How many of `files` are in `langs`.
fn count_in(files: &[project::SourceFile], langs: &[&str]) -> u64 {
    files.iter().filter(|f| langs.contains(&f.lang)).count() as u64
}

/// A tool whose result is one whole (aggregate metrics): cached as one entry keyed by the
/// content of all its files.
fn run_whole(
    t: &dyn Tool,
    p: &Project,
    o: &Options,
    cache: &cache::Cache,
    langs: &[&str],
    full: bool,
) -> (ToolRun, Vec<Finding>, f64) {
    let start = Instant::now();
    let inv = match t.plan(p, o) {
        Plan::Run(inv) => inv,
        _ => return run_tool(t, p, o),
    };
    let Some(tk) = tool_key(t, p, o, &inv) else {
        return run_tool(t, p, o);
    };
    let mut all = Vec::new();
    for f in p.files.iter().filter(|f| langs.contains(&f.lang)) {
        let rel = p.rel(&f.rel.to_string_lossy());
        let Ok(bytes) = std::fs::read(p.root.join(&f.rel)) else {
            return run_tool(t, p, o);
        };
        all.extend_from_slice(rel.as_bytes());
        all.push(0);
        all.extend_from_slice(cache::digest(&[&bytes]).as_bytes());
    }
    let last_name = format!("whole:{}", cache::digest(&[tk.as_bytes(), &all]));
    if !full && let Some(last) = cache.last(&last_name, &p.root_rel) {
        let mut run = last.run;
        run.files_cached = Some(run.files_run.unwrap_or(0));
        run.files_run = Some(0);
        run.duration_s = start.elapsed().as_secs_f64();
        return (run, last.findings, 0.0);
    }
    let (mut run, findings, ps) = run_tool(t, p, o);
    if run.status == Status::Ran {
        run.files_run = Some(count_in(&p.files, langs));
        let last = cache::LastRun::now(String::new(), &run, &findings);
        cache.put_last(&last_name, &p.root_rel, &last);
    }
    (run, findings, ps)
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
                    r.why = why.to_string();
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
            run.why = why.to_string();
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
pub fn json_of(tool: &'static str, bytes: &[u8], raw: &Raw) -> Result<Value, Error> {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Error::NoOutput {
            tool,
            exit: raw.exit(),
            output: raw.tail(),
        });
    }
    serde_json::from_str(trimmed).map_err(|source| Error::NotJson {
        tool,
        exit: raw.exit(),
        head: trimmed.chars().take(120).collect(),
        source,
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
        changed: None,
        baseline: None,
        fixed: Vec::new(),
        not_run: None,
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
