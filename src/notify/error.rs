//! Why a notification channel did not deliver: the typed form of a failed [`super::Delivery`]'s
//! `error`. The Display texts are the messages users read in `bgrun notify` and
//! `deliveries.jsonl`; callers match the variants (a setting to fix vs a server that did not
//! answer vs a program that failed). A webhook's errors carry no source: their text is
//! scrubbed of the URL's secrets, which the underlying error may quote.

use std::path::PathBuf;

use crate::config::TlsMode;

/// Why one channel failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A fixed setting that cannot work: an empty URL, no recipient.
    #[error("{0}")]
    Settings(&'static str),
    /// A command channel has no program.
    #[error("notifications.channels.{channel}.command is empty: name a program (argv list)")]
    EmptyCommand { channel: String },
    /// The email channel's password file cannot be read.
    #[error(
        "cannot read the password file {} (notifications.channels.email.password_file): {source}",
        .path.display()
    )]
    PasswordFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A username is set, but the password's environment variable is not.
    #[error(
        "a username is set but the environment variable {var} (password_env) is not; \
         export it or name a file in notifications.channels.email.password_file"
    )]
    PasswordEnv { var: String },
    /// `from_email` is not an address.
    #[error("notifications.channels.email.from_email {value:?}: {source}")]
    From {
        value: String,
        #[source]
        source: lettre::address::AddressError,
    },
    /// One of `to_emails` is not an address.
    #[error("notifications.channels.email.to_emails: {value:?}: {source}")]
    To {
        value: String,
        #[source]
        source: lettre::address::AddressError,
    },
    /// The event could not be encoded.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A command channel's program could not be started.
    #[error("cannot run {program:?}: {source} (notifications.channels.{channel}.command)")]
    Spawn {
        program: String,
        channel: String,
        #[source]
        source: std::io::Error,
    },
    /// Waiting for a command channel's program failed.
    #[error("cannot wait for {program:?}: {source}")]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The desktop channel's thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    /// A command channel's program did not finish in time; it was killed.
    #[error(
        "{program:?} did not finish within {secs} s; killed (raise \
         notifications.channels.{channel}.timeout_seconds)"
    )]
    Timeout {
        program: String,
        secs: u64,
        channel: String,
    },
    /// The desktop's notification service did not answer in time.
    #[error(
        "no answer from the notification service within {ms} ms (attempt {attempt}); is a \
         notification daemon running on the session bus?"
    )]
    DesktopTimeout { ms: u128, attempt: u32 },
    /// A command channel's program ran and failed (`code`: None when killed by a signal;
    /// `last`: the last line of its stderr, trimmed).
    #[error("{program:?} {}{}", ended(.code), after_colon(.last))]
    Failed {
        program: String,
        code: Option<i32>,
        last: String,
    },
    /// No HTTP exchange with the webhook (connection, DNS, TLS, timeout): `url` shows only
    /// scheme, host and port, `why` is the client's error with the URL's secrets scrubbed.
    #[error("POST {url}: {why}")]
    Connect { url: String, why: String },
    /// The webhook answered with a status that is not a success.
    #[error("{text}")]
    Http { status: u16, text: String },
    /// The email channel's `ca_file` cannot be read.
    #[error("cannot read ca_file {}: {source}", .path.display())]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The email channel's `ca_file` is not a PEM certificate.
    #[error("ca_file {}: {}", .path.display(), crate::error::chain(.source))]
    BadCa {
        path: PathBuf,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// TLS could not be set up for SMTP (the parameters).
    #[error("TLS setup: {}", crate::error::chain(.0))]
    Tls(#[source] lettre::transport::smtp::Error),
    /// The message could not be built.
    #[error("cannot build the message: {0}")]
    Message(#[source] lettre::error::Error),
    /// SMTP: the message could not be sent.
    #[error("smtp {server}:{port} ({tls}): {}", crate::error::chain(.source))]
    Smtp {
        server: String,
        port: u16,
        tls: TlsMode,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// The desktop notification service is absent: no session bus.
    #[error(
        "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset and there is no \
         $XDG_RUNTIME_DIR/bus): not in a desktop session; disable \
         notifications.channels.desktop on headless machines"
    )]
    NoBus,
    /// The desktop channel's thread ended without an answer.
    #[error("the notification thread ended without an answer")]
    NoAnswer,
    /// The desktop notification service (D-Bus) refused: what it said.
    #[error("{said}")]
    Desktop { said: String },
    /// osascript could not be started (macOS).
    #[error("cannot run osascript: {0}")]
    Osascript(#[source] std::io::Error),
    /// osascript ran and failed (macOS): what it said on stderr, trimmed.
    #[error("osascript failed: {stderr}")]
    OsascriptFailed { stderr: String },
    /// Every attempt failed: the last one's error.
    #[error("{last} (after {attempts} attempt(s))")]
    Retried { last: Box<Error>, attempts: u32 },
    /// A file could not be written (the file channel, the deliveries log): `cannot {what}
    /// {path}: {source}`, then `hint` (what to change), if any.
    #[error("cannot {what} {}: {source}{hint}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The state directory or a lock could not be had (why, with its causes).
    #[error("{why}")]
    State { why: String },
    /// Writing to stderr failed (the console channel).
    #[error("cannot write to stderr: {0}")]
    Stderr(#[source] std::io::Error),
    /// The channel's thread panicked.
    #[error("the channel panicked")]
    Panicked,
}

/// An [`Error::Io`] for `path` from the I/O error it is given.
pub(super) fn io_err(
    what: &'static str,
    path: &std::path::Path,
    hint: &'static str,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        what,
        path,
        hint,
        source,
    }
}

/// How a program ended, as [`Error::Failed`] says it.
fn ended(code: &Option<i32>) -> String {
    match code {
        Some(c) => format!("exited with code {c}"),
        None => "was killed by a signal".to_string(),
    }
}

/// `: TEXT`, or nothing when `text` is empty.
fn after_colon(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed variants say what the formatted sentences they replaced said, byte for byte.
    #[test]
    fn the_messages_read_as_before() {
        let io = || std::io::Error::from_raw_os_error(libc::ENOENT);
        let cases: Vec<(Error, &str)> = vec![
            (
                Error::EmptyCommand {
                    channel: "pager".into(),
                },
                "notifications.channels.pager.command is empty: name a program (argv list)",
            ),
            (
                Error::Spawn {
                    program: "notify-me".into(),
                    channel: "pager".into(),
                    source: io(),
                },
                "cannot run \"notify-me\": No such file or directory (os error 2) \
                 (notifications.channels.pager.command)",
            ),
            (
                Error::Timeout {
                    program: "slow".into(),
                    secs: 5,
                    channel: "pager".into(),
                },
                "\"slow\" did not finish within 5 s; killed (raise \
                 notifications.channels.pager.timeout_seconds)",
            ),
            (
                Error::Failed {
                    program: "x".into(),
                    code: Some(3),
                    last: "bad token".into(),
                },
                "\"x\" exited with code 3: bad token",
            ),
            (
                Error::Failed {
                    program: "x".into(),
                    code: None,
                    last: String::new(),
                },
                "\"x\" was killed by a signal",
            ),
            (
                Error::DesktopTimeout {
                    ms: 2000,
                    attempt: 2,
                },
                "no answer from the notification service within 2000 ms (attempt 2); is a \
                 notification daemon running on the session bus?",
            ),
            (
                Error::Connect {
                    url: "https://hooks.example/…".into(),
                    why: "dns failed".into(),
                },
                "POST https://hooks.example/…: dns failed",
            ),
            (
                Error::Io {
                    what: "create the directory",
                    path: "/ro/n".into(),
                    hint: " (fix it or change notifications.channels.file.path)",
                    source: io(),
                },
                "cannot create the directory /ro/n: No such file or directory (os error 2) (fix \
                 it or change notifications.channels.file.path)",
            ),
            (
                Error::PasswordEnv {
                    var: "SMTP_PW".into(),
                },
                "a username is set but the environment variable SMTP_PW (password_env) is not; \
                 export it or name a file in notifications.channels.email.password_file",
            ),
            (
                Error::CaFile {
                    path: "ca.pem".into(),
                    source: io(),
                },
                "cannot read ca_file ca.pem: No such file or directory (os error 2)",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
        let source = "not an address".parse::<lettre::Address>().unwrap_err();
        let e = Error::To {
            value: "not an address".into(),
            source,
        };
        let text = e.to_string();
        assert!(
            text.starts_with("notifications.channels.email.to_emails: \"not an address\": "),
            "{text}"
        );
    }
}
