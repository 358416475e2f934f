//! Spawning and stopping one task: argv (never a shell), its own process group, niced, with a low I/O priority; stdout and stderr into one pipe drained by a
//! thread into a capped log. Waiting uses a pidfd per child so the pool sleeps in `poll`
//! until a child exits or the next deadline, and `wait4` gives its rusage.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

use super::escape::{self, Tree};

/// How to start a task's process.
#[derive(Debug, Clone)]
pub struct Spec {
    pub argv: Vec<OsString>,
    pub cwd: PathBuf,
    pub env: Vec<(OsString, OsString)>,
    pub log: PathBuf,
    pub log_cap: u64,
    /// Nice value added to the child (0..=19).
    pub nice: i32,
    /// ioprio class (1 realtime, 2 best-effort, 3 idle) and level.
    pub ioprio: Option<(u32, u32)>,
    /// Keep stdout apart from the log and return it (a custom analyzer's report), up to
    /// `log_cap` bytes like the log.
    pub capture_stdout: bool,
    /// Variables of bgrun's own environment that the task must not see (secrets).
    pub env_remove: Vec<OsString>,
}

/// A running child.
#[derive(Debug)]
pub struct Child {
    pub pid: u32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat` field 22): with the pid,
    /// an identity that survives pid reuse.
    pub start: u64,
    pidfd: Option<OwnedFd>,
    pump: Option<JoinHandle<()>>,
    stdout: Option<JoinHandle<(Vec<u8>, u64)>>,
    /// Its `BGRUN_CLAIM` mark, which finds its escapees re-parented to the drainer.
    mark: Option<String>,
    /// Descendants that left its process group: (pid, start time).
    pub escaped: Vec<(u32, u64)>,
}

/// How a child ended, from `wait4`.
#[derive(Debug, Clone, Copy)]
pub struct Ended {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Largest resident set of the child or a waited-for descendant, in KiB.
    pub maxrss_kb: u64,
    pub cpu_s: f64,
    /// Bytes of captured stdout dropped past the cap (the report was not read whole).
    pub stdout_dropped: u64,
}

/// Start a task. The child becomes the leader of a new session and process group.
pub fn spawn(spec: &Spec) -> Result<Child> {
    let (program, args) = spec.argv.split_first().context("empty command")?;
    if let Some(dir) = spec.log.parent() {
        crate::state::store::ensure_private_dir(dir)?;
    }
    let log = spec.log.clone();
    let (out_r, out_w) = pipe()?;
    let mut cmd = Command::new(resolve_program(program, &spec.env));
    cmd.args(args).stdin(Stdio::null());
    for k in &spec.env_remove {
        cmd.env_remove(k);
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    let stdout_pipe = if spec.capture_stdout {
        let (r, w) = pipe()?;
        cmd.stdout(Stdio::from(w));
        Some(r)
    } else {
        cmd.stdout(Stdio::from(out_w.try_clone()?));
        None
    };
    cmd.stderr(Stdio::from(out_w));
    // A new process group, so that the whole tree can be signalled; with no pre_exec
    // closure std can use posix_spawn (vfork), which costs no page-table copy. The nice
    // value and I/O class come from the spawning thread (see `spawn_in_place`).
    cmd.process_group(0);
    let child = spawn_in_place(cmd, &spec.cwd, spec.nice, spec.ioprio)
        .with_context(|| format!("cannot start {:?} in {}", program, spec.cwd.display()))?;
    let pid = child.id();
    // The std handle is not used to wait: wait4 below reaps it with its rusage.
    drop(child);
    let start = proc_start_time(pid).unwrap_or(0);
    let pidfd = pidfd_open(pid);
    let cap = spec.log_cap;
    let pump = std::thread::Builder::new()
        .name(format!("log-{pid}"))
        .spawn(move || pump_capped(out_r, log, cap))
        .ok();
    let stdout = stdout_pipe.and_then(|r| {
        std::thread::Builder::new()
            .name(format!("out-{pid}"))
            .spawn(move || read_capped(r, cap))
            .ok()
    });
    let mark = spec
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == CLAIM_VAR)
        .and_then(|(_, v)| v.to_str().map(str::to_string));
    Ok(Child {
        pid,
        start,
        pidfd,
        pump,
        stdout,
        mark,
        escaped: Vec::new(),
    })
}

impl Child {
    /// The pidfd to sleep on until it exits (None on kernels without pidfd_open).
    pub fn pidfd(&self) -> Option<std::os::fd::RawFd> {
        self.pidfd.as_ref().map(|fd| fd.as_raw_fd())
    }

    /// Whether the child has exited; it stays a zombie (its pid held) until [`Child::reap`].
    pub fn exited(&self) -> bool {
        // SAFETY: waitid with WNOWAIT only peeks at the child's state.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                self.pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        r == 0 && unsafe { info.si_pid() } == self.pid as i32
    }

    /// For an exited child: kill what is left of its group while its pid is still held
    /// (no grandchild survives, and no reused pid is hit), reap it with its rusage, wait for
    /// the log pump, and return the captured stdout.
    pub fn reap(&mut self) -> (Ended, Vec<u8>) {
        let tree = Tree::read_under(std::process::id());
        self.track_escapees(&tree, std::process::id());
        self.signal_all(libc::SIGKILL);
        self.signal_all(libc::SIGCONT);
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value to be overwritten.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: plain syscall with valid pointers; the child has exited, so this returns.
        let r = unsafe { libc::wait4(self.pid as i32, &mut status, 0, &mut ru) };
        let (code, signal) = if r != self.pid as i32 {
            (None, None)
        } else if libc::WIFEXITED(status) {
            (Some(libc::WEXITSTATUS(status)), None)
        } else if libc::WIFSIGNALED(status) {
            (None, Some(libc::WTERMSIG(status)))
        } else {
            (None, None)
        };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let mut ended = Ended {
            code,
            signal,
            maxrss_kb: ru.ru_maxrss.max(0) as u64,
            cpu_s: tv(ru.ru_utime) + tv(ru.ru_stime),
            stdout_dropped: 0,
        };
        self.reap_escapees(Duration::from_millis(200));
        // The pipes close once every holder is gone; one that is still held (by a process
        // that escaped even the subreaper) is not waited for past a bound.
        let bound = std::time::Instant::now() + Duration::from_secs(2);
        let ready = |h: &Option<JoinHandle<(Vec<u8>, u64)>>, p: &Option<JoinHandle<()>>| {
            h.as_ref().is_none_or(|h| h.is_finished()) && p.as_ref().is_none_or(|p| p.is_finished())
        };
        while !ready(&self.stdout, &self.pump) && std::time::Instant::now() < bound {
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(p) = self.pump.take().filter(|p| p.is_finished()) {
            let _ = p.join();
        }
        let (out, dropped) = self
            .stdout
            .take()
            .filter(|h| h.is_finished())
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        ended.stdout_dropped = dropped;
        (ended, out)
    }

    /// Signal its process group and every known escapee (whose identity still holds).
    pub fn signal_all(&self, sig: i32) {
        signal_group(self.pid, sig);
        for (pid, start) in &self.escaped {
            if proc_start_time(*pid) == Some(*start) {
                // SAFETY: plain kill of a process we identified by pid and start time.
                unsafe {
                    libc::kill(*pid as i32, sig);
                }
            }
        }
    }

    /// Record the descendants that left its group: those under its leader (or under an
    /// escapee already known) outside the group, and orphans re-parented to `me` (the
    /// subreaper) that carry its mark. Escapees that died as our children are reaped.
    pub fn track_escapees(&mut self, tree: &Tree, me: u32) {
        let mut roots: Vec<u32> = vec![self.pid];
        roots.extend(self.escaped.iter().map(|(p, _)| *p));
        if let Some(mark) = &self.mark {
            for c in tree.children_of(me) {
                if *c != self.pid
                    && !roots.contains(c)
                    && tree.rows.get(c).is_some_and(|r| !r.zombie)
                    && escape::environ_has(*c, CLAIM_VAR, mark)
                {
                    roots.push(*c);
                }
            }
        }
        for root in roots {
            for pid in tree.subtree(root) {
                let Some(row) = tree.rows.get(&pid) else {
                    continue;
                };
                if row.pgid == self.pid
                    || row.zombie
                    || self
                        .escaped
                        .iter()
                        .any(|(p, s)| *p == pid && *s == row.start)
                {
                    continue;
                }
                self.escaped.push((pid, row.start));
            }
        }
        // Forget the dead; reap those that were re-parented to us.
        self.escaped
            .retain(|(pid, start)| match tree.rows.get(pid) {
                Some(r) if r.start == *start && !r.zombie => true,
                Some(r) if r.start == *start && r.ppid == me => {
                    reap_pid(*pid);
                    false
                }
                _ => false,
            });
    }

    /// Reap the escapees that are our children (killed just before), waiting up to `bound`.
    fn reap_escapees(&mut self, bound: Duration) {
        if self.escaped.is_empty() {
            // Nothing escaped: no second read of the process tree (a dozen /proc files).
            return;
        }
        let me = std::process::id();
        let end = std::time::Instant::now() + bound;
        loop {
            let tree = Tree::read_under(std::process::id());
            self.escaped.retain(|(pid, start)| {
                match tree.rows.get(pid).filter(|r| r.start == *start) {
                    Some(r) if r.zombie && r.ppid == me => {
                        reap_pid(*pid);
                        false
                    }
                    Some(r) => !r.zombie,
                    None => false,
                }
            });
            if self.escaped.is_empty() || std::time::Instant::now() >= end {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Reap one exited child without blocking.
fn reap_pid(pid: u32) {
    let mut status = 0;
    // SAFETY: waitpid with WNOHANG on a pid that is our child (or ECHILD).
    unsafe {
        libc::waitpid(pid as i32, &mut status, libc::WNOHANG);
    }
}

/// Sleep until one of `children` exits or `timeout` passes (EINTR returns early).
pub fn wait_any(children: &[&Child], timeout: Duration) {
    wait_fds(children.iter().map(|c| c.pidfd()), timeout);
}

/// Sleep until one of the exit descriptors is readable or `timeout` passes; a child
/// without one (no pidfd) is polled every 5 ms.
pub fn wait_fds(fds: impl IntoIterator<Item = Option<RawFd>>, timeout: Duration) {
    poll_fds(fds, None, timeout);
}

/// Like [`wait_fds`], and also wakes when `extra` (e.g. a notification pipe) is readable.
pub fn wait_fds_or(fds: impl IntoIterator<Item = Option<RawFd>>, extra: RawFd, timeout: Duration) {
    poll_fds(fds, Some(extra), timeout);
}

fn poll_fds(fds: impl IntoIterator<Item = Option<RawFd>>, extra: Option<RawFd>, timeout: Duration) {
    let mut all = true;
    let mut polled: Vec<libc::pollfd> = Vec::new();
    for fd in fds {
        match fd {
            Some(fd) => polled.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            }),
            None => all = false,
        }
    }
    if let Some(fd) = extra {
        polled.push(libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
    }
    let ms = if all {
        timeout.as_millis().min(i32::MAX as u128) as i32
    } else {
        timeout.as_millis().min(5) as i32
    };
    // SAFETY: polled is a valid array of pollfd (poll with none just sleeps).
    unsafe {
        libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, ms);
    }
}

/// Spawn `cmd` in directory `cwd` from a thread whose nice value and I/O priority are those
/// the task should have: on Linux both are per thread and a child inherits its parent
/// thread's, so the child starts niced without a `pre_exec` hook (which would force a full
/// fork). One such thread lives per (nice, ioprio) for the life of the process. The command
/// is dropped on that thread after spawning, which closes the parent's copies of the pipe
/// write ends.
///
/// The directory, too, is the thread's own (see `super::workdir`): it changes to `cwd`
/// before each spawn, and the child starts there.
#[cfg(target_os = "linux")]
fn spawn_in_place(
    cmd: Command,
    cwd: &Path,
    nice: i32,
    ioprio: Option<(u32, u32)>,
) -> std::io::Result<std::process::Child> {
    use std::collections::HashMap;
    use std::sync::mpsc::{Sender, channel};
    use std::sync::{Mutex, OnceLock};
    type Job = (
        Command,
        PathBuf,
        Sender<std::io::Result<std::process::Child>>,
    );
    type Spawners = HashMap<(i32, Option<(u32, u32)>), Sender<Job>>;
    static SPAWNERS: OnceLock<Mutex<Spawners>> = OnceLock::new();
    let tx = {
        let mut map = SPAWNERS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.entry((nice, ioprio))
            .or_insert_with(|| {
                let (tx, rx) = channel::<Job>();
                let _ = std::thread::Builder::new()
                    .name("spawner".into())
                    .spawn(move || {
                        let own_dir = super::workdir::leave_shared();
                        // SAFETY: plain syscalls on this thread only.
                        unsafe {
                            let tid = libc::gettid();
                            if nice > 0 {
                                libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice);
                            }
                            if let Some((class, level)) = ioprio {
                                // ioprio_set(IOPRIO_WHO_PROCESS, tid, class << 13 | level).
                                libc::syscall(
                                    libc::SYS_ioprio_set,
                                    1,
                                    tid,
                                    ((class << 13) | level) as libc::c_int,
                                );
                            }
                        }
                        for (mut cmd, cwd, reply) in rx {
                            let _ = reply.send(super::workdir::spawn_in(&mut cmd, &cwd, own_dir));
                        }
                    });
                tx
            })
            .clone()
    };
    let (reply_tx, reply_rx) = channel();
    let fallback = std::io::Error::other("the spawner thread is gone");
    match tx.send((cmd, cwd.to_path_buf(), reply_tx)) {
        Ok(()) => reply_rx.recv().unwrap_or(Err(fallback)),
        Err(std::sync::mpsc::SendError((mut cmd, cwd, _))) => {
            cmd.current_dir(cwd);
            // Without the thread: set the priorities in the child instead.
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if nice > 0 {
                        libc::setpriority(libc::PRIO_PROCESS, 0, nice);
                    }
                    Ok(())
                });
            }
            cmd.spawn()
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn spawn_in_place(
    mut cmd: Command,
    cwd: &Path,
    nice: i32,
    _ioprio: Option<(u32, u32)>,
) -> std::io::Result<std::process::Child> {
    cmd.current_dir(cwd);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if nice > 0 {
                libc::setpriority(libc::PRIO_PROCESS, 0, nice);
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// A bare program name resolved against PATH (the task's own, if its env sets one), once
/// per name and PATH for the life of the process: the child then execs once instead of
/// trying every PATH entry. A name that is not found is left for exec to report.
fn resolve_program(program: &std::ffi::OsStr, env: &[(OsString, OsString)]) -> PathBuf {
    use std::collections::HashMap;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Mutex, OnceLock};
    if program.as_bytes().contains(&b'/') {
        return PathBuf::from(program);
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    static CACHE: OnceLock<Mutex<HashMap<(OsString, OsString), PathBuf>>> = OnceLock::new();
    let key = (program.to_os_string(), path.clone());
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = cache.get(&key) {
        return p.clone();
    }
    let found = std::env::split_paths(&path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        });
    match found {
        Some(p) => {
            cache.insert(key, p.clone());
            p
        }
        None => PathBuf::from(program),
    }
}

/// Send `sig` to the process group `pgid` (ESRCH is ignored).
pub fn signal_group(pgid: u32, sig: i32) {
    if pgid > 1 {
        // SAFETY: kill with a negative pid signals a group.
        unsafe {
            libc::kill(-(pgid as i32), sig);
        }
    }
}

/// Whether any process is left in group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    pgid > 1 && unsafe { libc::kill(-(pgid as i32), 0) } == 0
}

/// Kill a task's leftover group after its drainer died, unless the pid now belongs to an
/// unrelated process (pid reuse: the leader is alive with another start time). Waits up to
/// `grace` for TERM, then KILLs, and returns whether the group is gone.
pub fn kill_leftover_group(pgid: u32, leader_start: u64, grace: Duration) -> bool {
    if let Some(now_start) = proc_start_time(pgid)
        && now_start != leader_start
        && leader_start != 0
    {
        // The pid was reused: no leader of ours; an old group can no longer exist
        // under a pid that was handed out again.
        return true;
    }
    if !group_alive(pgid) {
        return true;
    }
    signal_group(pgid, libc::SIGCONT);
    signal_group(pgid, libc::SIGTERM);
    let deadline = std::time::Instant::now() + grace.min(Duration::from_secs(86_400));
    while std::time::Instant::now() < deadline {
        if !group_alive(pgid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal_group(pgid, libc::SIGKILL);
    for _ in 0..100 {
        if !group_alive(pgid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !group_alive(pgid)
}

/// The environment entry that marks every process of one claimed attempt, so that a claim
/// whose pid never reached the journal (its drainer died between the spawn and the append)
/// can still be found: `BGRUN_CLAIM=<drainer token>/<task id>/<attempt>`.
pub const CLAIM_VAR: &str = "BGRUN_CLAIM";

pub fn claim_mark(drainer: &str, id: &str, attempt: u32) -> String {
    format!("{drainer}/{id}/{attempt}")
}

/// Live processes whose environment carries `BGRUN_CLAIM=<mark>` (read from
/// `/proc/PID/environ`; processes that cannot be read are skipped).
pub fn processes_with_claim(mark: &str) -> Vec<u32> {
    let needle = format!("{CLAIM_VAR}={mark}\0").into_bytes();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ"))
            && memchr::memmem::find(&env, &needle).is_some_and(|i| i == 0 || env[i - 1] == 0)
        {
            out.push(pid);
        }
    }
    out
}

/// Kill every process of a claimed attempt found by its environment: TERM, then KILL after
/// `grace`. Returns whether none is left.
pub fn kill_claimed(mark: &str, grace: Duration) -> bool {
    let signal_all = |sig| {
        for pid in processes_with_claim(mark) {
            // SAFETY: plain kill; a vanished pid gives ESRCH.
            unsafe {
                libc::kill(pid as i32, sig);
            }
        }
    };
    if processes_with_claim(mark).is_empty() {
        return true;
    }
    signal_all(libc::SIGCONT);
    signal_all(libc::SIGTERM);
    let deadline = std::time::Instant::now() + grace.min(Duration::from_secs(86_400));
    while std::time::Instant::now() < deadline {
        if processes_with_claim(mark).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal_all(libc::SIGKILL);
    for _ in 0..100 {
        if processes_with_claim(mark).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// A process's start time in clock ticks since boot, from `/proc/PID/stat`.
pub fn proc_start_time(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: pipe2 returned two fresh descriptors that we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: pidfd_open returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd >= 0 {
            // SAFETY: fd is a fresh descriptor we own.
            return Some(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
    }
    let _ = pid;
    None
}

/// Copy a pipe into the log up to `cap` bytes; keep draining past it so the child never
/// blocks on a full pipe, and say how much was dropped. The log is created on the first
/// byte: a silent task costs no file.
fn pump_capped(r: OwnedFd, path: PathBuf, cap: u64) {
    let mut src = File::from(r);
    let mut buf = [0u8; 16384];
    let mut log: Option<File> = None;
    let mut written = 0u64;
    let mut dropped = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if log.is_none() {
            log = std::fs::OpenOptions::new()
                .custom_flags(libc::O_NOFOLLOW)
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .ok();
        }
        let room = cap.saturating_sub(written) as usize;
        let take = room.min(n);
        if let Some(f) = log.as_mut().filter(|_| take > 0)
            && f.write_all(&buf[..take]).is_ok()
        {
            written += take as u64;
        }
        dropped += (n - take) as u64;
    }
    if let (Some(f), true) = (log.as_mut(), dropped > 0) {
        let _ = writeln!(
            f,
            "\n[bgrun: log capped at {} KiB; {dropped} more bytes dropped]",
            cap / 1024
        );
    }
}

/// Read a pipe to its end, keeping at most `cap` bytes; returns them and how many more
/// were drained and dropped (the child never blocks on a full pipe).
fn read_capped(r: OwnedFd, cap: u64) -> (Vec<u8>, u64) {
    let mut src = File::from(r);
    let mut kept = Vec::new();
    let mut dropped = 0u64;
    let mut buf = [0u8; 16384];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let room = usize::try_from(cap.saturating_sub(kept.len() as u64)).unwrap_or(usize::MAX);
        let take = room.min(n);
        kept.extend_from_slice(&buf[..take]);
        dropped = dropped.saturating_add((n - take) as u64);
    }
    (kept, dropped)
}

/// Path of a task's log.
pub fn log_path(state_dir: &Path, id: &str, attempt: u32) -> PathBuf {
    state_dir.join("logs").join(format!("{id}-{attempt}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pwd_in(dir: &Path, log: &Path) -> Spec {
        Spec {
            argv: vec!["pwd".into(), "-P".into()],
            cwd: dir.to_path_buf(),
            env: Vec::new(),
            log: log.to_path_buf(),
            log_cap: 1 << 20,
            nice: 0,
            ioprio: None,
            capture_stdout: true,
            env_remove: Vec::new(),
        }
    }

    /// Each task starts in its own directory, set on the spawner thread alone: the
    /// process's working directory does not move, and a missing directory is an error.
    #[test]
    fn a_task_starts_in_its_directory_and_the_process_stays_where_it_was() {
        let before = std::env::current_dir().expect("cwd");
        let tmp = std::env::temp_dir().join(format!("bgrun-cwd-{}", std::process::id()));
        let (a, b) = (tmp.join("a dir"), tmp.join("b\ndir"));
        std::fs::create_dir_all(&a).expect("a");
        std::fs::create_dir_all(&b).expect("b");
        for dir in [&a, &b, &a] {
            let mut child = spawn(&pwd_in(dir, &tmp.join("log"))).expect("spawn");
            while !child.exited() {
                std::thread::sleep(Duration::from_millis(5));
            }
            let (ended, out) = child.reap();
            assert_eq!(ended.code, Some(0));
            let want = dir.canonicalize().expect("canonical");
            let mut want = want.into_os_string().into_encoded_bytes();
            want.push(b'\n');
            assert_eq!(out, want);
            assert_eq!(std::env::current_dir().expect("cwd"), before);
        }
        let err = spawn(&pwd_in(&tmp.join("gone"), &tmp.join("log"))).expect_err("missing dir");
        assert!(format!("{err:#}").contains("gone"), "{err:#}");
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
