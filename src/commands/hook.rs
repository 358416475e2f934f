//! `bgrun hook NAME [ARGS...]`: what an installed git hook calls. Enqueues the task types
//! configured for the hook (trigger `hook:NAME`, context: commit, refs, changed files),
//! starts a detached drainer and returns 0, whatever goes wrong (a warning is printed),
//! unless the hook is listed in `triggers.git_hooks.blocking`: then it waits for its tasks
//! and exits 1 when one did not succeed. `BGRUN_SKIP=1` / `BGRUN_SKIP=NAME[,NAME]` skips.
//! The session (skip, hand-off to a detached worker, queueing, waiting) is
//! `triggers::hook`'s, what the terminal is told `present::hook`'s; this builds the `Env`
//! and asks for trust. The worker's messages go to `<state>/bgrun.log`; a config that does
//! not parse takes the full path, which warns on the terminal. `BGRUN_HOOK_SYNC=1` does it
//! all in the foreground.

use anyhow::Result;

use crate::cli::{GlobalArgs, HookArgs};
use crate::present::hook as view;
use crate::triggers::hook;
use crate::{Ctx, Exit, engine, error};

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
    let sync = hook::sync();
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
    let hand_off = |nice, stdin| {
        if let Err(not) = hook::hand_off((&a.name, &a.args), nice, &name, &args, stdin) {
            if let Some(e) = not.error {
                eprintln!(
                    "bgrun: warning: cannot start the {name} hook's worker ({e}); queueing here"
                );
            }
            queue_detached(g, &name, &args, not.input);
        }
        Ok(Exit::Ok)
    };
    if !sync && look.as_ref().is_some_and(|l| l.blocking == Some(false)) {
        return hand_off(look.and_then(|l| l.nice), stdin);
    }
    let ctx = match Ctx::new(g) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bgrun: warning: {name} hook skipped: {}", error::render(&e));
            return Ok(Exit::Ok);
        }
    };
    for w in &ctx.config_warnings {
        ctx.out.warn(w);
    }
    let Some(types) = hook::tasks(&ctx, &name) else {
        return Ok(Exit::Ok);
    };
    if !super::trust::gate(&ctx, g, Some(&format!("{name} hook")))? {
        return Ok(Exit::Ok);
    }
    let blocking = ctx.config.hook_is_blocking(&name);
    if !blocking && !sync {
        return hand_off(Some(ctx.config.resource_limits.nice_and_ioprio().0), stdin);
    }
    let context = crate::triggers::hooks::context(&name, &args, &stdin);
    let fired = hook::fire(&ctx, &name, &types, context, blocking).and_then(|f| {
        view::fired(&ctx.out, &name, &f);
        let ids = f.ids();
        if !blocking || ids.is_empty() {
            return Ok(Exit::Ok);
        }
        view::waiting(&ctx.out, &name, &ids);
        let all_ok = view::waited(&ctx.out, &name, &hook::wait(&ctx, &types, &ids)?);
        Ok(if all_ok { Exit::Ok } else { Exit::WorkFailed })
    });
    match fired {
        Err(e) if !blocking => {
            let why = error::render(&e);
            ctx.out.warn(format!(
                "{name} hook: tasks not queued: {why} (the git command goes on)"
            ));
            Ok(Exit::Ok)
        }
        r => r,
    }
}

/// The detached worker: load the config, ask for trust, queue. Problems go to
/// `<state>/bgrun.log` (git has moved on).
fn queue_detached(g: &GlobalArgs, name: &str, args: &[String], input: hook::WorkerInput) {
    let ctx = match Ctx::new(g) {
        Ok(c) => c,
        Err(e) => {
            let why = error::render(&e);
            return log_hook(g, &format!("warning: {name} hook skipped: {why}"));
        }
    };
    if !super::trust::gate(&ctx, g, Some(&format!("{name} hook"))).unwrap_or(false) {
        return;
    }
    if let Some(f) = hook::queue_in_worker(&ctx, name, args, input) {
        view::fired(&ctx.out, name, &f);
    }
}

/// A line in `<state>/bgrun.log` for a detached hook (git has moved on), without a config.
fn log_hook(g: &GlobalArgs, msg: &str) {
    let repo = crate::resolve_repo(g.repo.as_deref()).unwrap_or_default();
    if let Ok(dir) = crate::state_dir_for(g, &repo) {
        engine::log_to(&dir, msg);
    }
}
