//! The user's crontab, read with `crontab -l` and written with `crontab -` (argv, stdin).
//! `BGRUN_CRONTAB_USER=USER` (hidden, for tests and administrators) passes `-u USER`.
//! What goes in it (bgrun's marked block) is `super::cron`'s; this installs, removes and
//! checks the block of an `Env`'s schedules (`bgrun cron install|uninstall|list`). Every
//! other byte of the crontab is kept.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::Result;

use super::cron::{self, BlockSpec, Schedule};
use crate::engine::Env;
use crate::error;

/// The configured schedules, or exit 2 naming each bad task and field.
pub fn schedules(env: &Env) -> Result<Vec<Schedule>> {
    cron::schedules(&env.config).map_err(|errs| {
        error::usage(format!(
            "bad schedule in {}:\n  {}",
            env.config_source,
            errs.join("\n  ")
        ))
    })
}

/// The block `install` writes for `env`: `bgrun <global options> tick` at each schedule's
/// times, its output appended to `<state>/cron.log`.
fn block(env: &Env, scheds: &[Schedule]) -> Result<Vec<u8>> {
    let exe = super::bgrun_exe()?;
    let mut argv = vec![exe.as_os_str().as_encoded_bytes().to_vec()];
    for a in env.child_args() {
        argv.push(a.as_encoded_bytes().to_vec());
    }
    argv.push(b"tick".to_vec());
    let path_env = std::env::var_os("PATH")
        .map(|p| p.as_encoded_bytes().to_vec())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| b"/usr/local/bin:/usr/bin:/bin".to_vec());
    let log = env.state_dir.join("cron.log");
    let spec = BlockSpec {
        repo: &env.repo,
        argv,
        path_env,
        log: &log,
    };
    cron::render_block(&spec, scheds).map_err(error::usage)
}

/// Write `env`'s block for `scheds` (not empty) into the crontab; whether it changed.
pub fn install(env: &Env, scheds: &[Schedule]) -> Result<bool> {
    let block = block(env, scheds)?;
    crate::fsutil::ensure_private_dir(&env.state_dir)?;
    let cur = read_crontab()?;
    let new = cron::with_block(&cur, &env.repo, &block);
    let changed = new != cur;
    if changed {
        write_crontab(&new)?;
    }
    Ok(changed)
}

/// Remove `env`'s block from the crontab; whether there was one.
pub fn uninstall(env: &Env) -> Result<bool> {
    let cur = read_crontab()?;
    match cron::without_block(&cur, &env.repo) {
        Some(new) => {
            write_crontab(&new)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Where `env`'s block stands in the crontab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    Absent,
    /// As `install` would write it now.
    Current,
    /// Written for other schedules or paths.
    Outdated,
    /// The crontab could not be read (no cron installed), or no block can be made.
    Unknown,
}

/// Whether the crontab holds `env`'s block for `scheds` (best effort: `list` works
/// without cron installed).
pub fn block_state(env: &Env, scheds: &[Schedule]) -> Block {
    match (read_crontab(), block(env, scheds)) {
        (Ok(tab), Ok(want)) => match cron::current_block(&tab, &env.repo) {
            None => Block::Absent,
            Some(b) if b == want.as_slice() => Block::Current,
            Some(_) => Block::Outdated,
        },
        _ => Block::Unknown,
    }
}

fn crontab_cmd() -> Command {
    let mut c = Command::new("crontab");
    if let Some(u) = std::env::var_os("BGRUN_CRONTAB_USER").filter(|u| !u.is_empty()) {
        c.arg("-u").arg(u);
    }
    c
}

/// The current crontab (empty when the user has none).
pub fn read_crontab() -> Result<Vec<u8>> {
    let out = crontab_cmd()
        .arg("-l")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            error::work(format!(
                "cannot run `crontab -l`: {e} (is cron installed? Debian: apt install cron)"
            ))
        })?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("no crontab for") {
        return Ok(Vec::new());
    }
    Err(error::work(format!("`crontab -l` failed: {}", err.trim())))
}

/// Replace the crontab with `bytes` (nothing changes when `crontab -` refuses them).
pub fn write_crontab(bytes: &[u8]) -> Result<()> {
    let mut child = crontab_cmd()
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| error::work(format!("cannot run `crontab -`: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(bytes)?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(error::work(format!(
            "`crontab -` refused the new crontab (nothing changed): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}
