//! A child's working directory without `Command::current_dir`. std sets it in the child
//! through `posix_spawn_file_actions_addchdir_np`, which it finds only through the dynamic
//! loader: in the statically linked build (`scripts/build-release`) every spawn with a
//! directory fell back to a full `fork` (0.5 ms more per trivial task in a drain of 500, and
//! a full fork for every `bgrun enqueue`'s drainer). On Linux a thread can have a working
//! directory of its own (`unshare(CLONE_FS)`); changing it there moves nothing else, and a
//! child spawned from that thread starts in it, still through posix_spawn (vfork).

use std::path::Path;
use std::process::{Child, Command};

/// Give the calling thread a working directory of its own, so that it can change it without
/// moving the rest of the process. False where it cannot (not Linux, or refused): then
/// [`spawn_in`] falls back to `Command::current_dir`.
pub fn leave_shared() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: unshare(CLONE_FS) only detaches this thread's filesystem context (working
        // directory, root, umask); no memory is involved.
        unsafe { libc::unshare(libc::CLONE_FS) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Spawn `cmd` in `dir` from the calling thread: by changing the thread's own directory when
/// `own` (it called [`leave_shared`] and got true), else through `Command::current_dir`.
pub fn spawn_in(cmd: &mut Command, dir: &Path, own: bool) -> std::io::Result<Child> {
    if own {
        std::env::set_current_dir(dir)?;
        cmd.spawn()
    } else {
        cmd.current_dir(dir).spawn()
    }
}

/// Spawn `cmd` once in `dir`: where this process already is, a plain spawn; else from a
/// short-lived thread of its own directory (this thread's stays where it is).
pub fn spawn_once_in(cmd: &mut Command, dir: &Path) -> std::io::Result<Child> {
    if std::env::current_dir().is_ok_and(|here| here == dir) {
        return cmd.spawn();
    }
    if !cfg!(target_os = "linux") {
        return cmd.current_dir(dir).spawn();
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            let own = leave_shared();
            spawn_in(cmd, dir, own)
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the spawning thread panicked")))
    })
}
