//! Triggers: git hooks, cron and the polling watcher (issues 7 and 8). Each owns its
//! session (`hook`, `tick`, `watch::session`) and hands the tasks it wants to the engine's
//! one door, `engine::hand_over`; commands parse arguments and present the outcomes.

pub mod cron;
pub mod crontab;
pub mod git;
pub mod hook;
pub mod hooks;
pub mod tick;
pub mod watch;
