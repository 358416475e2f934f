//! `bgrun state reset`: move a broken state file aside (never deleting it); `bgrun state
//! adopt`: record a state dir as the user's own (see `state::owner`).

use anyhow::Result;

use crate::cli::{GlobalArgs, StateCommand};
use crate::{Exit, resolve_repo};

pub fn run(g: &GlobalArgs, cmd: &StateCommand) -> Result<Exit> {
    let repo = resolve_repo(g.repo.as_deref())?;
    let state_dir = crate::state_dir_for(g, &repo)?;
    match cmd {
        StateCommand::Adopt => {
            if let Some(t) = crate::state::owner::git_tracked(&state_dir, &repo) {
                return Err(crate::error::state(format!(
                    "the state dir {} is tracked by git ({t}); untrack it first",
                    state_dir.display()
                )));
            }
            let meta = std::fs::symlink_metadata(&state_dir).map_err(|e| {
                crate::error::state(format!("cannot read {}: {e}", state_dir.display()))
            })?;
            if !meta.is_dir() {
                return Err(crate::error::state(format!(
                    "{} is not a directory (a symlink is never adopted)",
                    state_dir.display()
                )));
            }
            crate::state::owner::record(&state_dir)?;
            crate::state::store::adopt(&state_dir, lock_timeout(g, &repo))?;
            println!("adopted {} as this user's state dir", state_dir.display());
        }
        StateCommand::Reset => {
            match crate::state::store::reset(&state_dir, lock_timeout(g, &repo))? {
                Some(p) => println!(
                    "moved the state file aside to {}; the queue starts empty",
                    p.display()
                ),
                None => println!("no state file in {}; nothing to reset", state_dir.display()),
            }
        }
    }
    Ok(Exit::Ok)
}

/// The lock bound comes from the config when it loads; a broken config must not stop a
/// reset or an adoption, so fall back to the default.
fn lock_timeout(g: &GlobalArgs, repo: &std::path::Path) -> std::time::Duration {
    let timeout = crate::config::load(g.config.as_deref(), repo)
        .map(|l| l.config.execution.lock_timeout_seconds)
        .unwrap_or(10.0);
    std::time::Duration::try_from_secs_f64(timeout.max(0.0))
        .unwrap_or(std::time::Duration::from_secs(3600))
}
