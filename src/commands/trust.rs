//! `bgrun trust [--show]`, `bgrun untrust`, `bgrun config diff`, and the gate every command
//! that would run a configured command goes through (see `crate::trust`).

use anyhow::Result;

use crate::cli::GlobalArgs;
use crate::config::{self, Source};
use crate::notify::{self, Notification, Selection, Severity};
use crate::trust::{self, Standing, Verdict};
use crate::{Ctx, Exit, engine, error, resolve_repo};

/// The committed config that trust is about: the discovered one, when it is committed.
fn committed(g: &GlobalArgs) -> Result<(std::path::PathBuf, Source)> {
    let repo = resolve_repo(g.repo.as_deref())?;
    let source = config::discover(g.config.as_deref(), &repo);
    Ok((repo, source))
}

pub fn run_trust(g: &GlobalArgs, show: bool) -> Result<Exit> {
    let (repo, source) = committed(g)?;
    let tools_trusted = trust::repo_trusted(&repo);
    if show {
        if !g.json {
            println!(
                "{}: its own tools (.venv/bin, node_modules/.bin) are {}",
                repo.display(),
                if tools_trusted {
                    "trusted"
                } else {
                    "not trusted (managed tools and $PATH are used)"
                }
            );
        }
    } else {
        trust::trust_repo(&repo)?;
        println!("trusted {} (its own tools may run)", repo.display());
    }
    let Source::File(path) = &source else {
        if show && g.json {
            super::print_json(&serde_json::json!({
                "path": null, "state": "no config file", "repo_tools_trusted": tools_trusted,
            }))?;
        } else {
            println!("no config file: the embedded defaults need no trust");
        }
        return Ok(Exit::Ok);
    };
    if !trust::is_committed(&repo, path) {
        if show && g.json {
            super::print_json(&serde_json::json!({
                "path": path, "state": "your own config", "repo_tools_trusted": tools_trusted,
            }))?;
            return Ok(Exit::Ok);
        }
        println!(
            "{} is your own config (--config, $BGRUN_CONFIG or .bgrun/config.json): it needs no trust",
            path.display()
        );
        return Ok(Exit::Ok);
    }
    if show {
        let (now, standing) = trust::standing(path)?;
        let state = match standing {
            Standing::Trusted => "trusted",
            Standing::Changed => "changed since trusted (see `bgrun config diff`)",
            Standing::Never => "not trusted",
        };
        if g.json {
            super::print_json(&serde_json::json!({
                "path": path, "sha256": now, "state": state, "repo_tools_trusted": tools_trusted,
            }))?;
        } else {
            println!("{}: {state} (sha256 {now})", path.display());
        }
        return Ok(Exit::Ok);
    }
    let hash = trust::trust(path)?;
    println!("trusted {} (sha256 {hash})", path.display());
    Ok(Exit::Ok)
}

pub fn run_untrust(g: &GlobalArgs) -> Result<Exit> {
    let (repo, source) = committed(g)?;
    if trust::untrust_repo(&repo) {
        println!("no longer trusted: {} (its own tools)", repo.display());
    }
    let Source::File(path) = &source else {
        println!("no config file: nothing to untrust");
        return Ok(Exit::Ok);
    };
    if trust::untrust(path)? {
        println!("no longer trusted: {}", path.display());
    } else {
        println!("{} was not trusted", path.display());
    }
    Ok(Exit::Ok)
}

pub fn run_diff(g: &GlobalArgs) -> Result<Exit> {
    let (_, source) = committed(g)?;
    let Source::File(path) = &source else {
        println!("no config file: the embedded defaults");
        return Ok(Exit::Ok);
    };
    let now = std::fs::read_to_string(path)
        .map_err(|e| error::usage(format!("cannot read {}: {e}", path.display())))?;
    match trust::approved(path) {
        Some((_, old)) if old == now => println!("{}: unchanged since trusted", path.display()),
        Some((_, old)) => print!("{}", trust::diff(&old, &now)),
        None => {
            println!("{}: never trusted; all of it is new:", path.display());
            print!("{}", trust::diff("", &now));
        }
    }
    Ok(Exit::Ok)
}

/// May this command run the config's commands? Manual commands (`trigger` None) get an
/// error (exit 2) unless `--trust-once`; triggers record and notify, and get `false`.
pub fn gate(ctx: &Ctx, g: &GlobalArgs, trigger: Option<&str>) -> Result<bool> {
    let Verdict::Untrusted { path, known } =
        trust::verdict(&ctx.repo, &ctx.config_source, &ctx.config)
    else {
        return Ok(true);
    };
    if g.trust_once && trigger.is_none() {
        return Ok(true);
    }
    let Some(trigger) = trigger else {
        return Err(trust::refusal(&path, known));
    };
    let msg = format!(
        "{trigger}: nothing run: {} defines commands and is {}: {}",
        path.display(),
        if known {
            "changed since trusted"
        } else {
            "not trusted"
        },
        trust::CHANGED
    );
    engine::log_to(&ctx.state_dir, &msg);
    let n = Notification::custom(Severity::Warning, "bgrun: config changed", &msg);
    notify::dispatch(
        &ctx.config,
        &ctx.repo,
        &ctx.state_dir,
        &n,
        Selection::Configured,
    );
    eprintln!("bgrun: {msg}");
    Ok(false)
}
