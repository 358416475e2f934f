//! `bgrun hook NAME [ARGS...]`: what an installed git hook calls. Enqueues the task types
//! configured for the hook (trigger `hook:NAME`, context: commit, refs, changed files),
//! starts a detached drainer and returns 0, whatever goes wrong (a warning is printed),
//! unless the hook is listed in `triggers.git_hooks.blocking`: then it waits for its tasks
//! and exits 1 when one did not succeed. `BGRUN_SKIP=1` / `BGRUN_SKIP=NAME[,NAME]` skips.
//!
//! It runs on every commit, so git waits for as little as possible: when a cheap look at
//! the config shows the hook is not blocking (no config file: the embedded defaults, where
//! none is; else `triggers.git_hooks.blocking` of the file's JSON), it starts a detached
//! worker (`bgrun hook NAME` again, through `runner::detach`: posix_spawn, no fork of this
//! process) and returns. A hook before git acts (pre-*) resolves its context (index, refs)
//! first, as git sees it now, and hands it to the worker on its stdin with the hook's own
//! stdin; after the fact (post-*) the worker resolves it. The worker (at the tasks' CPU
//! priority) loads the config, appends to the journal and starts the drainer; its messages
//! go to `<state>/bgrun.log`. A config that does not parse takes the full path, which warns
//! on the terminal. `BGRUN_HOOK_SYNC=1` does it all in the foreground (debugging).

use std::io::Read;
use std::time::Duration;

use anyhow::Result;

use crate::cli::{GlobalArgs, HookArgs};
use crate::engine::{self, NewTask, Submitted};
use crate::triggers::hooks;
use crate::{Ctx, Exit};

/// The environment git sets for a hook that would point a background task at the wrong
/// index or repository once the git command has finished (git's `local_repo_env`).
const GIT_LOCAL_ENV: [&str; 15] = [
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_OBJECT_DIRECTORY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR",
];

/// Whether `BGRUN_SKIP` asks to skip this hook.
fn skipped(name: &str) -> bool {
    let Some(v) = std::env::var_os("BGRUN_SKIP") else {
        return false;
    };
    let v = v.to_string_lossy();
    let v = v.trim();
    matches!(v, "1" | "true" | "yes" | "all")
        || v.split([',', ' '])
            .any(|s| !s.is_empty() && s.replace('_', "-") == name)
}

/// Entry point, called before the config is loaded so that a broken config cannot fail
/// a non-blocking git command.
pub fn run(g: &GlobalArgs, a: HookArgs) -> Result<Exit> {
    let name = a.name.replace('_', "-");
    let args: Vec<String> = a
        .args
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    if std::env::var_os(WORKER_ENV).is_some() {
        // The detached worker (see `spawn_worker`): its stdin carries what the hook got.
        crate::runner::detach::new_session();
        let mut input = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut input);
        match serde_json::from_slice::<WorkerInput>(&input) {
            Ok(w) => queue_detached(g, &name, &args, &w.stdin.0, w.context),
            Err(e) => log_hook(g, &format!("warning: {name} hook: bad worker input: {e}")),
        }
        return Ok(Exit::Ok);
    }
    // Read a stdin hook's input in any case, so a writer (git) never sees a broken pipe.
    let mut stdin = Vec::new();
    if hooks::STDIN_HOOKS.contains(&name.as_str()) {
        let _ = std::io::stdin().read_to_end(&mut stdin);
    }
    if skipped(&name) {
        return Ok(Exit::Ok);
    }
    let sync = std::env::var_os("BGRUN_HOOK_SYNC").is_some();
    if !sync && blocking_hint(g, &name) == Some(false) {
        hand_off(g, &a, &name, &args, stdin);
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
    let gh = &ctx.config.triggers.git_hooks;
    if !gh.enabled {
        return Ok(Exit::Ok);
    }
    let types = ctx.config.hook_tasks(&name);
    if types.is_empty() {
        return Ok(Exit::Ok);
    }
    let blocking = ctx.config.hook_is_blocking(&name);
    if !blocking && !sync {
        hand_off(g, &a, &name, &args, stdin);
        return Ok(Exit::Ok);
    }
    let context = hooks::context(&name, &args, &stdin);
    match fire(&ctx, &name, &types, context, blocking) {
        Ok(code) => Ok(code),
        Err(e) if blocking => Err(e),
        Err(e) => {
            ctx.out.warn(format!(
                "{name} hook: tasks not queued: {} (the git command goes on)",
                crate::error::render(&e)
            ));
            Ok(Exit::Ok)
        }
    }
}

/// Marks the detached worker process of a hook.
const WORKER_ENV: &str = "BGRUN_HOOK_WORKER";

/// What a hook hands its worker on stdin.
#[derive(serde::Serialize, serde::Deserialize)]
struct WorkerInput {
    /// Resolved by a pre-* hook before git acted; None: the worker resolves it.
    context: Option<serde_json::Value>,
    /// The hook's own stdin (pre-push's refs...), bytes as they came.
    stdin: crate::state::task::Arg,
}

/// A non-blocking hook: resolve the context now if git is about to act (pre-*), start the
/// worker and return. When the worker cannot start, the work is done here instead.
fn hand_off(g: &GlobalArgs, a: &HookArgs, name: &str, args: &[String], stdin: Vec<u8>) {
    let context = (!name.starts_with("post-")).then(|| hooks::context(name, args, &stdin));
    let input = WorkerInput {
        context,
        stdin: crate::state::task::Arg(stdin),
    };
    if let Err(e) = spawn_worker(a, &input) {
        eprintln!("bgrun: warning: cannot start the {name} hook's worker ({e}); queueing here");
        queue_detached(g, name, args, &input.stdin.0, input.context);
    }
}

/// Start `bgrun <same global options> hook NAME ARGS...` as a detached worker marked by
/// `BGRUN_HOOK_WORKER`, with `input` on its stdin (see `runner::detach`).
fn spawn_worker(a: &HookArgs, input: &WorkerInput) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    // The global options as given (they are global, so they may follow the subcommand).
    let mut raw = std::env::args_os().skip(1);
    let mut argv = vec![exe.into_os_string()];
    for arg in raw.by_ref() {
        if arg == "hook" {
            break;
        }
        argv.push(arg);
    }
    argv.push("hook".into());
    argv.push(a.name.clone().into());
    argv.extend(a.args.iter().cloned());
    crate::runner::detach::spawn(&crate::runner::detach::Detached {
        argv,
        env: vec![(WORKER_ENV.into(), "1".into())],
        input: Some(serde_json::to_vec(input).map_err(std::io::Error::other)?),
        ..Default::default()
    })
    .map(drop)
}

/// Whether the hook blocks, decided without loading the config: no config file means the
/// embedded defaults, where no hook blocks; otherwise `triggers.git_hooks.blocking` of the
/// file's JSON. None when the file cannot be read or parsed (the full load reports it).
fn blocking_hint(g: &GlobalArgs, name: &str) -> Option<bool> {
    let repo = crate::resolve_repo(g.repo.as_deref()).ok()?;
    match crate::config::discover(g.config.as_deref(), &repo) {
        crate::config::Source::Embedded => Some(false),
        crate::config::Source::File(p) => {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
            match v.pointer("/triggers/git_hooks/blocking") {
                None => Some(false),
                Some(serde_json::Value::Array(list)) => Some(
                    list.iter()
                        .any(|x| x.as_str().is_some_and(|s| s.replace('_', "-") == name)),
                ),
                Some(_) => None,
            }
        }
    }
}

/// The detached child of a non-blocking hook: load the config and queue the hook's tasks.
/// Problems go to `<state>/bgrun.log` (git has moved on).
fn queue_detached(
    g: &GlobalArgs,
    name: &str,
    args: &[String],
    stdin: &[u8],
    context: Option<serde_json::Value>,
) {
    match Ctx::new(g) {
        Ok(ctx) => queue(&ctx, name, args, stdin, context),
        Err(e) => log_hook(
            g,
            &format!("warning: {name} hook skipped: {}", crate::error::render(&e)),
        ),
    }
}

/// A line in `<state>/bgrun.log` for a detached hook (git has moved on), without a config.
fn log_hook(g: &GlobalArgs, msg: &str) {
    let repo = crate::resolve_repo(g.repo.as_deref()).unwrap_or_default();
    if let Ok(dir) = crate::state_dir_for(g, &repo) {
        engine::log_to(&dir, msg);
    }
}

/// In the detached child: at the tasks' CPU priority, resolve the context if the parent did
/// not, queue the hook's tasks and start a drainer.
fn queue(ctx: &Ctx, name: &str, args: &[String], stdin: &[u8], context: Option<serde_json::Value>) {
    let types = ctx.config.hook_tasks(name);
    if !ctx.config.triggers.git_hooks.enabled || types.is_empty() {
        return;
    }
    // The drainer started below inherits this nice level, so it does not compete with git
    // for the CPU while the commit finishes; tasks get that level anyway.
    let (nice, _) = ctx.config.resource_limits.nice_and_ioprio();
    if nice > 0 {
        // SAFETY: setpriority on this process has no memory-safety preconditions.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    }
    let context = context.unwrap_or_else(|| hooks::context(name, args, stdin));
    if let Err(e) = fire(ctx, name, &types, context, false) {
        let why = crate::error::render(&e);
        engine::log_event(
            ctx,
            &format!("warning: {name} hook: tasks not queued: {why}"),
        );
    }
}

fn fire(
    ctx: &Ctx,
    name: &str,
    types: &[String],
    context: serde_json::Value,
    blocking: bool,
) -> Result<Exit> {
    let trigger = format!("hook:{name}");
    let mut news = Vec::new();
    for t in types {
        if let Some(why) = ctx.config.disabled_type(t) {
            ctx.out.warn(format!("{name} hook: {why}; skipped"));
            continue;
        }
        let mut n = NewTask::of_type(t, &trigger);
        n.context = context.clone();
        news.push(n);
    }
    if news.is_empty() {
        return Ok(Exit::Ok);
    }
    let submitted = engine::submit(ctx, &news)?;
    let mut ids = Vec::new();
    let mut queued_any = false;
    for (n, s) in news.iter().zip(&submitted) {
        match s {
            Submitted::Queued { id, .. } => {
                queued_any = true;
                ids.push(id.clone());
                engine::log_event(
                    ctx,
                    &format!("{name} hook: queued {} (task {id})", n.task_type),
                );
                if !ctx.out.quiet() {
                    eprintln!("bgrun: {name}: queued {} (task {id})", n.task_type);
                }
            }
            Submitted::Duplicate { id } => {
                ids.push(id.clone());
                if ctx.out.level > 0 {
                    eprintln!("bgrun: {name}: {} already queued (task {id})", n.task_type);
                }
            }
            Submitted::Dropped { result } => {
                ctx.out.warn(format!(
                    "{name}: {} dropped: the queue is full (recorded as {})",
                    n.task_type, result.id
                ));
            }
        }
    }
    if queued_any || blocking {
        for k in GIT_LOCAL_ENV {
            // SAFETY: single-threaded here: no other thread reads the environment.
            unsafe { std::env::remove_var(k) };
        }
        engine::ensure_drainer(ctx)?;
    }
    if !blocking || ids.is_empty() {
        return Ok(Exit::Ok);
    }
    wait(ctx, name, types, &ids)
}

/// Blocking hooks: wait for every task and fail when one did not succeed.
fn wait(ctx: &Ctx, name: &str, types: &[String], ids: &[String]) -> Result<Exit> {
    let total: u64 = types
        .iter()
        .filter_map(|t| ctx.config.task_types.get(t))
        .map(|t| ctx.config.timeout_for(t))
        .sum();
    if !ctx.out.quiet() {
        eprintln!(
            "bgrun: {name} is blocking: waiting for tasks {}",
            ids.join(", ")
        );
    }
    let results = engine::wait_for(ctx, ids, Duration::from_secs(total + 60))?;
    let mut failed = false;
    for r in &results {
        let ok = r.status == "succeeded";
        failed |= !ok;
        if !ok || !ctx.out.quiet() {
            eprintln!(
                "bgrun: {name}: {} (task {}): {}{}",
                r.task_type,
                r.id,
                r.status,
                if ok {
                    String::new()
                } else {
                    format!(
                        "; see `bgrun results {}` (skip once with BGRUN_SKIP={name})",
                        r.id
                    )
                }
            );
        }
    }
    Ok(if failed { Exit::WorkFailed } else { Exit::Ok })
}
