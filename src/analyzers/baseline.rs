//! Baseline and only-new: each finding's line-independent fingerprint, and the comparison
//! of a report with a baseline (the findings of an earlier tree), marking each finding
//! `new` or `unchanged` and listing the baseline's findings that are gone (`fixed`).
//!
//! A fingerprint hashes the tool, the rule, the finding's source line with whitespace
//! squeezed (the message when it has no line) and which occurrence of that it is in its
//! file: code moving up or down keeps it. The file is matched apart, through the renames
//! git saw between the baseline's commit and now, so a renamed file keeps its findings
//! `unchanged`. Baselines are stored as JSON under `<state>/baseline/`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cache::digest;
pub use super::findings::BaselineInfo;
use super::findings::{BaselineState, FailedTest, Finding, Report, Status};

/// Source lines of files, read once each.
pub struct Lines<'a> {
    root: &'a Path,
    cache: BTreeMap<String, Vec<String>>,
}

impl<'a> Lines<'a> {
    pub fn new(root: &'a Path) -> Lines<'a> {
        Lines {
            root,
            cache: BTreeMap::new(),
        }
    }

    pub fn get(&mut self, file: &str, line: Option<u64>) -> String {
        let Some(n) = line.filter(|n| *n > 0) else {
            return String::new();
        };
        if file.is_empty() {
            return String::new();
        }
        let root = self.root;
        let lines = self.cache.entry(file.to_string()).or_insert_with(|| {
            std::fs::read(root.join(file))
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .lines()
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        });
        usize::try_from(n - 1)
            .ok()
            .and_then(|i| lines.get(i))
            .cloned()
            .unwrap_or_default()
    }
}

/// The fingerprint of one finding whose source line reads `line_text`, the `occurrence`-th
/// (1-based) of its kind in its file.
pub fn fingerprint(f: &Finding, line_text: &str, occurrence: usize) -> String {
    let squeezed: String = line_text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = if squeezed.is_empty() {
        f.message.as_str()
    } else {
        squeezed.as_str()
    };
    let occ = occurrence.to_string();
    digest(&[
        f.tool.as_bytes(),
        f.rule.as_bytes(),
        text.as_bytes(),
        occ.as_bytes(),
    ])
}

/// Give every finding its fingerprint (source lines read from `repo`). Findings must be in
/// report order (sorted) so occurrences count the same way every time.
pub fn fingerprint_all(findings: &mut [Finding], repo: &Path) {
    let mut lines = Lines::new(repo);
    let mut seen: HashMap<(String, String, String, String), usize> = HashMap::new();
    for f in findings.iter_mut() {
        let text = lines.get(&f.file, f.line);
        let occ = seen
            .entry((f.tool.clone(), f.rule.clone(), f.file.clone(), text.clone()))
            .or_insert(0);
        *occ += 1;
        f.fingerprint = fingerprint(f, &text, *occ);
    }
}

/// A stored baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baseline {
    /// `saved` (bgrun baseline save), `merge-base` (with the upstream), `previous` (the
    /// previous full result).
    pub source: String,
    /// The commit whose tree the findings are of (HEAD at the time for `previous`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The REF the user named.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "ref")]
    pub reference: Option<String>,
    pub generated_at: String,
    /// The tools that ran for it (a tool that did not run cannot have fixed anything).
    #[serde(default)]
    pub tools: Vec<String>,
    pub findings: Vec<Finding>,
    /// Failing tests at the baseline.
    #[serde(default)]
    pub failing_tests: Vec<FailedTest>,
}

impl Baseline {
    pub fn of(report: &Report, source: &str, commit: Option<String>) -> Baseline {
        Baseline {
            source: source.to_string(),
            commit,
            reference: None,
            generated_at: report.generated_at.clone(),
            tools: report
                .tools
                .iter()
                .filter(|t| t.status == Status::Ran)
                .map(|t| t.name.clone())
                .collect(),
            findings: report.findings.clone(),
            failing_tests: report
                .tests
                .as_ref()
                .map(|t| t.failures.clone())
                .unwrap_or_default(),
        }
    }
}

/// Where baselines live: `<state>/baseline/<kind>-<root digest>-<source>.json`.
pub fn path(dir: &Path, kind: &str, root: &str, source: &str) -> PathBuf {
    let r = digest(&[root.as_bytes()]);
    dir.join(format!("{kind}-{}-{source}.json", &r[..12]))
}

pub fn load(path: &Path) -> Option<Baseline> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Mark every finding of `report` against `base`: `new` or `unchanged`; fill `fixed`.
/// `renames` maps files of the baseline to their names now; `in_scope` says which files
/// this report covers (a finding of a file outside it was not looked for, so not fixed).
pub fn compare(
    report: &mut Report,
    base: &Baseline,
    renames: &[(String, String)],
    in_scope: &dyn Fn(&str) -> bool,
) -> BaselineInfo {
    let rename: HashMap<&str, &str> = renames
        .iter()
        .map(|(o, n)| (o.as_str(), n.as_str()))
        .collect();
    let now_file = |f: &str| -> String { rename.get(f).map_or(f, |n| *n).to_string() };
    let mut pool: HashMap<(String, String, String), Vec<usize>> = HashMap::new();
    for (i, f) in base.findings.iter().enumerate() {
        pool.entry((f.tool.clone(), now_file(&f.file), f.fingerprint.clone()))
            .or_default()
            .push(i);
    }
    let mut used = vec![false; base.findings.len()];
    let (mut new, mut unchanged) = (0u64, 0u64);
    for f in &mut report.findings {
        let key = (f.tool.clone(), f.file.clone(), f.fingerprint.clone());
        match pool.get_mut(&key).and_then(Vec::pop) {
            Some(i) => {
                used[i] = true;
                unchanged += 1;
                f.baseline = Some(BaselineState::Unchanged);
            }
            None => {
                new += 1;
                f.baseline = Some(BaselineState::New);
            }
        }
    }
    let ran: Vec<&str> = report
        .tools
        .iter()
        .filter(|t| t.status == Status::Ran)
        .map(|t| t.name.as_str())
        .collect();
    report.fixed = base
        .findings
        .iter()
        .zip(&used)
        .filter(|(f, u)| !**u && ran.contains(&f.tool.as_str()) && in_scope(&now_file(&f.file)))
        .map(|(f, _)| {
            let mut f = f.clone();
            f.file = now_file(&f.file);
            f.baseline = Some(BaselineState::Absent);
            f
        })
        .collect();
    let mut info = BaselineInfo {
        source: base.source.clone(),
        commit: base.commit.clone(),
        reference: base.reference.clone(),
        generated_at: base.generated_at.clone(),
        new,
        unchanged,
        fixed: report.fixed.len() as u64,
        ..BaselineInfo::default()
    };
    // Tests: newly failing, newly passing (only for runners that ran now).
    let runners_ran = report
        .tools
        .iter()
        .any(|t| t.kind == "tests" && t.status == Status::Ran);
    if let Some(t) = &report.tests
        && runners_ran
    {
        let was: Vec<&str> = base.failing_tests.iter().map(|f| f.name.as_str()).collect();
        let is: Vec<&str> = t.failures.iter().map(|f| f.name.as_str()).collect();
        info.newly_failing = t
            .failures
            .iter()
            .filter(|f| !was.contains(&f.name.as_str()))
            .cloned()
            .collect();
        info.newly_passing = base
            .failing_tests
            .iter()
            .filter(|f| !is.contains(&f.name.as_str()))
            .map(|f| f.name.clone())
            .collect();
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzers::{Severity, empty_report};

    fn f(file: &str, fp: &str) -> Finding {
        let mut f = Finding::new("bandit", "B602", Severity::High, file, "shell");
        f.fingerprint = fp.to_string();
        f
    }

    #[test]
    fn new_unchanged_fixed_and_renames() {
        let mut r = empty_report("security");
        r.tools = vec![crate::analyzers::ToolRun::new(
            "bandit",
            "security",
            Status::Ran,
            "",
        )];
        r.findings = vec![f("b.py", "1"), f("b.py", "2"), f("c.py", "9")];
        let base = Baseline {
            source: "previous".into(),
            commit: None,
            reference: None,
            generated_at: "t".into(),
            tools: vec!["bandit".into()],
            findings: vec![
                f("a.py", "1"),
                f("a.py", "2"),
                f("c.py", "3"),
                f("x/out.py", "4"),
            ],
            failing_tests: Vec::new(),
        };
        let renames = vec![("a.py".to_string(), "b.py".to_string())];
        let info = compare(&mut r, &base, &renames, &|file| !file.starts_with("x/"));
        assert_eq!((info.new, info.unchanged, info.fixed), (1, 2, 1));
        assert_eq!(r.findings[2].baseline, Some(BaselineState::New));
        assert_eq!(r.fixed[0].file, "c.py");
        assert_eq!(r.fixed[0].baseline, Some(BaselineState::Absent));
    }

    #[test]
    fn fingerprint_survives_moving_lines() {
        let a = Finding::new("ruff", "F401", Severity::Medium, "m.py", "unused").at(Some(3), None);
        let b = Finding::new("ruff", "F401", Severity::Medium, "m.py", "unused").at(Some(9), None);
        assert_eq!(
            fingerprint(&a, "  import os", 1),
            fingerprint(&b, "import   os", 1)
        );
        assert_ne!(
            fingerprint(&a, "import os", 1),
            fingerprint(&a, "import os", 2)
        );
        assert_ne!(
            fingerprint(&a, "import os", 1),
            fingerprint(&a, "import sys", 1)
        );
    }
}
