//! The command-line surface of `../shared/CLI.md`, as clap derive structs only.
//! Nothing here does work: `lib.rs` turns these into typed options once.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "bgrun",
    version,
    about = "Run a repository's slow developer chores in the background",
    long_about = "bgrun runs security scans, complexity profiles, linting and test runs in the \
background: triggered by git hooks, a polling file watcher, cron and CI, with results kept on \
disk and people notified on the console, the desktop, a log file and by email.\n\n\
Exit codes: 0 success, 1 the work ran and failed, 2 usage or config error (nothing changed), \
3 state error (lock not obtained, state file unreadable; never overwritten).",
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parse `std::env::args_os()`. `bgrun hook NAME ...`, as an installed git hook calls
    /// it, goes through a parser that knows only the global options and `hook`, so that the
    /// hot path of every git command does not build the whole command tree first; anything
    /// that parser rejects (`--help`, a typo) takes the full one, with its messages.
    ///
    /// A hook file in the direct form (`#!/path/to/bgrun hook`, see `triggers::hooks::render`)
    /// makes git run `bgrun hook /path/to/.git/hooks/NAME ARGS...`: a NAME with a `/` is
    /// such a path, and stands for its file name.
    pub fn parse_args() -> Cli {
        let mut argv: Vec<OsString> = std::env::args_os().collect();
        if argv.get(1).is_some_and(|a| a == "hook") {
            if let Some(name) = argv.get_mut(2) {
                *name = hook_name(std::mem::take(name));
            }
            if let Ok(h) = HookOnly::try_parse_from(&argv) {
                let HookOnlyCommand::Hook(args) = h.command;
                return Cli {
                    global: h.global,
                    command: Command::Hook(args),
                };
            }
        }
        Cli::parse_from(argv)
    }
}

/// The hook's name in `bgrun hook NAME`: NAME itself, or the file name of a hook file's path
/// (an option such as `--repo=/x` is left to the parser).
fn hook_name(arg: OsString) -> OsString {
    let b = arg.as_encoded_bytes();
    if b.starts_with(b"-") || !b.contains(&b'/') {
        return arg;
    }
    match std::path::Path::new(&arg).file_name() {
        Some(n) => n.to_os_string(),
        None => arg,
    }
}

/// The hook's parser: [`Cli`] with `hook` as its only subcommand.
#[derive(Debug, Parser)]
#[command(name = "bgrun", disable_help_flag = true, disable_version_flag = true)]
struct HookOnly {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: HookOnlyCommand,
}

#[derive(Debug, Subcommand)]
enum HookOnlyCommand {
    Hook(HookArgs),
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Project root to work on (default: the git top-level of the current dir, else the current dir)
    #[arg(short = 'C', long = "repo", value_name = "DIR", global = true)]
    pub repo: Option<PathBuf>,
    /// Config file (default: $BGRUN_CONFIG, <repo>/.bgrun/config.json,
    /// <repo>/.claude/config/background-tasks.json, else the embedded defaults)
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Where state, results and logs live (default: <repo>/.bgrun)
    #[arg(long, value_name = "DIR", env = "BGRUN_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// Machine-readable JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// Quieter console output (repeat for less)
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
    /// More verbose console output (repeat for more)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Run a committed config's commands this once although it is not trusted (manual commands)
    #[arg(long, global = true)]
    pub trust_once: bool,
    /// Use the shared PostgreSQL store at URL (postgres://USER@HOST/DB; default: store.url,
    /// else the local journal)
    #[arg(long = "store", value_name = "URL", env = "BGRUN_STORE", global = true)]
    pub store: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a default config to <repo>/.bgrun/config.json and exclude .bgrun/ from git
    Init {
        /// Overwrite an existing config (the old one is kept as config.json.bak)
        #[arg(long)]
        force: bool,
    },
    /// Inspect the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Add a task to the queue, then start a background drainer unless --no-drain
    Enqueue(EnqueueArgs),
    /// Run queued tasks in the foreground until the queue is empty
    Drain(DrainArgs),
    /// Run one task now in the foreground, bypassing the queue, and print its result
    Run(RunArgs),
    /// Show queued and running tasks, recent results, drainers and failing channels
    Status(StatusArgs),
    /// Cancel tasks: running ones get SIGTERM (SIGKILL after the grace period), queued ones are removed
    Stop(StopArgs),
    /// Show stored results, newest first
    Results(ResultsArgs),
    /// Success rate, durations, queue length, concurrency and resource peaks per task type
    Metrics,
    /// Apply retention to results, logs and metrics now (it also runs on its own)
    Cleanup,
    /// Run analyzers in the foreground and write the normalized report
    Analyze(AnalyzeArgs),
    /// The baseline findings are compared with (`new`, `unchanged`, `fixed`)
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Send one notification through the configured (or named) channels
    Notify(NotifyArgs),
    /// Entry point for installed git hooks: enqueue the hook's tasks and return at once
    Hook(HookArgs),
    /// Install, remove or inspect bgrun's git hooks
    #[command(subcommand)]
    Hooks(HooksCommand),
    /// Alias of `hooks install`
    #[command(name = "install-hooks")]
    InstallHooks,
    /// Alias of `hooks uninstall`
    #[command(name = "uninstall-hooks")]
    UninstallHooks,
    /// Poll the tree by hash snapshot and enqueue the tasks configured for file changes
    Watch(WatchArgs),
    /// Foreground manager: `watch --poll` plus the scheduler's `tick` every minute
    Start(WatchArgs),
    /// Put the configured schedules into the user's crontab as one marked block
    #[command(subcommand)]
    Cron(CronCommand),
    /// Print a shell completion script or the man page
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Enqueue every scheduled task that is due (what the cron block calls)
    Tick,
    /// Repair the state file
    #[command(subcommand)]
    State(StateCommand),
    /// Approve the repository's committed config as it is now (by its SHA-256, recorded in
    /// your data dir); --show tells whether it is trusted
    Trust {
        #[arg(long)]
        show: bool,
    },
    /// Withdraw the approval of the repository's committed config
    Untrust,
    /// Show a task's output (its log); --follow prints it as it is written until the task ends
    Log(LogArgs),
    /// Write a self-contained HTML report of results, findings and metrics
    Report(ReportArgs),
    /// Managed, pinned tool environments in $XDG_CACHE_HOME/bgrun/tools
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// The shared PostgreSQL store: apply schema migrations, or show its state
    #[command(subcommand)]
    Store(StoreCommand),
    /// Drain the shared store as a long-running worker of this host (until SIGTERM)
    Worker(WorkerArgs),
}

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Every tool bgrun knows: this project's version and source, and what is installed
    List,
    /// Install tools (default: the managed tools this project's analyzers use)
    Install {
        /// Tool names (bandit, pip-audit, radon, pylint, ruff, pytest, eslint, cargo-audit)
        tools: Vec<String>,
    },
    /// Move the pins to the newest releases and rewrite the team config (bgrun.json)
    Update,
    /// Print the executable the analyzers would run for TOOL (installs nothing)
    Which {
        tool: String,
        /// Look it up N times (for scripts/bench/tools: the cost of one lookup)
        #[arg(long, hide = true, default_value_t = 1)]
        repeat: u32,
    },
    /// Remove unfinished installs and environments unused for --days (not this project's pins)
    Prune {
        /// Age in days since last use
        #[arg(long, default_value_t = 30)]
        days: u64,
    },
    /// Print the cache directory (for CI caching)
    Dir,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// The task id (see `bgrun status` and `bgrun results`)
    pub id: String,
    /// Keep printing the output as it is written, until the task ends
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only the last N lines
    #[arg(long, short = 'n', value_name = "N")]
    pub lines: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Where to write the HTML file (default: <state>/report.html)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create or upgrade the store's schema (safe to run again; concurrent runs wait)
    Migrate,
    /// Schema version, queue depth by state, workers alive
    Status,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// At most N tasks at once on this host, across its workers (default: no host limit)
    #[arg(long, value_name = "N")]
    pub host_limit: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config; with --json print the resolved config with every default filled in
    Check {
        /// Treat warnings (unknown or duplicate keys, a schedule that never fires) as errors: exit 2
        #[arg(long)]
        strict: bool,
    },
    /// Show what changed in the committed config since you trusted it
    Diff,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Move the state file aside (kept as queue.jsonl.broken-<time>) and start empty
    Reset,
    /// Record the state dir as your own (one made by an older bgrun, or moved here):
    /// refused while git tracks it
    Adopt,
}

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// A configured task type (security_scan, test_runner, ...) or `custom` with `-- ARGV`
    pub task_type: String,
    /// critical, high, medium, low or an integer (default: the task type's)
    #[arg(long, short = 'p')]
    pub priority: Option<String>,
    /// A name shown in status and results
    #[arg(long)]
    pub name: Option<String>,
    /// Timeout in seconds (default: the task type's, else execution.task_timeout_seconds)
    #[arg(long, value_name = "S")]
    pub timeout: Option<u64>,
    /// Only queue; do not start a background drainer
    #[arg(long)]
    pub no_drain: bool,
    /// The command to run (argv, no shell), after `--`
    #[arg(last = true, value_name = "ARGV")]
    pub argv: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// At most N tasks of this drainer at once (never above execution.max_concurrent_tasks across drainers)
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<usize>,
    /// Run as the detached background drainer (quiet, exits when the queue is empty)
    #[arg(long, hide = true)]
    pub background: bool,
    /// Analyzer tasks never install a missing managed tool (passed on to them)
    #[arg(long)]
    pub no_install: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A configured task type, or `custom` with `-- ARGV`
    pub task_type: String,
    /// Write the task's report (analyzer types) or result to FILE
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Report format for --output
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<ReportFormat>,
    /// Timeout in seconds
    #[arg(long, value_name = "S")]
    pub timeout: Option<u64>,
    #[arg(last = true, value_name = "ARGV")]
    pub argv: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Task ids to cancel
    pub ids: Vec<String>,
    /// Cancel every queued and running task and stop every drainer and watcher
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Count only the findings that are new against each report's baseline
    #[arg(long)]
    pub new_only: bool,
}

#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// Show the results of this task only
    pub id: Option<String>,
    /// Show the newest N results (default 20)
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Print the results' reports in this format (junit, github, codequality, sarif, json)
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<ReportFormat>,
    /// Count only the findings that are new against each report's baseline
    #[arg(long)]
    pub new_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnalyzeKind {
    Security,
    Performance,
    Code,
    Tests,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Json,
    Sarif,
    Text,
    /// JUnit XML: test results and findings as test cases
    Junit,
    /// GitHub workflow commands (`::error file=...`), plus a Markdown summary appended to
    /// $GITHUB_STEP_SUMMARY when it is set
    Github,
    /// GitLab Code Quality JSON
    Codequality,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum SeverityArg {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[arg(value_enum)]
    pub kind: AnalyzeKind,
    /// Files or directories to analyze (default: the repo root)
    #[arg(value_name = "PATH|FILE")]
    pub paths: Vec<PathBuf>,
    /// Write the normalized report to FILE
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Report format (default: json for --output, text on the console)
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<ReportFormat>,
    /// Exit 1 when a finding at or above this severity is found
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<SeverityArg>,
    /// Never install a missing managed tool; report it as skipped
    #[arg(long)]
    pub no_install: bool,
    /// The working tree's changes against HEAD plus the staged ones
    #[arg(long, conflicts_with = "since")]
    pub changed: bool,
    /// What changed since REF (a commit, branch or tag)
    #[arg(long, value_name = "REF")]
    pub since: Option<String>,
    /// Ignore the result cache: run every tool on every file
    #[arg(long)]
    pub full: bool,
    /// Only findings that are new against the baseline
    #[arg(long)]
    pub new_only: bool,
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Record the findings of REF (default HEAD) as the baseline
    Save {
        /// The commit, branch or tag whose findings are the baseline
        #[arg(long = "ref", value_name = "REF")]
        reference: Option<String>,
        /// Which analyzers (default: all)
        #[arg(long, value_enum)]
        kind: Option<AnalyzeKind>,
    },
    /// Show the saved baseline
    Show,
    /// Forget the saved baseline (the previous full result is used again)
    Clear,
}

#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// info, warning, error or critical
    #[arg(long, short = 's')]
    pub severity: String,
    #[arg(long, short = 't')]
    pub title: String,
    #[arg(long, short = 'm')]
    pub message: String,
    /// Send through this channel only (console, desktop, file, email, webhook); repeatable
    #[arg(long)]
    pub channel: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HookArgs {
    /// The git hook's name (pre-commit, post-commit, pre-push, post-merge, ...), or the path
    /// of the hook file (as git runs a hook installed in the direct form)
    pub name: String,
    /// The arguments git passed to the hook
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<std::ffi::OsString>,
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Install the configured hooks, chaining any existing hook
    Install,
    /// Remove bgrun's hooks and put the originals back byte for byte
    Uninstall,
    /// Show each hook: installed / foreign / missing / chained backup
    Status,
}

#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Poll the tree (the only mode; accepted for compatibility)
    #[arg(long)]
    pub poll: bool,
    /// Seconds between polls (default: triggers.file_watch.check_interval_seconds)
    #[arg(long, value_name = "S")]
    pub interval: Option<f64>,
    /// Seconds of quiet before tasks are enqueued (default: triggers.file_watch.debounce_seconds)
    #[arg(long, value_name = "S")]
    pub debounce: Option<f64>,
    /// Compare against the last persisted snapshot once, then exit
    #[arg(long)]
    pub once: bool,
    /// Do not honour .gitignore files
    #[arg(long)]
    pub no_gitignore: bool,
    /// Re-read every file every N polls (for filesystems whose mtimes lie)
    #[arg(long, value_name = "N")]
    pub full_hash_every: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum CronCommand {
    /// Install (or update) this repo's block in the user's crontab
    Install,
    /// Remove this repo's block, leaving every other line alone
    Uninstall,
    /// Show each schedule and its next fire time
    List,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Man,
}

#[cfg(test)]
mod tests {
    use super::hook_name;

    #[test]
    fn a_hook_files_path_stands_for_its_name() {
        let n = |s: &str| hook_name(s.into()).into_string().unwrap();
        assert_eq!(n("post-commit"), "post-commit");
        assert_eq!(n("/repo/my hooks/post-commit"), "post-commit");
        assert_eq!(n(".git/hooks/post-merge"), "post-merge");
        assert_eq!(n("--repo=/x/y"), "--repo=/x/y");
    }
}
