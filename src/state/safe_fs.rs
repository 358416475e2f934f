//! Opening state files without following symbolic links: a state dir planted in a cloned
//! repository must not redirect bgrun's reads and writes outside it (O_NOFOLLOW on the last
//! component; the state dir itself is checked by `ensure_private_dir`).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Open for reading, refusing a symlink.
pub fn open_read(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Options for a private state file (0600, no symlink followed).
pub fn private() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    o
}

/// Whether `err` is what O_NOFOLLOW gives on a symlink (ELOOP).
pub fn is_symlink_refusal(err: &std::io::Error) -> bool {
    err.raw_os_error() == Some(libc::ELOOP)
}
