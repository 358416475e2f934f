//! One file per subcommand; this is the only layer that glues config, engine and adapters.

mod analyze;
mod completions;
mod config_cmd;
mod cron;
mod drain;
mod enqueue;
mod gate;
mod hook;
mod hooks;
mod init;
mod log;
mod metrics;
mod notify;
mod report;
mod results;
mod run;
mod shared_store;
mod state;
mod status;
mod stop;
mod tick;
mod tools;
mod trust;
mod watch;

use anyhow::Result;

use crate::cli::{Cli, Command, HooksCommand};
use crate::{Ctx, Exit};

/// Parse the global options into a context and run the subcommand.
pub fn dispatch(cli: Cli) -> Result<Exit> {
    let Cli { global, command } = cli;
    let g = &global;
    // A git hook must not fail because the config is broken: it loads the config itself.
    let command = match command {
        Command::Hook(a) => return hook::run(g, a),
        c => c,
    };
    // Commands that must work with a broken config or state.
    match &command {
        Command::Completions { shell } => return completions::run(*shell),
        Command::Init { force } => return init::run(g, *force),
        Command::Config(crate::cli::ConfigCommand::Check { strict }) => {
            return config_cmd::run(g, *strict);
        }
        Command::State(c) => return state::run(g, c),
        Command::Trust { show } => return trust::run_trust(g, *show),
        Command::Untrust => return trust::run_untrust(g),
        Command::Config(crate::cli::ConfigCommand::Diff) => return trust::run_diff(g),
        _ => {}
    }
    let ctx = Ctx::new(g)?;
    for w in &ctx.config_warnings {
        ctx.out.warn(w);
    }
    if !gate::before(&ctx, g, &command)? {
        return Ok(Exit::Ok);
    }
    // The shared PostgreSQL store takes the queue commands when a URL is configured.
    let command = match shared_store::dispatch(&ctx, command)? {
        Ok(exit) => return Ok(exit),
        Err(c) => c,
    };
    match command {
        Command::Enqueue(a) => enqueue::run(&ctx, a),
        Command::Drain(a) => drain::run(&ctx, a),
        Command::Run(a) => run::run(&ctx, a),
        Command::Status(a) => status::run_with(&ctx, a.new_only),
        Command::Stop(a) => stop::run(&ctx, a),
        Command::Results(a) => results::run(&ctx, a),
        Command::Metrics => metrics::run(&ctx),
        Command::Cleanup => metrics::cleanup(&ctx),
        Command::Analyze(a) => analyze::run(&ctx, a),
        Command::Baseline(c) => analyze::baseline_cmd(&ctx, c),
        Command::Notify(a) => notify::run(&ctx, a),
        Command::Hooks(c) => hooks::run(&ctx, c),
        Command::InstallHooks => hooks::run(&ctx, HooksCommand::Install),
        Command::UninstallHooks => hooks::run(&ctx, HooksCommand::Uninstall),
        Command::Watch(a) => watch::run(&ctx, a, false),
        Command::Start(a) => watch::run(&ctx, a, true),
        Command::Cron(c) => cron::run(&ctx, c),
        Command::Tick => tick::run(&ctx),
        Command::Log(a) => log::run(&ctx, a),
        Command::Report(a) => report::run(&ctx, a),
        Command::Tools(c) => tools::run(&ctx, c),
        Command::Completions { .. }
        | Command::Hook(_)
        | Command::Init { .. }
        | Command::Config(_)
        | Command::Trust { .. }
        | Command::Untrust
        | Command::State(_)
        | Command::Store(_)
        | Command::Worker(_) => {
            unreachable!("handled above")
        }
    }
}

pub(crate) use crate::present::print_json;
