//! Why a tool could not be installed or looked up: typed, so that callers match the cause
//! (no cache dir, a missing program, a step that failed or timed out). The Display texts are
//! the messages users read (the caller adds how to retry).

/// Why a tools operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// No user cache directory to keep tool environments in.
    #[error(
        "no cache directory: neither $XDG_CACHE_HOME nor $HOME is set to an absolute path \
         (set XDG_CACHE_HOME)"
    )]
    NoCacheDir,
    /// A program a step needs is not on `$PATH`.
    #[error("{0} is not on PATH")]
    NotOnPath(String),
    /// bgrun does not install or update it (a rustup component).
    #[error("comes with rustup")]
    ComesWithRustup,
    /// The registry answered without a version.
    #[error("the registry's answer had no version")]
    NoVersion,
    /// A step could not be started or waited for.
    #[error("{0}")]
    Spawn(String),
    /// A step outlived `analysis.install_timeout_seconds` (or began too late).
    #[error("{0}")]
    Timeout(String),
    /// A step ran and failed: which, and the telling tail of its output.
    #[error("{what} failed: {tail}")]
    StepFailed { what: String, tail: String },
    /// Anything else on the way (the lock, files of the environment, its layout).
    #[error("{0}")]
    Install(String),
}
