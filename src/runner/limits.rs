//! Resource limits, enforced: each task's process tree (its process group: the task leads
//! one, so every descendant that did not leave it counts) is sampled with sysinfo. Over `max_memory_mb` the tree is killed; over `max_cpu_percent` (of the whole
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
        Sampler { sys: None, cpus }
    }

    /// Usage of each process group (keyed by its leader's pid).
    pub fn sample(&mut self, groups: &[u32]) -> HashMap<u32, Usage> {
        let mut out: HashMap<u32, Usage> = groups.iter().map(|s| (*s, Usage::default())).collect();
        if groups.is_empty() {
            return out;
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
}
