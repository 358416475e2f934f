//! `bgrun state reset`: move a broken state file aside (never deleting it).

use anyhow::Result;

use crate::cli::{GlobalArgs, StateCommand};
use crate::{Exit, resolve_repo};

pub fn run(g: &GlobalArgs, cmd: &StateCommand) -> Result<Exit> {
    let repo = resolve_repo(g.repo.as_deref())?;
    let state_dir = crate::state_dir_for(g, &repo)?;
    match cmd {
        StateCommand::Reset => {
            // The lock bound comes from the config when it loads; a broken config must not
            // stop a reset, so fall back to the default.
            let timeout = crate::config::load(g.config.as_deref(), &repo)
                .map(|l| l.config.execution.lock_timeout_seconds)
                .unwrap_or(10.0);
            match crate::state::store::reset(
                &state_dir,
                std::time::Duration::from_secs_f64(timeout),
            )? {
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
