//! `bgrun trust [--show]`, `bgrun untrust`, `bgrun config diff`, and the gate every command
//! that would run a configured command goes through. The decisions are `crate::trust`'s,
//! the text is `present::trust`'s.

use anyhow::Result;

use crate::cli::GlobalArgs;
use crate::config::{self, Source};
use crate::notify::{self, Notification, Selection, Severity};
use crate::present::trust as view;
use crate::trust::{self, Subject, Verdict};
use crate::{Ctx, Exit, engine, resolve_repo};

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

/// May this command run the config's commands? Manual commands (`trigger` None) get an
/// error (exit 2) unless `--trust-once`; triggers record and notify, and get `false`.
pub fn gate(ctx: &Ctx, g: &GlobalArgs, trigger: Option<&str>) -> Result<bool> {
    let Verdict::Untrusted { path, known } =
        trust::verdict(&ctx.repo, &ctx.config_source, &ctx.config)
    else {
        return Ok(true);
    };
    if g.trust_once && trigger.is_none() {
        return Ok(true);
    }
    let Some(trigger) = trigger else {
        return Err(trust::refusal(&path, known));
    };
    let msg = trust::skipped(trigger, &path, known);
    engine::log_to(&ctx.state_dir, &msg);
    let n = Notification::custom(Severity::Warning, "bgrun: config changed", &msg);
    notify::dispatch(
        &ctx.config,
        &ctx.repo,
        &ctx.state_dir,
        &n,
        Selection::Configured,
    );
    eprintln!("bgrun: {msg}");
    Ok(false)
}
