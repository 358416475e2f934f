//! How tasks and results are named in text: the task type with the command or analyzer it
//! runs (`custom: echo hello`, `security_scan: bgrun analyze security`), shared by
//! `status`, `results`, the terminal inbox and the HTML report.
//!
//! Below it, one file per view that a command shows on the terminal (the presentation room:
//! commands call it; it calls nothing above it): `watch` the watch session's live view, `hook`
//! what a git hook says, `cron` the crontab block and the schedules, `hooks` the installed
//! hooks, `analyze` the analysis summary and the baselines, `tools`
//! the managed tools, `results` a stored result,
//! `status` the overview, `drain` the
//! drainer's progress, `formats` the CI formats of `analyze`, `results` and `run`, `trust`
//! what `trust`, `untrust` and `config diff` say, `store` the shared store's own commands,
//! `run` what `bgrun run` says of its result,
//! `report` the HTML report's chart data and where it went, `config` a valid config,
//! `enqueue` the fate of a request,
//! `metrics` the metrics table and what `cleanup` removed.

pub mod analyze;
pub mod config;
pub mod cron;
pub mod drain;
pub mod enqueue;
pub mod formats;
pub mod hook;
pub mod hooks;
pub mod metrics;
pub mod report;
pub mod results;
pub mod run;
pub mod status;
pub mod store;
pub mod tools;
pub mod trust;
pub mod watch;

use crate::results::TaskResult;
use crate::state::task::{Action, Arg};

/// Print a value as pretty JSON on stdout.
pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// At most this many characters of a command line are shown.
const MAX: usize = 60;

/// One argument as a reader would type it: quoted when it has spaces or quotes.
fn shown(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c))
    {
        arg.to_string()
    } else {
        format!("{arg:?}")
    }
}

fn clip(s: String) -> String {
    if s.chars().count() <= MAX {
        return s;
    }
    let mut t: String = s.chars().take(MAX - 1).collect();
    t.push('…');
    t
}

/// `argv` joined for reading (not for a shell), clipped.
pub fn command_line(argv: &[String]) -> String {
    clip(argv.iter().map(|a| shown(a)).collect::<Vec<_>>().join(" "))
}

/// `TYPE: COMMAND` for a result.
pub fn what_of_result(r: &TaskResult) -> String {
    if r.argv.is_empty() {
        return r.task_type.clone();
    }
    // Analyzer tasks record one readable element (`bgrun analyze security`).
    let cmd = if r.argv.len() == 1 && r.argv[0].starts_with("bgrun analyze ") {
        r.argv[0].clone()
    } else {
        command_line(&r.argv)
    };
    format!("{}: {cmd}", r.task_type)
}

/// `TYPE: COMMAND` for a queued or running task.
pub fn what_of_action(task_type: &str, action: &Action) -> String {
    match action {
        Action::Command { argv, .. } => {
            let argv: Vec<String> = argv.iter().map(Arg::lossy).collect();
            format!("{task_type}: {}", command_line(&argv))
        }
        Action::Analyzer { analyzer } => format!("{task_type}: bgrun analyze {analyzer}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_quoted_and_clipped() {
        let argv = vec!["echo".to_string(), "hello world".to_string()];
        assert_eq!(command_line(&argv), "echo \"hello world\"");
        let long = vec!["x".repeat(100)];
        assert_eq!(command_line(&long).chars().count(), MAX);
    }
}
