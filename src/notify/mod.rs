//! Notifications: console, desktop, file, email and webhook channels behind one trait.
//!
//! Owns the events and their templates (`events`), the rules deciding which task results
//! notify (`rules`), the channels, and the delivery log (`deliveries`). It is an adapter:
//! it reads the config and writes its own files, and never calls the engine or commands.
//! Sending never panics outward and never waits past a channel's own timeout: channels run
//! on threads in parallel, so one slow channel does not delay the others.

mod command;
mod console;
mod deliveries;
mod desktop;
mod email;
pub mod error;
pub mod events;
mod file;
pub mod rules;
mod webhook;

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::config::{Config, Toggle};
use crate::results::TaskResult;

pub use deliveries::failing_channels;
pub use error::Error;
pub use events::{Notification, Severity};
pub use file::FileLog;

/// Every built-in channel name, in the order they are tried and reported (custom `command`
/// channels follow, by name).
pub const CHANNELS: [&str; 5] = ["console", "desktop", "file", "email", "webhook"];

/// A way to deliver a notification. `send` is bounded by the channel's own timeout and
/// returns a one-line error that names what failed and, where there is one, the way out.
pub trait Channel: Send + Sync {
    fn name(&self) -> &'static str;
    fn send(&self, n: &Notification) -> Result<(), Error>;
}

/// What happened to one channel for one notification.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub channel: String,
    /// delivered | failed | skipped
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub ms: u64,
}

impl Delivery {
    pub fn failed(&self) -> bool {
        self.status == "failed"
    }
}

/// Which channels to use.
#[derive(Debug, Clone, Copy)]
pub enum Selection<'a> {
    /// The channels the config enables (nothing when notifications are disabled).
    Configured,
    /// These channels, enabled or not (`bgrun notify --channel`).
    Named(&'a [String]),
}

/// Build a channel from the config.
fn build(name: &str, config: &Config, repo: &Path) -> Box<dyn Channel> {
    let ch = &config.notifications.channels;
    if let Some(c) = ch.custom.get(name) {
        return Box::new(command::CommandCh::new(name, c, repo));
    }
    match name {
        "console" => Box::new(console::Console::from_env()),
        "desktop" => Box::new(desktop::Desktop::new(&ch.desktop)),
        "file" => Box::new(file::FileLog::from_config(&ch.file, repo)),
        "email" => Box::new(email::Email::new(&ch.email, repo)),
        _ => Box::new(webhook::Webhook::new(&ch.webhook)),
    }
}

/// (enabled, min_severity) of a channel in the config.
fn settings(name: &str, config: &Config) -> (bool, Severity) {
    let ch = &config.notifications.channels;
    if let Some(c) = ch.custom.get(name) {
        return (c.enabled, c.min_severity);
    }
    match name {
        "console" => (ch.console.enabled, ch.console.min_severity),
        "desktop" => (!ch.desktop.enabled.is_off(), ch.desktop.min_severity),
        "file" => (ch.file.enabled, ch.file.min_severity),
        "email" => (ch.email.enabled, ch.email.min_severity),
        _ => (ch.webhook.enabled, ch.webhook.min_severity),
    }
}

/// Send one notification through the selected channels (in parallel), record every attempt
/// in `<state>/deliveries.jsonl`, and report per channel. Channels below their
/// `min_severity` are skipped, not failed.
pub fn dispatch(
    config: &Config,
    repo: &Path,
    state_dir: &Path,
    n: &Notification,
    sel: Selection<'_>,
) -> Vec<Delivery> {
    let mut chosen: Vec<(&str, Option<String>)> = Vec::new();
    let names = CHANNELS.iter().copied().chain(
        config
            .notifications
            .channels
            .custom
            .keys()
            .map(String::as_str),
    );
    for name in names {
        let (enabled, min) = settings(name, config);
        let wanted = match sel {
            Selection::Configured => config.notifications.enabled && enabled,
            Selection::Named(names) => names.iter().any(|x| x == name),
        };
        if !wanted {
            continue;
        }
        let mut skip = (n.severity < min).then(|| format!("below min_severity {}", min.as_str()));
        // `"auto"`: only where there is a desktop; elsewhere skipped, never failed.
        if skip.is_none()
            && name == "desktop"
            && matches!(sel, Selection::Configured)
            && config.notifications.channels.desktop.enabled == Toggle::Auto
            && !desktop::available(&config.notifications.channels.desktop)
        {
            skip = Some("no desktop notification server (enabled: \"auto\")".to_string());
        }
        chosen.push((name, skip));
    }
    let results: Vec<Delivery> = std::thread::scope(|s| {
        let handles: Vec<_> = chosen
            .iter()
            .map(|(name, skip)| {
                let name = *name;
                let skip = skip.clone();
                let h = skip.is_none().then(|| {
                    s.spawn(move || {
                        let start = Instant::now();
                        let r = build(name, config, repo).send(n);
                        (r, start.elapsed().as_millis() as u64)
                    })
                });
                (name, skip, h)
            })
            .collect();
        handles
            .into_iter()
            .map(|(name, skip, h)| {
                let mut d = Delivery {
                    channel: name.to_string(),
                    status: "skipped",
                    error: None,
                    reason: skip,
                    ms: 0,
                };
                if let Some(h) = h {
                    let (r, ms) = h.join().unwrap_or((Err(Error::Panicked), 0));
                    d.ms = ms;
                    match r {
                        Ok(()) => d.status = "delivered",
                        Err(e) => {
                            d.status = "failed";
                            d.error = Some(e.to_string());
                        }
                    }
                }
                d
            })
            .collect()
    });
    let attempts: Vec<&Delivery> = results.iter().filter(|d| d.status != "skipped").collect();
    if let Err(e) = deliveries::record(state_dir, &n.event, &attempts) {
        eprintln!("bgrun: warning: cannot record notification deliveries: {e}");
    }
    results
}

/// Called by the engine after every execution: send what the config's rules ask for.
/// Failures are recorded (see `failing_channels`) and never returned.
pub fn on_task_finished(config: &Config, repo: &Path, state_dir: &Path, result: &TaskResult) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for n in rules::events_for(config, result) {
            for d in dispatch(config, repo, state_dir, &n, Selection::Configured) {
                if let Some(e) = &d.error {
                    eprintln!(
                        "bgrun: warning: notification {} via {}: {e}",
                        n.event, d.channel
                    );
                }
            }
        }
    }));
    if outcome.is_err() {
        eprintln!(
            "bgrun: warning: notifying about task {} failed unexpectedly",
            result.id
        );
    }
}
