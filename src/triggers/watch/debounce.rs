//! Debouncing: the changes seen since a task type last fired, folded into one net change
//! per path, released once no change has been seen for the debounce time. Pure: the
//! caller passes the clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::tree::Changes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Modified,
    Deleted,
}

/// The pending changes of one task type.
#[derive(Debug, Clone)]
pub struct Pending {
    pub debounce: Duration,
    files: BTreeMap<Vec<u8>, Change>,
    last_change: Option<Instant>,
    first_change: Option<Instant>,
}

/// A burst that never pauses still fires after this many debounce periods (at least 10 s).
const MAX_WAIT_FACTOR: u32 = 10;

impl Pending {
    pub fn new(debounce: Duration) -> Pending {
        Pending {
            debounce,
            files: BTreeMap::new(),
            last_change: None,
            first_change: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn paths(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.files.keys()
    }

    /// Fold a poll's changes in.
    pub fn add(&mut self, c: &Changes, now: Instant) {
        if c.is_empty() {
            return;
        }
        let lists = [
            (&c.created, Change::Created),
            (&c.modified, Change::Modified),
            (&c.deleted, Change::Deleted),
        ];
        for (list, kind) in lists {
            for p in list {
                let merged = match (self.files.get(p).copied(), kind) {
                    (None, k) => Some(k),
                    (Some(Change::Created), Change::Deleted) => None,
                    (Some(Change::Created), _) => Some(Change::Created),
                    (Some(Change::Deleted), Change::Created | Change::Modified) => {
                        Some(Change::Modified)
                    }
                    (Some(_), Change::Deleted) => Some(Change::Deleted),
                    (Some(_), _) => Some(Change::Modified),
                };
                match merged {
                    Some(k) => {
                        self.files.insert(p.clone(), k);
                    }
                    None => {
                        self.files.remove(p);
                    }
                }
            }
        }
        self.last_change = Some(now);
        self.first_change.get_or_insert(now);
    }

    /// When it may fire (None: nothing pending).
    pub fn deadline(&self) -> Option<Instant> {
        if self.files.is_empty() {
            return None;
        }
        let quiet = self.last_change? + self.debounce;
        let cap =
            self.first_change? + (self.debounce * MAX_WAIT_FACTOR).max(Duration::from_secs(10));
        Some(quiet.min(cap))
    }

    /// Waited as long as a burst may hold it back: fire even if files are still changing.
    pub fn capped(&self, now: Instant) -> bool {
        self.first_change.is_some_and(|f| {
            now >= f + (self.debounce * MAX_WAIT_FACTOR).max(Duration::from_secs(10))
        })
    }

    pub fn due(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|d| now >= d)
    }

    /// Something is still changing: wait one more debounce period (up to the cap).
    pub fn postpone(&mut self, now: Instant) {
        self.last_change = Some(now);
    }

    /// Take the net changes, sorted.
    pub fn take(&mut self) -> Changes {
        let mut out = Changes::default();
        for (p, k) in std::mem::take(&mut self.files) {
            match k {
                Change::Created => out.created.push(p),
                Change::Modified => out.modified.push(p),
                Change::Deleted => out.deleted.push(p),
            }
        }
        self.last_change = None;
        self.first_change = None;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(c: &[&str], m: &[&str], d: &[&str]) -> Changes {
        let v = |x: &[&str]| x.iter().map(|s| s.as_bytes().to_vec()).collect();
        Changes {
            created: v(c),
            modified: v(m),
            deleted: v(d),
        }
    }

    #[test]
    fn folds_a_burst_into_net_changes() {
        let t0 = Instant::now();
        let mut p = Pending::new(Duration::from_secs(1));
        p.add(&ch(&["new", "tmp"], &["a"], &["gone"]), t0);
        p.add(&ch(&["gone"], &["new", "a"], &["tmp"]), t0);
        assert_eq!(p.take(), ch(&["new"], &["a", "gone"], &[]));
        assert!(p.is_empty());
    }

    #[test]
    fn fires_after_quiet_or_cap() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut p = Pending::new(s);
        assert!(!p.due(t0 + 100 * s));
        p.add(&ch(&[], &["a"], &[]), t0);
        assert!(!p.due(t0));
        assert!(p.due(t0 + s));
        for i in 1..30 {
            p.add(&ch(&[], &["a"], &[]), t0 + s * i / 2);
        }
        // Still changing, but the cap (10 debounces, at least 10 s) fires it.
        assert!(p.due(t0 + 10 * s));
    }
}
