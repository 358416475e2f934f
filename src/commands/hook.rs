//! `bgrun hook NAME [ARGS...]`: what an installed git hook calls. Enqueues the task types
//! configured for the hook (trigger `hook:NAME`, context: commit, refs, changed files),
//! starts a detached drainer and returns 0, whatever goes wrong (a warning is printed),
//! unless the hook is listed in `triggers.git_hooks.blocking`: then it waits for its tasks
//! and exits 1 when one did not succeed. `BGRUN_SKIP=1` / `BGRUN_SKIP=NAME[,NAME]` skips.
//! The session (skip, hand-off to a detached worker, queueing, waiting) is
//! `triggers::hook::session`'s, what the terminal is told `present::hook`'s; this gives the
//! session the config load, the trust gate and the terminal, and maps its outcome to the
//! exit code. `BGRUN_HOOK_SYNC=1` does it all in the foreground.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::{GlobalArgs, HookArgs};
use crate::triggers::hook::session::{self, Call, Event, Outcome};
use crate::{Ctx, Exit};

/// Entry point, called before the config is loaded so that a broken config cannot fail
/// a non-blocking git command.
pub fn run(g: &GlobalArgs, a: HookArgs) -> Result<Exit> {
    let call = Call {
        raw: (&a.name, &a.args),
        config_arg: g.config.as_deref(),
        repo_arg: g.repo.as_deref(),
    };
    Ok(match session::run(&call, &Host(g))? {
        Outcome::Done => Exit::Ok,
        Outcome::Failed => Exit::WorkFailed,
    })
}

/// What the hook's session asks of the command layer.
struct Host<'a>(&'a GlobalArgs);

impl session::Host for Host<'_> {
    type Loaded = Ctx;

    fn state_dir(&self, repo: &Path) -> Result<PathBuf> {
        crate::state_dir_for(self.0, repo)
    }

    fn load(&self) -> Result<Ctx> {
        Ctx::new(self.0)
    }

    fn trusted(&self, ctx: &Ctx, trigger: &str) -> Result<bool> {
        super::gate::gate(ctx, self.0, Some(trigger))
    }

    fn show(&self, e: Event<'_, Ctx>) {
        crate::present::hook::show(e);
    }
}
