//! A git hook's run from start to end (`bgrun hook NAME [ARGS...]`), over the steps of
//! [`super`]. In the detached worker (git has moved on): read what the hook handed over,
//! load the config, ask for trust, queue; problems go to `<state>/bgrun.log`. In the hook:
//! the skip, the terminal inbox, the cheap look and the hand-off to the worker (when it
//! cannot start: queue here), else the full load, trust, queueing and a blocking hook's
//! wait. What it needs of the command (the config load, the trust gate, the state dir, the
//! terminal) is a [`Host`]; the words the terminal is told are `present::hook`'s.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{Fired, WorkerInput};
use crate::engine::Env;
use crate::results::TaskResult;

/// The hook as git called it, and the global options the session reads before any config.
pub struct Call<'a> {
    /// The hook's name and arguments as given (the worker is called with them again).
    pub raw: (&'a str, &'a [OsString]),
    /// `--config` as given.
    pub config_arg: Option<&'a Path>,
    /// `-C/--repo` as given.
    pub repo_arg: Option<&'a Path>,
}

/// What the session asks of the command that runs it.
pub trait Host {
    /// What loading the config gives: the command's context, an [`Env`] to the session
    /// (which never sees the command line or the terminal).
    type Loaded: std::ops::Deref<Target = Env>;
    /// The state directory of `repo`, told without the config (the inbox, the worker's log).
    fn state_dir(&self, repo: &Path) -> Result<PathBuf>;
    /// Load the config.
    fn load(&self) -> Result<Self::Loaded>;
    /// Whether the config's commands may run for `trigger` (`NAME hook`): trust.
    fn trusted(&self, ctx: &Self::Loaded, trigger: &str) -> Result<bool>;
    /// Tell the terminal.
    fn show(&self, e: Event<'_, Self::Loaded>);
}

/// What the session tells the terminal, in order.
pub enum Event<'a, C> {
    /// The worker could not start: the tasks are queued in the hook's own process.
    NotHanded {
        name: &'a str,
        error: &'a std::io::Error,
    },
    /// The config could not be loaded: nothing is done.
    NotLoaded {
        name: &'a str,
        error: &'a anyhow::Error,
    },
    /// The config was loaded in the hook (its warnings).
    Loaded(&'a C),
    /// What became of each task type.
    Fired {
        ctx: &'a C,
        name: &'a str,
        fired: &'a Fired,
    },
    /// A non-blocking hook could not queue its tasks (the git command goes on).
    NotQueued {
        ctx: &'a C,
        name: &'a str,
        error: &'a anyhow::Error,
    },
    /// A blocking hook waits for tasks `ids`.
    Waiting {
        ctx: &'a C,
        name: &'a str,
        ids: &'a [String],
    },
    /// What became of the tasks a blocking hook waited for.
    Waited {
        ctx: &'a C,
        name: &'a str,
        results: &'a [TaskResult],
    },
}

/// How the hook ends for git.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Git goes on (whatever went wrong was told, or logged).
    Done,
    /// A blocking hook's task did not succeed: git stops.
    Failed,
}

/// Run hook `call`. An error only comes from a blocking hook (or a trust refusal).
pub fn run<H: Host>(call: &Call, host: &H) -> Result<Outcome> {
    let name = call.raw.0.replace('_', "-");
    let args: Vec<String> = call
        .raw
        .1
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    if super::is_worker() {
        let repo = crate::resolve_repo(call.repo_arg).ok();
        match super::worker_input(call.config_arg, repo.as_deref(), &name) {
            Ok(input) => queue_detached(call, host, &name, &args, input),
            Err(e) => log(call, host, &format!("warning: {name} hook: {e}")),
        }
        return Ok(Outcome::Done);
    }
    let stdin = super::read_stdin(&name);
    if super::skipped(&name) {
        return Ok(Outcome::Done);
    }
    let sync = super::sync();
    let repo = crate::resolve_repo(call.repo_arg);
    // The terminal inbox: what background tasks concluded since the last git command.
    if let Ok(repo) = &repo
        && let Ok(dir) = host.state_dir(repo)
    {
        crate::inbox::show_unread(&dir);
    }
    let look = repo.ok().map(|r| super::look(call.config_arg, &r, &name));
    let hand_off = |nice, stdin| {
        if let Err(not) = super::hand_off(call.raw, nice, &name, &args, stdin) {
            if let Some(error) = &not.error {
                host.show(Event::NotHanded { name: &name, error });
            }
            queue_detached(call, host, &name, &args, not.input);
        }
        Ok(Outcome::Done)
    };
    if !sync && look.as_ref().is_some_and(|l| l.blocking == Some(false)) {
        return hand_off(look.and_then(|l| l.nice), stdin);
    }
    let ctx = match host.load() {
        Ok(c) => c,
        Err(error) => {
            host.show(Event::NotLoaded {
                name: &name,
                error: &error,
            });
            return Ok(Outcome::Done);
        }
    };
    host.show(Event::Loaded(&ctx));
    let Some(types) = super::tasks(&ctx, &name) else {
        return Ok(Outcome::Done);
    };
    if !host.trusted(&ctx, &format!("{name} hook"))? {
        return Ok(Outcome::Done);
    }
    let blocking = ctx.config.hook_is_blocking(&name);
    if !blocking && !sync {
        return hand_off(Some(ctx.config.resource_limits.nice_and_ioprio().0), stdin);
    }
    let context = super::hooks::context(&name, &args, &stdin);
    let (ctx, name) = (&ctx, name.as_str());
    let fired = super::fire(ctx, name, &types, context, blocking).and_then(|fired| {
        host.show(Event::Fired {
            ctx,
            name,
            fired: &fired,
        });
        let ids = fired.ids();
        if !blocking || ids.is_empty() {
            return Ok(Outcome::Done);
        }
        host.show(Event::Waiting {
            ctx,
            name,
            ids: &ids,
        });
        let results = super::wait(ctx, &types, &ids)?;
        host.show(Event::Waited {
            ctx,
            name,
            results: &results,
        });
        Ok(if results.iter().all(|r| r.status == "succeeded") {
            Outcome::Done
        } else {
            Outcome::Failed
        })
    });
    match fired {
        Err(error) if !blocking => {
            host.show(Event::NotQueued {
                ctx,
                name,
                error: &error,
            });
            Ok(Outcome::Done)
        }
        r => r,
    }
}

/// The detached worker's part (or the hook's, when the worker could not start): load the
/// config, ask for trust, queue. Problems go to `<state>/bgrun.log` (git has moved on).
fn queue_detached<H: Host>(call: &Call, host: &H, name: &str, args: &[String], input: WorkerInput) {
    let ctx = match host.load() {
        Ok(c) => c,
        Err(e) => {
            let why = crate::error::render(&e);
            return log(call, host, &format!("warning: {name} hook skipped: {why}"));
        }
    };
    if !host.trusted(&ctx, &format!("{name} hook")).unwrap_or(false) {
        return;
    }
    if let Some(fired) = super::queue_in_worker(&ctx, name, args, input) {
        host.show(Event::Fired {
            ctx: &ctx,
            name,
            fired: &fired,
        });
    }
}

/// A line in `<state>/bgrun.log` for a detached hook (git has moved on), without a config.
fn log(call: &Call, host: &impl Host, msg: &str) {
    let repo = crate::resolve_repo(call.repo_arg).unwrap_or_default();
    if let Ok(dir) = host.state_dir(&repo) {
        crate::engine::log_to(&dir, msg);
    }
}
