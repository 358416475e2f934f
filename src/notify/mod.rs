//! Notifications: console, desktop, file, email and webhook channels (issue 6).

use std::path::Path;

use crate::config::Config;
use crate::results::TaskResult;

/// Called by the engine after every execution: send what the config's rules ask for.
pub fn on_task_finished(_config: &Config, _repo: &Path, _state_dir: &Path, _result: &TaskResult) {}

/// Channels whose last delivery failed: (channel, when, error).
pub fn failing_channels(_state_dir: &Path) -> Vec<(String, String, String)> {
    Vec::new()
}
