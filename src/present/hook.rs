//! What a git hook tells the terminal (`bgrun hook NAME`): what became of each task type it
//! handed over, and for a blocking hook the wait and each task's outcome. The session is
//! `triggers::hook::session`'s; this only shows its typed events.

use crate::Ctx;
use crate::engine::{Handed, Submitted};
use crate::output::Output;
use crate::results::TaskResult;
use crate::triggers::hook::Fired;
use crate::triggers::hook::session::Event;

/// Tell the terminal what the hook's session did.
pub fn show(e: Event<'_, Ctx>) {
    match e {
        Event::NotHanded { name, error } => {
            eprintln!(
                "bgrun: warning: cannot start the {name} hook's worker ({error}); queueing here"
            );
        }
        Event::NotLoaded { name, error } => {
            let why = crate::error::render(error);
            eprintln!("bgrun: warning: {name} hook skipped: {why}");
        }
        Event::Loaded(ctx) => {
            for w in &ctx.config_warnings {
                ctx.out.warn(w);
            }
        }
        Event::Fired {
            ctx,
            name,
            fired: f,
        } => fired(&ctx.out, name, f),
        Event::NotQueued { ctx, name, error } => {
            let why = crate::error::render(error);
            ctx.out.warn(format!(
                "{name} hook: tasks not queued: {why} (the git command goes on)"
            ));
        }
        Event::Waiting { ctx, name, ids } => waiting(&ctx.out, name, ids),
        Event::Waited { ctx, name, results } => waited(&ctx.out, name, results),
    }
}

/// What became of each task type.
fn fired(out: &Output, name: &str, f: &Fired) {
    for (t, h) in &f.handed {
        match h {
            Handed::Skipped { why } => out.warn(format!("{name} hook: {why}; skipped")),
            Handed::Submitted(Submitted::Queued { id, .. }) if !out.quiet() => {
                eprintln!("bgrun: {name}: queued {t} (task {id})");
            }
            Handed::Submitted(Submitted::Queued { .. }) => {}
            Handed::Submitted(Submitted::Duplicate { id }) if out.level > 0 => {
                eprintln!("bgrun: {name}: {t} already queued (task {id})");
            }
            Handed::Submitted(Submitted::Duplicate { .. }) => {}
            Handed::Submitted(Submitted::Dropped { result }) => out.warn(format!(
                "{name}: {t} dropped: the queue is full (recorded as {})",
                result.id
            )),
        }
    }
}

/// A blocking hook is about to wait for the tasks `ids`.
fn waiting(out: &Output, name: &str, ids: &[String]) {
    if !out.quiet() {
        eprintln!(
            "bgrun: {name} is blocking: waiting for tasks {}",
            ids.join(", ")
        );
    }
}

/// Each waited-for task's outcome (a failed one always, with the way out).
fn waited(out: &Output, name: &str, results: &[TaskResult]) {
    for r in results {
        let ok = r.status == "succeeded";
        if !ok || !out.quiet() {
            let see = if ok {
                String::new()
            } else {
                format!(
                    "; see `bgrun results {}` (skip once with BGRUN_SKIP={name})",
                    r.id
                )
            };
            eprintln!(
                "bgrun: {name}: {} (task {}): {}{see}",
                r.task_type, r.id, r.status
            );
        }
    }
}
