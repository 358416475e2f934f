//! The seam between the engine and real processes: a [`Spawner`] starts a task's process
//! and waits for children; a [`Proc`] is one running child (exit check, signals to its
//! group, reaping). [`OsSpawner`] is the real thing (`process::spawn`, pidfds, `wait4`); the
//! engine's tests drive the drain loop with a fake child instead.

use std::fmt;
use std::os::fd::RawFd;
use std::time::Duration;

use anyhow::Result;

use super::process::{self, Ended, Spec};

/// One started child process (the leader of its own process group).
pub trait Proc: Send {
    fn pid(&self) -> u32;
    /// Its start time (clock ticks since boot): with the pid, an identity for recovery.
    fn start(&self) -> u64;
    /// Whether it has exited (it stays reapable until [`Proc::reap`]).
    fn exited(&self) -> bool;
    /// Send `sig` to its whole tree: its process group, and the processes that left it
    /// (escapees) that were tracked.
    fn signal(&self, sig: i32);
    /// Note the descendants that left the group (see `runner::escape`), so that `signal`
    /// still reaches them. Nothing for a fake child.
    fn track_escapees(&mut self, tree: &super::escape::Tree, me: u32) {
        let _ = (tree, me);
    }
    /// After it exited: kill what is left of its group, reap it, return how it ended and
    /// the captured stdout (when the spec asked for it).
    fn reap(&mut self) -> (Ended, Vec<u8>);
    /// A descriptor that becomes readable when it exits (a pidfd), to sleep on.
    fn wait_fd(&self) -> Option<RawFd> {
        None
    }
}

/// Starts task processes.
pub trait Spawner: Send + Sync {
    fn spawn(&self, spec: &Spec) -> Result<Box<dyn Proc>>;

    /// Sleep until one of `procs` exits or `timeout` passes.
    fn wait_any(&self, procs: &[&dyn Proc], timeout: Duration) {
        process::wait_fds(procs.iter().map(|p| p.wait_fd()), timeout);
    }
}

/// Real processes.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsSpawner;

impl Spawner for OsSpawner {
    fn spawn(&self, spec: &Spec) -> Result<Box<dyn Proc>> {
        Ok(Box::new(process::spawn(spec)?))
    }
}

impl Proc for process::Child {
    fn pid(&self) -> u32 {
        self.pid
    }
    fn start(&self) -> u64 {
        self.start
    }
    fn exited(&self) -> bool {
        process::Child::exited(self)
    }
    fn signal(&self, sig: i32) {
        self.signal_all(sig);
    }
    fn track_escapees(&mut self, tree: &super::escape::Tree, me: u32) {
        process::Child::track_escapees(self, tree, me);
    }
    fn reap(&mut self) -> (Ended, Vec<u8>) {
        process::Child::reap(self)
    }
    fn wait_fd(&self) -> Option<RawFd> {
        self.pidfd()
    }
}

impl fmt::Debug for dyn Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Spawner")
    }
}
