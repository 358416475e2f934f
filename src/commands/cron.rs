//! `bgrun cron install|uninstall|list`: this repo's schedules as one marked block in the
//! user's crontab, read with `crontab -l` and written with `crontab -` (argv, stdin).
//! Every other byte of the crontab is kept (the crontab I/O: `triggers::crontab`).

use anyhow::Result;
use serde_json::json;

use crate::cli::CronCommand;
use crate::triggers::cron::{self, BlockSpec, Schedule};
use crate::triggers::crontab::{read_crontab, write_crontab};
use crate::{Ctx, Exit, error};

pub fn run(ctx: &Ctx, cmd: CronCommand) -> Result<Exit> {
    match cmd {
        CronCommand::Install => install(ctx),
        CronCommand::Uninstall => uninstall(ctx),
        CronCommand::List => list(ctx),
    }
}

/// The configured schedules, or exit 2 naming each bad task and field.
pub(crate) fn schedules(ctx: &Ctx) -> Result<Vec<Schedule>> {
    cron::schedules(&ctx.config).map_err(|errs| {
        error::usage(format!(
            "bad schedule in {}:\n  {}",
            ctx.config_source,
            errs.join("\n  ")
        ))
    })
}

/// The block `install` writes for the current config.
fn block(ctx: &Ctx, scheds: &[Schedule]) -> Result<Vec<u8>> {
    let exe = std::env::current_exe()
        .map_err(|e| error::work(format!("cannot find the bgrun executable: {e}")))?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let mut argv = vec![exe.as_os_str().as_encoded_bytes().to_vec()];
    for a in ctx.child_args() {
        argv.push(a.as_encoded_bytes().to_vec());
    }
    argv.push(b"tick".to_vec());
    let path_env = std::env::var_os("PATH")
        .map(|p| p.as_encoded_bytes().to_vec())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| b"/usr/local/bin:/usr/bin:/bin".to_vec());
    let log = ctx.state_dir.join("cron.log");
    let spec = BlockSpec {
        repo: &ctx.repo,
        argv,
        path_env,
        log: &log,
    };
    cron::render_block(&spec, scheds).map_err(error::usage)
}

fn install(ctx: &Ctx) -> Result<Exit> {
    let scheds = schedules(ctx)?;
    if scheds.is_empty() {
        ctx.out.say(
            "no schedules configured (triggers.scheduled.tasks, task_types.*.auto_trigger.interval_minutes); \
             removing this repo's block if any",
        );
        return uninstall(ctx);
    }
    let block = block(ctx, &scheds)?;
    crate::state::store::ensure_private_dir(&ctx.state_dir)?;
    let cur = read_crontab()?;
    let new = cron::with_block(&cur, &ctx.repo, &block);
    let changed = new != cur;
    if changed {
        write_crontab(&new)?;
    }
    if ctx.out.json {
        super::print_json(&json!({"changed": changed, "schedules": scheds.len()}))?;
    } else if changed {
        ctx.out.say(format!(
            "installed {} schedule(s) in the crontab; `bgrun cron list` shows the next fire times",
            scheds.len()
        ));
    } else {
        ctx.out.say("the crontab is already up to date");
    }
    Ok(Exit::Ok)
}

fn uninstall(ctx: &Ctx) -> Result<Exit> {
    let cur = read_crontab()?;
    let changed = match cron::without_block(&cur, &ctx.repo) {
        Some(new) => {
            write_crontab(&new)?;
            true
        }
        None => false,
    };
    if ctx.out.json {
        super::print_json(&json!({"changed": changed}))?;
    } else if changed {
        ctx.out.say("removed this repo's block from the crontab");
    } else {
        ctx.out.say("this repo has no block in the crontab");
    }
    Ok(Exit::Ok)
}

fn list(ctx: &Ctx) -> Result<Exit> {
    let scheds = schedules(ctx)?;
    let now = chrono::Local::now().timestamp();
    // Best effort: `list` works without cron installed.
    let installed = match (read_crontab(), block(ctx, &scheds)) {
        (Ok(tab), Ok(want)) => match cron::current_block(&tab, &ctx.repo) {
            None => "not installed",
            Some(b) if b == want.as_slice() => "installed",
            Some(_) => "outdated (run `bgrun cron install`)",
        },
        _ => "unknown",
    };
    let local = |ts: i64| {
        chrono::DateTime::from_timestamp(ts, 0)
            .map(|d| d.with_timezone(&chrono::Local).to_rfc3339())
    };
    if ctx.out.json {
        let items: Vec<_> = scheds
            .iter()
            .map(|s| {
                json!({
                    "key": s.key,
                    "name": s.name,
                    "task_type": s.task_type,
                    "schedule": s.describe(),
                    "cron": s.crontab_time(),
                    "next": s.next_after(now).and_then(local),
                })
            })
            .collect();
        super::print_json(&json!({"repo": ctx.repo, "crontab": installed, "schedules": items}))?;
        return Ok(Exit::Ok);
    }
    println!("crontab block: {installed}");
    if scheds.is_empty() {
        println!("no schedules configured");
    }
    for s in &scheds {
        let next = match s.next_after(now).and_then(local) {
            Some(t) => t,
            None => "at the first tick after boot".to_string(),
        };
        println!(
            "{:<28} {:<20} {:<16} next: {next}",
            s.key,
            s.task_type,
            s.describe()
        );
    }
    Ok(Exit::Ok)
}
