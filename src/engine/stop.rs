//! Stopping tasks and waiting for them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::Env;
use super::{commit, open_store};
use crate::error;
use crate::results::TaskResult;
use crate::runner::process;
use crate::state::procs;
use crate::state::task::Status;
use crate::store::{Durability, Removal};
use crate::timefmt::{self, now};

/// What `stop` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Stopped {
    pub removed: Vec<String>,
    pub signalled: Vec<String>,
    pub not_found: Vec<String>,
    pub processes: Vec<u32>,
}

/// Cancel tasks: queued ones are removed (recorded as cancelled), running ones are asked
/// to stop (their drainer records them) and their group gets SIGTERM now and SIGKILL after
/// the grace period. With `all`, drainers and watchers are stopped too.
pub fn stop(env: &Env, ids: &[String], all: bool) -> Result<Stopped> {
    let mut out = Stopped::default();
    let at = now();
    let mut store = open_store(env);
    let mut txn = store.begin()?;
    let state = txn.state()?;
    let targets: Vec<String> = if all {
        state
            .queued
            .keys()
            .chain(state.running.keys())
            .cloned()
            .collect()
    } else {
        ids.to_vec()
    };
    let mut cancelled = Vec::new();
    let mut groups = Vec::new();
    for id in targets {
        let state = txn.state()?;
        if let Some(t) = state.queued.get(&id) {
            let mut r = t.base_result(t.attempt, at);
            r.status = Status::Cancelled;
            r.error = Some("cancelled by `bgrun stop` before it started".to_string());
            cancelled.push(r);
            txn.remove_queued(&id, Removal::Cancelled)?;
            out.removed.push(id);
        } else if let Some(r) = state.running.get(&id) {
            if let (Some(pid), Some(start)) = (r.pid, r.pid_start) {
                groups.push((pid, start));
            }
            txn.request_stop(&id)?;
            out.signalled.push(id);
        } else {
            out.not_found.push(id);
        }
    }
    if !cancelled.is_empty() {
        let st = txn.state()?;
        let (queued, running) = (st.queued.len(), st.running.len());
        for r in cancelled {
            txn.save_result(r, queued, running);
        }
    }
    commit(env, txn, Durability::Now)?;
    for (pid, start) in &groups {
        if process::proc_start_time(*pid).is_none_or(|s| s == *start) {
            process::signal_group(*pid, libc::SIGCONT);
            process::signal_group(*pid, libc::SIGTERM);
        }
    }
    if all {
        for p in procs::alive(&env.state_dir, None) {
            if p.pid != std::process::id() {
                // SAFETY: plain kill of a registered bgrun process.
                unsafe {
                    libc::kill(p.pid as i32, libc::SIGTERM);
                }
                out.processes.push(p.pid);
            }
        }
    }
    // Give the groups their grace, then make sure.
    let grace =
        Instant::now() + Duration::from_secs(env.config.execution.kill_grace_seconds.min(86_400));
    while Instant::now() < grace && groups.iter().any(|(p, _)| process::group_alive(*p)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for (pid, _) in &groups {
        process::signal_group(*pid, libc::SIGKILL);
    }
    Ok(out)
}

/// Wait until every task in `ids` has a final result (no retry pending), or `timeout`.
pub fn wait_for(env: &Env, ids: &[String], timeout: Duration) -> Result<Vec<TaskResult>> {
    let deadline = Instant::now() + timeout;
    let store = open_store(env);
    let mut found: HashMap<String, TaskResult> = HashMap::new();
    loop {
        for id in ids {
            if found.contains_key(id) {
                continue;
            }
            if let Some(r) = store.results(Some(id), 1)?.into_iter().next()
                && !r.will_retry
            {
                found.insert(id.clone(), r);
            }
        }
        if found.len() == ids.len() {
            return Ok(ids.iter().filter_map(|i| found.remove(i)).collect());
        }
        if Instant::now() >= deadline {
            return Err(error::work(format!(
                "gave up waiting for tasks {} after {}s",
                ids.join(", "),
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Seconds since `ts` as a short human duration.
pub fn ago(ts: f64) -> String {
    timefmt::human_duration((now() - ts).max(0.0))
}
