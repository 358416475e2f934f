//! `bgrun run TYPE`: one task now, in the foreground, bypassing the queue.

use anyhow::Result;

use crate::cli::{ReportFormat, RunArgs};
use crate::engine::{self, NewTask};
use crate::state::task::Arg;
use crate::timefmt::human_duration;
use crate::{Ctx, Exit, error};

pub fn run(ctx: &Ctx, a: RunArgs) -> Result<Exit> {
    let new = NewTask {
        task_type: a.task_type.clone(),
        name: None,
        argv: a.argv.iter().map(|s| Arg::from_os(s)).collect(),
        priority: None,
        timeout_s: a.timeout,
        trigger: "run".to_string(),
        context: serde_json::Value::Null,
    };
    let r = run_streaming(ctx, &new)?;
    if let Some(path) = &a.output {
        let body = match (a.format, &r.report) {
            (Some(ReportFormat::Sarif), _) => {
                return Err(error::usage(
                    "--format sarif: use `bgrun analyze KIND --format sarif` for SARIF reports",
                ));
            }
            (
                Some(f @ (ReportFormat::Junit | ReportFormat::Github | ReportFormat::Codequality)),
                _,
            ) => {
                let (report, failed) = crate::present::formats::merge(std::slice::from_ref(&r));
                crate::present::formats::render(&ctx.out, &ctx.repo, f, &report, &failed)?
            }
            (_, Some(rep)) => serde_json::to_vec_pretty(rep)?,
            _ => serde_json::to_vec_pretty(&r)?,
        };
        crate::fsutil::write_output(path, &body)?;
    }
    if ctx.out.json {
        super::print_json(&r)?;
    } else {
        ctx.out.say(format!(
            "{} {} in {}{}",
            crate::present::what_of_result(&r),
            r.status,
            human_duration(r.duration_s),
            r.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
        if let Some(f) = &r.findings {
            ctx.out.say(format!(
                "findings: {} critical, {} high, {} medium, {} low, {} info",
                f.critical, f.high, f.medium, f.low, f.info
            ));
        }
        if let Some(log) = r.log.as_ref().filter(|l| l.exists()) {
            ctx.out.say(format!("log: {}", log.display()));
        }
    }
    Ok(if r.status == "succeeded" {
        Exit::Ok
    } else {
        Exit::WorkFailed
    })
}

/// Run the task, copying its output to the terminal as it is written (stdout; stderr with
/// `--json`, whose stdout is the result; nothing with `-q`). The log is kept as always.
fn run_streaming(ctx: &Ctx, new: &NewTask) -> Result<crate::results::TaskResult> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    if ctx.out.quiet() {
        return engine::run_now(ctx, new);
    }
    let done = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<std::path::PathBuf>();
    let to_stderr = ctx.out.json;
    std::thread::scope(|s| {
        let done = &done;
        let streamer = s.spawn(move || {
            let Ok(path) = rx.recv() else { return };
            let mut f = crate::tasklog::Follower::new(path, 0);
            let every = std::time::Duration::from_millis(50);
            let until = || done.load(Ordering::SeqCst);
            let _ = if to_stderr {
                f.follow_until(&mut std::io::stderr(), every, until)
            } else {
                f.follow_until(&mut std::io::stdout(), every, until)
            };
        });
        let r = engine::run_now_with(ctx, new, &mut |p| {
            let _ = tx.send(p.to_path_buf());
        });
        done.store(true, Ordering::SeqCst);
        drop(tx);
        let _ = streamer.join();
        r
    })
}
