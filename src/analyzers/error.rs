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
    /// It ended with an error and without a result to read; the text has its exit and
    /// the tail of its output.
    #[error("{0}")]
    Ended(String),
    /// A test runner found or ran no tests.
    #[error("{0}")]
    NoTests(String),
    /// An advisory database or service could not be reached.
    #[error("{0}")]
    Unreachable(String),
    /// What it printed or wrote is not what its parser reads (no output, not JSON, a
    /// missing field, invalid XML).
    #[error("{0}")]
    Output(String),
    /// git could not be run, or a git command failed (the changed-file sets, `--since`).
    #[error("{0}")]
    Git(String),
    /// A revision that names no commit.
    #[error("{0:?} names no commit")]
    NoCommit(String),
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
