//! bgrun: runs a repository's slow developer chores in the background.
//!
//! The table of contents: `cli` (clap structs) is parsed once into a [`Ctx`]; `commands`
//! glue the layers; `state`, `queue` and `runner` are the engine (the persisted queue, pure
//! ordering, the process pool); `analyzers`, `notify` and `triggers` are adapters that the
//! engine and commands call downward. Nothing reaches upward.

pub mod analyzers;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub mod notify;
pub mod output;
pub mod pgstore;
pub mod queue;
pub mod results;
pub mod runner;
pub mod state;
pub mod timefmt;
pub mod triggers;

use std::path::{Path, PathBuf};

use anyhow::Result;

pub use error::Exit;

/// Everything a command needs, resolved once from the global options.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The project root (absolute).
    pub repo: PathBuf,
    /// Where state, results and logs live (absolute).
    pub state_dir: PathBuf,
    pub config: config::Config,
    pub config_source: config::Source,
    pub config_warnings: Vec<String>,
    /// The `--config` given, passed on to the processes bgrun starts.
    pub config_arg: Option<PathBuf>,
    pub out: output::Output,
    /// The shared store's URL (`--store`, `$BGRUN_STORE`, `store.url`); `None`: the local journal.
    pub store_url: Option<String>,
}

impl Ctx {
    /// Resolve the global options: repo root, config (discovery of CLI.md), state dir.
    pub fn new(g: &cli::GlobalArgs) -> Result<Ctx> {
        let repo = resolve_repo(g.repo.as_deref())?;
        let loaded = config::load(g.config.as_deref(), &repo)?;
        Self::with_config(g, repo, loaded)
    }

    pub fn with_config(g: &cli::GlobalArgs, repo: PathBuf, loaded: config::Loaded) -> Result<Ctx> {
        let state_dir = state_dir_for(g, &repo)?;
        let config_arg = g.config.as_ref().map(|p| absolute(p)).transpose()?;
        let store_url = pgstore::url_of(g.store.as_deref(), loaded.config.store.url.as_deref());
        Ok(Ctx {
            store_url,
            repo,
            state_dir,
            config: loaded.config,
            config_source: loaded.source,
            config_warnings: loaded.warnings,
            config_arg,
            out: output::Output::new(g.json, g.quiet, g.verbose),
        })
    }

    /// The global options to pass to a bgrun child process so it sees the same project.
    pub fn child_args(&self) -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = vec![
            "-C".into(),
            self.repo.clone().into(),
            "--state-dir".into(),
            self.state_dir.clone().into(),
        ];
        if let Some(c) = &self.config_arg {
            v.push("--config".into());
            v.push(c.clone().into());
        }
        if let Some(u) = &self.store_url {
            v.push("--store".into());
            v.push(u.into());
        }
        v
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
