//! The registry of live bgrun processes (drainers and watchers): each holds an exclusive
//! `flock` on its own file in `<state>/procs/` for its whole life. A file whose lock can be
//! taken belongs to a dead process (even after `kill -9`), and pid reuse cannot fool it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcInfo {
    /// `drainer` or `watch`.
    pub kind: String,
    pub pid: u32,
    /// Unique for this process's life: `<pid>-<start nanos>`.
    pub token: String,
    pub started_at: f64,
}

/// This process's registration; dropping it unregisters.
#[derive(Debug)]
pub struct Registration {
    pub info: ProcInfo,
    path: PathBuf,
    _file: File,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("procs")
}

/// Register this process as a live `kind`.
pub fn register(state_dir: &Path, kind: &str) -> Result<Registration> {
    let d = dir(state_dir);
    crate::state::store::ensure_private_dir(&d)?;
    let pid = std::process::id();
    let started_at = crate::timefmt::now();
    let token = format!("{pid}-{}", (started_at * 1e9) as u128 % 1_000_000_000_000);
    let path = d.join(format!("{kind}-{token}.json"));
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| crate::error::state(format!("cannot create {}: {e}", path.display())))?;
    file.lock()
        .map_err(|e| crate::error::state(format!("cannot lock {}: {e}", path.display())))?;
    let info = ProcInfo {
        kind: kind.to_string(),
        pid,
        token,
        started_at,
    };
    if let Err(e) = file.write_all(&serde_json::to_vec(&info)?) {
        let _ = std::fs::remove_file(&path);
        return Err(crate::error::state(format!(
            "cannot write {}: {e} (free some space in the state directory)",
            path.display()
        )));
    }
    Ok(Registration {
        info,
        path,
        _file: file,
    })
}

/// Live processes of `kind` (or all when None). Files of dead ones are removed on the way.
pub fn alive(state_dir: &Path, kind: Option<&str>) -> Vec<ProcInfo> {
    let Ok(rd) = std::fs::read_dir(dir(state_dir)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.ends_with(".json") || kind.is_some_and(|k| !name.starts_with(&format!("{k}-"))) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = OpenOptions::new()
            .custom_flags(libc::O_NOFOLLOW)
            .read(true)
            .write(true)
            .open(&path)
        else {
            continue;
        };
        match file.try_lock() {
            Ok(()) => {
                // Its owner is gone: the lock was free.
                let _ = std::fs::remove_file(&path);
            }
            Err(TryLockError::WouldBlock) => {
                if let Ok(text) = std::fs::read(&path)
                    && let Ok(info) = serde_json::from_slice::<ProcInfo>(&text)
                {
                    out.push(info);
                }
            }
            Err(TryLockError::Error(_)) => {}
        }
    }
    out.sort_by(|a, b| a.started_at.total_cmp(&b.started_at));
    out
}

/// Whether a registered process died without unregistering (its file is there, unlocked):
/// the cheap sign that recovery is needed. Leaves the files for recovery to judge.
pub fn any_dead(state_dir: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir(dir(state_dir)) else {
        return false;
    };
    rd.flatten()
        .any(|entry| File::open(entry.path()).is_ok_and(|f| f.try_lock_shared().is_ok()))
}

/// Whether the process with this token is alive.
pub fn token_alive(state_dir: &Path, token: &str) -> bool {
    let d = dir(state_dir);
    let Ok(rd) = std::fs::read_dir(&d) else {
        return false;
    };
    for entry in rd.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(&format!("-{token}.json")) {
            let Ok(file) = File::open(entry.path()) else {
                return false;
            };
            return matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock));
        }
    }
    false
}
