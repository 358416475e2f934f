//! The user's crontab, read with `crontab -l` and written with `crontab -` (argv, stdin).
//! `BGRUN_CRONTAB_USER=USER` (hidden, for tests and administrators) passes `-u USER`.
//! What goes in it (bgrun's marked block) is `super::cron`'s.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::Result;

use crate::error;

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
