//! What `bgrun drain` shows while it runs the queue: a progress bar on a terminal, lines
//! otherwise (timestamped in the background drainer's log).

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::Progress;
use crate::output::Output;
use crate::results::TaskResult;
use crate::state::task::Task;
use crate::timefmt::{human_duration, now, rfc3339};

/// Lines on stdout (`-v`, or always when `background`: with a timestamp, for the log).
pub struct Lines {
    pub out: Output,
    pub background: bool,
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

/// A progress bar on a terminal; failures printed above it.
pub struct Bar {
    bar: ProgressBar,
    out: Output,
    done: u64,
}

impl Bar {
    pub fn new(out: Output) -> Bar {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Bar { bar, out, done: 0 }
    }

    /// Clear the bar once the queue is drained.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
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
