//! A short-lived child run to its end with a deadline and its output captured: what the
//! analyzers' tool runs and the tool installer's steps share. The child gets stdin from
//! /dev/null and its own process group, so a timeout kills the whole tree; stdout and stderr
//! are read to the end on a thread each (a chatty child cannot block on a full pipe), and
//! the group is killed when an escaped grandchild keeps a pipe open.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

/// What a finished child left: how it ended and its two streams.
#[derive(Debug)]
pub struct Captured {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// When it was started.
    pub started: SystemTime,
}

/// Why a child gave no [`Captured`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// It could not be started (not found, not executable, ...).
    #[error("cannot start {}: {source}", program.display())]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    /// Waiting for it failed.
    #[error("cannot wait for it: {0}")]
    Wait(std::io::Error),
    /// It outlived the deadline; its process group was killed.
    #[error("timed out after {}s and was killed", .0.as_secs())]
    Timeout(Duration),
}

/// Run `cmd` (its program, arguments, dir and environment set by the caller) to its end,
/// at most `timeout`: stdin /dev/null, stdout and stderr captured, its own process group.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Captured, Error> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started = SystemTime::now();
    let mut child = cmd.spawn().map_err(|source| Error::Spawn {
        program: PathBuf::from(cmd.get_program()),
        source,
    })?;
    let pgid = child.id() as i32;
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(timeout) {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(Error::Wait(e)),
        Err(_) => {
            kill_group(pgid);
            let _ = rx.recv_timeout(Duration::from_secs(5));
            return Err(Error::Timeout(timeout));
        }
    };
    // The leader is gone; a straggler still holding the pipes is killed after a grace.
    Ok(Captured {
        status,
        stdout: collect(out, pgid),
        stderr: collect(err, pgid),
        started,
    })
}

/// Read `r` to its end on a thread; the bytes arrive on the receiver.
fn drain<R: Read + Send + 'static>(mut r: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// What a [`drain`] read, after the child exited: if the pipe is still open 2 s later (a
/// grandchild holds it), kill the group `pgid` and take what arrives within 5 s more.
fn collect(rx: Option<mpsc::Receiver<Vec<u8>>>, pgid: i32) -> Vec<u8> {
    let Some(rx) = rx else { return Vec::new() };
    match rx.recv_timeout(Duration::from_secs(2)) {
        Ok(b) => b,
        Err(_) => {
            kill_group(pgid);
            rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default()
        }
    }
}

/// SIGKILL to process group `pgid` (never to group 0 or 1).
fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: kill with a negative pid signals that process group; no memory involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn runs_and_captures_both_streams() {
        let c = run(
            &mut sh("echo out; echo err >&2; exit 3"),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(c.status.code(), Some(3));
        assert_eq!(c.stdout, b"out\n");
        assert_eq!(c.stderr, b"err\n");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let t = std::time::Instant::now();
        let e = run(&mut sh("sleep 30 & sleep 30"), Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, Error::Timeout(_)), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_grandchild_holding_the_pipes_is_killed() {
        let t = std::time::Instant::now();
        let c = run(&mut sh("sleep 30 & echo left"), Duration::from_secs(20)).unwrap();
        assert_eq!(c.stdout, b"left\n");
        assert!(t.elapsed() < Duration::from_secs(15));
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let e = run(
            &mut Command::new("/nonexistent/tool"),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Spawn { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("cannot start /nonexistent/tool: "),
            "{e}"
        );
    }
}
