//! The commands on the shared PostgreSQL store (issue 16): `store migrate|status`, `worker`,
//! and `drain`, `status`, `results` when a store URL is configured (enqueues from every
//! source go through `engine::submit`, which routes them to the store). Every one of them
//! first re-queues the tasks whose lease expired. Without a URL nothing here runs and
//! no PostgreSQL code is touched.

use anyhow::Result;
use serde_json::{Value, json};

use crate::cli::{Command, DrainArgs, ResultsArgs, StopArgs, StoreCommand, WorkerArgs};
use crate::engine::{self, DrainSummary, Progress, WorkerOpts};
use crate::pgstore::{self, PgStore};
use crate::results::TaskResult;
use crate::state::task::Task;
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
        Command::Drain(a) => drain(ctx, &url, &a)?,
        Command::Status(_) => status(ctx, &url)?,
        Command::Results(a) => results(ctx, &url, &a)?,
        Command::Metrics => metrics(ctx, &url)?,
        Command::Stop(a) => stop(ctx, &url, &a)?,
        Command::Cleanup => cleanup(ctx, &url)?,
        c => return Ok(Err(c)),
    }))
}

fn lease(ctx: &Ctx) -> f64 {
    pgstore::lease_s(ctx.config.store.lease_seconds)
}

/// Open the store (schema current) and re-queue expired leases, as every command does.
fn open(ctx: &Ctx, url: &str) -> Result<PgStore> {
    let mut db = PgStore::open(url)?;
    engine::requeue_expired(ctx, &mut db)?;
    Ok(db)
}

fn migrate(ctx: &Ctx, url: &str) -> Result<Exit> {
    let mut db = PgStore::open_unchecked(url)?;
    let (from, to) = db.migrate()?;
    if ctx.out.json {
        super::print_json(&json!({"from": from, "to": to, "url": pgstore::redact(url)}))?;
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
    let mut db = PgStore::open_unchecked(url)?;
    if db.schema_version()? == pgstore::schema::latest() {
        engine::requeue_expired(ctx, &mut db)?;
    }
    let s = db.status(url, lease(ctx))?;
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

fn drain(ctx: &Ctx, url: &str, a: &DrainArgs) -> Result<Exit> {
    drop(open(ctx, url)?);
    let opts = WorkerOpts {
        url: url.to_string(),
        host_limit: None,
        max_local: local_max(ctx, None, a.max_concurrent),
        until_empty: true,
    };
    let mut p = Lines {
        quiet: ctx.out.quiet() || ctx.out.json || (ctx.out.level == 0 && !a.background),
        stamp: a.background,
    };
    let s = engine::work(ctx, &opts, &mut p)?;
    summary(ctx, &s, a.background)
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

fn status(ctx: &Ctx, url: &str) -> Result<Exit> {
    let mut db = open(ctx, url)?;
    let s = db.status(url, lease(ctx))?;
    let live = db.live_tasks(200)?;
    let recent = db.results(None, 10)?;
    if ctx.out.json {
        let (running, queued): (Vec<_>, Vec<_>) = live.iter().partition(|t| t.state == "running");
        super::print_json(&json!({
            "store": {"url": s.url, "schema_version": s.schema_version,
                      "queued": s.queued, "running": s.running, "done": s.done,
                      "capped": s.capped},
            "queued": queued,
            "running": running,
            "recent": recent,
            "workers": s.workers.iter().map(|w| json!({
                "host": w.host, "pid": w.pid, "started_at": w.started_at, "running": w.running,
            })).collect::<Vec<_>>(),
        }))?;
        return Ok(Exit::Ok);
    }
    let o = &ctx.out;
    println!("{}", o.paint("1", &format!("store {}", s.url)));
    println!(
        "{}",
        o.paint(
            "1",
            &format!("queued ({}), running ({})", s.queued, s.running)
        )
    );
    for t in live.iter().take(20) {
        println!(
            "  {:>8}  {:<8} {:<20} prio {:>5}  attempt {}  {}",
            t.id,
            t.state,
            t.task_type,
            t.priority,
            t.attempt,
            t.host.as_deref().unwrap_or("")
        );
    }
    println!(
        "{}",
        o.paint("1", &format!("workers ({})", s.workers.len()))
    );
    for w in &s.workers {
        println!(
            "  {:<24} pid {:<8} since {}  running {}",
            w.host, w.pid, w.started_at, w.running
        );
    }
    println!("{}", o.paint("1", "recent"));
    for r in &recent {
        println!("  {}", one_line(r));
    }
    Ok(Exit::Ok)
}

fn one_line(r: &Value) -> String {
    let f = |k: &str| {
        r.get(k)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    format!(
        "{:>8}  {:<20} {:<13} attempt {}  on {}  {}",
        f("id"),
        f("type"),
        f("status"),
        f("attempt"),
        f("host"),
        f("finished_at")
    )
}

fn results(ctx: &Ctx, url: &str, a: &ResultsArgs) -> Result<Exit> {
    let mut db = open(ctx, url)?;
    let rs = db.results(a.id.as_deref(), a.last.unwrap_or(20))?;
    if ctx.out.json {
        super::print_json(&rs)?;
        return Ok(Exit::Ok);
    }
    if rs.is_empty() {
        ctx.out.say("no results yet");
    }
    for r in &rs {
        println!("{}", one_line(r));
    }
    Ok(Exit::Ok)
}

/// Metrics of the whole fleet (the newest 100,000 samples within metrics retention).
fn metrics(ctx: &Ctx, url: &str) -> Result<Exit> {
    let mut db = open(ctx, url)?;
    let s = db.status(url, lease(ctx))?;
    let since = now() - ctx.config.metrics.retention_days as f64 * 86_400.0;
    let samples = db.samples(since, 100_000)?;
    super::metrics::show(
        ctx,
        usize::try_from(s.queued).unwrap_or(0),
        usize::try_from(s.running).unwrap_or(0),
        &samples,
    )
}

/// Retention in the store: results, finished tasks, samples, old workers (task logs stay
/// on their hosts, under each host's own retention).
fn cleanup(ctx: &Ctx, url: &str) -> Result<Exit> {
    let mut db = open(ctx, url)?;
    let [results, tasks, samples, workers] = db.cleanup(
        ctx.config.results.retention_days,
        ctx.config.metrics.retention_days,
    )?;
    if ctx.out.json {
        super::print_json(&json!({"results": results, "tasks": tasks,
            "metrics": samples, "workers": workers}))?;
    } else {
        ctx.out.say(format!(
            "store: removed {results} results, {tasks} finished tasks, {samples} metrics \
             samples, {workers} old workers"
        ));
    }
    Ok(Exit::Ok)
}

/// `stop ID...` / `stop --all` on the store: queued tasks are cancelled now, running ones
/// are stopped by their workers (within a moment: the request wakes them).
fn stop(ctx: &Ctx, url: &str, a: &StopArgs) -> Result<Exit> {
    if a.ids.is_empty() && !a.all {
        return Err(error::usage("give task ids to stop, or --all"));
    }
    let ids: Vec<i64> = a
        .ids
        .iter()
        .map(|i| {
            i.parse::<i64>()
                .map_err(|_| error::usage(format!("{i:?}: not a task id of the store (a number)")))
        })
        .collect::<Result<_>>()?;
    let mut db = open(ctx, url)?;
    let s = db.stop(if a.all { None } else { Some(&ids) })?;
    if ctx.out.json {
        super::print_json(&s)?;
    } else {
        for id in &s.cancelled {
            println!("cancelled {id} (queued)");
        }
        for id in &s.stopping {
            println!("stopping {id} (running: its worker stops it)");
        }
        for id in &s.missing {
            eprintln!("bgrun: {id}: no such queued or running task");
        }
    }
    Ok(if s.missing.is_empty() {
        Exit::Ok
    } else {
        Exit::WorkFailed
    })
}
