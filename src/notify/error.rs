//! Why a notification channel did not deliver: the typed form of a failed [`super::Delivery`]'s
//! `error`. The Display texts are the messages users read in `bgrun notify` and
//! `deliveries.jsonl`; callers match the variants (a setting to fix vs a server that did not
//! answer vs a program that failed).

/// Why one channel failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The channel's settings cannot work: an empty URL or command, no recipient, a bad
    /// address, a password that is not there.
    #[error("{0}")]
    Settings(String),
    /// The event could not be encoded.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A program or thread could not be started or waited for.
    #[error("{0}")]
    Spawn(String),
    /// The other end did not answer in time (a command channel's program, the desktop's
    /// notification service).
    #[error("{0}")]
    Timeout(String),
    /// A command channel's program ran and failed.
    #[error("{0}")]
    Failed(String),
    /// No HTTP exchange with the webhook (connection, DNS, TLS, timeout).
    #[error("{0}")]
    Connect(String),
    /// The webhook answered with a status that is not a success.
    #[error("{text}")]
    Http { status: u16, text: String },
    /// TLS could not be set up for SMTP (a `ca_file`, the parameters).
    #[error("{0}")]
    Tls(String),
    /// SMTP: the message could not be built or sent.
    #[error("{0}")]
    Smtp(String),
    /// The desktop notification service (D-Bus, osascript) is absent or refused.
    #[error("{0}")]
    Desktop(String),
    /// Every attempt failed: the last one's error.
    #[error("{last} (after {attempts} attempt(s))")]
    Retried { last: Box<Error>, attempts: u32 },
    /// A file could not be written (the file channel, the deliveries log).
    #[error("{0}")]
    Io(String),
    /// The channel's thread panicked.
    #[error("the channel panicked")]
    Panicked,
}
