//! The commands only the shared PostgreSQL store has (issue 16): `store migrate|status` and
//! `worker`. `status`, `results`, `metrics`, `stop`, `cleanup` and `drain` run their one code
//! path for both stores (`engine::board` and `engine::drain_until_empty` pick the store), and
//! enqueues from every source go through `engine::submit`, which routes them to the store.
//! Without a URL nothing here runs and no PostgreSQL code is touched.

use anyhow::Result;
use serde_json::json;

use crate::cli::{Command, StoreCommand, WorkerArgs};
use crate::engine::{self, DrainSummary, Progress, WorkerOpts};
use crate::results::TaskResult;
use crate::state::task::Task;
use crate::store::{self, SharedStore};
use crate::timefmt::{now, rfc3339};
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

fn lease(ctx: &Ctx) -> f64 {
    store::lease_s(ctx.config.store.lease_seconds)
}

/// Open the store (schema current) and re-queue expired leases, as every command does.
fn open(ctx: &Ctx, url: &str) -> Result<Box<dyn SharedStore>> {
    let mut db = store::open_shared(url)?;
    engine::requeue_expired(ctx, db.as_mut())?;
    Ok(db)
}

fn migrate(ctx: &Ctx, url: &str) -> Result<Exit> {
    let mut db = store::open_shared_unchecked(url)?;
    let (from, to) = db.migrate()?;
    if ctx.out.json {
        super::print_json(&json!({"from": from, "to": to, "url": store::redact(url)}))?;
    } else if from == to {
        ctx.out
            .say(format!("store schema is current (version {to})"));
    } else {
        ctx.out
            .say(format!("store schema migrated from version {from} to {to}"));
    }
    Ok(Exit::Ok)
}

fn store_status(ctx: &Ctx, url: &str) -> Result<Exit> {
    let mut db = store::open_shared_unchecked(url)?;
    if db.schema_version()? == db.latest_schema() {
        engine::requeue_expired(ctx, db.as_mut())?;
    }
    let s = db.status(lease(ctx))?;
    if ctx.out.json {
        super::print_json(&s)?;
        return Ok(Exit::Ok);
    }
    let plus = if s.capped { "+" } else { "" };
    println!("store      {}", s.url);
    println!(
        "schema     version {} (this bgrun: {}){}",
        s.schema_version,
        s.latest_version,
        if s.schema_version < s.latest_version {
            "  run `bgrun store migrate`"
        } else {
            ""
        }
    );
    println!(
        "tasks      {}{plus} queued, {}{plus} running, {}{plus} done",
        s.queued, s.running, s.done
    );
    println!("workers    {} alive", s.workers.len());
    for w in &s.workers {
        println!(
            "  {:<24} pid {:<8} since {}  running {}",
            w.host, w.pid, w.started_at, w.running
        );
    }
    Ok(Exit::Ok)
}

/// Progress lines of a worker or a store drain.
struct Lines {
    quiet: bool,
    stamp: bool,
}

impl Progress for Lines {
    fn started(&mut self, t: &Task, attempt: u32) {
        if !self.quiet {
            println!(
                "{}started {} {} (attempt {attempt})",
                self.when(),
                t.id,
                t.task_type
            );
        }
    }
    fn finished(&mut self, r: &TaskResult, _queued: usize) {
        if !self.quiet {
            let retry = if r.will_retry { " (will retry)" } else { "" };
            println!(
                "{}{} {} {}{retry}{}",
                self.when(),
                r.status,
                r.id,
                r.task_type,
                r.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        }
    }
}

impl Lines {
    fn when(&self) -> String {
        if self.stamp {
            format!("{} ", rfc3339(now()))
        } else {
            String::new()
        }
    }
}

fn local_max(ctx: &Ctx, host_limit: Option<usize>, flag: Option<usize>) -> usize {
    let fleet = ctx.config.execution.max_concurrent_tasks.max(1);
    flag.unwrap_or(fleet)
        .min(host_limit.unwrap_or(fleet))
        .max(1)
}

fn worker(ctx: &Ctx, url: &str, a: &WorkerArgs) -> Result<Exit> {
    if a.host_limit == Some(0) {
        return Err(error::usage("--host-limit: must be at least 1"));
    }
    drop(open(ctx, url)?);
    let opts = WorkerOpts {
        url: url.to_string(),
        host_limit: a.host_limit,
        max_local: local_max(ctx, a.host_limit, None),
        until_empty: false,
    };
    let mut p = Lines {
        quiet: ctx.out.quiet() || ctx.out.json,
        stamp: true,
    };
    let s = engine::work(ctx, &opts, &mut p)?;
    summary(ctx, &s, false)
}

fn summary(ctx: &Ctx, s: &DrainSummary, background: bool) -> Result<Exit> {
    if ctx.out.json {
        super::print_json(&json!({"ran": s.ran, "failed": s.failed, "results": s.results}))?;
    } else if !background {
        ctx.out
            .say(format!("drained: {} ran, {} failed", s.ran, s.failed));
    }
    Ok(if s.failed > 0 {
        Exit::WorkFailed
    } else {
        Exit::Ok
    })
}
