//! What `bgrun report` shows besides the HTML itself (`crate::report` renders that): the
//! project's name and the line that says where the report went. (The new-vs-fixed points
//! of its baseline chart come from the stored reports: `results::baseline_runs`.)

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::print_json;
use crate::output::Output;

/// The project's name: the repository's directory name.
pub fn project(repo: &Path) -> String {
    repo.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| repo.display().to_string())
}

/// Where the report was written.
pub fn written(out: &Output, path: &Path) -> Result<()> {
    if out.json {
        return print_json(&json!({"report": path}));
    }
    out.say(format!("report: {}", path.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_is_the_repositorys_directory_name() {
        assert_eq!(project(Path::new("/x/my repo")), "my repo");
    }
}
