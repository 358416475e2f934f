//! The journal's stamp: `<state>/.state.jsonl.stamp` holds the identity (inode, length,
//! change time) the journal had right after bgrun's own last write or full read under the
//! lock. Enqueue's fast prefix scan is used only while the journal still has that identity,
//! i.e. holds exactly lines that bgrun wrote; a journal changed behind bgrun's back (edited,
//! replaced, truncated, written by another tool) is parsed in full, line by line, by the
//! same rule as every other reader, so that enqueue, status and drain agree on what is valid.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const STAMP: &str = ".state.jsonl.stamp";

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(STAMP)
}

/// The identity of an open journal.
pub fn of(file: &File) -> Option<[u8; 32]> {
    let m = file.metadata().ok()?;
    let mut out = [0u8; 32];
    out[..8].copy_from_slice(&m.ino().to_le_bytes());
    out[8..16].copy_from_slice(&m.len().to_le_bytes());
    out[16..24].copy_from_slice(&m.ctime().to_le_bytes());
    out[24..].copy_from_slice(&m.ctime_nsec().to_le_bytes());
    Some(out)
}

/// Whether the journal is as bgrun last left it.
pub fn matches(state_dir: &Path, file: &File) -> bool {
    let Some(now) = of(file) else {
        return false;
    };
    let Ok(f) = crate::state::safe_fs::open_read(&path(state_dir)) else {
        return false;
    };
    let mut saved = [0u8; 32];
    f.read_exact_at(&mut saved, 0).is_ok() && saved == now
}

/// Record the journal's identity (call under the lock after a write or a full read).
/// Best effort: a stamp that cannot be written only costs the next enqueue a full read.
pub fn record(state_dir: &Path, file: &File) {
    let Some(now) = of(file) else {
        return;
    };
    let p = path(state_dir);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&p);
    match f {
        Ok(f) => {
            if f.write_all_at(&now, 0).is_err() {
                let _ = std::fs::remove_file(&p);
            }
        }
        Err(_) => {
            let _ = std::fs::remove_file(&p);
        }
    }
}
