//! Triggers: git hooks, cron and the polling watcher (issues 7 and 8). Each owns its
//! session (`hook::session`, `tick`, `watch::session`) and hands the tasks it wants to the engine's
//! one door, `engine::hand_over`; commands parse arguments and present the outcomes.

pub mod cron;
pub mod crontab;
pub mod git;
pub mod hook;
pub mod hooks;
pub mod tick;
pub mod watch;

/// The running bgrun executable, canonical: what an installed hook script and the crontab
/// block call.
pub fn bgrun_exe() -> anyhow::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| crate::error::work(format!("cannot find the bgrun executable: {e}")))?;
    Ok(exe.canonicalize().unwrap_or(exe))
}
