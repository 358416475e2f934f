//! Error kinds that map onto the exit codes of CLI.md. Everything else is an
//! `anyhow::Error`; `main` looks for one of these in the chain to pick the code.

use std::fmt;

/// The process exit codes of CLI.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    WorkFailed = 1,
    Usage = 2,
    State = 3,
}

/// A failure with a known exit code. The message is shown as is.
#[derive(Debug)]
pub struct Fail {
    pub exit: Exit,
    pub message: String,
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fail {}

/// Usage or config error (exit 2): nothing was changed.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Fail {
        exit: Exit::Usage,
        message: message.into(),
    }
    .into()
}

/// State error (exit 3): lock not obtained, state unreadable or corrupt.
pub fn state(message: impl Into<String>) -> anyhow::Error {
    Fail {
        exit: Exit::State,
        message: message.into(),
    }
    .into()
}

/// The work ran and failed (exit 1).
pub fn work(message: impl Into<String>) -> anyhow::Error {
    Fail {
        exit: Exit::WorkFailed,
        message: message.into(),
    }
    .into()
}

/// The exit code an error maps to: the first `Fail` in its chain, else 1.
pub fn exit_of(err: &anyhow::Error) -> Exit {
    err.chain()
        .find_map(|e| e.downcast_ref::<Fail>().map(|f| f.exit))
        .unwrap_or(Exit::WorkFailed)
}

/// A subcommand that later issues deliver.
pub fn not_yet(what: &str) -> anyhow::Error {
    usage(format!("`bgrun {what}` is not yet available in this build"))
}

/// The message of an error and its causes, one per `: `, without repeating a `Fail`'s own text.
pub fn render(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if parts.last().is_none_or(|p| !p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// A library error and its causes on one line, each cause that the text so far does not
/// already say appended after `: ` (the TLS or socket error behind "error connecting").
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
