//! `bgrun init`: write the default config as the team's `<repo>/bgrun.json` (committed,
//! shared; personal overrides go in `.bgrun/config.json`) and keep `.bgrun/` out of git.

use anyhow::{Context, Result};

use crate::cli::GlobalArgs;
use crate::config::DEFAULT_CONFIG;
use crate::state::store::{ensure_private_dir, write_atomic};
use crate::{Exit, error, resolve_repo};

pub fn run(g: &GlobalArgs, force: bool) -> Result<Exit> {
    let repo = resolve_repo(g.repo.as_deref())?;
    let dir = repo.join(".bgrun");
    let path = repo.join(crate::config::TEAM_CONFIG);
    if path.exists() && !force {
        return Err(error::usage(format!(
            "{} already exists; use `bgrun init --force` to replace it (the old one is kept as bgrun.json.bak)",
            path.display()
        )));
    }
    ensure_private_dir(&dir)?;
    if path.exists() {
        std::fs::copy(&path, repo.join("bgrun.json.bak"))
            .context("cannot back up the old config")?;
    }
    write_atomic(&path, DEFAULT_CONFIG.as_bytes(), true)?;
    // A file for the repository: readable like any other committed file.
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644));
    }
    println!(
        "wrote {} (the team's config: commit it; personal overrides go in .bgrun/config.json)",
        path.display()
    );
    // What the user wrote here with `bgrun init` is trusted from the start (issue 14):
    // later edits, yours or a pull's, are reviewed with `bgrun config diff` + `bgrun trust`.
    if let Err(e) = crate::trust::trust(&path) {
        eprintln!(
            "bgrun: warning: could not record {} as trusted: {e:#}",
            path.display()
        );
    }
    if let Some(exclude) = git_exclude(&repo) {
        let text = std::fs::read_to_string(&exclude).unwrap_or_default();
        if !text
            .lines()
            .any(|l| l.trim() == "/.bgrun/" || l.trim() == ".bgrun/")
        {
            let mut new = text.clone();
            if !new.is_empty() && !new.ends_with('\n') {
                new.push('\n');
            }
            new.push_str("# bgrun state, results and logs\n/.bgrun/\n");
            if let Some(d) = exclude.parent() {
                std::fs::create_dir_all(d)?;
            }
            write_atomic(&exclude, new.as_bytes(), true)?;
            println!("added /.bgrun/ to {}", exclude.display());
        }
    }
    Ok(Exit::Ok)
}

/// `<git dir>/info/exclude`, following a `.git` file (worktrees) to the common dir.
fn git_exclude(repo: &std::path::Path) -> Option<std::path::PathBuf> {
    let dotgit = repo.join(".git");
    if dotgit.is_dir() {
        return Some(dotgit.join("info").join("exclude"));
    }
    let text = std::fs::read_to_string(&dotgit).ok()?;
    let gitdir = text.strip_prefix("gitdir:")?.trim();
    let gitdir = repo.join(gitdir);
    let common = std::fs::read_to_string(gitdir.join("commondir"))
        .ok()
        .map(|c| gitdir.join(c.trim()))
        .unwrap_or(gitdir);
    Some(common.join("info").join("exclude"))
}
