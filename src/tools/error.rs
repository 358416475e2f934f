//! Why a tool could not be installed or looked up: typed, so that callers match the cause
//! (no cache dir, a missing program, a step that failed or timed out). The Display texts are
//! the messages users read (the caller adds how to retry). The errors are `Clone` (a
//! failed cache lookup is shared), so an I/O source is held in an `Arc`.

use std::path::PathBuf;
use std::sync::Arc;

/// Why a tools operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// No user cache directory to keep tool environments in.
    #[error(
        "no cache directory: neither $XDG_CACHE_HOME nor $HOME is set to an absolute path \
         (set XDG_CACHE_HOME)"
    )]
    NoCacheDir,
    /// A program a step needs is not on `$PATH`; `hint`: how to get it, if said.
    #[error("{program} is not on PATH{hint}")]
    NotOnPath {
        program: &'static str,
        hint: &'static str,
    },
    /// bgrun does not install or update it (a rustup component).
    #[error("comes with rustup")]
    ComesWithRustup,
    /// The registry answered without a version.
    #[error("the registry's answer had no version")]
    NoVersion,
    /// A step (`what`: `pip install`...) could not be started.
    #[error("cannot start {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// Waiting for a step failed.
    #[error("cannot wait for {what}: {source}")]
    Wait {
        what: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The deadline (`analysis.install_timeout_seconds`) passed before a step began.
    #[error("timed out before {what}")]
    TooLate { what: String },
    /// A step outlived `analysis.install_timeout_seconds`; it was killed.
    #[error("{what} timed out and was killed (analysis.install_timeout_seconds)")]
    Timeout { what: String },
    /// A step ran and failed: which, and the telling tail of its output.
    #[error("{what} failed: {tail}")]
    StepFailed { what: String, tail: String },
    /// A rustup component was asked to be installed.
    #[error("{tool} comes with rustup (rustup component add {tool})")]
    Rustup { tool: String },
    /// The configured version is not a version.
    #[error("{version:?} is not a version (analysis.tools.{tool}.version)")]
    NotAVersion { version: String, tool: String },
    /// A file or directory of the environment: `cannot {what} {path}: {source}`.
    #[error("cannot {what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A file the install writes (`file`: `package.json`, `the marker`).
    #[error("cannot write {file}: {source}")]
    Write {
        file: &'static str,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The finished environment could not be moved into place.
    #[error("cannot move {} to {}: {source}", .from.display(), .to.display())]
    Move {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// Another bgrun holds the environment's lock past the deadline.
    #[error("another bgrun has been installing it past the timeout (lock {})", .lock.display())]
    Busy { lock: PathBuf },
    /// The install finished without the tool's executable.
    #[error("the install ended without {}", .exe.display())]
    NoExe { exe: PathBuf },
    /// The install marker could not be encoded.
    #[error("{0}")]
    Json(Arc<serde_json::Error>),
    /// Anything else on the way: a fixed sentence (an empty command...).
    #[error("{0}")]
    Install(&'static str),
}

/// An [`Error::Io`] for `path` from the I/O error it is given.
pub(super) fn io_err(
    what: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        what,
        path,
        source: Arc::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed variants say what the formatted sentences they replaced said, byte for byte.
    #[test]
    fn the_messages_read_as_before() {
        let io = || Arc::new(std::io::Error::from_raw_os_error(libc::EACCES));
        let cases: Vec<(Error, &str)> = vec![
            (
                Error::NotOnPath {
                    program: "npm",
                    hint: " (install Node.js and npm)",
                },
                "npm is not on PATH (install Node.js and npm)",
            ),
            (
                Error::NotOnPath {
                    program: "python3",
                    hint: "",
                },
                "python3 is not on PATH",
            ),
            (
                Error::Spawn {
                    what: "pip install".into(),
                    source: io(),
                },
                "cannot start pip install: Permission denied (os error 13)",
            ),
            (
                Error::Wait {
                    what: "npm install".into(),
                    source: io(),
                },
                "cannot wait for npm install: Permission denied (os error 13)",
            ),
            (
                Error::TooLate {
                    what: "pip freeze".into(),
                },
                "timed out before pip freeze",
            ),
            (
                Error::Timeout {
                    what: "cargo install".into(),
                },
                "cargo install timed out and was killed (analysis.install_timeout_seconds)",
            ),
            (
                Error::Rustup {
                    tool: "clippy".into(),
                },
                "clippy comes with rustup (rustup component add clippy)",
            ),
            (
                Error::NotAVersion {
                    version: "1.0; rm".into(),
                    tool: "ruff".into(),
                },
                "\"1.0; rm\" is not a version (analysis.tools.ruff.version)",
            ),
            (
                Error::Io {
                    what: "remove the incomplete",
                    path: "/c/ruff-1".into(),
                    source: io(),
                },
                "cannot remove the incomplete /c/ruff-1: Permission denied (os error 13)",
            ),
            (
                Error::Write {
                    file: "the marker",
                    source: io(),
                },
                "cannot write the marker: Permission denied (os error 13)",
            ),
            (
                Error::Move {
                    from: "/c/.tmp/x".into(),
                    to: "/c/x".into(),
                    source: io(),
                },
                "cannot move /c/.tmp/x to /c/x: Permission denied (os error 13)",
            ),
            (
                Error::Busy {
                    lock: "/c/.locks/x.lock".into(),
                },
                "another bgrun has been installing it past the timeout (lock /c/.locks/x.lock)",
            ),
            (
                Error::NoExe {
                    exe: "/c/x/bin/ruff".into(),
                },
                "the install ended without /c/x/bin/ruff",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
    }
}
