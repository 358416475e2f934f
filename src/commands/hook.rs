//! `bgrun hook NAME [ARGS...]`: what an installed git hook calls. Enqueues the task types
//! configured for the hook (trigger `hook:NAME`, context: commit, refs, changed files),
//! starts a detached drainer and returns 0, whatever goes wrong (a warning is printed),
//! unless the hook is listed in `triggers.git_hooks.blocking`: then it waits for its tasks
//! and exits 1 when one did not succeed. `BGRUN_SKIP=1` / `BGRUN_SKIP=NAME[,NAME]` skips.
//! The session (skip, hand-off to a detached worker, queueing, waiting) is
//! `triggers::hook`'s; this builds the `Env`, asks for trust and says what happened. The
//! worker's messages go to `<state>/bgrun.log`; a config that does not parse takes the full
//! path, which warns on the terminal. `BGRUN_HOOK_SYNC=1` does it all in the foreground.

use anyhow::Result;

use crate::cli::{GlobalArgs, HookArgs};
use crate::engine::{self, Handed, Submitted};
use crate::triggers::hook::{self, Fired};
use crate::{Ctx, Exit};

/// Entry point, called before the config is loaded so that a broken config cannot fail
/// a non-blocking git command.
pub fn run(g: &GlobalArgs, a: HookArgs) -> Result<Exit> {
    let name = a.name.replace('_', "-");
    let args: Vec<String> = a
        .args
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    if hook::is_worker() {
        let repo = crate::resolve_repo(g.repo.as_deref()).ok();
        match hook::worker_input(g.config.as_deref(), repo.as_deref(), &name) {
            Ok(input) => queue_detached(g, &name, &args, input),
            Err(e) => log_hook(g, &format!("warning: {name} hook: {e}")),
        }
        return Ok(Exit::Ok);
    }
    let stdin = hook::read_stdin(&name);
    if hook::skipped(&name) {
        return Ok(Exit::Ok);
    }
    let sync = std::env::var_os("BGRUN_HOOK_SYNC").is_some();
    let repo = crate::resolve_repo(g.repo.as_deref());
    // The terminal inbox: what background tasks concluded since the last git command.
    if let Ok(repo) = &repo
        && let Ok(dir) = crate::state_dir_for(g, repo)
    {
        crate::inbox::show_unread(&dir);
    }
    let look = repo
        .ok()
        .map(|r| hook::look(g.config.as_deref(), &r, &name));
    let nice = look.as_ref().and_then(|l| l.nice);
    if !sync && look.is_some_and(|l| l.blocking == Some(false)) {
        hand_off(g, &a, &name, &args, stdin, nice);
        return Ok(Exit::Ok);
    }
    let ctx = match Ctx::new(g) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "bgrun: warning: {name} hook skipped: {}",
                crate::error::render(&e)
            );
            return Ok(Exit::Ok);
        }
    };
    for w in &ctx.config_warnings {
        ctx.out.warn(w);
    }
    let types = ctx.config.hook_tasks(&name);
    if !ctx.config.triggers.git_hooks.enabled || types.is_empty() {
        return Ok(Exit::Ok);
    }
    if !super::trust::gate(&ctx, g, Some(&format!("{name} hook")))? {
        return Ok(Exit::Ok);
    }
    let blocking = ctx.config.hook_is_blocking(&name);
    if !blocking && !sync {
        let nice = Some(ctx.config.resource_limits.nice_and_ioprio().0);
        hand_off(g, &a, &name, &args, stdin, nice);
        return Ok(Exit::Ok);
    }
    let context = crate::triggers::hooks::context(&name, &args, &stdin);
    let fired = hook::fire(&ctx, &name, &types, context, blocking).and_then(|f| {
        show(&ctx, &name, &f);
        if blocking {
            wait(&ctx, &name, &types, &f)
        } else {
            Ok(Exit::Ok)
        }
    });
    match fired {
        Err(e) if !blocking => {
            let why = crate::error::render(&e);
            ctx.out.warn(format!(
                "{name} hook: tasks not queued: {why} (the git command goes on)"
            ));
            Ok(Exit::Ok)
        }
        r => r,
    }
}

/// Start the detached worker with the global options as given (they may follow the
/// subcommand); when it cannot start, queue here.
fn hand_off(
    g: &GlobalArgs,
    a: &HookArgs,
    name: &str,
    args: &[String],
    stdin: Vec<u8>,
    nice: Option<i32>,
) {
    let Ok(exe) = std::env::current_exe() else {
        return queue_detached(
            g,
            name,
            args,
            hook::WorkerInput {
                context: None,
                stdin: crate::state::task::Arg(stdin),
            },
        );
    };
    let mut argv = vec![exe.into_os_string()];
    argv.extend(std::env::args_os().skip(1).take_while(|a| a != "hook"));
    argv.push("hook".into());
    argv.push(a.name.clone().into());
    argv.extend(a.args.iter().cloned());
    if let Err((e, input)) = hook::hand_off(argv, nice, name, args, stdin) {
        eprintln!("bgrun: warning: cannot start the {name} hook's worker ({e}); queueing here");
        queue_detached(g, name, args, input);
    }
}

/// The detached worker: load the config, ask for trust, queue. Problems go to
/// `<state>/bgrun.log` (git has moved on).
fn queue_detached(g: &GlobalArgs, name: &str, args: &[String], input: hook::WorkerInput) {
    let ctx = match Ctx::new(g) {
        Ok(c) => c,
        Err(e) => {
            let why = crate::error::render(&e);
            return log_hook(g, &format!("warning: {name} hook skipped: {why}"));
        }
    };
    if !super::trust::gate(&ctx, g, Some(&format!("{name} hook"))).unwrap_or(false) {
        return;
    }
    match hook::queue_in_worker(&ctx, name, args, input) {
        Some(Ok(f)) => show(&ctx, name, &f),
        Some(Err(e)) => {
            let why = crate::error::render(&e);
            engine::log_event(
                &ctx,
                &format!("warning: {name} hook: tasks not queued: {why}"),
            );
        }
        None => {}
    }
}

/// A line in `<state>/bgrun.log` for a detached hook (git has moved on), without a config.
fn log_hook(g: &GlobalArgs, msg: &str) {
    let repo = crate::resolve_repo(g.repo.as_deref()).unwrap_or_default();
    if let Ok(dir) = crate::state_dir_for(g, &repo) {
        engine::log_to(&dir, msg);
    }
}

/// What became of each task type.
fn show(ctx: &Ctx, name: &str, f: &Fired) {
    for (t, h) in &f.handed {
        match h {
            Handed::Skipped { why } => ctx.out.warn(format!("{name} hook: {why}; skipped")),
            Handed::Submitted(Submitted::Queued { id, .. }) if !ctx.out.quiet() => {
                eprintln!("bgrun: {name}: queued {t} (task {id})");
            }
            Handed::Submitted(Submitted::Queued { .. }) => {}
            Handed::Submitted(Submitted::Duplicate { id }) if ctx.out.level > 0 => {
                eprintln!("bgrun: {name}: {t} already queued (task {id})");
            }
            Handed::Submitted(Submitted::Duplicate { .. }) => {}
            Handed::Submitted(Submitted::Dropped { result }) => ctx.out.warn(format!(
                "{name}: {t} dropped: the queue is full (recorded as {})",
                result.id
            )),
        }
    }
}

/// Blocking hooks: wait for every task and fail when one did not succeed.
fn wait(ctx: &Ctx, name: &str, types: &[String], f: &Fired) -> Result<Exit> {
    let ids = f.ids();
    if ids.is_empty() {
        return Ok(Exit::Ok);
    }
    if !ctx.out.quiet() {
        eprintln!(
            "bgrun: {name} is blocking: waiting for tasks {}",
            ids.join(", ")
        );
    }
    let mut failed = false;
    for r in &hook::wait(ctx, types, &ids)? {
        let ok = r.status == "succeeded";
        failed |= !ok;
        if !ok || !ctx.out.quiet() {
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
    Ok(if failed { Exit::WorkFailed } else { Exit::Ok })
}
