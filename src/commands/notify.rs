//! `bgrun notify`: send one custom notification through the configured channels (or the
//! `--channel`s named, enabled or not), report per channel, exit 1 if any failed.

use anyhow::Result;
use serde_json::json;

use crate::cli::NotifyArgs;
use crate::error;
use crate::notify::{self, CHANNELS, Notification, Selection, Severity};
use crate::{Ctx, Exit};

pub fn run(ctx: &Ctx, args: NotifyArgs) -> Result<Exit> {
    let severity = Severity::parse(&args.severity).ok_or_else(|| {
        error::usage(format!(
            "--severity {:?}: expected info, warning, error or critical",
            args.severity
        ))
    })?;
    for c in &args.channel {
        let custom = &ctx.config.notifications.channels.custom;
        if !CHANNELS.contains(&c.as_str()) && !custom.contains_key(c) {
            let mut all: Vec<&str> = CHANNELS.to_vec();
            all.extend(custom.keys().map(String::as_str));
            return Err(error::usage(format!(
                "--channel {c:?}: expected one of {}",
                all.join(", ")
            )));
        }
    }
    let n = Notification::custom(severity, &args.title, &args.message);
    let sel = if args.channel.is_empty() {
        Selection::Configured
    } else {
        Selection::Named(&args.channel)
    };
    let deliveries = notify::dispatch(&ctx.config, &ctx.repo, &ctx.state_dir, &n, sel);
    let failed = deliveries.iter().filter(|d| d.failed()).count();
    if ctx.out.json {
        super::print_json(&json!({
            "severity": severity,
            "title": n.title,
            "event": n.event,
            "at": n.at,
            "ok": failed == 0,
            "channels": deliveries,
        }))?;
    } else {
        let o = &ctx.out;
        if deliveries.is_empty() {
            o.warn("no channel is enabled (notifications.enabled / notifications.channels.*.enabled); name one with --channel");
        }
        for d in &deliveries {
            let line = match d.status {
                "delivered" => format!(
                    "{}: {} ({} ms)",
                    d.channel,
                    o.paint("32", "delivered"),
                    d.ms
                ),
                "skipped" => format!(
                    "{}: {} ({})",
                    d.channel,
                    o.paint("2", "skipped"),
                    d.reason.as_deref().unwrap_or("")
                ),
                _ => format!(
                    "{}: {}: {}",
                    d.channel,
                    o.paint("31", "failed"),
                    d.error.as_deref().unwrap_or("")
                ),
            };
            o.say(line);
        }
    }
    Ok(if failed > 0 {
        Exit::WorkFailed
    } else {
        Exit::Ok
    })
}
