//! Delivery tracking: every send attempt is one JSON line in `<state>/deliveries.jsonl`
//! (`at`, `channel`, `event`, `ok`, `error`, `ms`); a channel is failing when its latest
//! attempt failed. The log is trimmed to its newest lines when it grows past a cap.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::io_err;
use super::{Delivery, Error};
use crate::state::{lock, store};
use crate::timefmt;

/// Past this size the log is cut to its newest lines: at most `KEEP_LINES`, half the cap.
const MAX_BYTES: u64 = 256 * 1024;
const KEEP_LINES: usize = 500;

#[derive(Debug, Serialize, Deserialize)]
struct Attempt {
    at: String,
    channel: String,
    event: String,
    ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default)]
    ms: u64,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("deliveries.jsonl")
}

/// Append one line per attempt, in one write (whole lines, never interleaved).
pub fn record(state_dir: &Path, event: &str, attempts: &[&Delivery]) -> Result<(), Error> {
    if attempts.is_empty() {
        return Ok(());
    }
    let at = timefmt::rfc3339(timefmt::now());
    let mut buf = Vec::new();
    for d in attempts {
        let a = Attempt {
            at: at.clone(),
            channel: d.channel.clone(),
            event: event.to_string(),
            ok: !d.failed(),
            error: d.error.clone(),
            ms: d.ms,
        };
        serde_json::to_writer(&mut buf, &a)?;
        buf.push(b'\n');
    }
    store::ensure_private_dir(state_dir).map_err(|e| Error::State {
        why: format!("{e:#}"),
    })?;
    let p = path(state_dir);
    let mut f = std::fs::OpenOptions::new()
        .custom_flags(libc::O_NOFOLLOW)
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&p)
        .map_err(io_err("open", &p, ""))?;
    f.write_all(&buf).map_err(io_err("write", &p, ""))?;
    let big = f.metadata().map(|m| m.len() > MAX_BYTES).unwrap_or(false);
    drop(f);
    if big {
        trim(state_dir, &p);
    }
    Ok(())
}

/// Keep the newest lines, under a lock so two trimmers do not race; appends that land
/// between the read and the rename are lost, which only drops old history.
fn trim(state_dir: &Path, p: &Path) {
    let Ok(_guard) = lock::acquire(
        &state_dir.join("deliveries.lock"),
        Duration::from_millis(200),
    ) else {
        return;
    };
    let Ok(text) = std::fs::read_to_string(p) else {
        return;
    };
    if (text.len() as u64) <= MAX_BYTES {
        return;
    }
    let mut keep: Vec<&str> = Vec::new();
    let mut bytes = 0;
    for line in text.lines().rev() {
        bytes += line.len() + 1;
        if keep.len() >= KEEP_LINES || bytes as u64 > MAX_BYTES / 2 {
            break;
        }
        keep.push(line);
    }
    keep.reverse();
    let mut out = keep.join("\n");
    out.push('\n');
    let _ = store::write_atomic(p, out.as_bytes(), false);
}

/// Channels whose latest attempt failed: (channel, when, error), in channel order.
pub fn failing_channels(state_dir: &Path) -> Vec<(String, String, String)> {
    let Ok(text) = std::fs::read_to_string(path(state_dir)) else {
        return Vec::new();
    };
    let mut latest: std::collections::BTreeMap<String, Attempt> = Default::default();
    for line in text.lines() {
        if let Ok(a) = serde_json::from_str::<Attempt>(line) {
            latest.insert(a.channel.clone(), a);
        }
    }
    let mut out: Vec<(String, String, String)> = latest
        .into_values()
        .filter(|a| !a.ok)
        .map(|a| (a.channel, a.at, a.error.unwrap_or_default()))
        .collect();
    out.sort_by_key(|(c, _, _)| {
        super::CHANNELS
            .iter()
            .position(|x| x == c)
            .unwrap_or(usize::MAX)
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(channel: &str, err: Option<&str>) -> Delivery {
        Delivery {
            channel: channel.into(),
            status: if err.is_some() { "failed" } else { "delivered" },
            error: err.map(String::from),
            reason: None,
            ms: 1,
        }
    }

    #[test]
    fn latest_attempt_decides() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = dir.path();
        record(s, "custom", &[&d("email", Some("down")), &d("file", None)]).expect("rec");
        assert_eq!(failing_channels(s).len(), 1);
        assert_eq!(failing_channels(s)[0].2, "down");
        record(
            s,
            "custom",
            &[&d("email", None), &d("webhook", Some("404"))],
        )
        .expect("rec");
        let f = failing_channels(s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].0, "webhook");
    }

    #[test]
    fn trimmed_past_the_cap() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = dir.path();
        let long = "x".repeat(1000);
        for _ in 0..300 {
            record(s, "custom", &[&d("email", Some(&long))]).expect("rec");
        }
        let len = std::fs::metadata(path(s)).expect("meta").len();
        assert!(len <= MAX_BYTES + 2000, "{len}");
        assert_eq!(failing_channels(s)[0].0, "email");
    }
}
