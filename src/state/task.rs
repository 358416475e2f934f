//! The task and what it runs. Arguments are bytes (non-UTF-8 is ordinary input) and are
//! stored as a JSON string when they are UTF-8, else as `{"hex": "..."}`.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One argv element, kept as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arg(pub Vec<u8>);

impl Arg {
    pub fn from_os(s: &OsStr) -> Arg {
        Arg(s.as_bytes().to_vec())
    }
    pub fn to_os(&self) -> OsString {
        OsString::from_vec(self.0.clone())
    }
    pub fn lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl From<&str> for Arg {
    fn from(s: &str) -> Arg {
        Arg(s.as_bytes().to_vec())
    }
}

impl Serialize for Arg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
                let mut m = BTreeMap::new();
                m.insert("hex", hex);
                m.serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Arg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Hex { hex: String },
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => Ok(Arg(t.into_bytes())),
            Raw::Hex { hex } => {
                let bytes = (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
                    .collect::<Result<Vec<u8>, _>>()
                    .map_err(serde::de::Error::custom)?;
                Ok(Arg(bytes))
            }
        }
    }
}

/// What a task runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// An argv (no shell), with optional working dir (relative to the repo) and environment.
    Command {
        argv: Vec<Arg>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<PathBuf>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
        /// Stdout is a report of this format to ingest (`"sarif"` / `"findings"` on disk).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        report: Option<crate::config::ReportFormat>,
    },
    /// A built-in analyzer (`security`, `performance`, `code`, `tests`), run as `bgrun analyze`.
    Analyzer { analyzer: String },
}

/// A task as queued.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    #[serde(rename = "type")]
    pub task_type: String,
    pub name: String,
    pub action: Action,
    pub priority: i64,
    pub timeout_s: u64,
    pub trigger: String,
    /// When this attempt was queued (Unix seconds).
    pub enqueued_at: f64,
    /// When the task was first queued.
    pub first_enqueued_at: f64,
    /// Runs already made.
    pub attempt: u32,
    pub max_retries: u32,
    pub retry_delay_s: u64,
    /// Not to be started before this time (retry delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<f64>,
    /// What triggered it: the commit, pushed refs, changed files...
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub context: Value,
    /// Arrival order, for FIFO among equal priorities.
    pub seq: u64,
}

impl Task {
    /// The common part of every result the engine or a store writes for this task (status
    /// `failed` until the caller says otherwise).
    pub fn base_result(&self, attempt: u32, at: f64) -> crate::model::TaskResult {
        use crate::timefmt::rfc3339;
        crate::model::TaskResult {
            id: self.id.clone(),
            task_type: self.task_type.clone(),
            name: self.name.clone(),
            status: crate::model::Status::Failed,
            exit_code: None,
            signal: None,
            attempt,
            trigger: self.trigger.clone(),
            enqueued_at: rfc3339(self.enqueued_at),
            started_at: None,
            finished_at: rfc3339(at),
            duration_s: 0.0,
            queue_s: (at - self.enqueued_at).max(0.0),
            peak_rss_mb: 0.0,
            cpu_s: 0.0,
            log: None,
            error: None,
            will_retry: false,
            findings: None,
            report: None,
            report_path: None,
            context: self.context.clone(),
            argv: match &self.action {
                Action::Command { argv, .. } => argv.iter().map(Arg::lossy).collect(),
                Action::Analyzer { analyzer } => vec![format!("bgrun analyze {analyzer}")],
            },
            host: None,
        }
    }

    /// The result of this task when it is dropped from a full queue of `max` tasks.
    pub fn dropped_result(&self, at: f64, max: impl std::fmt::Display) -> crate::model::TaskResult {
        let mut r = self.base_result(self.attempt, at);
        r.status = crate::model::Status::Dropped;
        r.error = Some(format!(
            "dropped: the queue was full ({max} tasks) and this task had the lowest priority"
        ));
        r
    }

    /// The result of the claimed attempt (`attempt + 1`) whose child could not be started.
    pub fn spawn_failed_result(&self, at: f64, why: String) -> crate::model::TaskResult {
        let mut r = self.base_result(self.attempt + 1, at);
        r.status = crate::model::Status::Failed;
        r.error = Some(why);
        r
    }

    /// The duplicate-detection key: task type and argv.
    pub fn dedup_key(&self) -> String {
        dedup_key(&self.task_type, &self.action)
    }
}

/// FNV-1a over the type and the action's identity, as 16 hex digits.
pub fn dedup_key(task_type: &str, action: &Action) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    eat(task_type.as_bytes());
    match action {
        Action::Command { argv, cwd, .. } => {
            for a in argv {
                eat(&a.0);
            }
            if let Some(c) = cwd {
                eat(c.as_os_str().as_bytes());
            }
        }
        Action::Analyzer { analyzer } => eat(analyzer.as_bytes()),
    }
    format!("{h:016x}")
}

pub use crate::model::Status;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_utf8_args_round_trip() {
        let a = Arg(vec![b'a', 0xff, b'\n', b' ']);
        let s = serde_json::to_string(&a).unwrap();
        assert_eq!(s, r#"{"hex":"61ff0a20"}"#);
        let b: Arg = serde_json::from_str(&s).unwrap();
        assert_eq!(a, b);
        let c: Arg = serde_json::from_str(r#""it's \"quoted\"""#).unwrap();
        assert_eq!(c.0, br#"it's "quoted""#);
    }

    #[test]
    fn dedup_key_separates_argv_boundaries() {
        let a = Action::Command {
            argv: vec!["ab".into(), "c".into()],
            cwd: None,
            env: Default::default(),
            report: None,
        };
        let b = Action::Command {
            argv: vec!["a".into(), "bc".into()],
            cwd: None,
            env: Default::default(),
            report: None,
        };
        assert_ne!(dedup_key("x", &a), dedup_key("x", &b));
        assert_eq!(dedup_key("x", &a), dedup_key("x", &a.clone()));
    }
}
