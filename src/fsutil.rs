//! Small file helpers used across bgrun: private directories (0700) and atomic,
//! optionally durable, whole-file writes (temp file, fsync, rename, fsync dir).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

/// Make sure `dir` exists: created with mode 0700 when absent; one that exists is never
/// chmodded (a `/tmp` or `$HOME` given as the state dir stays as it is), only warned about
/// once when others may read it. Failures are state errors (exit 3).
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            if meta.permissions().mode() & 0o077 != 0 {
                warn_open_dir(dir, meta.permissions().mode());
            }
            Ok(())
        }
        Ok(meta) if meta.file_type().is_symlink() => Err(crate::error::state(format!(
            "{} is a symbolic link; bgrun does not follow links in its state directory. \
             Remove it (or pass --state-dir with a real directory)",
            dir.display()
        ))),
        Ok(_) => Err(crate::error::state(format!(
            "{} is not a directory; move it aside or pass --state-dir with a directory",
            dir.display()
        ))),
        Err(_) => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    crate::error::state(format!(
                        "cannot create the state directory {}: {e}; make its parent writable, \
                         or pass --state-dir with a writable directory",
                        dir.display()
                    ))
                })?;
            created(dir);
            Ok(())
        }
    }
}

/// A directory this process waits to see created, and what to do then.
type Wish = (PathBuf, fn(&Path));
static WHEN_CREATED: Mutex<Option<Wish>> = Mutex::new(None);

/// Call `then(dir)` once, right after [`ensure_private_dir`] in this process creates `dir`
/// (`state::owner` records a state dir it found absent this way). Replaces an earlier wish.
pub fn when_created(dir: PathBuf, then: fn(&Path)) {
    *WHEN_CREATED.lock().unwrap_or_else(|e| e.into_inner()) = Some((dir, then));
}

fn created(dir: &Path) {
    let mut w = WHEN_CREATED.lock().unwrap_or_else(|e| e.into_inner());
    if w.as_ref().is_some_and(|(d, _)| d == dir)
        && let Some((d, then)) = w.take()
    {
        drop(w);
        then(&d);
    }
}

/// Warn once per process about a state directory that others may read.
fn warn_open_dir(dir: &Path, mode: u32) {
    use std::collections::HashSet;
    use std::sync::OnceLock;
    static WARNED: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let mut seen = WARNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if seen.insert(dir.to_path_buf()) {
        eprintln!(
            "bgrun: warning: {} has mode {:o}: others may read bgrun's state there; \
             it was left as it is (`chmod 700` it, or use a private --state-dir)",
            dir.display(),
            mode & 0o7777
        );
    }
}

/// Remove a file bgrun keeps (a baseline, a trust record); returns whether it was there.
pub fn remove_if_present(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(crate::error::state(format!(
            "cannot remove {}: {e}",
            path.display()
        ))),
    }
}

/// Write a file the user named (`--output`): atomically (a temporary beside it, then a
/// rename) when it is a regular file or absent, but straight into it when it exists as
/// something else, such as `/dev/null`, `/dev/stdout` or a FIFO: a rename over those
/// replaced the device with a regular file (as root, `bgrun report --output /dev/null`
/// broke every program's /dev/null on the machine).
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() && !m.is_dir() => OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(bytes))
            .with_context(|| format!("cannot write {}", path.display())),
        _ => write_atomic(path, bytes, false),
    }
}

/// Write `bytes` to `path` atomically: a temp file in the same dir (0600), fsync when
/// `durable`, rename over, fsync the dir when `durable`. A crash leaves the old file or the new.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), unique()));
    let res = (|| -> Result<()> {
        let mut f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        if durable {
            f.sync_all()
                .with_context(|| format!("cannot fsync {}", tmp.display()))?;
        }
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
        if durable && let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    t ^ (N.fetch_add(1, Ordering::Relaxed) << 32)
}
