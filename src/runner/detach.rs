//! The one way bgrun starts a process that outlives the caller (a background drainer, a git
//! hook's worker): argv (no shell), stdin from the given bytes or /dev/null, stdout and
//! stderr appended to a log or /dev/null, in a session of its own, at a CPU priority.
//!
//! It forks and returns without waiting for the child's `exec`. std's `Command` (posix_spawn
//! with vfork, or fork with an error pipe) blocks the caller until the child has exec'd, and
//! exec'ing bgrun's own 13 MB binary is what a git hook paid most for (1.7 ms against
//! 0.6 ms for the fork, measured with `os.posix_spawn` against `os.fork` on bgrun
//! `--version`). Everything the child needs (argv, environment, descriptors) is prepared
//! before the fork, and the child calls only async-signal-safe functions (`setsid`,
//! `setpriority`, `dup2`, `chdir`, `execve`, `_exit`), so it is sound from a threaded
//! caller too. The program must name an existing file (checked before the fork: the one
//! error a caller could act on, a replaced or deleted bgrun binary); an `exec` that still
//! fails writes one line to the child's stderr and exits 127.

use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A process to start detached.
#[derive(Debug, Clone, Default)]
pub struct Detached {
    /// argv; `argv[0]` is the program, a path (bgrun's own executable for every caller).
    pub argv: Vec<OsString>,
    pub cwd: Option<PathBuf>,
    /// Variables to set in the child.
    pub env: Vec<(OsString, OsString)>,
    /// Written to the child's stdin, which is then closed (None: /dev/null).
    pub input: Option<Vec<u8>>,
    /// Where stdout and stderr go (appended, created 0600); None: /dev/null.
    pub log: Option<PathBuf>,
    /// The child's nice level, set before its `exec` (None: the caller's).
    pub nice: Option<i32>,
    /// Wait for the child's exit on a thread, so that a long-lived caller leaves no zombie.
    /// A caller about to exit does not need it (init adopts the child).
    pub reap: bool,
}

fn cstring(bytes: &[u8]) -> std::io::Result<CString> {
    CString::new(bytes).map_err(|_| std::io::Error::other("a NUL byte in an argument"))
}

/// Start it; returns its pid.
pub fn spawn(d: &Detached) -> std::io::Result<u32> {
    let program = d
        .argv
        .first()
        .ok_or_else(|| std::io::Error::other("empty command"))?;
    // The one failure a caller can act on, seen here rather than lost in the child.
    std::fs::metadata(program)?;
    let argv: Vec<CString> = d
        .argv
        .iter()
        .map(|a| cstring(a.as_bytes()))
        .collect::<std::io::Result<_>>()?;
    let mut env: Vec<CString> = Vec::new();
    for (k, v) in std::env::vars_os() {
        if !d.env.iter().any(|(name, _)| *name == k) {
            env.push(cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat())?);
        }
    }
    for (k, v) in &d.env {
        env.push(cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat())?);
    }
    let argv_p: Vec<*const libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let env_p: Vec<*const libc::c_char> = env
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let cwd = d
        .cwd
        .as_deref()
        .map(|p| cstring(p.as_os_str().as_bytes()))
        .transpose()?;
    let out: OwnedFd = match &d.log {
        Some(path) => std::fs::OpenOptions::new()
            .custom_flags(libc::O_NOFOLLOW)
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?
            .into(),
        None => dev_null()?,
    };
    let (stdin_read, stdin_write) = match d.input {
        Some(_) => {
            let (r, w) = pipe()?;
            (r, Some(w))
        }
        None => (dev_null()?, None),
    };
    let message = [b"bgrun: cannot run ", argv[0].as_bytes(), b"\n"].concat();
    // SAFETY: fork has no preconditions; the child (below) calls only async-signal-safe
    // functions on memory prepared before the fork, then execs or exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: the child of a fork: only async-signal-safe calls, no allocation.
        unsafe {
            child(
                &argv_p,
                &env_p,
                cwd.as_ref(),
                &stdin_read,
                &out,
                d.nice,
                &message,
            )
        }
    }
    drop(stdin_read);
    if let (Some(bytes), Some(w)) = (&d.input, stdin_write) {
        // Small (a hook's context); a child that died early just closes the pipe.
        let _ = std::fs::File::from(w).write_all(bytes);
    }
    let pid = pid as u32;
    if d.reap {
        std::thread::spawn(move || {
            let mut status = 0;
            // SAFETY: waiting for our own child, with a valid status pointer.
            unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
        });
    }
    Ok(pid)
}

/// The forked child: a session of its own, the priority, stdin/stdout/stderr, the working
/// directory, default signal handling, then exec. Never returns.
///
/// # Safety
/// To be called only in the child of a fork, with pointers valid for the parent's memory.
unsafe fn child(
    argv: &[*const libc::c_char],
    env: &[*const libc::c_char],
    cwd: Option<&CString>,
    stdin: &OwnedFd,
    out: &OwnedFd,
    nice: Option<i32>,
    message: &[u8],
) -> ! {
    // SAFETY: async-signal-safe calls on descriptors and strings that outlive them.
    unsafe {
        libc::setsid();
        if let Some(n) = nice {
            libc::setpriority(libc::PRIO_PROCESS, 0, n);
        }
        let mut ok = libc::dup2(stdin.as_raw_fd(), 0) >= 0
            && libc::dup2(out.as_raw_fd(), 1) >= 0
            && libc::dup2(out.as_raw_fd(), 2) >= 0;
        if let Some(dir) = cwd {
            ok = ok && libc::chdir(dir.as_ptr()) == 0;
        }
        // Rust ignores SIGPIPE; an ignored signal stays ignored across exec.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        if ok {
            libc::execve(argv[0], argv.as_ptr(), env.as_ptr());
        }
        libc::write(2, message.as_ptr().cast(), message.len());
        libc::_exit(127)
    }
}

fn dev_null() -> std::io::Result<OwnedFd> {
    Ok(std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(Path::new("/dev/null"))?
        .into())
}

/// A pipe whose ends close on exec (the child dups the read end to its stdin).
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// In a process meant to be detached: leave the parent's session (and its terminal) for a
/// new one. [`spawn`] does it already; this covers a `drain --background` or hook worker
/// started by other means.
pub fn new_session() {
    // SAFETY: setsid has no memory-safety preconditions; failing (already a group leader
    // of its own session) is harmless.
    unsafe {
        libc::setsid();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_env_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let pid = spawn(&Detached {
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                "cat; echo \" $MARK\"; echo $$".into(),
            ],
            env: vec![("MARK".into(), "set".into())],
            input: Some(b"from stdin".to_vec()),
            log: Some(log.clone()),
            reap: true,
            ..Detached::default()
        })
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut text = String::new();
        while std::time::Instant::now() < deadline {
            text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.lines().count() >= 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("from stdin set"));
        assert_eq!(lines.next().map(str::trim), Some(pid.to_string().as_str()));
    }

    #[test]
    fn own_session_priority_and_directory_before_exec() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let pid = spawn(&Detached {
            argv: vec!["/bin/sh".into(), "-c".into(), "pwd; exec sleep 30".into()],
            cwd: Some(dir.path().to_path_buf()),
            log: Some(log.clone()),
            nice: Some(7),
            reap: true,
            ..Detached::default()
        })
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut text = String::new();
        while std::time::Instant::now() < deadline && text.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(20));
            text = std::fs::read_to_string(&log).unwrap_or_default();
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // SAFETY: kill of our own child.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        // After the command name: state ppid pgrp session ... nice is field 19 of stat.
        assert_eq!(fields[3], pid.to_string(), "a session of its own: {stat}");
        assert_eq!(fields[16], "7", "the nice level: {stat}");
        assert_eq!(
            text.trim(),
            dir.path().canonicalize().unwrap().to_str().unwrap()
        );
    }

    #[test]
    fn a_missing_program_is_an_error_here() {
        let e = spawn(&Detached {
            argv: vec!["/nonexistent/bgrun (deleted)".into()],
            ..Detached::default()
        })
        .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}
