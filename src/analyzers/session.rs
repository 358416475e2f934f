//! One foreground analysis (`bgrun analyze`) and the baselines (`bgrun baseline`) of a
//! project: the analyzers' options from the config, the result cache, the changed set
//! (`--changed`, `--since REF`, else the trigger's `$BGRUN_CONTEXT`, else everything), the
//! PATH arguments, and the baseline a report is compared with (the saved one, else the
//! merge-base with the upstream branch, else the previous full result), kept for the next
//! run. What is printed is `present::analyze`'s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use super::baseline::{self, Baseline};
use super::cache::Cache;
use super::changed::{self, ChangeSet};
use super::{BaselineState, Kind, Options, Report, Request, ToolProgress};
use crate::config::Analysis;
use crate::error;

/// The project analyzed: where it is, where bgrun keeps its state, `analysis` of its config.
pub struct Project<'a> {
    pub repo: &'a Path,
    pub state_dir: &'a Path,
    pub analysis: &'a Analysis,
}

/// The changed set, and a warning when the trigger's context could not be read.
pub struct Changed {
    pub set: Option<ChangeSet>,
    pub warning: Option<String>,
}

/// What a foreground analysis (`bgrun analyze`) is asked for.
pub struct Ask<'a> {
    pub kinds: &'a [Kind],
    /// PATH|FILE arguments (see [`resolve_paths`]).
    pub paths: &'a [PathBuf],
    /// `--changed`: the working tree's changes only.
    pub changed: bool,
    /// `--since REF`: the changes since a commit.
    pub since: Option<&'a str>,
    /// `--full`: the whole project even with a changed set.
    pub full: bool,
    /// `--new-only`: drop the findings unchanged since the baseline.
    pub new_only: bool,
}

/// What `bgrun baseline save` kept.
pub struct Saved {
    pub baseline: Baseline,
    pub sha: String,
    pub path: PathBuf,
}

/// `analysis.disabled_tools` naming no known tool: a warning each.
pub fn unknown_disabled(a: &Analysis) -> Vec<String> {
    let known: Vec<&str> = super::registry().iter().map(|t| t.name()).collect();
    a.disabled_tools
        .iter()
        .filter(|d| !known.contains(&d.as_str()))
        .map(|d| {
            format!(
                "analysis.disabled_tools: unknown tool {d:?} (known: {})",
                known.join(", ")
            )
        })
        .collect()
}

/// PATH|FILE arguments (relative to the current directory, like git), each inside the
/// repo. One directory: it becomes the analyzed root (its own tool configs apply). Files
/// or several paths: the repo is the root and the run is limited to them.
pub fn resolve_paths(repo: &Path, paths: &[PathBuf]) -> Result<(PathBuf, Option<Vec<String>>)> {
    let repo_c = repo.canonicalize().unwrap_or_else(|_| repo.to_path_buf());
    let mut rels = Vec::new();
    let mut dirs = Vec::new();
    for p in paths {
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()?.join(p)
        };
        let canon = abs.canonicalize().map_err(|e| {
            error::usage(format!(
                "PATH {}: {e} (give a file or directory inside the project)",
                p.display()
            ))
        })?;
        let Ok(rel) = canon.strip_prefix(&repo_c) else {
            return Err(error::usage(format!(
                "PATH {}: outside the project {} (use -C to pick another project)",
                p.display(),
                repo.display()
            )));
        };
        let rel = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        dirs.push(canon.is_dir());
        rels.push((canon, rel));
    }
    match (rels.as_slice(), dirs.as_slice()) {
        ([], _) => Ok((repo.to_path_buf(), None)),
        ([(canon, _)], [true]) => Ok((canon.clone(), None)),
        _ => Ok((
            repo.to_path_buf(),
            Some(rels.into_iter().map(|(_, r)| r).collect()),
        )),
    }
}

fn save(path: &Path, b: &Baseline) {
    if let Some(d) = path.parent() {
        let _ = crate::fsutil::ensure_private_dir(d);
    }
    if let Ok(bytes) = serde_json::to_vec(b) {
        let _ = crate::fsutil::write_atomic(path, &bytes, false);
    }
}

impl Project<'_> {
    /// Run the analysis `ask` names: the PATH arguments, the changed set, every applicable
    /// tool through the cache (each one's progress to `progress`), then the baseline
    /// comparison. `warn` gets what the person should know first (unknown disabled tools,
    /// an unreadable trigger context).
    pub fn analyze(
        &self,
        ask: &Ask,
        opts: &Options,
        progress: &dyn ToolProgress,
        warn: &mut dyn FnMut(String),
    ) -> Result<Report> {
        let (root, only) = resolve_paths(self.repo, ask.paths)?;
        unknown_disabled(self.analysis)
            .into_iter()
            .for_each(&mut *warn);
        let changed = self.change_set(ask.changed, ask.since)?;
        if let Some(w) = changed.warning {
            warn(w);
        }
        let req = Request {
            only: only.clone(),
            changed: changed.set,
            cache: Some(self.cache()),
            full: ask.full,
        };
        let mut report =
            super::analyze_with_progress(ask.kinds, &root, self.repo, opts, &req, progress);
        self.apply_baseline(&mut report, ask.kinds, only.as_deref(), opts);
        if ask.new_only {
            report
                .findings
                .retain(|f| f.baseline != Some(BaselineState::Unchanged));
            report.finish();
        }
        Ok(report)
    }

    /// The analyzers' options, taking their tools as `tools` says.
    pub fn options(&self, tools: crate::tools::Settings) -> Options {
        let a = self.analysis;
        Options {
            complexity_threshold: a.complexity_threshold,
            large_file_lines: a.large_file_lines,
            tool_timeout: Duration::from_secs(a.tool_timeout_seconds.max(1)),
            disabled: a.disabled_tools.clone(),
            tools,
            python: a.python.as_ref().map(|p| self.repo.join(p)),
        }
    }

    /// The result cache, `<state>/cache/`.
    pub fn cache(&self) -> Cache {
        let mb = self.analysis.cache_max_mb;
        Cache::new(self.state_dir.join("cache"), mb.saturating_mul(1024 * 1024))
    }

    /// `--changed`, `--since REF`, or the trigger's context; None: everything. bgrun's own
    /// state directory is never part of it.
    pub fn change_set(&self, working: bool, since: Option<&str>) -> Result<Changed> {
        let mut c = self.raw_change_set(working, since)?;
        if let (Some(cs), Ok(rel)) = (c.set.as_mut(), self.state_dir.strip_prefix(self.repo)) {
            cs.drop_under(&rel.to_string_lossy());
        }
        Ok(c)
    }

    fn raw_change_set(&self, working: bool, since: Option<&str>) -> Result<Changed> {
        let set = |set| Changed { set, warning: None };
        if working {
            return changed::working(self.repo)
                .map(|c| set(Some(c)))
                .map_err(|e| error::usage(format!("--changed: {e} (is this a git repository?)")));
        }
        if let Some(r) = since {
            return changed::since(self.repo, r)
                .map(|c| set(Some(c)))
                .map_err(|e| {
                    error::usage(format!(
                        "--since {r}: {e} (give a commit, branch or tag: git log --oneline)"
                    ))
                });
        }
        let Some(path) = std::env::var_os("BGRUN_CONTEXT") else {
            return Ok(set(None));
        };
        let context = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        Ok(match context {
            Some(c) => set(changed::from_context(self.repo, &c)),
            None => Changed {
                set: None,
                warning: Some(format!(
                    "$BGRUN_CONTEXT {}: unreadable; analyzing everything",
                    Path::new(&path).display()
                )),
            },
        })
    }

    /// Where baselines live.
    fn baseline_dir(&self) -> PathBuf {
        self.state_dir.join("baseline")
    }

    /// The saved baseline's file.
    pub fn saved_path(&self) -> PathBuf {
        baseline::path(&self.baseline_dir(), "all", "", "saved")
    }

    /// The findings of commit `sha` (its tree exported to a scratch directory, analyzed
    /// through the same cache).
    fn findings_at(
        &self,
        sha: &str,
        kinds: &[Kind],
        root_rel: &str,
        opts: &Options,
    ) -> Result<Report> {
        let scratch = self.state_dir.join("tmp").join(format!(
            "tree-{}-{}",
            std::process::id(),
            &sha[..sha.len().min(12)]
        ));
        let _ = std::fs::remove_dir_all(&scratch);
        let result = changed::export(self.repo, sha, &scratch).map(|()| {
            let root = if root_rel.is_empty() {
                scratch.clone()
            } else {
                scratch.join(root_rel)
            };
            let req = Request {
                cache: Some(self.cache()),
                ..Request::default()
            };
            super::analyze_with(kinds, &root, &scratch, opts, &req)
        });
        let _ = std::fs::remove_dir_all(&scratch);
        result.map_err(|e| error::state(format!("cannot read the tree of {sha}: {e}")))
    }

    /// Which baseline: the saved one; else the merge-base with the upstream branch; else
    /// the previous full result.
    fn select_baseline(&self, report: &Report, kinds: &[Kind], opts: &Options) -> Option<Baseline> {
        let dir = self.baseline_dir();
        if let Some(b) = baseline::load(&self.saved_path()) {
            return Some(b);
        }
        if let Some(mb) = changed::upstream_merge_base(self.repo) {
            let p = baseline::path(&dir, &report.kind, &report.root, "merge-base");
            if let Some(b) = baseline::load(&p).filter(|b| b.commit.as_deref() == Some(mb.as_str()))
            {
                return Some(b);
            }
            if let Ok(r) = self.findings_at(&mb, kinds, &report.root, opts) {
                let b = Baseline::of(&r, "merge-base", Some(mb));
                save(&p, &b);
                return Some(b);
            }
        }
        baseline::load(&baseline::path(
            &dir,
            &report.kind,
            &report.root,
            "previous",
        ))
    }

    /// Compare with the baseline; then keep this result as the next run's "previous" (a
    /// tool that did not run now keeps its previous findings there).
    pub fn apply_baseline(
        &self,
        report: &mut Report,
        kinds: &[Kind],
        only: Option<&[String]>,
        opts: &Options,
    ) {
        let root = report.root.clone();
        let in_scope = |f: &str| {
            (root.is_empty() || super::selected(std::slice::from_ref(&root), f))
                && only.is_none_or(|o| super::selected(o, f))
        };
        let base = self.select_baseline(report, kinds, opts);
        if let Some(b) = &base {
            let renames = b
                .commit
                .as_deref()
                .and_then(|c| changed::since(self.repo, c).ok())
                .map(|cs| cs.renamed)
                .unwrap_or_default();
            let info = baseline::compare(report, b, &renames, &in_scope);
            report.baseline = Some(info);
        }
        if only.is_some() || report.not_run.is_some() {
            return;
        }
        let prev_path =
            baseline::path(&self.baseline_dir(), &report.kind, &report.root, "previous");
        let mut next = Baseline::of(report, "previous", changed::resolve(self.repo, "HEAD"));
        if let Some(old) = baseline::load(&prev_path) {
            for t in &old.tools {
                if !next.tools.contains(t) {
                    next.findings
                        .extend(old.findings.iter().filter(|f| &f.tool == t).cloned());
                    next.tools.push(t.clone());
                }
            }
        }
        save(&prev_path, &next);
    }

    /// `bgrun baseline save`: the findings of `reference` (default HEAD) kept as the saved
    /// baseline.
    pub fn save_baseline(
        &self,
        reference: Option<String>,
        kinds: &[Kind],
        opts: &Options,
    ) -> Result<Saved> {
        let r = reference.unwrap_or_else(|| "HEAD".to_string());
        let sha = changed::resolve(self.repo, &r).ok_or_else(|| {
            error::usage(format!(
                "--ref {r}: names no commit (give a commit, branch or tag: git log --oneline)"
            ))
        })?;
        let report = self.findings_at(&sha, kinds, "", opts)?;
        let mut b = Baseline::of(&report, "saved", Some(sha.clone()));
        b.reference = Some(r);
        let path = self.saved_path();
        save(&path, &b);
        Ok(Saved {
            baseline: b,
            sha,
            path,
        })
    }

    /// `bgrun baseline clear`: whether there was a saved baseline to remove.
    pub fn clear_baseline(&self) -> Result<bool> {
        crate::fsutil::remove_if_present(&self.saved_path())
    }
}
