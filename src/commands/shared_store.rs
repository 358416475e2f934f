//! The commands only the shared PostgreSQL store has (issue 16): `store migrate|status` and
//! `worker`. `status`, `results`, `metrics`, `stop`, `cleanup` and `drain` run their one code
//! path for both stores (`engine::board` and `engine::drain_until_empty` pick the store), and
//! enqueues from every source go through `engine::submit`, which routes them to the store.
//! Without a URL nothing here runs and no PostgreSQL code is touched. The text is
//! `present::store`'s.

use anyhow::Result;

use crate::cli::{Command, StoreCommand, WorkerArgs};
use crate::engine::{self, WorkerOpts};
use crate::present::store as view;
use crate::store;
use crate::{Ctx, Exit, error};

/// Run `command` on the shared store when it is one of ours; else hand it back.
pub fn dispatch(ctx: &Ctx, command: Command) -> Result<Result<Exit, Command>> {
    let Some(url) = ctx.store_url.clone() else {
        return match command {
            Command::Store(_) | Command::Worker(_) => Err(error::usage(
                "no shared store configured: give --store postgres://USER@HOST/DB, set \
                 $BGRUN_STORE, or set store.url in the config",
            )),
            c => Ok(Err(c)),
        };
    };
    Ok(Ok(match command {
        Command::Store(StoreCommand::Migrate) => migrate(ctx, &url)?,
        Command::Store(StoreCommand::Status) => store_status(ctx, &url)?,
        Command::Worker(a) => worker(ctx, &url, &a)?,
        c => return Ok(Err(c)),
    }))
}

fn migrate(ctx: &Ctx, url: &str) -> Result<Exit> {
    let (from, to) = store::open_shared_unchecked(url)?.migrate()?;
    view::migrated(&ctx.out, &store::redact(url), from, to)?;
    Ok(Exit::Ok)
}

/// Expired leases are re-queued first, as every command does, unless the schema is old
/// (then the status only says so).
fn store_status(ctx: &Ctx, url: &str) -> Result<Exit> {
    let mut db = store::open_shared_unchecked(url)?;
    if db.schema_version()? == db.latest_schema() {
        engine::requeue_expired(ctx, db.as_mut())?;
    }
    let lease = store::lease_s(ctx.config.store.lease_seconds);
    view::status(ctx.out.json, &db.status(lease)?)?;
    Ok(Exit::Ok)
}

fn worker(ctx: &Ctx, url: &str, a: &WorkerArgs) -> Result<Exit> {
    if a.host_limit == Some(0) {
        return Err(error::usage("--host-limit: must be at least 1"));
    }
    // Connect (schema current) and re-queue expired leases before the first claim.
    let mut db = store::open_shared(url)?;
    engine::requeue_expired(ctx, db.as_mut())?;
    drop(db);
    let fleet = ctx.config.execution.max_concurrent_tasks;
    let opts = WorkerOpts {
        url: url.to_string(),
        host_limit: a.host_limit,
        max_local: store::shared::local_max(fleet, a.host_limit),
        until_empty: false,
    };
    let quiet = ctx.out.quiet() || ctx.out.json;
    let s = engine::work(ctx, &opts, &mut view::Lines { quiet })?;
    view::summary(&ctx.out, &s)?;
    let failed = s.failed > 0;
    Ok(if failed { Exit::WorkFailed } else { Exit::Ok })
}
