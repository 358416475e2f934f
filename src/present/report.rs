//! What `bgrun report` shows besides the HTML itself (`crate::report` renders that): the
//! project's name, the new-vs-fixed points of its baseline chart read from the stored
//! reports, and the line that says where the report went.

use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

use super::print_json;
use crate::output::Output;
use crate::results::TaskResult;

/// Reports read for the new-vs-fixed chart (the newest runs).
const BASELINE_RUNS: usize = 200;

/// The project's name: the repository's directory name.
pub fn project(repo: &Path) -> String {
    repo.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| repo.display().to_string())
}

/// Per analyzer run, oldest first, of the newest [`BASELINE_RUNS`] with a stored report that
/// has baseline data: (finished at, new findings, fixed findings). `rs` is newest first.
pub fn baseline_runs(rs: &[TaskResult]) -> Vec<(f64, u64, u64)> {
    let mut runs: Vec<(f64, u64, u64)> = rs
        .iter()
        .filter(|r| r.report_path.is_some())
        .take(BASELINE_RUNS)
        .filter_map(|r| {
            let rep = r
                .report_path
                .as_ref()
                .and_then(|p| std::fs::read(p).ok())
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())?;
            let (new, fixed) = new_and_fixed(&rep)?;
            Some((r.finished_ts(), new, fixed))
        })
        .collect();
    runs.reverse();
    runs
}

/// The new and fixed findings of a report, when it has baseline data.
fn new_and_fixed(rep: &Value) -> Option<(u64, u64)> {
    let findings = rep.get("findings").and_then(Value::as_array);
    let has = findings.is_some_and(|f| f.iter().any(|x| x.get("baseline").is_some()))
        || rep.get("fixed").is_some();
    if !has {
        return None;
    }
    let new = findings
        .into_iter()
        .flatten()
        .filter(|f| f.get("baseline").and_then(Value::as_str) == Some("new"))
        .count() as u64;
    let fixed = rep
        .get("fixed")
        .and_then(Value::as_array)
        .map_or(0, |f| f.len() as u64);
    Some((new, fixed))
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
    fn only_reports_with_baseline_data_count() {
        let rep = json!({"findings": [{"baseline": "new"}, {"baseline": "unchanged"}, {}],
                         "fixed": [{}, {}]});
        assert_eq!(new_and_fixed(&rep), Some((1, 2)));
        assert_eq!(new_and_fixed(&json!({"fixed": []})), Some((0, 0)));
        assert_eq!(
            new_and_fixed(&json!({"findings": [{"severity": "low"}]})),
            None
        );
        assert_eq!(project(Path::new("/x/my repo")), "my repo");
    }
}
