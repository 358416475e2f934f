//! Desktop channel: notify-rust over D-Bus on Linux/BSD (urgency from severity), the toast
//! backend of notify-rust on Windows, osascript on macOS.
//!
//! A bus that never answers would block forever, so every attempt runs on its own thread
//! and the caller waits at most `timeout_ms` over all attempts; a fast failure is retried
//! (up to `retries` more times) inside that budget. A thread stuck on a dead bus is left
//! behind: it holds one socket and ends with the process.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Channel, Error, Notification, Severity};
use crate::config::DesktopChannel;

pub struct Desktop {
    timeout: Duration,
    retries: u32,
}

impl Desktop {
    pub fn new(c: &DesktopChannel) -> Desktop {
        Desktop {
            timeout: Duration::from_millis(c.timeout_ms.max(50)),
            retries: c.retries,
        }
    }
}

impl Channel for Desktop {
    fn name(&self) -> &'static str {
        "desktop"
    }

    fn send(&self, n: &Notification) -> Result<(), Error> {
        precheck()?;
        let deadline = Instant::now() + self.timeout;
        let mut last = Error::Desktop {
            said: String::new(),
        };
        for attempt in 0..=self.retries {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let (tx, rx) = mpsc::channel();
            let n = n.clone();
            let spawned = std::thread::Builder::new()
                .name("bgrun-desktop".into())
                .spawn(move || {
                    let _ = tx.send(show(&n));
                });
            if let Err(e) = spawned {
                return Err(Error::Thread(e));
            }
            match rx.recv_timeout(left) {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => last = e,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(Error::DesktopTimeout {
                        ms: self.timeout.as_millis(),
                        attempt: attempt + 1,
                    });
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    last = Error::NoAnswer;
                }
            }
            let pause =
                Duration::from_millis(100).min(deadline.saturating_duration_since(Instant::now()));
            std::thread::sleep(pause);
        }
        Err(Error::Retried {
            last: Box::new(last),
            attempts: self.retries + 1,
        })
    }
}

/// For `"enabled": "auto"`: is there a session bus with a notification server on it? Asks
/// the server for its information, within the channel's timeout (a dead bus is no desktop).
pub fn available(c: &DesktopChannel) -> bool {
    if precheck().is_err() {
        return false;
    }
    probe(Duration::from_millis(c.timeout_ms.clamp(50, 5000)))
}

#[cfg(not(target_os = "macos"))]
fn probe(timeout: Duration) -> bool {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("bgrun-desktop-probe".into())
        .spawn(move || {
            let _ = tx.send(notify_rust::get_server_information().is_ok());
        });
    spawned.is_ok() && rx.recv_timeout(timeout).unwrap_or(false)
}

#[cfg(target_os = "macos")]
fn probe(_timeout: Duration) -> bool {
    true
}

/// No session bus at all is known at once: say so without trying.
#[cfg(all(unix, not(target_os = "macos")))]
fn precheck() -> Result<(), Error> {
    let addr = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").filter(|a| !a.is_empty());
    let runtime_bus = std::env::var_os("XDG_RUNTIME_DIR")
        .map(|d| std::path::Path::new(&d).join("bus"))
        .is_some_and(|p| p.exists());
    if addr.is_none() && !runtime_bus {
        return Err(Error::NoBus);
    }
    Ok(())
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn precheck() -> Result<(), Error> {
    Ok(())
}

#[cfg(not(target_os = "macos"))]
fn show(n: &Notification) -> Result<(), Error> {
    use notify_rust::Urgency;
    let urgency = match n.severity {
        Severity::Info => Urgency::Low,
        Severity::Warning => Urgency::Normal,
        Severity::Error | Severity::Critical => Urgency::Critical,
    };
    let summary = format!("{} {}", n.severity.icon(), n.title);
    notify_rust::Notification::new()
        .appname("bgrun")
        .summary(&summary)
        .body(&n.message)
        .urgency(urgency)
        .show()
        .map(|_| ())
        .map_err(|e| Error::Desktop {
            said: e.to_string(),
        })
}

#[cfg(target_os = "macos")]
fn show(n: &Notification) -> Result<(), Error> {
    fn quote(s: &str) -> String {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
    let sound = if n.severity >= Severity::Error {
        " sound name \"Basso\""
    } else {
        ""
    };
    let script = format!(
        "display notification {} with title {} subtitle {}{sound}",
        quote(&n.message),
        quote("bgrun"),
        quote(&format!("{} {}", n.severity.icon(), n.title))
    );
    let out = std::process::Command::new("osascript")
        .arg("-e")
        .arg(script)
        .output()
        .map_err(Error::Osascript)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::OsascriptFailed {
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
