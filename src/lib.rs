//! bgrun: runs a repository's slow developer chores in the background.
//!
//! The table of contents, top down (each layer calls only the ones below it):
//! `cli` (clap structs) is parsed once into a [`Ctx`]; `commands` (one file per subcommand)
//! build an [`engine::Env`] from it and glue the layers; `engine` submits, drains, recovers
//! and stops tasks through the `store` seam (`store::Store`: the journal today) and starts
//! processes through `runner`; `queue` is the pure ordering policy; `analyzers`, `notify` and
//! `triggers` are adapters; `model` is the shared vocabulary (status, severity, counts,
//! results) and `fsutil` the small file helpers. Nothing reaches upward: below `commands`
//! nobody sees `Ctx`, `cli` or `output`.

/// `print!`/`println!` for bgrun: a closed stdout (`bgrun status | head -1`) ends the
/// process quietly with exit 0, as ripgrep does, instead of a "Broken pipe" panic (exit
/// 101); any other write error is reported and exits 1. These shadow std's macros in the
/// whole crate (they are defined before every module), so every command gets the behaviour.
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

macro_rules! println {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub mod analyzers;
pub mod cli;
pub mod commands;
pub mod config;
pub mod config_check;
pub mod engine;
pub mod error;
pub mod fsutil;
pub mod html;
pub mod inbox;
pub mod model;
pub mod notify;
pub mod output;
pub mod present;
pub mod queue;
pub mod report;
pub mod results;
pub mod runner;
pub mod state;
pub mod store;
pub mod tasklog;
pub mod timefmt;
pub mod tools;
pub mod triggers;
pub mod trust;

use std::path::{Path, PathBuf};

use anyhow::Result;

pub use error::Exit;

/// Everything a command needs, resolved once from the global options: the engine's
/// [`engine::Env`] (reached through `Deref`, so `ctx.repo`, `ctx.config`... read it) plus
/// what only the command layer uses (warnings to show, the output style).
#[derive(Debug, Clone)]
pub struct Ctx {
    pub env: engine::Env,
    pub config_warnings: Vec<String>,
    pub out: output::Output,
    /// The shared store's URL (`--store`, `$BGRUN_STORE`, `store.url`); `None`: the local journal.
    pub store_url: Option<String>,
}

impl std::ops::Deref for Ctx {
    type Target = engine::Env;
    fn deref(&self) -> &engine::Env {
        &self.env
    }
}

impl Ctx {
    /// Resolve the global options: repo root, config (discovery of CLI.md), state dir.
    pub fn new(g: &cli::GlobalArgs) -> Result<Ctx> {
        let repo = resolve_repo(g.repo.as_deref())?;
        // Before the personal config in it is read: is the state dir bgrun's own?
        state::owner::check(&state_dir_for(g, &repo)?, &repo)?;
        let loaded = config::load(g.config.as_deref(), &repo)?;
        Self::with_config(g, repo, loaded)
    }

    pub fn with_config(g: &cli::GlobalArgs, repo: PathBuf, loaded: config::Loaded) -> Result<Ctx> {
        let state_dir = state_dir_for(g, &repo)?;
        let config_arg = g.config.as_ref().map(|p| absolute(p)).transpose()?;
        let store_url = store::url_of(g.store.as_deref(), loaded.config.store.url.as_deref());
        Ok(Ctx {
            env: engine::Env::new(repo, state_dir, loaded.config, loaded.source, config_arg)
                .with_store(store_url.clone()),
            store_url,
            config_warnings: loaded.warnings,
            out: output::Output::new(g.json, g.quiet, g.verbose),
        })
    }
}

/// `--state-dir` (or `$BGRUN_STATE_DIR`) made absolute, else `<repo>/.bgrun`.
pub fn state_dir_for(g: &cli::GlobalArgs, repo: &Path) -> Result<PathBuf> {
    match &g.state_dir {
        Some(d) => absolute(d),
        None => Ok(repo.join(".bgrun")),
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// `-C DIR` as given, else the git top-level of the current dir, else the current dir.
pub fn resolve_repo(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(d) = explicit {
        let abs = absolute(d)?;
        if !abs.is_dir() {
            return Err(error::usage(format!(
                "-C/--repo {}: not a directory (give the project root)",
                d.display()
            )));
        }
        return Ok(abs.canonicalize().unwrap_or(abs));
    }
    let cwd = std::env::current_dir().map_err(|e| {
        error::usage(format!(
            "cannot read the current directory: {e} (use -C DIR)"
        ))
    })?;
    let mut dir: &Path = &cwd;
    loop {
        if dir.join(".git").exists() {
            return Ok(dir.to_path_buf());
        }
        match dir.parent() {
            Some(p) => dir = p,
            None => return Ok(cwd),
        }
    }
}

/// Run a parsed command line; the returned code is the process exit code.
pub fn run(cli: cli::Cli) -> Result<Exit> {
    commands::dispatch(cli)
}
