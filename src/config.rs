//! The config: the predecessor's schema read as-is plus bgrun's keys, typed with serde.
//!
//! Every key has an embedded default: the user's JSON is deep-merged over `DEFAULT_CONFIG`
//! and then deserialized one section at a time, so every type error found is reported with
//! its file and JSON path, broken JSON with line and column, and unknown keys are warnings.
//! This module reads files but never writes them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error;
use crate::model::Level;

/// The embedded default config, also what `bgrun init` writes.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.json");

/// The team's config, committed: `<repo>/bgrun.json` (what `bgrun init` writes).
pub const TEAM_CONFIG: &str = "bgrun.json";

/// Set `analysis.tools.NAME.version` for each pin in the config file at `path` (created
/// when missing), keeping every other key. A file with comments is kept as `FILE.bak`
/// first: the rewritten JSON cannot carry them.
pub fn write_pins(path: &Path, pins: &[(&str, &str)]) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(error::usage(format!("cannot read {}: {e}", path.display())));
        }
    };
    let mut v: Value = match &text {
        None => serde_json::json!({}),
        Some(t) => serde_json::from_str(&strip_comments(t)).map_err(|e| {
            error::usage(format!(
                "{}:{}:{}: not valid JSON: {} (fix it, then run `bgrun tools update` again)",
                path.display(),
                e.line(),
                e.column(),
                strip_pos(&e)
            ))
        })?,
    };
    let Some(obj) = v.as_object_mut() else {
        return Err(error::usage(format!(
            "{}: the config must be a JSON object",
            path.display()
        )));
    };
    let analysis = obj
        .entry("analysis")
        .or_insert_with(|| serde_json::json!({}));
    if !analysis.is_object() {
        *analysis = serde_json::json!({});
    }
    let tools = analysis
        .as_object_mut()
        .map(|a| a.entry("tools").or_insert_with(|| serde_json::json!({})));
    let Some(tools) = tools else {
        return Ok(());
    };
    if !tools.is_object() {
        *tools = serde_json::json!({});
    }
    for (name, version) in pins {
        if let Some(t) = tools.as_object_mut() {
            let entry = t
                .entry(name.to_string())
                .or_insert_with(|| serde_json::json!({}));
            if !entry.is_object() {
                *entry = serde_json::json!({});
            }
            if let Some(e) = entry.as_object_mut() {
                e.insert("version".into(), Value::String(version.to_string()));
            }
        }
    }
    if let Some(t) = &text
        && strip_comments(t).trim_start_matches('\u{feff}') != t.trim_start_matches('\u{feff}')
    {
        let mut bak = path.as_os_str().to_owned();
        bak.push(".bak");
        std::fs::write(&bak, t).map_err(|e| {
            error::usage(format!(
                "cannot keep a copy at {}: {e}",
                PathBuf::from(&bak).display()
            ))
        })?;
    }
    let mut bytes = serde_json::to_vec_pretty(&v)?;
    bytes.push(b'\n');
    crate::state::store::write_atomic(path, &bytes, true)?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644));
    }
    Ok(())
}

/// The four built-in task types (analyzers).
pub const BUILTIN_TYPES: [&str; 4] = [
    "security_scan",
    "performance_profile",
    "code_analysis",
    "test_runner",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub execution: Execution,
    pub resource_limits: ResourceLimits,
    pub task_types: BTreeMap<String, TaskType>,
    pub triggers: Triggers,
    pub notifications: Notifications,
    pub metrics: Metrics,
    pub results: Results,
    pub analysis: Analysis,
    /// The HTML report (new).
    #[serde(default)]
    pub report: ReportSettings,
    #[serde(default)]
    pub store: StoreConfig,
}

/// `report`: the HTML report of `bgrun report`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReportSettings {
    /// Refresh `<state>/report.html` after each drain.
    #[serde(default)]
    pub auto: bool,
}

/// The shared PostgreSQL store (issue 16): `store.url` (else `--store`/`$BGRUN_STORE`),
/// and how long a claim's lease lasts before any bgrun command may re-queue the task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreConfig {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
}

fn default_lease_seconds() -> u64 {
    30
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            lease_seconds: default_lease_seconds(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Execution {
    pub max_concurrent_tasks: usize,
    pub task_timeout_seconds: u64,
    pub process_isolation: bool,
    pub max_retries: u32,
    pub retry_delay_seconds: u64,
    pub max_queue_size: usize,
    pub kill_grace_seconds: u64,
    /// Per-task log cap in KiB (new).
    pub log_max_kb: u64,
    /// Seconds to wait for the state lock before exit 3 (new).
    pub lock_timeout_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceLimits {
    pub max_memory_mb: u64,
    /// Percent of the whole machine's CPU (all cores) a task's process tree may use.
    pub max_cpu_percent: f64,
    /// The nice and I/O class of every task.
    pub priority: ProcessPriority,
}

/// `resource_limits.priority`: how politely tasks share the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessPriority {
    Low,
    Medium,
    Normal,
    High,
}

impl ResourceLimits {
    /// The nice value and I/O class (class, level) of `priority`: `low` is nice 19 and the
    /// idle class; `high` nice 0, best-effort 4; anything else nice 10, best-effort 7.
    pub fn nice_and_ioprio(&self) -> (i32, Option<(u32, u32)>) {
        match self.priority {
            ProcessPriority::Low => (19, Some((3, 0))),
            ProcessPriority::High => (0, Some((2, 4))),
            ProcessPriority::Medium | ProcessPriority::Normal => (10, Some((2, 7))),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AutoTrigger {
    pub on_file_change: bool,
    pub interval_minutes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskType {
    pub enabled: bool,
    pub auto_trigger: AutoTrigger,
    pub priority: Priority,
    pub timeout_seconds: Option<u64>,
    pub notification_on_complete: bool,
    pub notification_on_issues: bool,
    pub debounce_seconds: f64,
    /// argv run for this type (user-defined types; overrides a built-in analyzer).
    pub command: Option<Vec<String>>,
    pub cwd: Option<String>,
    pub env: BTreeMap<String, String>,
    pub max_retries: Option<u32>,
    /// The command prints a report of this format on stdout, which is ingested.
    pub report: Option<ReportFormat>,
}

/// `task_types.NAME.report`: the format of a custom analyzer's report on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    Sarif,
    Findings,
}

impl ReportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Sarif => "sarif",
            ReportFormat::Findings => "findings",
        }
    }
}

impl std::fmt::Display for ReportFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Triggers {
    pub file_watch: FileWatch,
    pub git_hooks: GitHooks,
    pub scheduled: Scheduled,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileWatch {
    pub enabled: bool,
    pub paths: Vec<String>,
    pub exclude_paths: Vec<String>,
    pub check_interval_seconds: f64,
    pub debounce_seconds: f64,
    pub respect_gitignore: bool,
    /// Task types to enqueue on change; None: every type with auto_trigger.on_file_change.
    pub task_types: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GitHooks {
    pub enabled: bool,
    /// Hook names (either spelling) that wait for their tasks and fail the git command.
    pub blocking: Vec<String>,
    /// Hook name (as git spells it, `pre-commit`) -> task types.
    #[serde(flatten)]
    pub hooks: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scheduled {
    pub enabled: bool,
    pub tasks: Vec<ScheduledTask>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduledTask {
    pub name: String,
    pub task_type: String,
    pub schedule: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notifications {
    pub enabled: bool,
    pub channels: Channels,
}

#[derive(Debug, Clone, Serialize)]
pub struct Channels {
    pub console: ChannelBase,
    pub desktop: DesktopChannel,
    pub file: FileChannel,
    pub email: EmailChannel,
    pub webhook: WebhookChannel,
    /// User-named channels (`{"type": "command", ...}`), any other key under `channels`.
    #[serde(flatten)]
    pub custom: BTreeMap<String, CommandChannel>,
}

/// Read by hand rather than with `#[serde(flatten)]`, so that an error inside a user-named
/// channel names its key (`notifications.channels.NAME.min_severity`).
impl<'de> Deserialize<'de> for Channels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Channels, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Channels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("struct Channels")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Channels, A::Error> {
                use serde::de::Error;
                let (mut console, mut desktop, mut file, mut email, mut webhook) =
                    (None, None, None, None, None);
                let mut custom = BTreeMap::new();
                while let Some(key) = m.next_key::<String>()? {
                    match key.as_str() {
                        "console" => console = Some(m.next_value()?),
                        "desktop" => desktop = Some(m.next_value()?),
                        "file" => file = Some(m.next_value()?),
                        "email" => email = Some(m.next_value()?),
                        "webhook" => webhook = Some(m.next_value()?),
                        _ => {
                            let c: CommandChannel = m.next_value()?;
                            custom.insert(key, c);
                        }
                    }
                }
                Ok(Channels {
                    console: console.ok_or_else(|| A::Error::missing_field("console"))?,
                    desktop: desktop.ok_or_else(|| A::Error::missing_field("desktop"))?,
                    file: file.ok_or_else(|| A::Error::missing_field("file"))?,
                    email: email.ok_or_else(|| A::Error::missing_field("email"))?,
                    webhook: webhook.ok_or_else(|| A::Error::missing_field("webhook"))?,
                    custom,
                })
            }
        }
        d.deserialize_map(Fields)
    }
}

/// A `command` channel: runs `command` (argv, no shell) with the event as JSON on stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandChannel {
    #[serde(rename = "type")]
    pub kind: ChannelKind,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub command: Vec<String>,
    #[serde(default = "info")]
    pub min_severity: Level,
    #[serde(default = "ten")]
    pub timeout_seconds: u64,
}

fn yes() -> bool {
    true
}
fn info() -> Level {
    Level::Info
}
fn ten() -> u64 {
    10
}

/// `true`, `false` or `"auto"` (on only where it can work, skipped silently elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toggle {
    On,
    Off,
    Auto,
}

impl Toggle {
    pub fn is_off(self) -> bool {
        self == Toggle::Off
    }
}

impl Serialize for Toggle {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Toggle::On => s.serialize_bool(true),
            Toggle::Off => s.serialize_bool(false),
            Toggle::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for Toggle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(true) => Ok(Toggle::On),
            Value::Bool(false) => Ok(Toggle::Off),
            Value::String(s) if s == "auto" => Ok(Toggle::Auto),
            _ => Err(serde::de::Error::custom("expected true, false or \"auto\"")),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelBase {
    pub enabled: bool,
    pub min_severity: Level,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DesktopChannel {
    /// `"auto"` (the default): on when a session bus with a notification server is there.
    pub enabled: Toggle,
    pub min_severity: Level,
    pub timeout_ms: u64,
    pub retries: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileChannel {
    pub enabled: bool,
    pub min_severity: Level,
    pub path: String,
    pub max_size_kb: u64,
    pub keep_files: u32,
    pub retention_days: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailChannel {
    pub enabled: bool,
    pub min_severity: Level,
    pub smtp_server: String,
    pub smtp_port: u16,
    /// `use_tls` (the predecessor's bool) is read too.
    pub tls: Option<TlsMode>,
    pub use_tls: Option<bool>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub from_email: String,
    pub to_emails: Vec<String>,
    pub format: EmailFormat,
    pub timeout_seconds: u64,
    /// A PEM file of extra CA certificates to trust for the SMTP server (new; relative to
    /// the repo), beside the system's roots: for a relay with a private CA.
    pub ca_file: Option<String>,
}

/// `notifications.channels.email.tls`: how the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain, upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS.
    None,
}

/// `notifications.channels.email.format`: the parts of a notification mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailFormat {
    Text,
    Html,
    /// Both, as multipart/alternative.
    Both,
}

/// `notifications.channels.NAME.type` of a user-named channel: `command` is the only one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    Command,
}

/// The words of a closed config set: each enum's one spelling on disk, and the error for
/// any other (naming the words; `found` adds what was there).
macro_rules! config_words {
    ($t:ty, $expected:literal, $found:literal, $($v:path => $w:literal),+ $(,)?) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($v => $w,)+
                }
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                match s.as_str() {
                    $($w => Ok($v),)+
                    _ if $found => Err(serde::de::Error::custom(format!(
                        concat!("expected ", $expected, ", found {:?}"),
                        s
                    ))),
                    _ => Err(serde::de::Error::custom(concat!("expected ", $expected))),
                }
            }
        }
    };
}

config_words!(TlsMode, "starttls, implicit or none", true,
    TlsMode::Starttls => "starttls", TlsMode::Implicit => "implicit", TlsMode::None => "none");
config_words!(EmailFormat, "text, html or both", false,
    EmailFormat::Text => "text", EmailFormat::Html => "html", EmailFormat::Both => "both");
config_words!(ChannelKind, "\"command\" (the only custom channel type)", true,
    ChannelKind::Command => "command");

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookChannel {
    pub enabled: bool,
    pub min_severity: Level,
    pub url: String,
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metrics {
    pub task_execution_time: bool,
    pub task_success_rate: bool,
    pub resource_usage: bool,
    pub queue_length: bool,
    pub concurrent_tasks: bool,
    pub retention_days: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub retention_days: u64,
}

/// Analyzer settings (new).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Analysis {
    /// Cyclomatic complexity above which a function is reported.
    pub complexity_threshold: u64,
    /// Lines above which a file is reported as large.
    pub large_file_lines: u64,
    /// Per-tool timeout.
    pub tool_timeout_seconds: u64,
    /// Tools not to run (by name: bandit, pip-audit, npm-audit, cargo-audit, radon-cc,
    /// radon-mi, radon-raw, sizes, pylint, ruff, eslint, clippy, pytest, unittest, npm-test,
    /// cargo-test, maven, gradle); they are reported as skipped.
    #[serde(default)]
    pub disabled_tools: Vec<String>,
    /// Per tool: the pinned version and where it comes from (issue 13).
    #[serde(default)]
    pub tools: BTreeMap<String, ToolPin>,
    /// Install a missing managed tool on first use (`--no-install` turns it off per run).
    #[serde(default = "yes")]
    pub install_tools: bool,
    /// Deadline of one tool install (venv + pip, npm, cargo install).
    #[serde(default = "install_timeout")]
    pub install_timeout_seconds: u64,
    /// The project's Python interpreter for its tests (relative to the repo); default: its
    /// `.venv` or `venv`.
    #[serde(default)]
    pub python: Option<String>,
    /// Bound of the result cache (`<state>/cache/`) in MiB; past it the least recently
    /// used entries go first.
    #[serde(default = "cache_max_mb")]
    pub cache_max_mb: u64,
}

fn install_timeout() -> u64 {
    600
}

fn cache_max_mb() -> u64 {
    64
}

/// `analysis.tools.NAME`: `{"version": "X.Y.Z", "source": "managed|project|system"}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ToolPin {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub source: Option<crate::tools::Source>,
}

impl Analysis {
    /// The pins as the tools module takes them (validated by [`parse`]).
    pub fn tool_pins(&self) -> BTreeMap<String, crate::tools::Pin> {
        self.tools
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    crate::tools::Pin {
                        version: v.version.clone(),
                        source: v.source,
                    },
                )
            })
            .collect()
    }

    /// Where the analyzers take their tools from: the pins, `$BGRUN_TOOL_SOURCE` for the
    /// rest (default managed), installing on first use when `allow_install` (no
    /// `--no-install`) and `install_tools`; `progress` is told of each install.
    pub fn tool_settings(
        &self,
        allow_install: bool,
        progress: Option<crate::tools::Progress>,
    ) -> crate::tools::Settings {
        crate::tools::Settings {
            pins: self.tool_pins(),
            default_source: crate::tools::default_source_from_env()
                .unwrap_or(crate::tools::Source::Managed),
            install: allow_install && self.install_tools,
            install_timeout: std::time::Duration::from_secs(self.install_timeout_seconds.max(1)),
            cache: crate::tools::Cache::from_env(),
            progress,
        }
    }
}

/// The team config `bgrun tools update` writes: `--config`/`$BGRUN_CONFIG` when given
/// (a file outside the chain), else `<repo>/bgrun.json`.
pub fn team_config(source: &Source, repo: &Path) -> PathBuf {
    if let Source::File(p) = source
        && !CHAIN.iter().any(|rel| repo.join(rel) == *p)
    {
        return p.clone();
    }
    repo.join(TEAM_CONFIG)
}

/// `analysis.tools`: known tool names, real versions, one of the three sources.
fn validate_tools(a: &Analysis, file: &str, errors: &mut Vec<String>) {
    for (name, pin) in &a.tools {
        let Some(spec) = crate::tools::spec(name) else {
            let known: Vec<&str> = crate::tools::TABLE.iter().map(|s| s.name).collect();
            errors.push(format!(
                "{file}: analysis.tools.{name}: not a tool bgrun knows (known: {})",
                known.join(", ")
            ));
            continue;
        };
        if let Some(v) = &pin.version
            && !crate::tools::valid_version(v)
        {
            errors.push(format!(
                "{file}: analysis.tools.{name}.version: {v:?} is not a version (like {:?})",
                spec.default_version
            ));
        }
    }
}

/// A task priority: `critical` 1000, `high` 100, `medium` 10, `low` 1, or an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Priority(pub i64);

impl Priority {
    pub fn parse(s: &str) -> Option<Priority> {
        match s.trim().to_ascii_lowercase().as_str() {
            "critical" => Some(Priority(1000)),
            "high" => Some(Priority(100)),
            "medium" | "normal" => Some(Priority(10)),
            "low" => Some(Priority(1)),
            other => other.parse::<i64>().ok().map(Priority),
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1000 => f.write_str("critical"),
            100 => f.write_str("high"),
            10 => f.write_str("medium"),
            1 => f.write_str("low"),
            n => write!(f, "{n}"),
        }
    }
}

impl Serialize for Priority {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            1000 | 100 | 10 | 1 => s.serialize_str(&self.to_string()),
            n => s.serialize_i64(n),
        }
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
        }
        let bad = || serde::de::Error::custom("expected critical, high, medium, low or an integer");
        match Raw::deserialize(d).map_err(|_| bad())? {
            Raw::Int(n) => Ok(Priority(n)),
            Raw::Str(s) => Priority::parse(&s).ok_or_else(bad),
        }
    }
}

/// Where the config came from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "path")]
pub enum Source {
    File(PathBuf),
    Embedded,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Embedded => f.write_str("<embedded defaults>"),
        }
    }
}

/// A resolved config with where it came from and what was odd about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// The file of highest precedence (or the embedded defaults).
    pub source: Source,
    pub warnings: Vec<String>,
    /// Every file merged, lowest precedence first (issue 13).
    pub files: Vec<PathBuf>,
    /// Which file set each value (`analysis.tools.ruff.version` -> file); a value not
    /// listed is the embedded default.
    pub provenance: BTreeMap<String, PathBuf>,
}

/// The predecessor's config, the team's (committed) and the personal one, in merge order.
pub const CHAIN: [&str; 3] = [
    ".claude/config/background-tasks.json",
    TEAM_CONFIG,
    ".bgrun/config.json",
];

/// The config files to merge, lowest precedence first: `--config` or `$BGRUN_CONFIG` alone
/// when given (it replaces the file part of the chain), else those of [`CHAIN`] that exist.
pub fn layers(explicit: Option<&Path>, repo: &Path) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    if let Some(p) = std::env::var_os("BGRUN_CONFIG").filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    CHAIN
        .iter()
        .map(|rel| repo.join(rel))
        .filter(|p| p.is_file())
        .collect()
}

/// The config file of highest precedence (see [`layers`]).
pub fn discover(explicit: Option<&Path>, repo: &Path) -> Source {
    match layers(explicit, repo).pop() {
        Some(p) => Source::File(p),
        None => Source::Embedded,
    }
}

/// The files' JSON merged (no defaults, no validation); None when one cannot be read or
/// parsed. For callers that must decide before a full load (`bgrun hook`).
pub fn user_json(explicit: Option<&Path>, repo: &Path) -> Option<Value> {
    let mut user = Value::Object(Default::default());
    for f in layers(explicit, repo) {
        let text = std::fs::read_to_string(&f).ok()?;
        let mut v = parse_json(&text, "").ok()?;
        normalize_hooks(&mut v, &mut Vec::new());
        merge(&mut user, &v);
    }
    Some(user)
}

/// Discover, read, merge and validate the config. Every error found is reported at once
/// (exit 2), each naming the file that set the bad value.
pub fn load(explicit: Option<&Path>, repo: &Path) -> Result<Loaded> {
    let files = layers(explicit, repo);
    let source = match files.last() {
        Some(p) => Source::File(p.clone()),
        None => Source::Embedded,
    };
    let mut user = Value::Object(Default::default());
    let mut provenance = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| {
            error::usage(format!(
                "cannot read config {}: {e} (check --config / $BGRUN_CONFIG, or run `bgrun init`)",
                f.display()
            ))
        })?;
        match parse_json(&text, &f.display().to_string()) {
            Ok(mut v) => {
                warnings.extend(duplicate_warnings(&text, &f.display().to_string()));
                normalize_hooks(&mut v, &mut warnings);
                record(&v, "", f, &mut provenance);
                merge(&mut user, &v);
            }
            Err(e) => errors.extend(e),
        }
    }
    let label = files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ");
    let label = if label.is_empty() {
        source.to_string()
    } else {
        label
    };
    let result = if errors.is_empty() {
        parse_value(user, PLACEHOLDER)
    } else {
        Err(errors)
    };
    let attribute = |msgs: Vec<String>| -> Vec<String> {
        msgs.into_iter()
            .map(|m| attribute(&m, &provenance, &source))
            .collect()
    };
    let (config, more) = result.map_err(|errors| {
        error::usage(format!(
            "invalid config {label}:\n  {}\n(fix these keys, or run `bgrun config check` after editing)",
            attribute(errors).join("\n  ")
        ))
    })?;
    warnings.extend(attribute(more));
    Ok(Loaded {
        config,
        source,
        warnings,
        files,
        provenance,
    })
}

/// Stands for the file in messages until [`attribute`] names the one that set the key.
const PLACEHOLDER: &str = "\u{1}config";

/// `PLACEHOLDER: a.b[0].c: msg` -> `FILE: a.b[0].c: msg`, FILE being the file that set
/// the longest prefix of the key (else the file of highest precedence).
fn attribute(msg: &str, provenance: &BTreeMap<String, PathBuf>, top: &Source) -> String {
    let Some(rest) = msg.strip_prefix(PLACEHOLDER) else {
        return msg.to_string();
    };
    let key = rest
        .strip_prefix(": ")
        .and_then(|r| r.split(": ").next())
        .unwrap_or("");
    let mut key: String = key.split('[').next().unwrap_or("").to_string();
    let file = loop {
        if let Some(f) = provenance.get(&key) {
            break f.display().to_string();
        }
        match key.rfind('.') {
            Some(i) => key.truncate(i),
            None => break top.to_string(),
        }
    };
    format!("{file}{rest}")
}

/// Note `file` as the source of every leaf of `v` (objects are walked; anything else,
/// arrays included, is a leaf, as [`merge`] replaces it whole).
fn record(v: &Value, prefix: &str, file: &Path, out: &mut BTreeMap<String, PathBuf>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                record(child, &key, file, out);
            }
        }
        _ if !prefix.is_empty() => {
            // A file setting a whole object replaces what an earlier file set under it.
            let under = format!("{prefix}.");
            out.retain(|k, _| !k.starts_with(&under));
            out.insert(prefix.to_string(), file.to_path_buf());
        }
        _ => {}
    }
}

/// JSON with `//` and `/* */` comments and a UTF-8 BOM accepted: the comments become
/// spaces (newlines kept) so that error lines and columns stay those of the file.
pub fn strip_comments(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                out.push_str("  ");
                chars.next();
                while let Some(&n) = chars.peek() {
                    if n == '\n' {
                        break;
                    }
                    blank(&mut out, n);
                    chars.next();
                }
            }
            ('/', Some('*')) => {
                out.push_str("  ");
                chars.next();
                let mut prev = '\0';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        out.push(' ');
                        break;
                    }
                    blank(&mut out, n);
                    prev = n;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// A comment's character as blank space of the same width in bytes (newlines kept), so
/// that serde_json's byte columns stay those of the file.
fn blank(out: &mut String, c: char) {
    if c == '\n' || c == '\r' {
        out.push(c);
    } else {
        out.extend(std::iter::repeat_n(' ', c.len_utf8()));
    }
}

/// One file's text as a JSON object (comments and BOM accepted), or its error with line
/// and column.
fn parse_json(text: &str, file: &str) -> Result<Value, Vec<String>> {
    let user: Value = serde_json::from_str(&strip_comments(text)).map_err(|e| {
        vec![format!(
            "{file}:{}:{}: not valid JSON: {}",
            e.line(),
            e.column(),
            strip_pos(&e)
        )]
    })?;
    if !user.is_object() {
        return Err(vec![format!(
            "{file}: the config must be a JSON object, found {}",
            kind(&user)
        )]);
    }
    Ok(user)
}

/// Parse config text: the result, or every error found (`file: path: message`).
pub fn parse(text: &str, file: &str) -> Result<(Config, Vec<String>), Vec<String>> {
    let user = parse_json(text, file)?;
    let (config, mut warnings) = parse_value(user, file)?;
    warnings.extend(duplicate_warnings(text, file));
    Ok((config, warnings))
}

/// Keys given twice in one object of one file (comments allowed).
fn duplicate_warnings(text: &str, file: &str) -> Vec<String> {
    crate::config_check::duplicate_keys(&strip_comments(text))
        .into_iter()
        .map(|d| format!("{file}: {d}: the key appears more than once; the last value is taken"))
        .collect()
}

/// A user's JSON object over the defaults: the result, or every error found.
fn parse_value(user: Value, file: &str) -> Result<(Config, Vec<String>), Vec<String>> {
    if !user.is_object() {
        return Err(vec![format!(
            "{file}: the config must be a JSON object, found {}",
            kind(&user)
        )]);
    }
    let mut merged: Value =
        serde_json::from_str(DEFAULT_CONFIG).map_err(|e| vec![e.to_string()])?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    // Built-in task types take their defaults from the embedded entries; user-defined
    // types from the template entry.
    // Hook keys are normalized on each side before merging, so that a user's `pre-commit`
    // replaces the default `pre_commit` instead of losing to it.
    let mut user = user;
    normalize_hooks(&mut user, &mut warnings);
    normalize_hooks(&mut merged, &mut Vec::new());
    let default_types = merged.get("task_types").cloned().unwrap_or_default();
    merge(&mut merged, &user);
    if let Some(Value::Object(types)) = merged.get_mut("task_types") {
        let template = template_task_type();
        for (name, v) in types.iter_mut() {
            if !v.is_object() {
                continue;
            }
            let mut base = default_types
                .get(name)
                .cloned()
                .unwrap_or_else(|| template.clone());
            if base.is_null() {
                base = template.clone();
            }
            merge(&mut base, v);
            *v = base;
        }
    }
    normalize_hooks(&mut merged, &mut warnings);
    if user
        .pointer("/notifications/channels/email/password")
        .is_some()
    {
        errors.push(format!(
            "{file}: notifications.channels.email.password: a password is never read from the config; \
             remove it and put it in an environment variable named by `password_env` \
             (default BGRUN_SMTP_PASSWORD) or in a private file named by `password_file`"
        ));
    }

    let known = merged.clone();
    // Deserialize section by section, once, so that every bad section is reported.
    let Value::Object(obj) = merged else {
        return Err(vec![format!("{file}: the config must be a JSON object")]);
    };
    let mut c = Sections::default();
    for (key, value) in &obj {
        let (e, w) = (&mut errors, &mut warnings);
        match key.as_str() {
            "task_types" => match value {
                Value::Object(types) => {
                    for (name, t) in types {
                        if let Some(t) = check_section(t, &format!("task_types.{name}"), file, e, w)
                        {
                            c.task_types.insert(name.clone(), t);
                        }
                    }
                }
                _ => e.push(format!(
                    "{file}: task_types: expected an object, found {}",
                    kind(value)
                )),
            },
            "execution" => c.execution = check_section(value, key, file, e, w),
            "resource_limits" => c.resource_limits = check_section(value, key, file, e, w),
            "triggers" => c.triggers = check_section(value, key, file, e, w),
            "notifications" => c.notifications = check_section(value, key, file, e, w),
            "metrics" => c.metrics = check_section(value, key, file, e, w),
            "results" => c.results = check_section(value, key, file, e, w),
            "analysis" => c.analysis = check_section(value, key, file, e, w),
            "report" => c.report = check_section(value, key, file, e, w),
            "store" => c.store = check_section(value, key, file, e, w),
            _ => w.push(format!("{file}: {key}: unknown key (ignored)")),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let missing = |what: &str| vec![format!("{file}: {what}: missing")];
    let config = Config {
        execution: c.execution.ok_or_else(|| missing("execution"))?,
        resource_limits: c
            .resource_limits
            .ok_or_else(|| missing("resource_limits"))?,
        task_types: c.task_types,
        triggers: c.triggers.ok_or_else(|| missing("triggers"))?,
        notifications: c.notifications.ok_or_else(|| missing("notifications"))?,
        metrics: c.metrics.ok_or_else(|| missing("metrics"))?,
        results: c.results.ok_or_else(|| missing("results"))?,
        analysis: c.analysis.ok_or_else(|| missing("analysis"))?,
        report: c.report.unwrap_or_default(),
        store: c.store.unwrap_or_default(),
    };
    validate(&config, file, &mut errors, &mut warnings);
    if let Ok(v) = serde_json::to_value(&config) {
        crate::config_check::check_ranges(&v, file, &mut errors);
    }
    crate::config_check::suggest_near_keys(&mut warnings, &known, file);
    if errors.is_empty() {
        Ok((config, warnings))
    } else {
        Err(errors)
    }
}

/// The sections of a config as they are deserialized, one at a time.
#[derive(Default)]
struct Sections {
    execution: Option<Execution>,
    resource_limits: Option<ResourceLimits>,
    task_types: BTreeMap<String, TaskType>,
    triggers: Option<Triggers>,
    notifications: Option<Notifications>,
    metrics: Option<Metrics>,
    results: Option<Results>,
    analysis: Option<Analysis>,
    report: Option<ReportSettings>,
    store: Option<StoreConfig>,
}

fn check_section<T: DeserializeOwned>(
    value: &Value,
    path: &str,
    file: &str,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<T> {
    let mut ignored = Vec::new();
    let mut track = |p: serde_ignored::Path<'_>| ignored.push(p.to_string());
    let de = serde_ignored::Deserializer::new(value, &mut track);
    let res: Result<T, _> = serde_path_to_error::deserialize(de);
    let value = match res {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let full = if inner == "." {
                path.to_string()
            } else {
                format!("{path}.{inner}")
            };
            errors.push(format!("{file}: {full}: {}", e.inner()));
            None
        }
    };
    for p in ignored {
        warnings.push(format!("{file}: {path}.{p}: unknown key (ignored)"));
    }
    value
}

/// Semantic checks that serde cannot make.
fn validate(c: &Config, file: &str, errors: &mut Vec<String>, warnings: &mut Vec<String>) {
    validate_tools(&c.analysis, file, errors);
    if c.store.lease_seconds < 2 || c.store.lease_seconds > 86_400 {
        errors.push(format!(
            "{file}: store.lease_seconds: must be between 2 and 86400 (seconds)"
        ));
    }
    if let Some(u) = &c.store.url
        && !(u.starts_with("postgres://") || u.starts_with("postgresql://"))
    {
        errors.push(format!(
            "{file}: store.url: expected a postgres://... URL (or null for the local journal)"
        ));
    }
    if c.execution.max_concurrent_tasks == 0 {
        errors.push(format!(
            "{file}: execution.max_concurrent_tasks: must be at least 1"
        ));
    }
    if c.execution.max_queue_size == 0 {
        errors.push(format!(
            "{file}: execution.max_queue_size: must be at least 1"
        ));
    }
    if !(c.resource_limits.max_cpu_percent > 0.0 && c.resource_limits.max_cpu_percent <= 100.0) {
        errors.push(format!(
            "{file}: resource_limits.max_cpu_percent: expected 0 < percent <= 100"
        ));
    }
    for (name, t) in &c.task_types {
        let builtin = BUILTIN_TYPES.contains(&name.as_str());
        match &t.command {
            Some(argv) if argv.is_empty() => errors.push(format!(
                "{file}: task_types.{name}.command: must name a program (an argv list, no shell)"
            )),
            None if !builtin => errors.push(format!(
                "{file}: task_types.{name}.command: a user-defined task type needs a command (argv list)"
            )),
            _ => {}
        }
        if name == "custom" {
            errors.push(format!(
                "{file}: task_types.custom: `custom` is reserved for `bgrun enqueue custom -- ARGV`"
            ));
        }
    }
    let known_type = |t: &str| c.task_types.contains_key(t);
    for (hook, types) in &c.triggers.git_hooks.hooks {
        for t in types {
            if !known_type(t) {
                errors.push(format!(
                    "{file}: triggers.git_hooks.{hook}: unknown task type {t:?}"
                ));
            }
        }
        if !crate::config::GIT_HOOKS.contains(&hook.as_str()) {
            warnings.push(format!(
                "{file}: triggers.git_hooks.{hook}: not a hook git runs"
            ));
        }
    }
    for b in &c.triggers.git_hooks.blocking {
        let b = b.replace('_', "-");
        if !c.triggers.git_hooks.hooks.contains_key(&b) {
            warnings.push(format!(
                "{file}: triggers.git_hooks.blocking: {b} has no tasks configured"
            ));
        }
    }
    if let Some(types) = &c.triggers.file_watch.task_types {
        for t in types {
            if !known_type(t) {
                errors.push(format!(
                    "{file}: triggers.file_watch.task_types: unknown task type {t:?}"
                ));
            }
        }
    }
    for (field, globs) in [
        ("paths", &c.triggers.file_watch.paths),
        ("exclude_paths", &c.triggers.file_watch.exclude_paths),
    ] {
        for g in globs {
            if let Err(e) = globset::Glob::new(g) {
                errors.push(format!(
                    "{file}: triggers.file_watch.{field}: bad glob {g:?}: {e}"
                ));
            }
        }
    }
    for (i, s) in c.triggers.scheduled.tasks.iter().enumerate() {
        if !known_type(&s.task_type) {
            errors.push(format!(
                "{file}: triggers.scheduled.tasks[{i}].task_type: unknown task type {:?} (task {:?})",
                s.task_type, s.name
            ));
        }
    }
    let ch = &c.notifications.channels;
    for (name, c) in &ch.custom {
        if c.command.is_empty() {
            errors.push(format!(
                "{file}: notifications.channels.{name}.command: must name a program (an argv list, no shell)"
            ));
        }
    }
}

/// Hooks git runs (githooks(5)); others are accepted with a warning.
pub const GIT_HOOKS: [&str; 28] = [
    "applypatch-msg",
    "pre-applypatch",
    "post-applypatch",
    "pre-commit",
    "pre-merge-commit",
    "prepare-commit-msg",
    "commit-msg",
    "post-commit",
    "pre-rebase",
    "post-checkout",
    "post-merge",
    "pre-push",
    "pre-receive",
    "update",
    "proc-receive",
    "post-receive",
    "post-update",
    "reference-transaction",
    "push-to-checkout",
    "pre-auto-gc",
    "post-rewrite",
    "sendemail-validate",
    "fsmonitor-watchman",
    "p4-changelist",
    "p4-prepare-changelist",
    "p4-post-changelist",
    "p4-pre-submit",
    "post-index-change",
];

/// Hook keys are accepted as `pre_commit` or `pre-commit`; store them as git spells them.
fn normalize_hooks(merged: &mut Value, warnings: &mut Vec<String>) {
    let Some(Value::Object(hooks)) = merged.pointer_mut("/triggers/git_hooks") else {
        return;
    };
    let keys: Vec<String> = hooks.keys().cloned().collect();
    for k in keys {
        if k == "enabled" || k == "blocking" {
            continue;
        }
        let dashed = k.replace('_', "-");
        if dashed != k
            && let Some(v) = hooks.remove(&k)
        {
            if hooks.contains_key(&dashed) {
                warnings.push(format!(
                    "triggers.git_hooks: both {k} and {dashed} given; using {k}"
                ));
            }
            hooks.insert(dashed, v);
        }
    }
    if let Some(Value::Array(b)) = hooks.get_mut("blocking") {
        for v in b.iter_mut() {
            if let Value::String(s) = v {
                *s = s.replace('_', "-");
            }
        }
    }
}

fn template_task_type() -> Value {
    serde_json::json!({
        "enabled": true,
        "auto_trigger": {"on_file_change": false, "interval_minutes": null},
        "priority": "medium",
        "timeout_seconds": null,
        "notification_on_complete": false,
        "notification_on_issues": true,
        "debounce_seconds": 1.0,
        "command": null,
        "cwd": null,
        "env": {},
        "max_retries": null,
        "report": null
    })
}

/// Deep-merge `over` into `base`: objects key by key, everything else replaced.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn strip_pos(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl Config {
    pub fn embedded() -> Config {
        parse("{}", "<embedded>")
            .map(|(c, _)| c)
            .unwrap_or_else(|e| panic!("the embedded default config is invalid: {e:?}"))
    }

    /// The task type's timeout, else the execution default.
    pub fn timeout_for(&self, t: &TaskType) -> u64 {
        t.timeout_seconds
            .unwrap_or(self.execution.task_timeout_seconds)
    }

    /// Task types listed for a git hook (either spelling).
    pub fn hook_tasks(&self, hook: &str) -> Vec<String> {
        self.triggers
            .git_hooks
            .hooks
            .get(&hook.replace('_', "-"))
            .cloned()
            .unwrap_or_default()
    }

    /// The one rule every trigger follows for a task type it was told to queue: a
    /// configured type whose `enabled` is false is skipped, and this says why (for the
    /// warning); None otherwise (an unknown type is reported when it is queued).
    pub fn disabled_type(&self, name: &str) -> Option<String> {
        self.task_types
            .get(name)
            .filter(|t| !t.enabled)
            .map(|_| format!("task type {name} is disabled (task_types.{name}.enabled)"))
    }

    /// Whether a git hook waits for its tasks.
    pub fn hook_is_blocking(&self, hook: &str) -> bool {
        let h = hook.replace('_', "-");
        self.triggers
            .git_hooks
            .blocking
            .iter()
            .any(|b| b.replace('_', "-") == h)
    }

    /// Task types enqueued on file changes.
    pub fn watch_task_types(&self) -> Vec<String> {
        match &self.triggers.file_watch.task_types {
            Some(t) => t.clone(),
            None => self
                .task_types
                .iter()
                .filter(|(_, t)| t.enabled && t.auto_trigger.on_file_change)
                .map(|(n, _)| n.clone())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_hook_blocks_in_the_embedded_defaults() {
        // `bgrun hook` relies on this to return before loading the config.
        assert!(Config::embedded().triggers.git_hooks.blocking.is_empty());
    }

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::embedded();
        assert_eq!(c.execution.max_concurrent_tasks, 5);
        assert_eq!(c.task_types["security_scan"].priority, Priority(100));
        assert_eq!(
            c.hook_tasks("pre_push"),
            vec!["test_runner", "performance_profile"]
        );
    }

    #[test]
    fn wrong_type_names_the_path() {
        let errs = parse(
            r#"{"task_types": {"security_scan": {"priority": [1]}}}"#,
            "c.json",
        )
        .unwrap_err();
        assert!(
            errs[0].contains("c.json: task_types.security_scan.priority"),
            "{errs:?}"
        );
    }

    #[test]
    fn broken_json_gives_line_and_column() {
        let errs = parse("{\n  \"execution\": {,}\n}", "c.json").unwrap_err();
        assert!(errs[0].starts_with("c.json:2:"), "{errs:?}");
    }

    #[test]
    fn every_error_is_reported_and_unknown_keys_warn() {
        let text = r#"{"execution": {"max_retries": "x"}, "metrics": {"retention_days": -1},
                       "bogus": 1, "results": {"retention_days": 3, "extra": true}}"#;
        let errs = parse(text, "c.json").unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        let (_, warns) = parse(r#"{"bogus": 1, "results": {"extra": true}}"#, "c.json").unwrap();
        assert!(warns.iter().any(|w| w.contains("bogus")));
        assert!(warns.iter().any(|w| w.contains("results.extra")));
    }

    #[test]
    fn user_defined_type_and_priority_forms() {
        let text = r#"{"task_types": {"docs_lint": {"command": ["vale", "docs/"], "priority": 42}},
                       "triggers": {"git_hooks": {"pre_commit": ["docs_lint"], "blocking": ["pre_commit"]}}}"#;
        let (c, _) = parse(text, "c.json").unwrap();
        assert_eq!(c.task_types["docs_lint"].priority, Priority(42));
        assert!(c.task_types["docs_lint"].enabled);
        assert!(c.hook_is_blocking("pre-commit"));
        assert_eq!(c.hook_tasks("pre-commit"), vec!["docs_lint"]);
        assert_eq!(Priority::parse("critical"), Some(Priority(1000)));
    }

    #[test]
    fn comments_and_bom_are_blanked_keeping_positions() {
        let text = "\u{feff}{ // é note\n  \"a\": \"// not a comment\", /* x\n y */ \"b\": 1 }";
        let out = strip_comments(text);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["a"], "// not a comment");
        assert_eq!(v["b"], 1);
        // Same lines, same byte length per line (the BOM aside).
        let orig = text.trim_start_matches('\u{feff}');
        assert_eq!(out.len(), orig.len());
        assert_eq!(out.lines().count(), orig.lines().count());
        let errs = parse("/* c */ {\"execution\": {,}}", "c.json").unwrap_err();
        assert!(errs[0].starts_with("c.json:1:24:"), "{errs:?}");
        let (c, _) = parse("\u{feff}{\"results\": {\"retention_days\": 3}}", "c.json").unwrap();
        assert_eq!(c.results.retention_days, 3);
    }

    #[test]
    fn errors_name_the_file_that_set_the_key() {
        let mut prov = BTreeMap::new();
        prov.insert(
            "execution.max_retries".to_string(),
            PathBuf::from("/r/bgrun.json"),
        );
        prov.insert(
            "triggers.scheduled.tasks".to_string(),
            PathBuf::from("/r/p.json"),
        );
        let top = Source::File(PathBuf::from("/r/.bgrun/config.json"));
        let m = format!("{PLACEHOLDER}: execution.max_retries: invalid type");
        assert_eq!(
            attribute(&m, &prov, &top),
            "/r/bgrun.json: execution.max_retries: invalid type"
        );
        let m = format!("{PLACEHOLDER}: triggers.scheduled.tasks[0].task_type: unknown");
        assert!(attribute(&m, &prov, &top).starts_with("/r/p.json: triggers"));
        let m = format!("{PLACEHOLDER}: metrics.retention_days: bad");
        assert!(attribute(&m, &prov, &top).starts_with("/r/.bgrun/config.json: metrics"));
        // A later file replacing a whole object takes over its keys.
        let mut prov = BTreeMap::new();
        record(
            &serde_json::json!({"a": {"b": 1, "c": 2}}),
            "",
            Path::new("one"),
            &mut prov,
        );
        record(
            &serde_json::json!({"a": {"b": 3}}),
            "",
            Path::new("two"),
            &mut prov,
        );
        assert_eq!(prov["a.b"], PathBuf::from("two"));
        assert_eq!(prov["a.c"], PathBuf::from("one"));
        record(
            &serde_json::json!({"a": []}),
            "",
            Path::new("three"),
            &mut prov,
        );
        assert_eq!(prov.len(), 1, "{prov:?}");
    }

    #[test]
    fn dashed_hook_key_overrides_the_default_underscore_key() {
        let text = r#"{"task_types": {"docs_lint": {"command": ["vale"]}},
                       "triggers": {"git_hooks": {"post-commit": ["docs_lint"]}}}"#;
        let (c, warns) = parse(text, "c.json").unwrap();
        assert_eq!(c.hook_tasks("post-commit"), vec!["docs_lint"]);
        assert!(!warns.iter().any(|w| w.contains("both")), "{warns:?}");
    }
}
