//! Why one analyzer tool failed: the typed form of the `why` a failed [`super::ToolRun`]
//! carries. The Display texts are the messages users and tests read; callers match the
//! variants (a tool that could not start vs one that timed out vs output it could not read).

use std::path::PathBuf;
use std::time::Duration;

/// Why a tool failed to give findings.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The invocation has no program.
    #[error("empty command")]
    EmptyCommand,
    /// The tool could not be started (not found, not executable, ...).
    #[error("cannot start {}: {source}", program.display())]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    /// Waiting for the tool failed.
    #[error("cannot wait for it: {0}")]
    Wait(std::io::Error),
    /// It outlived `analysis.tool_timeout_seconds`; its process group was killed.
    #[error("timed out after {}s and was killed (analysis.tool_timeout_seconds)", .0.as_secs())]
    Timeout(Duration),
    /// It ended with an error and without a result to read. `note` says what its status
    /// means when the tool documents it (` (a config error or crash)`, ` without results`);
    /// `output` is the tail of what it printed.
    #[error("{tool} ended with {exit}{note}: {output}")]
    Ended {
        tool: &'static str,
        exit: ToolExit,
        note: &'static str,
        output: String,
    },
    /// A build tool's run left no test results to read (`source`: why not).
    #[error("{source}; {tool} ended with {exit}: {output}")]
    NoResultsOf {
        tool: &'static str,
        exit: ToolExit,
        output: String,
        #[source]
        source: Box<Error>,
    },
    /// A test runner found or ran no tests (`found`: its word for it, `collected`, `found`,
    /// `ran`); `output` is what it said.
    #[error("{tool} {found} no tests ({exit}): {output}")]
    NoTests {
        tool: &'static str,
        found: &'static str,
        exit: ToolExit,
        output: String,
    },
    /// The results directory of a test run cannot be read (`dir`: relative to the project).
    #[error("no test results in {dir} ({source})")]
    NoResultsDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    /// The test run wrote no result file in `dir` (relative to the project).
    #[error("the run wrote no test results in {dir}")]
    NoFreshResults { dir: String },
    /// An advisory database or service could not be reached (`why`: what the tool said).
    #[error("cannot reach the {service}: {why}")]
    Unreachable { service: &'static str, why: String },
    /// Not one dependency could be audited (`first`: why the first one was not).
    #[error("cannot reach the vulnerability data: no dependency could be audited ({first})")]
    NoneAudited { first: String },
    /// What it printed is not the shape its parser reads (a missing field).
    #[error("{0}")]
    Output(&'static str),
    /// It printed nothing to parse.
    #[error("{tool} printed no output ({exit}): {output}")]
    NoOutput {
        tool: &'static str,
        exit: ToolExit,
        output: String,
    },
    /// What it printed is not JSON (`head`: its first characters).
    #[error("{tool} printed output that is not JSON ({source}; {exit}): {head:?}")]
    NotJson {
        tool: &'static str,
        exit: ToolExit,
        head: String,
        #[source]
        source: serde_json::Error,
    },
    /// It printed no summary line its parser reads (`line`: which one).
    #[error("{tool} printed no {line} line ({exit}): {output}")]
    NoSummary {
        tool: &'static str,
        line: &'static str,
        exit: ToolExit,
        output: String,
    },
    /// A JUnit XML result file is not valid XML.
    #[error("the JUnit XML is not valid: {0}")]
    BadXml(#[source] roxmltree::Error),
    /// git could not be run (the changed-file sets, `--since`).
    #[error("cannot run git: {0}")]
    GitSpawn(#[source] std::io::Error),
    /// A git command failed (`args`: its arguments, `stderr`: what git said).
    #[error("git {} failed: {stderr}", .args.join(" "))]
    Git { args: Vec<String>, stderr: String },
    /// A revision that names no commit.
    #[error("{rev:?} names no commit")]
    NoCommit { rev: String },
    /// A directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A result file could not be read.
    #[error("{source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How a tool's process ended, as the messages say it: `exit code N`, `killed by signal
/// N`, else `ended abnormally`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToolExit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl std::fmt::Display for ToolExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit code {c}"),
            (_, Some(s)) => write!(f, "killed by signal {s}"),
            _ => f.write_str("ended abnormally"),
        }
    }
}

impl From<crate::runner::capture::Error> for Error {
    fn from(e: crate::runner::capture::Error) -> Error {
        use crate::runner::capture::Error as C;
        match e {
            C::Spawn { program, source } => Error::Spawn { program, source },
            C::Wait(e) => Error::Wait(e),
            C::Timeout(d) => Error::Timeout(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed variants say what the formatted sentences they replaced said, byte for byte.
    #[test]
    fn the_messages_read_as_before() {
        let exit = |code, signal| ToolExit { code, signal };
        let cases: Vec<(Error, &str)> = vec![
            (
                Error::Ended {
                    tool: "eslint",
                    exit: exit(Some(2), None),
                    note: " (a config error or crash)",
                    output: "Oops | bad config".into(),
                },
                "eslint ended with exit code 2 (a config error or crash): Oops | bad config",
            ),
            (
                Error::Ended {
                    tool: "cargo clippy",
                    exit: exit(None, Some(9)),
                    note: "",
                    output: "x".into(),
                },
                "cargo clippy ended with killed by signal 9: x",
            ),
            (
                Error::NoTests {
                    tool: "pytest",
                    found: "collected",
                    exit: exit(Some(5), None),
                    output: "no tests ran".into(),
                },
                "pytest collected no tests (exit code 5): no tests ran",
            ),
            (
                Error::NoResultsOf {
                    tool: "mvn",
                    exit: exit(None, None),
                    output: "BUILD FAILURE".into(),
                    source: Box::new(Error::NoFreshResults {
                        dir: "target/surefire-reports".into(),
                    }),
                },
                "the run wrote no test results in target/surefire-reports; mvn ended with \
                 ended abnormally: BUILD FAILURE",
            ),
            (
                Error::NoSummary {
                    tool: "unittest",
                    line: "`Ran N tests`",
                    exit: exit(Some(1), None),
                    output: "E".into(),
                },
                "unittest printed no `Ran N tests` line (exit code 1): E",
            ),
            (
                Error::NoOutput {
                    tool: "ruff",
                    exit: exit(Some(2), None),
                    output: String::new(),
                },
                "ruff printed no output (exit code 2): ",
            ),
            (
                Error::Unreachable {
                    service: "RustSec advisory database",
                    why: "timed out".into(),
                },
                "cannot reach the RustSec advisory database: timed out",
            ),
            (
                Error::NoneAudited {
                    first: "flask: no answer".into(),
                },
                "cannot reach the vulnerability data: no dependency could be audited (flask: no \
                 answer)",
            ),
            (
                Error::Git {
                    args: vec!["diff".into(), "--name-only".into()],
                    stderr: "fatal: bad revision".into(),
                },
                "git diff --name-only failed: fatal: bad revision",
            ),
            (
                Error::NoCommit { rev: "v9".into() },
                "\"v9\" names no commit",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
        let source = serde_json::from_str::<serde_json::Value>("{x").unwrap_err();
        let e = Error::NotJson {
            tool: "bandit",
            exit: exit(Some(1), None),
            head: "{x".into(),
            source,
        };
        assert!(
            e.to_string()
                .starts_with("bandit printed output that is not JSON (key must be a string"),
            "{e}"
        );
        assert!(e.to_string().ends_with("; exit code 1): \"{x\""), "{e}");
    }
}
