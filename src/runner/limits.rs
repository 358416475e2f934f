//! Resource limits, enforced: each task's process tree (its process group: the task leads
//! one, so every descendant that did not leave it counts) is sampled. On Linux only the
//! tree itself is read (`/proc/PID/task/TID/children` from the leader down, then each
//! member's `stat`), never every process of the machine; elsewhere, or on a kernel without
//! the `children` files, sysinfo scans all processes and keeps the group's. Over
//! `max_memory_mb` the tree is killed; over `max_cpu_percent` (of the whole
//! machine) it is paused with SIGSTOP for the share of time it overdrew, then SIGCONT:
//! a duty cycle that keeps its average under the limit without killing it.

use std::collections::HashMap;

use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};

/// A tree's usage at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub rss_bytes: u64,
    /// Accumulated CPU time of the live tree, in milliseconds.
    pub cpu_ms: u64,
}

pub struct Sampler {
    sys: Option<System>,
    pub cpus: usize,
    /// Whether `/proc/PID/task/TID/children` can be read (Linux with CONFIG_PROC_CHILDREN).
    tree_walk: bool,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Sampler {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Sampler {
            sys: None,
            cpus,
            tree_walk: cfg!(target_os = "linux"),
        }
    }

    /// Usage of each process group (keyed by its leader's pid).
    pub fn sample(&mut self, groups: &[u32]) -> HashMap<u32, Usage> {
        let mut out: HashMap<u32, Usage> = groups.iter().map(|s| (*s, Usage::default())).collect();
        if groups.is_empty() {
            return out;
        }
        #[cfg(target_os = "linux")]
        if self.tree_walk {
            let mut all = true;
            for (leader, u) in out.iter_mut() {
                match proc_tree::usage(*leader) {
                    Some(Some(x)) => *u = x,
                    Some(None) => {} // gone: nothing to count
                    None => all = false,
                }
            }
            if all {
                return out;
            }
            // No `children` files on this kernel: scan every process from now on.
            self.tree_walk = false;
        }
        if self.sys.is_none() {
            self.sys = System::new().ok();
        }
        let Some(sys) = self.sys.as_mut() else {
            return out;
        };
        sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_memory().with_cpu(),
        );
        for p in sys.processes().values() {
            // SAFETY: getpgid only reads; a vanished process gives -1.
            let pgid = unsafe { libc::getpgid(p.pid().as_u32() as libc::pid_t) };
            if let Some(u) = u32::try_from(pgid).ok().and_then(|g| out.get_mut(&g)) {
                u.rss_bytes += p.memory();
                u.cpu_ms += p.accumulated_cpu_time();
            }
        }
        out
    }
}

/// Reading one process tree from /proc.
#[cfg(target_os = "linux")]
pub mod proc_tree {
    use super::Usage;

    /// The fields of `/proc/PID/stat` used here.
    struct Stat {
        pgrp: u32,
        cpu_ticks: u64,
        rss_pages: u64,
    }

    fn stat(pid: u32) -> Option<Stat> {
        let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) may hold anything, even ')': split after the last one.
        let close = text.iter().rposition(|b| *b == b')')?;
        let rest = std::str::from_utf8(text.get(close + 2..)?).ok()?;
        let f: Vec<&str> = rest.split_ascii_whitespace().collect();
        // rest starts at field 3 (state): field N is f[N - 3].
        Some(Stat {
            pgrp: f.get(2)?.parse().ok()?,
            cpu_ticks: f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
            rss_pages: f.get(21)?.parse::<i64>().ok()?.max(0) as u64,
        })
    }

    /// The direct children of every thread of `pid`; None when the kernel has no
    /// `children` files.
    fn children(pid: u32, out: &mut Vec<u32>) -> Option<()> {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok();
        let Some(tasks) = tasks else {
            return Some(()); // gone meanwhile
        };
        for t in tasks.flatten() {
            match std::fs::read_to_string(t.path().join("children")) {
                Ok(list) => out.extend(
                    list.split_ascii_whitespace()
                        .filter_map(|c| c.parse::<u32>().ok()),
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && t.path().exists() => {
                    return None;
                }
                Err(_) => {}
            }
        }
        Some(())
    }

    /// The members of the process group led by `leader` reachable from it, leader first.
    /// `Some(vec![])` when the leader is gone; None without `children` files.
    pub fn members(leader: u32) -> Option<Vec<(u32, u64, u64)>> {
        let mut found = Vec::new();
        let mut stack = vec![leader];
        let mut kids = Vec::new();
        while let Some(pid) = stack.pop() {
            let Some(st) = stat(pid) else {
                continue;
            };
            if st.pgrp != leader {
                continue; // it left the group (setsid / setpgid): not the task's any more
            }
            if found.iter().any(|(p, _, _)| *p == pid) {
                continue;
            }
            found.push((pid, st.cpu_ticks, st.rss_pages));
            kids.clear();
            children(pid, &mut kids)?;
            stack.extend(kids.iter().copied());
        }
        Some(found)
    }

    /// The tree's usage; `Some(None)` when the leader is gone; None without `children` files.
    pub fn usage(leader: u32) -> Option<Option<Usage>> {
        let members = members(leader)?;
        if members.is_empty() {
            return Some(None);
        }
        // SAFETY: sysconf has no preconditions.
        let (tick, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK).max(1) as u64,
                libc::sysconf(libc::_SC_PAGESIZE).max(1) as u64,
            )
        };
        let mut u = Usage::default();
        for (_, ticks, pages) in members {
            u.cpu_ms = u.cpu_ms.saturating_add(ticks.saturating_mul(1000) / tick);
            u.rss_bytes = u.rss_bytes.saturating_add(pages.saturating_mul(page));
        }
        Some(Some(u))
    }
}

/// The CPU governor of one task: decides when to pause and resume its group.
#[derive(Debug, Default)]
pub struct Throttle {
    last_cpu_ms: Option<u64>,
    last_at: f64,
    /// Paused until this time.
    pub paused_until: Option<f64>,
    pub paused_total_s: f64,
}

impl Throttle {
    /// Feed a sample; returns how long to pause now (seconds), if the tree overdrew.
    pub fn observe(&mut self, now: f64, cpu_ms: u64, cpus: usize, max_percent: f64) -> Option<f64> {
        let prev = self.last_cpu_ms.replace(cpu_ms);
        let dt = now - self.last_at;
        self.last_at = now;
        let prev = prev?;
        if dt <= 0.0 || self.paused_until.is_some() {
            return None;
        }
        let used = cpu_ms.saturating_sub(prev) as f64 / 1000.0;
        let allowed = dt * cpus as f64 * max_percent / 100.0;
        if used <= allowed || allowed <= 0.0 {
            return None;
        }
        // Pause long enough that the average over the window falls to the limit.
        let pause = ((used / allowed - 1.0) * dt).min(2.0);
        (pause > 0.005).then_some(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_pauses_in_proportion() {
        let mut t = Throttle::default();
        assert_eq!(t.observe(0.0, 0, 2, 50.0), None);
        // 2 s of CPU in 1 s on 2 cores at a 50 % cap (1 core-second allowed): pause 1 s.
        let p = t.observe(1.0, 2000, 2, 50.0).unwrap();
        assert!((p - 1.0).abs() < 1e-9);
        let mut u = Throttle::default();
        u.observe(0.0, 0, 2, 50.0);
        assert_eq!(u.observe(1.0, 500, 2, 50.0), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_tree_is_read_from_the_leader_down_and_leavers_are_left_out() {
        use std::os::unix::process::CommandExt;
        // sh leads a group with two sleeps in it and one that left it (setsid).
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "sleep 30 & sleep 30 & setsid sleep 30 & echo started; wait",
            ])
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let leader = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut members = Vec::new();
        // Wait until sh has all three children and the third has left the group (setsid
        // runs a moment after its fork: before that it is still a member).
        while std::time::Instant::now() < deadline {
            members = proc_tree::members(leader).expect("children files");
            let kids = std::fs::read_to_string(format!("/proc/{leader}/task/{leader}/children"))
                .unwrap_or_default();
            if kids.split_whitespace().count() >= 3 && members.len() == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let usage = proc_tree::usage(leader).unwrap().unwrap();
        let mut sampler = Sampler::new();
        let sampled = sampler.sample(&[leader])[&leader];
        // Let the setsid sleep reach its own session before the group is killed.
        let all_children =
            std::fs::read_to_string(format!("/proc/{leader}/task/{leader}/children"))
                .unwrap_or_default();
        // SAFETY: kill of the group this test created.
        unsafe {
            libc::kill(-(leader as i32), libc::SIGKILL);
        }
        for pid in all_children
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            // SAFETY: kill of the test's own (grand)children by pid.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = child.wait();
        assert_eq!(members.len(), 3, "sh and its two sleeps: {members:?}");
        assert_eq!(members[0].0, leader);
        assert!(usage.rss_bytes > 0);
        assert!(sampled.rss_bytes > 0);
    }
}
