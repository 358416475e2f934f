//! `bgrun drain`: run the queue in the foreground; a progress bar on a TTY, lines otherwise.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::DrainArgs;
use crate::engine::{self, Progress};
use crate::output::Output;
use crate::results::TaskResult;
use crate::state::task::Task;
use crate::timefmt::{human_duration, now, rfc3339};
use crate::{Ctx, Exit};

struct Lines {
    out: Output,
    background: bool,
}

impl Progress for Lines {
    fn started(&mut self, t: &Task, attempt: u32) {
        if self.out.level > 0 || self.background {
            let when = if self.background {
                format!("{} ", rfc3339(now()))
            } else {
                String::new()
            };
            println!("{when}started {} {} (attempt {attempt})", t.id, t.task_type);
        }
    }
    fn finished(&mut self, r: &TaskResult, queued: usize) {
        if self.out.quiet() || self.out.json {
            return;
        }
        let when = if self.background {
            format!("{} ", rfc3339(now()))
        } else {
            String::new()
        };
        let retry = if r.will_retry { " (will retry)" } else { "" };
        println!(
            "{when}{} {} {} {} in {}{retry} [{queued} queued]",
            self.out.paint(color(r.status.as_str()), r.status.as_str()),
            r.id,
            r.task_type,
            r.error
                .as_deref()
                .map(|e| format!("({e})"))
                .unwrap_or_default(),
            human_duration(r.duration_s),
        );
    }
}

fn color(status: &str) -> &'static str {
    match status {
        "succeeded" => "32",
        "cancelled" | "dropped" => "33",
        _ => "31",
    }
}

struct Bar {
    bar: ProgressBar,
    out: Output,
    done: u64,
}

impl Progress for Bar {
    fn started(&mut self, t: &Task, _attempt: u32) {
        self.bar.set_message(format!("{} {}", t.id, t.task_type));
    }
    fn finished(&mut self, r: &TaskResult, queued: usize) {
        self.done += 1;
        self.bar.set_length(self.done + queued as u64);
        self.bar.set_position(self.done);
        if r.status != "succeeded" {
            self.bar.println(format!(
                "{} {} {} {}",
                self.out.paint(color(r.status.as_str()), r.status.as_str()),
                r.id,
                r.task_type,
                r.error.as_deref().unwrap_or("")
            ));
        }
    }
}

pub fn run(ctx: &Ctx, a: DrainArgs) -> Result<Exit> {
    if a.background {
        // Started detached by another bgrun: leave its session and terminal.
        crate::runner::detach::new_session();
    }
    // `--no-install` reaches the analyzer tasks through the config they are started with.
    let mut owned = ctx.clone();
    if a.no_install {
        owned.env.config.analysis.install_tools = false;
    }
    let ctx = &owned;
    let max = a
        .max_concurrent
        .unwrap_or(ctx.config.execution.max_concurrent_tasks);
    let summary = if ctx.out.tty && !a.background && !ctx.out.json && !ctx.out.quiet() {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        let mut p = Bar {
            bar: bar.clone(),
            out: ctx.out,
            done: 0,
        };
        let s = engine::drain_until_empty(ctx, max, &mut p);
        bar.finish_and_clear();
        s?
    } else {
        let mut p = Lines {
            out: ctx.out,
            background: a.background,
        };
        engine::drain_until_empty(ctx, max, &mut p)?
    };
    if ctx.store_url.is_none() {
        // The HTML report is of this state dir's results.
        super::report::refresh(ctx);
    }
    if ctx.out.json {
        super::print_json(&serde_json::json!({
            "ran": summary.ran,
            "failed": summary.failed,
            "results": summary.results,
        }))?;
    } else if !a.background {
        ctx.out.say(format!(
            "drained: {} ran, {} failed",
            summary.ran, summary.failed
        ));
    }
    Ok(if summary.failed > 0 {
        Exit::WorkFailed
    } else {
        Exit::Ok
    })
}
