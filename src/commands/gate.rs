//! What runs before a command that uses the state: recovery of a task orphaned by a dead
//! drainer, and the trust gate (issue 14) every command that would run a committed config's
//! commands goes through (manual ones are refused, triggers record and notify).

use anyhow::Result;

use crate::cli::{Command, GlobalArgs};
use crate::notify::{self, Notification, Selection, Severity};
use crate::trust::{self, Verdict};
use crate::{Ctx, engine};

/// Recover orphans, then ask the gate: `false` when `command` must do nothing (an
/// untrusted config stopped a trigger).
pub fn before(ctx: &Ctx, g: &GlobalArgs, command: &Command) -> Result<bool> {
    // Any command finds a task orphaned by a dead drainer (a leftover, unlocked file in
    // <state>/procs/ says one died) and recovers it. Commands that do not use the queue
    // go on when the state is broken; the queue commands report it themselves.
    if crate::state::procs::any_dead(&ctx.state_dir) {
        if let Err(e) = engine::recover_now(ctx) {
            ctx.out.warn(crate::error::render(&e));
        }
        crate::state::procs::alive(&ctx.state_dir, None);
    }
    // A committed config's commands run only once trusted (issue 14).
    let trigger = match command {
        Command::Enqueue(a) if a.task_type != "custom" => Some(None),
        Command::Run(a) if a.task_type != "custom" => Some(None),
        Command::Tick => Some(Some("tick")),
        Command::Watch(_) | Command::Start(_) => Some(Some("watch")),
        _ => None,
    };
    match trigger {
        Some(t) => gate(ctx, g, t),
        None => Ok(true),
    }
}

/// May this command run the config's commands? Manual commands (`trigger` None) get an
/// error (exit 2) unless `--trust-once`; triggers record and notify, and get `false`.
pub fn gate(ctx: &Ctx, g: &GlobalArgs, trigger: Option<&str>) -> Result<bool> {
    let Verdict::Untrusted { path, known } =
        trust::verdict(&ctx.repo, &ctx.config_source, &ctx.config)
    else {
        return Ok(true);
    };
    if g.trust_once && trigger.is_none() {
        return Ok(true);
    }
    let Some(trigger) = trigger else {
        return Err(trust::refusal(&path, known));
    };
    let msg = trust::skipped(trigger, &path, known);
    engine::log_to(&ctx.state_dir, &msg);
    let n = Notification::custom(Severity::Warning, "bgrun: config changed", &msg);
    notify::dispatch(
        &ctx.config,
        &ctx.repo,
        &ctx.state_dir,
        &n,
        Selection::Configured,
    );
    eprintln!("bgrun: {msg}");
    Ok(false)
}
