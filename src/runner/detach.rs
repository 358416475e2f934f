//! The one way bgrun starts a process that outlives the caller (a background drainer, a git
//! hook's worker): argv (no shell), stdin from the given bytes or /dev/null, stdout and
//! stderr appended to a log or /dev/null. No `pre_exec` hook, so std spawns with
//! posix_spawn (vfork + exec): the caller pays no page-table copy, which is what keeps a git
//! hook cheap. (A fork that returns without waiting for the child's exec was tried: it wins
//! on a loaded machine, but on a quiet one the hook cost `git commit` 0.6 ms more, 3.35
//! against 2.71 ms over no hook in `scripts/bench/hooks-interleaved`.) The child (bgrun) leaves the caller's session itself, first thing
//! ([`new_session`]: a new session and process group, no controlling terminal), so a
//! closing terminal or a Ctrl-C in the caller's group does not take it along. (It is not
//! put in a group of its own here: a group leader cannot start a session.)

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A process to start detached.
#[derive(Debug, Clone, Default)]
pub struct Detached {
    pub argv: Vec<OsString>,
    pub cwd: Option<PathBuf>,
    /// Variables to set in the child.
    pub env: Vec<(OsString, OsString)>,
    /// Written to the child's stdin, which is then closed (None: /dev/null).
    pub input: Option<Vec<u8>>,
    /// Where stdout and stderr go (appended, created 0600); None: /dev/null.
    pub log: Option<PathBuf>,
    /// Wait for the child's exit on a thread, so that a long-lived caller leaves no zombie.
    /// A caller about to exit does not need it (init adopts the child).
    pub reap: bool,
}

/// Start it; returns its pid.
pub fn spawn(d: &Detached) -> std::io::Result<u32> {
    let (program, args) = d
        .argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command"))?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd.envs(d.env.iter().map(|(k, v)| (k, v)));
    match &d.log {
        Some(path) => {
            let log = std::fs::OpenOptions::new()
                .custom_flags(libc::O_NOFOLLOW)
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)?;
            cmd.stdout(log.try_clone()?).stderr(log);
        }
        None => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    cmd.stdin(if d.input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = match &d.cwd {
        Some(dir) => super::workdir::spawn_once_in(&mut cmd, dir)?,
        None => cmd.spawn()?,
    };
    let pid = child.id();
    if let (Some(bytes), Some(mut stdin)) = (&d.input, child.stdin.take()) {
        // Small (a hook's context); a child that died early just closes the pipe.
        let _ = stdin.write_all(bytes);
    }
    if d.reap {
        std::thread::spawn(move || child.wait());
    }
    Ok(pid)
}

/// In a detached child: leave the parent's session (and its terminal) for a new one.
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

    /// The child starts in its directory; this process stays where it was.
    #[test]
    fn the_child_starts_in_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a b");
        std::fs::create_dir(&sub).unwrap();
        let before = std::env::current_dir().unwrap();
        let log = dir.path().join("out.log");
        spawn(&Detached {
            argv: vec!["pwd".into(), "-P".into()],
            cwd: Some(sub.clone()),
            log: Some(log.clone()),
            reap: true,
            ..Detached::default()
        })
        .unwrap();
        assert_eq!(std::env::current_dir().unwrap(), before);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut text = String::new();
        while std::time::Instant::now() < deadline && !text.ends_with('\n') {
            text = std::fs::read_to_string(&log).unwrap_or_default();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(
            text.trim_end(),
            sub.canonicalize().unwrap().to_str().unwrap()
        );
        let missing = spawn(&Detached {
            argv: vec!["pwd".into()],
            cwd: Some(dir.path().join("gone")),
            ..Detached::default()
        });
        assert_eq!(missing.unwrap_err().kind(), std::io::ErrorKind::NotFound);
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
