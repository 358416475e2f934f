//! Git through the `git` command (argv, no shell): bgrun asks git what git would do, so
//! every repository git can read works (reftable refs, sha256 objects, new extensions),
//! with no C library linked in. Output is read with `-z` where it holds file names.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What went wrong running git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git: {0} (is git installed and on PATH?)")]
    Spawn(#[source] std::io::Error),
    #[error("{}", .0.trim())]
    Failed(String),
}

/// Run `git ARGS` in `dir` (the caller's directory when None); its stdout on success.
pub fn run<I, S>(dir: Option<&Path>, args: I) -> Result<Vec<u8>, GitError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(GitError::Spawn)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(GitError::Failed(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

/// `git ARGS` whose output is one line (a trailing newline dropped); None on failure or
/// empty output.
pub fn line<I, S>(dir: Option<&Path>, args: I) -> Option<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = run(dir, args).ok()?;
    let s = String::from_utf8_lossy(&out)
        .trim_end_matches('\n')
        .to_string();
    (!s.is_empty()).then_some(s)
}

/// NUL-separated names (from `-z`), lossy, at most `max`.
pub fn names(out: &[u8], max: usize) -> Vec<String> {
    out.split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .take(max)
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

/// The repository around `start`, as `git rev-parse` sees it.
#[derive(Debug, Clone)]
pub struct Repo {
    pub git_dir: PathBuf,
    pub common_dir: PathBuf,
    pub bare: bool,
    /// The top-level of the working tree (None for a bare repository, or inside `.git`).
    pub workdir: Option<PathBuf>,
}

/// Discover the repository containing `start`.
pub fn discover(start: &Path) -> Result<Repo, GitError> {
    let out = run(
        Some(start),
        [
            "rev-parse",
            "--path-format=absolute",
            "--git-dir",
            "--git-common-dir",
            "--is-bare-repository",
        ],
    )?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let mut lines = text.lines();
    let (Some(git_dir), Some(common), Some(bare)) = (lines.next(), lines.next(), lines.next())
    else {
        return Err(GitError::Failed(format!(
            "unexpected output of git rev-parse: {text:?}"
        )));
    };
    let bare = bare == "true";
    let workdir = if bare {
        None
    } else {
        line(
            Some(start),
            ["rev-parse", "--path-format=absolute", "--show-toplevel"],
        )
        .map(PathBuf::from)
    };
    Ok(Repo {
        git_dir: PathBuf::from(git_dir),
        common_dir: PathBuf::from(common),
        bare,
        workdir,
    })
}

/// A config value as a path (`~` expanded), None when unset or empty.
pub fn config_path(dir: &Path, key: &str) -> Option<PathBuf> {
    line(Some(dir), ["config", "--type=path", "--get", key]).map(PathBuf::from)
}

/// Config entries whose key matches `regexp`: (key, value) pairs in config order.
pub fn config_entries(dir: &Path, regexp: &str) -> Vec<(String, String)> {
    let Ok(out) = run(Some(dir), ["config", "--null", "--get-regexp", regexp]) else {
        return Vec::new();
    };
    out.split(|b| *b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let e = String::from_utf8_lossy(e);
            let (k, v) = e.split_once('\n').unwrap_or((&e, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The installed git's version, and whether it runs hooks defined in config (2.54+).
pub fn version() -> (Option<String>, bool) {
    let out = std::process::Command::new("git")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success());
    let Some(out) = out else {
        return (None, false);
    };
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let ver = text.trim_start_matches("git version ").to_string();
    let nums: Vec<u32> = ver
        .split(['.', ' ', '-'])
        .take(2)
        .map(|s| s.parse().unwrap_or(0))
        .collect();
    let supported = matches!(nums.as_slice(), [maj, min] if (*maj, *min) >= (2, 54));
    (Some(ver), supported)
}

/// A hook defined in git config (`hook.<name>.command` / `.event`, git 2.54+).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConfigHook {
    pub name: String,
    pub command: Vec<String>,
    pub events: Vec<String>,
}

/// The hooks defined in the config of the repository at `git_dir`, by name.
pub fn config_hooks(git_dir: &Path) -> Vec<ConfigHook> {
    let mut by_name: std::collections::BTreeMap<String, (Vec<String>, Vec<String>)> =
        Default::default();
    for (key, val) in config_entries(git_dir, r"^hook\..*\.(command|event)$") {
        let Some(rest) = key.strip_prefix("hook.") else {
            continue;
        };
        if let Some(n) = rest.strip_suffix(".command") {
            by_name.entry(n.to_string()).or_default().0.push(val);
        } else if let Some(n) = rest.strip_suffix(".event") {
            by_name.entry(n.to_string()).or_default().1.push(val);
        }
    }
    by_name
        .into_iter()
        .map(|(name, (command, events))| ConfigHook {
            name,
            command,
            events,
        })
        .collect()
}
