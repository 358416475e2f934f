//! Whose state dir is this? A state dir is trusted only when bgrun made it on this machine:
//! on creation its identity (device, inode, birth time) is recorded in the user's data dir
//! (`$XDG_DATA_HOME/bgrun/state-dirs/`, never in the repo). A state dir that is a symlink,
//! that git tracks, or that holds, without such a record, anything that could act (a queued
//! or running task, a symlink: a cloned or copied `.bgrun/`) is refused with exit 3 before
//! anything in it is read or written, config included. One without a record that holds
//! nothing that could act (another local user's, an older bgrun's) is recorded and used. `bgrun state adopt` records one that is the user's own
//! (e.g. made by a bgrun from before this check).

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error;

/// bgrun's per-user data dir: `$BGRUN_DATA_DIR`, else `$XDG_DATA_HOME/bgrun`, else
/// `~/.local/share/bgrun`.
pub fn data_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("BGRUN_DATA_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("bgrun"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".local/share/bgrun"))
}

fn identity(meta: &std::fs::Metadata) -> (String, String) {
    let born = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos().to_string())
        .unwrap_or_default();
    (format!("{}-{}", meta.dev(), meta.ino()), born)
}

/// Where records live: the data dir, and for a user without a usable home (a cron job of
/// a system user) `/tmp/bgrun-<uid>`, used only when it is a real dir owned by the user.
fn record_dirs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = data_dir()
        .map(|d| d.join("state-dirs"))
        .into_iter()
        .collect();
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    v.push(
        std::env::temp_dir()
            .join(format!("bgrun-{uid}"))
            .join("state-dirs"),
    );
    v
}

fn owned_private_dir(d: &Path) -> bool {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let ok = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir() && m.uid() == uid);
    ok(d) && d.parent().is_none_or(ok)
}

/// Whether the dir is recorded as made (or adopted) by bgrun on this machine.
fn recorded(meta: &std::fs::Metadata) -> bool {
    let (name, born) = identity(meta);
    record_dirs().iter().any(|d| {
        if !owned_private_dir(d) {
            return false;
        }
        let Ok(f) = super::safe_fs::open_read(&d.join(&name)) else {
            return false;
        };
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(f), &mut text);
        text.lines().next() == Some(born.as_str())
    })
}

/// Record the dir at `dir` as bgrun's own.
pub fn record(dir: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| error::state(format!("cannot read {}: {e}", dir.display())))?;
    let made = record_dirs().into_iter().find(|d| {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(d)
            .is_ok()
            && owned_private_dir(d)
    });
    let Some(records) = made else {
        return Err(error::state(
            "no user data dir to record the state dir in: set HOME or XDG_DATA_HOME",
        ));
    };
    let p = records.join(identity(&meta).0);
    let body = format!("{}\n{}\n", identity(&meta).1, dir.display());
    // Atomic (temp + rename): a concurrent reader never sees a half-written record.
    crate::fsutil::write_atomic(&p, body.as_bytes(), false)
        .map_err(|e| error::state(format!("cannot write {}: {e:#}", p.display())))?;
    Ok(())
}

/// Record a state dir that did not exist when checked, once this process creates it.
fn created(dir: &Path) {
    if let Err(e) = record(dir) {
        eprintln!("bgrun: warning: {e:#}");
    }
}

/// Check a state dir before anything in it is used (see the module doc). `repo` is the
/// project, for the git check.
pub fn check(state_dir: &Path, repo: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(state_dir) {
        Ok(m) => m,
        Err(_) => {
            crate::fsutil::when_created(state_dir.to_path_buf(), created);
            return Ok(());
        }
    };
    if meta.file_type().is_symlink() {
        return Err(error::state(format!(
            "the state dir {} is a symbolic link; bgrun does not follow links in its state. \
             Remove it, or pass --state-dir with a real directory",
            state_dir.display()
        )));
    }
    if !meta.is_dir() {
        return Err(error::state(format!(
            "the state dir {} is not a directory; move it aside or pass --state-dir",
            state_dir.display()
        )));
    }
    if recorded(&meta) {
        return Ok(());
    }
    if let Some(tracked) = git_tracked(state_dir, repo) {
        return Err(error::state(format!(
            "the state dir {} is tracked by git ({tracked}): state committed to a repository \
             is not bgrun's own and is never used. Remove it from git (`git rm -r --cached {}`, \
             then add it to .gitignore) and move it aside, or pass --state-dir",
            state_dir.display(),
            state_dir.strip_prefix(repo).unwrap_or(state_dir).display()
        )));
    }
    // Not recorded (made by another user of this machine, by an older bgrun, or copied):
    // used only when it holds nothing that could act: no symlink, no queued or running task.
    let entries: Vec<std::fs::DirEntry> = std::fs::read_dir(state_dir)
        .map_err(|e| error::state(format!("cannot read {}: {e}", state_dir.display())))?
        .flatten()
        .collect();
    let links: Vec<String> = entries
        .iter()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let pending = pending_tasks(&state_dir.join(super::store::JOURNAL));
    // A bgrun that records the dir does so before it writes any state: state seen here
    // may come from one that recorded it since the first look.
    if (!links.is_empty() || pending > 0) && recorded(&meta) {
        return Ok(());
    }
    if !links.is_empty() || pending > 0 {
        let what = if links.is_empty() {
            format!("{pending} queued or running task(s)")
        } else {
            format!("symbolic links: {}", links.join(", "))
        };
        return Err(error::state(format!(
            "the state dir {} holds state that bgrun did not write on this machine ({what}): \
             a cloned or copied state dir is never used. If it is your own (made by an older \
             bgrun), run `bgrun state adopt`; otherwise move it aside or pass --state-dir",
            state_dir.display()
        )));
    }
    if let Err(e) = record(state_dir) {
        eprintln!("bgrun: warning: {e:#}");
    }
    Ok(())
}

/// Tasks queued or running in a journal (0 when absent; unreadable lines are left for the
/// store to report).
fn pending_tasks(journal: &Path) -> usize {
    let Ok(f) = super::safe_fs::open_read(journal) else {
        return 0;
    };
    let mut bytes = Vec::new();
    if std::io::Read::read_to_end(&mut std::io::BufReader::new(f), &mut bytes).is_err() {
        return 0;
    }
    let mut state = super::store::State::default();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<super::store::Op>(line) {
            Ok(op) => state.apply(op),
            Err(_) => return 1,
        }
    }
    state.queued.len() + state.running.len()
}

/// The first path git tracks under `dir`, when `dir` is inside `repo`'s work tree (asked
/// of the git CLI: `git ls-files`; no git, or not a repository: None).
pub fn git_tracked(dir: &Path, repo: &Path) -> Option<String> {
    let rel = dir.strip_prefix(repo).ok()?;
    if rel.as_os_str().is_empty() {
        return None;
    }
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["ls-files", "-z", "--"])
        .arg(rel)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    out.stdout
        .split(|b| *b == 0)
        .find(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
}
