//! Trust of a repository's committed config (issue 14, as direnv and VS Code do it). A
//! config that the repository commits (`<repo>/bgrun.json`,
//! `<repo>/.claude/config/background-tasks.json`) and that defines commands (a task type's
//! `command`, a custom analyzer's `report`) runs only once the user approved its exact
//! content: `bgrun trust` records its SHA-256 and a copy in the user's data dir
//! (`<data>/trust/`, see `state::owner::data_dir`), never in the repository. A changed or
//! never-approved one is not run by any trigger (hook, tick, watch: they record and notify
//! `config changed: review with bgrun config diff, then bgrun trust`), and manual commands
//! ask for `--trust-once`. `--config` / `$BGRUN_CONFIG` and the personal
//! `<repo>/.bgrun/config.json` (written by `bgrun init` on this machine, and checked with
//! the state dir) are the user's own and need no trust; nor do built-in analyzers.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::{Config, Source};
use crate::error;

/// Config files a repository commits, relative to its root.
pub const COMMITTED: &[&str] = &["bgrun.json", ".claude/config/background-tasks.json"];

/// The message every refusal carries.
pub const CHANGED: &str = "config changed: review with bgrun config diff, then bgrun trust";

/// What the loaded config needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The user's own config, or one that defines no commands.
    NotNeeded,
    /// Approved with this content.
    Trusted,
    /// A committed config with commands, never approved (`known` false) or changed since.
    Untrusted { path: PathBuf, known: bool },
}

fn sha256_hex(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `path` (absolute) is a config that `repo` commits: one of [`COMMITTED`], or a
/// `.bgrun/config.json` that git tracks (a personal config is never committed; one that is
/// came with the repository).
pub fn is_committed(repo: &Path, path: &Path) -> bool {
    COMMITTED.iter().any(|rel| repo.join(rel) == path)
        || (path == repo.join(".bgrun/config.json")
            && crate::state::owner::git_tracked(&repo.join(".bgrun"), repo).is_some())
}

/// Whether a config defines anything that runs a command of the repository's choosing.
pub fn defines_commands(c: &Config) -> bool {
    c.task_types
        .values()
        .any(|t| t.command.is_some() || t.report.is_some())
}

fn record_path(path: &Path) -> Option<PathBuf> {
    let key = sha256_hex(path.as_os_str().as_encoded_bytes());
    Some(
        crate::state::owner::data_dir()?
            .join("trust")
            .join(format!("{key}.json")),
    )
}

fn read_record(path: &Path) -> Option<serde_json::Value> {
    let f = crate::state::safe_fs::open_read(&record_path(path)?).ok()?;
    serde_json::from_reader(std::io::BufReader::new(f)).ok()
}

/// The verdict on a loaded config.
pub fn verdict(repo: &Path, source: &Source, config: &Config) -> Verdict {
    let Source::File(path) = source else {
        return Verdict::NotNeeded;
    };
    if !defines_commands(config) || !is_committed(repo, path) {
        return Verdict::NotNeeded;
    }
    let Ok(bytes) = std::fs::read(path) else {
        return Verdict::Untrusted {
            path: path.clone(),
            known: false,
        };
    };
    let rec = read_record(path);
    let known = rec.is_some();
    match rec.and_then(|r| r["sha256"].as_str().map(str::to_string)) {
        Some(h) if h == sha256_hex(&bytes) => Verdict::Trusted,
        _ => Verdict::Untrusted {
            path: path.clone(),
            known,
        },
    }
}

/// The refusal for a manual command (exit 2).
pub fn refusal(path: &Path, known: bool) -> anyhow::Error {
    let what = if known {
        "changed since you trusted it"
    } else {
        "never trusted"
    };
    error::usage(format!(
        "{} defines commands and is {what}: {CHANGED} (or run this once with --trust-once)",
        path.display()
    ))
}

fn repo_record(repo: &Path) -> Option<PathBuf> {
    let key = sha256_hex(repo.as_os_str().as_encoded_bytes());
    Some(
        crate::state::owner::data_dir()?
            .join("trust")
            .join(format!("repo-{key}.json")),
    )
}

/// Whether the user trusted this repository (`bgrun trust`): only then are its own tools
/// (`.venv/bin`, `venv/bin`, `node_modules/.bin`) run by the analyzers; otherwise they use
/// the managed tools and `$PATH`, so a cloned repository cannot plant a `ruff`.
pub fn repo_trusted(repo: &Path) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashMap<PathBuf, bool>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    *seen.entry(repo.to_path_buf()).or_insert_with(|| {
        repo_record(repo).is_some_and(|p| crate::state::safe_fs::open_read(&p).is_ok())
    })
}

/// Trust the repository itself (its project-local tools).
pub fn trust_repo(repo: &Path) -> Result<()> {
    let Some(rec) = repo_record(repo) else {
        return Err(error::state("no user data dir: set HOME or XDG_DATA_HOME"));
    };
    if let Some(dir) = rec.parent() {
        crate::fsutil::ensure_private_dir(dir)?;
    }
    let body = serde_json::json!({"repo": repo, "trusted_at": crate::timefmt::rfc3339(crate::timefmt::now())});
    crate::fsutil::write_atomic(&rec, &serde_json::to_vec_pretty(&body)?, true)
}

/// Withdraw the trust of the repository itself.
pub fn untrust_repo(repo: &Path) -> bool {
    repo_record(repo).is_some_and(|p| std::fs::remove_file(p).is_ok())
}

fn read_config(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| error::usage(format!("cannot read {}: {e}", path.display())))
}

/// Where the config at `path` stands against its approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Approved as it is now.
    Trusted,
    /// Approved, and changed since.
    Changed,
    Never,
}

/// The config at `path` now: its sha256, and how it stands against its approval.
pub fn standing(path: &Path) -> Result<(String, Standing)> {
    let now = sha256_hex(&read_config(path)?);
    let standing = match approved(path) {
        Some((h, _)) if h == now => Standing::Trusted,
        Some(_) => Standing::Changed,
        None => Standing::Never,
    };
    Ok((now, standing))
}

/// Approve the config at `path` as it is now.
pub fn trust(path: &Path) -> Result<String> {
    let bytes = read_config(path)?;
    let Some(rec) = record_path(path) else {
        return Err(error::state("no user data dir: set HOME or XDG_DATA_HOME"));
    };
    if let Some(dir) = rec.parent() {
        crate::fsutil::ensure_private_dir(dir)?;
    }
    let hash = sha256_hex(&bytes);
    let body = serde_json::json!({
        "path": path,
        "sha256": hash,
        "trusted_at": crate::timefmt::rfc3339(crate::timefmt::now()),
        "content": String::from_utf8_lossy(&bytes),
    });
    crate::fsutil::write_atomic(&rec, &serde_json::to_vec_pretty(&body)?, true)?;
    Ok(hash)
}

/// Withdraw the approval of `path`; returns whether there was one.
pub fn untrust(path: &Path) -> Result<bool> {
    let Some(rec) = record_path(path) else {
        return Ok(false);
    };
    crate::fsutil::remove_if_present(&rec)
}

/// The approved content and hash of `path`, if any.
pub fn approved(path: &Path) -> Option<(String, String)> {
    let r = read_record(path)?;
    Some((
        r["sha256"].as_str()?.to_string(),
        r["content"].as_str()?.to_string(),
    ))
}

/// Which config `bgrun trust` is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// No config file: the embedded defaults, which need no trust.
    Defaults,
    /// The user's own (`--config`, `$BGRUN_CONFIG`, a personal `.bgrun/config.json`).
    Own(PathBuf),
    /// A config the repository commits (see [`is_committed`]).
    Committed(PathBuf),
}

/// Sort the discovered config of `repo`.
pub fn subject(repo: &Path, source: &Source) -> Subject {
    match source {
        Source::File(path) if is_committed(repo, path) => Subject::Committed(path.clone()),
        Source::File(path) => Subject::Own(path.clone()),
        Source::Embedded => Subject::Defaults,
    }
}

/// The config at a path against its approved copy, for `bgrun config diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    /// The same as approved.
    Unchanged,
    /// Approved, and changed since: the line diff.
    Changed(String),
    /// Never approved: all of it as added lines.
    New(String),
}

/// Compare the config at `path` (which must be readable UTF-8) with its approved copy.
pub fn review(path: &Path) -> Result<Review> {
    let now = std::fs::read_to_string(path)
        .map_err(|e| error::usage(format!("cannot read {}: {e}", path.display())))?;
    Ok(match approved(path) {
        Some((_, old)) if old == now => Review::Unchanged,
        Some((_, old)) => Review::Changed(diff(&old, &now)),
        None => Review::New(diff("", &now)),
    })
}

/// What a trigger records and notifies when an untrusted config stops it (`known`: it was
/// approved once and changed since).
pub fn skipped(trigger: &str, path: &Path, known: bool) -> String {
    format!(
        "{trigger}: nothing run: {} defines commands and is {}: {CHANGED}",
        path.display(),
        if known {
            "changed since trusted"
        } else {
            "not trusted"
        },
    )
}

/// A line diff (`-` approved, `+` now) from a longest common subsequence.
pub fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let (n, m) = (a.len(), b.len());
    if n.saturating_mul(m) > 4_000_000 {
        return format!("--- approved ({n} lines)\n+++ now ({m} lines)\n(too long to diff)\n");
    }
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::from("--- approved\n+++ now\n");
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_is_committed_own_or_the_defaults() {
        let repo = Path::new("/r");
        let committed = Source::File(repo.join("bgrun.json"));
        assert_eq!(
            subject(repo, &committed),
            Subject::Committed(repo.join("bgrun.json"))
        );
        let own = Source::File(PathBuf::from("/elsewhere/own.json"));
        assert_eq!(
            subject(repo, &own),
            Subject::Own(PathBuf::from("/elsewhere/own.json"))
        );
        assert_eq!(subject(repo, &Source::Embedded), Subject::Defaults);
        assert_eq!(
            skipped("tick", &repo.join("bgrun.json"), true),
            format!(
                "tick: nothing run: /r/bgrun.json defines commands and is changed since trusted: {CHANGED}"
            )
        );
    }

    #[test]
    fn diff_marks_added_and_removed_lines() {
        let d = diff("a\nb\nc\n", "a\nx\nc\n");
        assert!(
            d.contains("- b\n") && d.contains("+ x\n") && d.contains("  a\n"),
            "{d}"
        );
    }
}
