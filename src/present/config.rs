//! What `bgrun config check` says of a config that passed: the resolved config with its
//! files, provenance and warnings as JSON, or its warnings on stderr and one line.

use anyhow::Result;
use serde_json::json;

use super::print_json;
use crate::config::Loaded;

/// A valid config (`quiet`: no `config OK` line; the warnings are still shown).
pub fn checked(json: bool, quiet: bool, loaded: &Loaded) -> Result<()> {
    if json {
        return print_json(&json!({
            "ok": true,
            "source": loaded.source.to_string(),
            "files": loaded.files,
            "provenance": loaded.provenance,
            "warnings": loaded.warnings,
            "config": loaded.config,
        }));
    }
    for w in &loaded.warnings {
        eprintln!("bgrun: warning: {w}");
    }
    if !quiet {
        let files = if loaded.files.len() > 1 {
            loaded
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(" + ")
        } else {
            loaded.source.to_string()
        };
        println!(
            "config OK: {} ({} task types, {} warnings)",
            files,
            loaded.config.task_types.len(),
            loaded.warnings.len()
        );
    }
    Ok(())
}
