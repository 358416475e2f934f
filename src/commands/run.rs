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
    let r = engine::run_now(ctx, &new)?;
    if let Some(path) = &a.output {
        let body = match (a.format, &r.report) {
            (Some(ReportFormat::Sarif), _) => {
                return Err(error::usage(
                    "--format sarif: use `bgrun analyze KIND --format sarif` for SARIF reports",
                ));
            }
            (_, Some(rep)) => serde_json::to_vec_pretty(rep)?,
            _ => serde_json::to_vec_pretty(&r)?,
        };
        crate::state::store::write_atomic(path, &body, false)?;
    }
    if ctx.out.json {
        super::print_json(&r)?;
    } else {
        ctx.out.say(format!(
            "{} {} in {}{}",
            r.task_type,
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
        if let Some(log) = &r.log {
            ctx.out.say(format!("log: {}", log.display()));
        }
    }
    Ok(if r.status == "succeeded" {
        Exit::Ok
    } else {
        Exit::WorkFailed
    })
}
