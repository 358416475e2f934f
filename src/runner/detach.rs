//! The one way bgrun starts a process that outlives the caller (a background drainer, a git
//! hook's worker): argv (no shell), its own process group, stdin from the given bytes or
//! /dev/null, stdout and stderr appended to a log or /dev/null. No `pre_exec` hook, so std
//! spawns with posix_spawn (vfork + exec): the caller pays no page-table copy, which is what
//! keeps a git hook cheap. The child leaves the caller's session itself ([`new_session`]),
//! first thing, so a closing terminal does not take it along.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
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
    cmd.args(args).process_group(0);
    if let Some(dir) = &d.cwd {
        cmd.current_dir(dir);
    }
    cmd.envs(d.env.iter().map(|(k, v)| (k, v)));
    match &d.log {
        Some(path) => {
            let log = std::fs::OpenOptions::new()
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
    let mut child = cmd.spawn()?;
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
    fn input_log_and_own_group() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let pid = spawn(&Detached {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "cat; echo \" $MARK\"; ps -o pgid= -p $$".into(),
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
}
