//! `bgrun config check`: validate, report every error, print the resolved config.

use anyhow::Result;

use crate::cli::GlobalArgs;
use crate::{Exit, config, error, resolve_repo};

pub fn run(g: &GlobalArgs) -> Result<Exit> {
    let repo = resolve_repo(g.repo.as_deref())?;
    let loaded = config::load(g.config.as_deref(), &repo)?;
    if g.json {
        let v = serde_json::json!({
            "ok": true,
            "source": loaded.source.to_string(),
            "warnings": loaded.warnings,
            "config": loaded.config,
        });
        super::print_json(&v)?;
    } else {
        for w in &loaded.warnings {
            eprintln!("bgrun: warning: {w}");
        }
        if g.quiet == 0 {
            println!(
                "config OK: {} ({} task types, {} warnings)",
                loaded.source,
                loaded.config.task_types.len(),
                loaded.warnings.len()
            );
        }
    }
    let _ = error::Exit::Ok;
    Ok(Exit::Ok)
}
