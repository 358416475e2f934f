//! Triggers: git hooks, cron and the polling watcher (issues 7 and 8). They turn events
//! into task requests; `commands` submit them to the engine.

pub mod cron;
pub mod git;
pub mod hooks;
pub mod watch;
