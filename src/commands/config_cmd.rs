//! `bgrun config check`: validate, report every error, print the resolved config. Beyond
//! the schema it checks what the adapters parse themselves: cron expressions. What it says
//! of a valid config is `present::config`'s.

use anyhow::Result;

use crate::cli::GlobalArgs;
use crate::{Exit, config, error, resolve_repo};

pub fn run(g: &GlobalArgs, strict: bool) -> Result<Exit> {
    let repo = resolve_repo(g.repo.as_deref())?;
    let mut loaded = config::load(g.config.as_deref(), &repo)?;
    match crate::triggers::cron::schedules(&loaded.config) {
        Err(errs) => {
            return Err(error::usage(format!(
                "invalid config {}:\n  {}",
                loaded.source,
                errs.iter()
                    .map(|e| format!("{}: {e}", loaded.source))
                    .collect::<Vec<_>>()
                    .join("\n  ")
            )));
        }
        Ok(scheds) => {
            let now = crate::timefmt::now() as i64;
            for s in scheds {
                if matches!(s.when, crate::triggers::cron::When::Cron { .. })
                    && s.next_after(now).is_none()
                {
                    loaded.warnings.push(format!(
                        "{}: {} ({:?}): the schedule {:?} never fires",
                        loaded.source,
                        s.key,
                        s.task_type,
                        s.describe()
                    ));
                }
            }
        }
    }
    if strict && !loaded.warnings.is_empty() {
        return Err(error::usage(format!(
            "config {} has warnings (--strict):\n  {}",
            loaded.source,
            loaded.warnings.join("\n  ")
        )));
    }
    crate::present::config::checked(g.json, g.quiet > 0, &loaded)?;
    Ok(Exit::Ok)
}
