//! A git hook's steps (`bgrun hook NAME [ARGS...]`): which hooks are skipped
//! (`BGRUN_SKIP`), the cheap look at the config that decides whether git waits, the hand-off
//! to a detached worker, the worker's queueing, and a blocking hook's wait; [`session`] runs
//! them from start to end. Presentation (what the terminal is told) is `present::hook`'s;
//! this returns typed outcomes.
//!
//! It runs on every commit, so git waits for as little as possible: when the cheap look
//! ([`look`]) shows the hook is not blocking, [`hand_off`] starts a detached worker
//! (`bgrun hook NAME` again, marked by [`WORKER_ENV`], through `runner::detach`: posix_spawn,
//! no fork of this process) and the hook returns. A hook before git acts (pre-*) resolves
//! its context (index, refs) first, as git sees it now, and hands it to the worker on its
//! stdin with the hook's own stdin; after the fact (post-*) the worker resolves it.

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use super::hooks;
use crate::engine::{self, Env, Handed, NewTask};
use crate::results::TaskResult;
use crate::state::task::Arg;

pub mod session;

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

/// Marks the detached worker process of a hook.
pub const WORKER_ENV: &str = "BGRUN_HOOK_WORKER";

/// Whether `BGRUN_SKIP` asks to skip this hook.
pub fn skipped(name: &str) -> bool {
    let Some(v) = std::env::var_os("BGRUN_SKIP") else {
        return false;
    };
    let v = v.to_string_lossy();
    let v = v.trim();
    matches!(v, "1" | "true" | "yes" | "all")
        || v.split([',', ' '])
            .any(|s| !s.is_empty() && s.replace('_', "-") == name)
}

/// Whether this process is a hook's detached worker.
pub fn is_worker() -> bool {
    std::env::var_os(WORKER_ENV).is_some()
}

/// What a hook hands its worker on stdin.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct WorkerInput {
    /// Resolved by a pre-* hook before git acted; None: the worker resolves it.
    pub context: Option<Value>,
    /// The hook's own stdin (pre-push's refs...), bytes as they came.
    pub stdin: Arg,
}

/// In the worker, first thing: leave git's session, make sure it runs at the tasks' CPU
/// priority (the hook set it when it could; else a cheap [`look`] at the config in `repo`),
/// so that loading the config, the checks and git's context all run at it, and read what
/// the hook handed over.
pub fn worker_input(
    config_arg: Option<&Path>,
    repo: Option<&Path>,
    name: &str,
) -> Result<WorkerInput, String> {
    crate::runner::detach::new_session();
    // SAFETY: getpriority of this process has no memory-safety preconditions.
    if unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) } <= 0
        && let Some(nice) = repo.and_then(|r| look(config_arg, r, name).nice)
    {
        renice(0, nice);
    }
    let mut input = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut input);
    serde_json::from_slice(&input).map_err(|e| format!("bad worker input: {e}"))
}

/// Read a stdin hook's input in any case, so a writer (git) never sees a broken pipe.
pub fn read_stdin(name: &str) -> Vec<u8> {
    let mut stdin = Vec::new();
    if hooks::STDIN_HOOKS.contains(&name) {
        let _ = std::io::stdin().read_to_end(&mut stdin);
    }
    stdin
}

/// What a cheap look at the config tells a hook, without loading it (one read of the
/// files' merged JSON, comments accepted, as the full load does; none when no file: the
/// embedded defaults).
pub struct Look {
    /// Whether the hook blocks: `triggers.git_hooks.blocking` (no file: the embedded
    /// defaults, where no hook blocks). None when the file cannot be read or parsed (the
    /// full load reports it).
    pub blocking: Option<bool>,
    /// The tasks' nice level (`resource_limits.priority`, else the embedded defaults').
    pub nice: Option<i32>,
}

/// Look at the config for hook `name` (see [`Look`]). Without a file the merged JSON is an
/// empty object, which reads as the embedded defaults do here.
pub fn look(config_arg: Option<&Path>, repo: &Path, name: &str) -> Look {
    let Some(json) = crate::config::user_json(config_arg, repo) else {
        return Look {
            blocking: None,
            nice: None,
        };
    };
    let blocking = match json.pointer("/triggers/git_hooks/blocking") {
        None => Some(false),
        Some(Value::Array(list)) => Some(
            list.iter()
                .any(|x| x.as_str().is_some_and(|s| s.replace('_', "-") == name)),
        ),
        Some(_) => None,
    };
    Look {
        blocking,
        nice: nice_of(&json),
    }
}

/// The nice level of `resource_limits.priority` in the files' merged JSON, else in the
/// embedded defaults. None when it cannot be told (the full load decides then).
fn nice_of(json: &Value) -> Option<i32> {
    let of = |v: &Value| v.pointer("/resource_limits/priority").cloned();
    let p = match of(json) {
        Some(p) => p,
        None => of(&serde_json::from_str(crate::config::DEFAULT_CONFIG).ok()?)?,
    };
    let limits = crate::config::ResourceLimits {
        max_memory_mb: 0,
        max_cpu_percent: 0.0,
        priority: serde_json::from_value(p).ok()?,
    };
    Some(limits.nice_and_ioprio().0)
}

/// Lower the CPU priority of process `pid` (0: this one) to `nice` (a higher nice only).
fn renice(pid: u32, nice: i32) {
    if nice > 0 {
        // SAFETY: setpriority has no memory-safety preconditions; a gone process is an error.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, pid as libc::id_t, nice) };
    }
}

/// Whether `BGRUN_HOOK_SYNC` asks to do it all in the foreground.
pub fn sync() -> bool {
    std::env::var_os("BGRUN_HOOK_SYNC").is_some()
}

/// The hook's task types when git hooks are on and it has some; None: nothing to do.
pub fn tasks(env: &Env, name: &str) -> Option<Vec<String>> {
    let types = env.config.hook_tasks(name);
    (env.config.triggers.git_hooks.enabled && !types.is_empty()).then_some(types)
}

/// Why the worker did not start: its input comes back to be queued here.
pub struct NotHanded {
    /// None: this executable cannot be found (nothing was tried, nothing to say).
    pub error: Option<std::io::Error>,
    pub input: WorkerInput,
}

/// A non-blocking hook: resolve the context now if git is about to act (pre-*), then start
/// the worker, `bgrun <global options as given> hook RAW_NAME RAW_ARGS...`, with it on its
/// stdin, at CPU priority `nice` when known (set at once, so that even its start-up yields
/// to git). When the worker cannot start, the input comes back (queue it here then).
pub fn hand_off(
    raw: (&str, &[OsString]),
    nice: Option<i32>,
    name: &str,
    args: &[String],
    stdin: Vec<u8>,
) -> Result<(), NotHanded> {
    let Ok(exe) = std::env::current_exe() else {
        let input = WorkerInput {
            context: None,
            stdin: Arg(stdin),
        };
        return Err(NotHanded { error: None, input });
    };
    // The global options as given (they may come before the subcommand).
    let mut argv = vec![exe.into_os_string()];
    argv.extend(std::env::args_os().skip(1).take_while(|a| a != "hook"));
    argv.push("hook".into());
    argv.push(raw.0.into());
    argv.extend(raw.1.iter().cloned());
    let context = (!name.starts_with("post-")).then(|| hooks::context(name, args, &stdin));
    let input = WorkerInput {
        context,
        stdin: Arg(stdin),
    };
    let not = |e, input| NotHanded {
        error: Some(e),
        input,
    };
    let bytes = match serde_json::to_vec(&input) {
        Ok(b) => b,
        Err(e) => return Err(not(std::io::Error::other(e), input)),
    };
    crate::runner::detach::spawn(&crate::runner::detach::Detached {
        argv,
        env: vec![(WORKER_ENV.into(), "1".into())],
        input: Some(bytes),
        ..Default::default()
    })
    .map(|pid| {
        if let Some(n) = nice {
            renice(pid, n);
        }
    })
    .map_err(|e| not(e, input))
}

/// In the worker (git has moved on): at the tasks' CPU priority, resolve the context if the
/// hook did not, and queue the hook's tasks. None when the hook has nothing to queue or
/// they could not be queued (why goes to `<state>/bgrun.log`: git has moved on).
pub fn queue_in_worker(
    env: &Env,
    name: &str,
    args: &[String],
    input: WorkerInput,
) -> Option<Fired> {
    let types = tasks(env, name)?;
    // The drainer started from here inherits this nice level, so it does not compete with
    // git for the CPU while the commit finishes; tasks get that level anyway.
    renice(0, env.config.resource_limits.nice_and_ioprio().0);
    let context = input
        .context
        .unwrap_or_else(|| hooks::context(name, args, &input.stdin.0));
    fire(env, name, &types, context, false)
        .inspect_err(|e| {
            let why = crate::error::render(e);
            engine::log_event(
                env,
                &format!("warning: {name} hook: tasks not queued: {why}"),
            );
        })
        .ok()
}

/// What a hook queued: one outcome per configured task type, in order.
pub struct Fired {
    pub handed: Vec<(String, Handed)>,
}

impl Fired {
    /// The ids of the tasks now in the queue (queued here or already there).
    pub fn ids(&self) -> Vec<String> {
        self.handed
            .iter()
            .filter_map(|(_, h)| h.queued_id().map(str::to_string))
            .collect()
    }
}

/// Hand the hook's task types to the engine (trigger `hook:NAME`, `context` for each); the
/// drainer is started without git's per-repository environment. A blocking hook gets a
/// drainer even when its tasks were already queued.
pub fn fire(
    env: &Env,
    name: &str,
    types: &[String],
    context: Value,
    blocking: bool,
) -> Result<Fired> {
    let trigger = format!("hook:{name}");
    let news: Vec<NewTask> = types
        .iter()
        .map(|t| {
            let mut n = NewTask::of_type(t, &trigger);
            n.context = context.clone();
            n
        })
        .collect();
    for k in GIT_LOCAL_ENV {
        // SAFETY: single-threaded here: no other thread reads the environment.
        unsafe { std::env::remove_var(k) };
    }
    let handed = engine::hand_over(env, &news)?;
    for (n, h) in news.iter().zip(&handed) {
        if let Handed::Submitted(engine::Submitted::Queued { id, .. }) = h {
            engine::log_event(
                env,
                &format!("{name} hook: queued {} (task {id})", n.task_type),
            );
        }
    }
    let fired = Fired {
        handed: types.iter().cloned().zip(handed).collect(),
    };
    let queued = fired
        .handed
        .iter()
        .any(|(_, h)| matches!(h, Handed::Submitted(engine::Submitted::Queued { .. })));
    if blocking && !queued && !fired.ids().is_empty() {
        engine::ensure_drainer(env)?;
    }
    Ok(fired)
}

/// A blocking hook: wait for every task (at most their timeouts plus a minute).
pub fn wait(env: &Env, types: &[String], ids: &[String]) -> Result<Vec<TaskResult>> {
    let total: u64 = types
        .iter()
        .filter_map(|t| env.config.task_types.get(t))
        .map(|t| env.config.timeout_for(t))
        .sum();
    engine::wait_for(env, ids, Duration::from_secs(total.saturating_add(60)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cheap_look_reads_blocking_and_nice_from_the_file_else_the_defaults() {
        let dir = tempfile::tempdir().expect("tmp");
        let repo = dir.path();
        // No config file: the embedded defaults (no hook blocks; priority low: nice 19).
        let l = look(None, repo, "post-commit");
        assert_eq!((l.blocking, l.nice), (Some(false), Some(19)));
        std::fs::create_dir(repo.join(".bgrun")).expect("mkdir");
        let cfg = repo.join(".bgrun/config.json");
        std::fs::write(
            &cfg,
            r#"{"resource_limits": {"priority": "high"},
                "triggers": {"git_hooks": {"blocking": ["pre_push"]}}}"#,
        )
        .expect("write");
        let l = look(None, repo, "pre-push");
        assert_eq!((l.blocking, l.nice), (Some(true), Some(0)));
        assert_eq!(look(None, repo, "post-commit").blocking, Some(false));
        // A file without the keys: not blocking, the default priority.
        std::fs::write(&cfg, r#"{"execution": {}}"#).expect("write");
        let l = look(None, repo, "post-commit");
        assert_eq!((l.blocking, l.nice), (Some(false), Some(19)));
        // A file that does not parse: nothing is told (the full load reports it).
        std::fs::write(&cfg, "{").expect("write");
        let l = look(None, repo, "post-commit");
        assert_eq!((l.blocking, l.nice), (None, None));
    }
}
