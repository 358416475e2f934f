//! What the engine works in: the project, its state dir, its config, and the [`Launcher`]
//! that starts bgrun's own child processes. Commands build an [`Env`] from their arguments;
//! nothing in the engine knows about the command line, `Ctx` or `Output`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::{Config, Source};
use crate::runner::spawner::{OsSpawner, Spawner};

/// The project the engine works on.
#[derive(Debug, Clone)]
pub struct Env {
    /// The project root (absolute).
    pub repo: PathBuf,
    /// Where state, results and logs live (absolute).
    pub state_dir: PathBuf,
    pub config: Config,
    /// Where the config came from (named in error messages).
    pub config_source: Source,
    /// Starts `bgrun` children that see this same project.
    pub launcher: Launcher,
    /// Starts task processes (real ones; the engine's tests give a fake).
    pub spawner: Arc<dyn Spawner>,
}

impl Env {
    /// An environment whose children get `-C repo --state-dir state_dir [--config config_arg]`.
    pub fn new(
        repo: PathBuf,
        state_dir: PathBuf,
        config: Config,
        config_source: Source,
        config_arg: Option<PathBuf>,
    ) -> Env {
        let launcher = Launcher {
            exe: None,
            repo: repo.clone(),
            state_dir: state_dir.clone(),
            config_arg,
            store_url: None,
        };
        Env {
            repo,
            state_dir,
            config,
            config_source,
            launcher,
            spawner: Arc::new(OsSpawner),
        }
    }

    /// Children use the shared store at `url` too (`--store URL`), when given.
    pub fn with_store(mut self, url: Option<String>) -> Env {
        self.launcher.store_url = url;
        self
    }

    /// The shared store's URL, when one is configured (issue 16).
    pub fn store_url(&self) -> Option<&str> {
        self.launcher.store_url.as_deref()
    }

    /// The global options a bgrun child needs to see the same project.
    pub fn child_args(&self) -> Vec<OsString> {
        self.launcher.global_args()
    }
}

/// The one place that knows bgrun's own command line: which executable, which global
/// options, and the argv of the children bgrun starts (a background drainer, an analyzer).
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The bgrun executable; the running one when None.
    pub exe: Option<PathBuf>,
    repo: PathBuf,
    state_dir: PathBuf,
    config_arg: Option<PathBuf>,
    /// The shared store's URL (issue 16), passed on as `--store`.
    store_url: Option<String>,
}

impl Launcher {
    /// The bgrun executable to start.
    pub fn exe(&self) -> Result<PathBuf> {
        match &self.exe {
            Some(e) => Ok(e.clone()),
            None => std::env::current_exe().context("cannot find the bgrun executable"),
        }
    }

    /// `-C REPO --state-dir DIR [--config FILE]`.
    pub fn global_args(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![
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

    /// The full argv of `bgrun <global options> <args>`.
    pub fn argv<I, S>(&self, args: I) -> Result<Vec<OsString>>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut v = vec![self.exe()?.into_os_string()];
        v.extend(self.global_args());
        v.extend(args.into_iter().map(Into::into));
        Ok(v)
    }

    /// `bgrun analyze KIND --format json --output OUT`: a built-in analyzer task.
    pub fn analyze_argv(&self, kind: &str, out: &Path) -> Result<Vec<OsString>> {
        let args: Vec<OsString> = vec![
            "analyze".into(),
            kind.into(),
            "--format".into(),
            "json".into(),
            "--output".into(),
            out.as_os_str().to_owned(),
        ];
        self.argv(args)
    }

    /// Start a detached `bgrun drain --background` (see [`Launcher::spawn_detached`]).
    pub fn spawn_drainer(&self) -> Result<u32> {
        self.spawn_detached(["drain", "--background"])
    }

    /// Start `bgrun <args>` detached (see `runner::detach`): its own process group (it
    /// starts its own session), stdin from /dev/null, output appended to
    /// `<state>/drainer.log`; reaped by a thread here, or by init once this process exits.
    pub fn spawn_detached<I, S>(&self, args: I) -> Result<u32>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let argv = self.argv(args)?;
        crate::fsutil::ensure_private_dir(&self.state_dir)?;
        let log = self.state_dir.join("drainer.log");
        crate::runner::detach::spawn(&crate::runner::detach::Detached {
            argv,
            cwd: Some(self.repo.clone()),
            log: Some(log.clone()),
            reap: true,
            ..Default::default()
        })
        .with_context(|| {
            format!(
                "cannot start a background bgrun (output to {})",
                log.display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launcher_argv_carries_the_project() {
        let l = Launcher {
            exe: Some("/bin/bgrun".into()),
            repo: "/r".into(),
            state_dir: "/s".into(),
            config_arg: Some("/c.json".into()),
            store_url: None,
        };
        let argv = l.analyze_argv("code", Path::new("/s/out.json")).unwrap();
        let want: Vec<OsString> = [
            "/bin/bgrun",
            "-C",
            "/r",
            "--state-dir",
            "/s",
            "--config",
            "/c.json",
            "analyze",
            "code",
            "--format",
            "json",
            "--output",
            "/s/out.json",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert_eq!(argv, want);
    }
}
