//! `bgrun trust [--show]`, `bgrun untrust` and `bgrun config diff` (the gate that asks for
//! trust is `gate`). The decisions are `crate::trust`'s, the text is `present::trust`'s.

use anyhow::Result;

use crate::cli::GlobalArgs;
use crate::config::{self, Source};
use crate::present::trust as view;
use crate::trust::{self, Subject};
use crate::{Exit, resolve_repo};

/// The repository and its discovered config.
fn discovered(g: &GlobalArgs) -> Result<(std::path::PathBuf, Source)> {
    let repo = resolve_repo(g.repo.as_deref())?;
    let source = config::discover(g.config.as_deref(), &repo);
    Ok((repo, source))
}

pub fn run_trust(g: &GlobalArgs, show: bool) -> Result<Exit> {
    let (repo, source) = discovered(g)?;
    let subject = trust::subject(&repo, &source);
    if show {
        let tools = trust::repo_trusted(&repo);
        view::repo_tools(g.json, &repo, tools);
        match &subject {
            Subject::Committed(p) => view::shown_committed(g.json, p, &trust::standing(p)?, tools)?,
            Subject::Own(p) => view::shown_needing_none(g.json, Some(p), tools)?,
            Subject::Defaults => view::shown_needing_none(g.json, None, tools)?,
        }
        return Ok(Exit::Ok);
    }
    trust::trust_repo(&repo)?;
    view::repo_trusted(&repo);
    match &subject {
        Subject::Committed(path) => view::config_trusted(path, &trust::trust(path)?),
        Subject::Own(path) => view::needs_no_trust(Some(path)),
        Subject::Defaults => view::needs_no_trust(None),
    }
    Ok(Exit::Ok)
}

pub fn run_untrust(g: &GlobalArgs) -> Result<Exit> {
    let (repo, source) = discovered(g)?;
    if trust::untrust_repo(&repo) {
        view::repo_untrusted(&repo);
    }
    match &source {
        Source::File(path) => view::untrusted(Some((path, trust::untrust(path)?))),
        Source::Embedded => view::untrusted(None),
    }
    Ok(Exit::Ok)
}

pub fn run_diff(g: &GlobalArgs) -> Result<Exit> {
    match &discovered(g)?.1 {
        Source::File(path) => view::review(Some((path, &trust::review(path)?))),
        Source::Embedded => view::review(None),
    }
    Ok(Exit::Ok)
}
