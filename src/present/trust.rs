//! What `bgrun trust [--show]`, `bgrun untrust` and `bgrun config diff` say: the
//! config's kind, standing or review in (see `crate::trust`), text (or `trust --show --json`) out.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::print_json;
use crate::trust::{Review, Standing};

/// `trust --show`, first line (text only): whether the repository's own tools may run.
pub fn repo_tools(json: bool, repo: &Path, trusted: bool) {
    if !json {
        println!(
            "{}: its own tools (.venv/bin, node_modules/.bin) are {}",
            repo.display(),
            if trusted {
                "trusted"
            } else {
                "not trusted (managed tools and $PATH are used)"
            }
        );
    }
}

/// `trust --show`: the user's own config at `own`, or (`None`) no config file.
pub fn shown_needing_none(json: bool, own: Option<&Path>, tools_trusted: bool) -> Result<()> {
    if !json {
        needs_no_trust(own);
        return Ok(());
    }
    let (path, state) = match own {
        Some(path) => (json!(path), "your own config"),
        None => (serde_json::Value::Null, "no config file"),
    };
    print_json(&json!({"path": path, "state": state, "repo_tools_trusted": tools_trusted}))
}

/// `trust --show`: the committed config at `path`, its sha256 now and its standing.
pub fn shown_committed(
    json: bool,
    path: &Path,
    (now, standing): &(String, Standing),
    tools_trusted: bool,
) -> Result<()> {
    let state = match standing {
        Standing::Trusted => "trusted",
        Standing::Changed => "changed since trusted (see `bgrun config diff`)",
        Standing::Never => "not trusted",
    };
    if json {
        return print_json(&json!({
            "path": path, "sha256": now, "state": state, "repo_tools_trusted": tools_trusted,
        }));
    }
    println!("{}: {state} (sha256 {now})", path.display());
    Ok(())
}

/// `trust`: the repository itself is trusted now.
pub fn repo_trusted(repo: &Path) {
    println!("trusted {} (its own tools may run)", repo.display());
}

/// `trust`: the committed config at `path` is approved with this sha256.
pub fn config_trusted(path: &Path, hash: &str) {
    println!("trusted {} (sha256 {hash})", path.display());
}

/// `trust` and `trust --show` in text: the user's own config at `own`, or (`None`) no
/// config file, needs no trust.
pub fn needs_no_trust(own: Option<&Path>) {
    match own {
        Some(path) => println!(
            "{} is your own config (--config, $BGRUN_CONFIG or .bgrun/config.json): it needs no trust",
            path.display()
        ),
        None => println!("no config file: the embedded defaults need no trust"),
    }
}

/// `untrust`: the repository's own trust was withdrawn.
pub fn repo_untrusted(repo: &Path) {
    println!("no longer trusted: {} (its own tools)", repo.display());
}

/// `untrust`: the config file and whether it had an approval (`None`: no config file).
pub fn untrusted(config: Option<(&Path, bool)>) {
    match config {
        None => println!("no config file: nothing to untrust"),
        Some((path, true)) => println!("no longer trusted: {}", path.display()),
        Some((path, false)) => println!("{} was not trusted", path.display()),
    }
}

/// `config diff` (`None`: no config file).
pub fn review(config: Option<(&Path, &Review)>) {
    match config {
        None => println!("no config file: the embedded defaults"),
        Some((path, Review::Unchanged)) => {
            println!("{}: unchanged since trusted", path.display())
        }
        Some((_, Review::Changed(diff))) => print!("{diff}"),
        Some((path, Review::New(diff))) => {
            println!("{}: never trusted; all of it is new:", path.display());
            print!("{diff}");
        }
    }
}
