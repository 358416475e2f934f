//! Processes that left a task's process group (`setsid`, `setpgid`): the drainer makes
//! itself a child subreaper, so that orphaned descendants of its tasks are re-parented to
//! it instead of init, and this module reads the process tree from `/proc` to find them.
//! A task's timeout, stop and end then reach them by pid (checked against their start
//! time), and its end never waits on a pipe that an escapee holds open.

use std::collections::HashMap;

/// One process, from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    /// Start time in clock ticks since boot (with the pid, an identity).
    pub start: u64,
    pub zombie: bool,
}

/// A snapshot of the process tree.
#[derive(Debug, Default)]
pub struct Tree {
    pub rows: HashMap<u32, Row>,
    children: HashMap<u32, Vec<u32>>,
}

/// Become a child subreaper (Linux): orphans of our descendants are re-parented to us.
pub fn become_subreaper() {
    #[cfg(target_os = "linux")]
    // SAFETY: a plain prctl on this process.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Parse the fields after the command name of `/proc/PID/stat`.
pub fn parse_stat(pid: u32, text: &str) -> Option<Row> {
    let after = text.get(text.rfind(')')? + 2..)?;
    let mut f = after.split_whitespace();
    let state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgid = f.next()?.parse().ok()?;
    let start = f.nth(16)?.parse().ok()?;
    Some(Row {
        pid,
        ppid,
        pgid,
        start,
        zombie: state == "Z" || state == "X",
    })
}

impl Tree {
    /// Read every process from `/proc` (ones that vanish meanwhile are skipped).
    pub fn read() -> Tree {
        let mut t = Tree::default();
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return t;
        };
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                && let Some(row) = parse_stat(pid, &text)
            {
                t.rows.insert(pid, row);
            }
        }
        for r in t.rows.values() {
            t.children.entry(r.ppid).or_default().push(r.pid);
        }
        t
    }

    /// `pid` and all its descendants.
    pub fn subtree(&self, pid: u32) -> Vec<u32> {
        let mut out = vec![pid];
        let mut i = 0;
        while i < out.len() && out.len() < 100_000 {
            if let Some(c) = self.children.get(&out[i]) {
                out.extend(c.iter().copied().filter(|c| *c != pid));
            }
            i += 1;
        }
        out
    }

    /// Direct children of `pid`.
    pub fn children_of(&self, pid: u32) -> &[u32] {
        self.children.get(&pid).map_or(&[], |v| v.as_slice())
    }
}

/// Whether `pid`'s environment carries `var=value`.
pub fn environ_has(pid: u32, var: &str, value: &str) -> bool {
    let needle = format!("{var}={value}\0").into_bytes();
    std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
        memchr::memmem::find_iter(&env, &needle).any(|i| i == 0 || env[i - 1] == 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let line = "42 (a) b (c)) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        let r = parse_stat(42, line).unwrap();
        assert_eq!((r.ppid, r.pgid, r.start, r.zombie), (7, 42, 12345, false));
    }

    #[test]
    fn our_subtree_holds_a_child() {
        let mut c = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let t = Tree::read();
        assert!(t.subtree(std::process::id()).contains(&c.id()));
        let _ = c.kill();
        let _ = c.wait();
    }
}
