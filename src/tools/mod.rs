//! Managed tool environments (issue 13): the table of the analysis tools bgrun knows, each
//! with a default pinned version, and their isolated environments in a user-level cache
//! shared by every repository (`$XDG_CACHE_HOME/bgrun/tools/<tool>-<version>/`).
//!
//! Python tools get their own venv (pip, exact pin), Node tools their own `npm install` of
//! an exact version, Rust tools `cargo install --locked --root`. An environment is built in
//! a temp dir beside the cache and renamed into place only when complete (a marker file,
//! written last, says so), under an exclusive lock per environment: two processes
//! installing the same tool install it once, and an interrupted install (even `kill -9`)
//! leaves nothing the next run would use; that run clears the debris and installs again.
//! Every step runs with a deadline. This module is an adapter: it never calls the engine,
//! the commands or the analyzers.

pub mod batch;
pub mod error;
mod install;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::Error;
pub use install::Installed;

/// How a tool is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// A venv with pip, from PyPI.
    Python,
    /// `npm install` of an exact version, from the npm registry.
    Node,
    /// `cargo install --locked --root`, from crates.io.
    Cargo,
    /// A rustup component (not managed by bgrun: `rustup component add`).
    Rustup,
}

impl Ecosystem {
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Python => "python",
            Ecosystem::Node => "node",
            Ecosystem::Cargo => "cargo",
            Ecosystem::Rustup => "rustup",
        }
    }
}

/// A tool bgrun knows.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The name in config (`analysis.tools.NAME`) and on the command line.
    pub name: &'static str,
    /// The package in its registry.
    pub package: &'static str,
    pub ecosystem: Ecosystem,
    /// The version installed when the project pins none.
    pub default_version: &'static str,
    /// The executable the analyzers run.
    pub bin: &'static str,
}

/// Every tool bgrun knows, with its default pin (checked against the registries when this
/// table was last moved; `bgrun tools update` moves a project's pins).
pub const TABLE: &[Spec] = &[
    Spec {
        name: "bandit",
        package: "bandit",
        ecosystem: Ecosystem::Python,
        default_version: "1.9.4",
        bin: "bandit",
    },
    Spec {
        name: "pip-audit",
        package: "pip-audit",
        ecosystem: Ecosystem::Python,
        default_version: "2.10.1",
        bin: "pip-audit",
    },
    Spec {
        name: "radon",
        package: "radon",
        ecosystem: Ecosystem::Python,
        default_version: "6.0.1",
        bin: "radon",
    },
    Spec {
        name: "pylint",
        package: "pylint",
        ecosystem: Ecosystem::Python,
        default_version: "4.1.4",
        bin: "pylint",
    },
    Spec {
        name: "ruff",
        package: "ruff",
        ecosystem: Ecosystem::Python,
        default_version: "0.17.6",
        bin: "ruff",
    },
    Spec {
        name: "pytest",
        package: "pytest",
        ecosystem: Ecosystem::Python,
        default_version: "9.2.0",
        bin: "pytest",
    },
    Spec {
        name: "eslint",
        package: "eslint",
        ecosystem: Ecosystem::Node,
        default_version: "10.15.0",
        bin: "eslint",
    },
    Spec {
        name: "cargo-audit",
        package: "cargo-audit",
        ecosystem: Ecosystem::Cargo,
        default_version: "0.22.2",
        bin: "cargo-audit",
    },
    Spec {
        name: "clippy",
        package: "clippy",
        ecosystem: Ecosystem::Rustup,
        default_version: "",
        bin: "cargo-clippy",
    },
];

pub fn spec(name: &str) -> Option<&'static Spec> {
    TABLE.iter().find(|s| s.name == name)
}

/// The names of the tools bgrun can install.
pub fn managed_names() -> Vec<&'static str> {
    TABLE
        .iter()
        .filter(|s| s.ecosystem != Ecosystem::Rustup)
        .map(|s| s.name)
        .collect()
}

/// Where a tool is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// bgrun's own pinned environment in the user cache (the default).
    Managed,
    /// The project's `.venv/bin`, `venv/bin` or `node_modules/.bin`.
    Project,
    /// `$PATH`.
    System,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Managed => "managed",
            Source::Project => "project",
            Source::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "managed" => Some(Source::Managed),
            "project" => Some(Source::Project),
            "system" => Some(Source::System),
            _ => None,
        }
    }
}

/// Exactly the three words (`analysis.tools.NAME.source` in the config).
impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Source, D::Error> {
        let s = String::deserialize(d)?;
        Source::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("expected managed, project or system, found {s:?}"))
        })
    }
}

/// A version string safe to put in a path and a requirement (`1.9.4`, `0.17.5rc1`).
pub fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '!' | '_'))
        && !v.contains("..")
}

/// The user-level cache of tool environments.
#[derive(Debug, Clone)]
pub struct Cache {
    pub root: PathBuf,
}

/// The marker written last into a complete environment.
pub const MARKER: &str = "bgrun-tool.json";

impl Cache {
    /// `$XDG_CACHE_HOME/bgrun/tools`, else `~/.cache/bgrun/tools`.
    pub fn from_env() -> Result<Cache, Error> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .map(|h| h.join(".cache"))
            })
            .ok_or(Error::NoCacheDir)?;
        Ok(Cache {
            root: base.join("bgrun").join("tools"),
        })
    }

    /// `<root>/<tool>-<version>`.
    pub fn env_dir(&self, s: &Spec, version: &str) -> PathBuf {
        self.root.join(format!("{}-{version}", s.name))
    }

    /// Where the executable lives inside an environment.
    pub fn exe_in(s: &Spec, env: &Path) -> PathBuf {
        match s.ecosystem {
            Ecosystem::Node => env.join("node_modules/.bin").join(s.bin),
            _ => env.join("bin").join(s.bin),
        }
    }

    /// The executable of a complete environment, if there is one.
    pub fn installed(&self, s: &Spec, version: &str) -> Option<PathBuf> {
        let env = self.env_dir(s, version);
        if !env.join(MARKER).is_file() {
            return None;
        }
        let exe = Cache::exe_in(s, &env);
        is_executable(&exe).then_some(exe)
    }

    /// Install `s` at `version` unless it is there (see [`install::install`]).
    pub fn install(&self, s: &Spec, version: &str, timeout: Duration) -> Result<Installed, Error> {
        install::install(self, s, version, timeout)
    }

    /// Every environment in the cache: (tool, version, complete?, size in bytes).
    pub fn list(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return out;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !e.path().is_dir() {
                continue;
            }
            // `<tool>-<version>`: the longest known tool name that prefixes it.
            let Some(s) = TABLE
                .iter()
                .filter(|s| name.starts_with(&format!("{}-", s.name)))
                .max_by_key(|s| s.name.len())
            else {
                continue;
            };
            let version = name[s.name.len() + 1..].to_string();
            out.push(Entry {
                tool: s.name,
                version,
                complete: e.path().join(MARKER).is_file(),
                path: e.path(),
                bytes: dir_size(&e.path()),
            });
        }
        out.sort_by(|a, b| (a.tool, &a.version).cmp(&(b.tool, &b.version)));
        out
    }
}

impl Cache {
    /// Remove debris (`.tmp`, environments without their marker) of installs no process is
    /// running, and complete environments not used for `unused_for`, except `keep`
    /// (tool, version). Returns what was removed and its size.
    pub fn prune(&self, keep: &[(String, String)], unused_for: Duration) -> Vec<(PathBuf, u64)> {
        let mut removed = Vec::new();
        let now = std::time::SystemTime::now();
        for e in self.list() {
            let kept = keep.iter().any(|(t, v)| t == e.tool && *v == e.version);
            let stale = if e.complete {
                let used = std::fs::metadata(e.path.join(LAST_USED))
                    .or_else(|_| std::fs::metadata(e.path.join(MARKER)))
                    .and_then(|m| m.modified())
                    .ok();
                used.and_then(|u| now.duration_since(u).ok())
                    .is_some_and(|age| age >= unused_for)
            } else {
                true
            };
            if kept && e.complete || !stale {
                continue;
            }
            // An incomplete one may be a running install's: only with its lock free.
            let Some(_lock) = self.try_lock(&format!("{}-{}", e.tool, e.version)) else {
                continue;
            };
            if std::fs::remove_dir_all(&e.path).is_ok() {
                removed.push((e.path.clone(), e.bytes));
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.root.join(".tmp")) {
            for t in rd.flatten() {
                let n = t.file_name().to_string_lossy().into_owned();
                // `<tool>-<version>-<pid>`: the lock of `<tool>-<version>` must be free.
                let Some((id, _pid)) = n.rsplit_once('-') else {
                    continue;
                };
                let Some(_lock) = self.try_lock(id) else {
                    continue;
                };
                let bytes = dir_size(&t.path());
                if std::fs::remove_dir_all(t.path()).is_ok() {
                    removed.push((t.path(), bytes));
                }
            }
        }
        removed
    }

    /// The lock of environment `id`, if no process holds it.
    fn try_lock(&self, id: &str) -> Option<std::fs::File> {
        let p = self.root.join(".locks").join(format!("{id}.lock"));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(p)
            .ok()?;
        f.try_lock().ok().map(|()| f)
    }

    /// Note that an environment was used (at most once a day: one stat on the hot path).
    pub fn touch(&self, s: &Spec, version: &str) {
        let p = self.env_dir(s, version).join(LAST_USED);
        let fresh = std::fs::metadata(&p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| std::time::SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age < Duration::from_secs(86_400));
        if !fresh {
            let _ = std::fs::write(&p, b"");
        }
    }
}

/// Touched when an environment is used, for `bgrun tools prune`.
pub const LAST_USED: &str = ".last-used";

/// The newest release of `s` in its registry (through pip, npm or cargo, so that their
/// mirrors and proxies apply).
pub fn latest_version(s: &Spec, timeout: Duration) -> Result<String, Error> {
    use std::ffi::OsStr;
    let deadline = std::time::Instant::now() + timeout;
    let cwd = std::env::temp_dir();
    let need =
        |program: &'static str| find_on_path(program).ok_or(Error::NotOnPath { program, hint: "" });
    let out = match s.ecosystem {
        Ecosystem::Python => {
            let py = need("python3")?;
            install::step(
                &[
                    py.as_os_str(),
                    OsStr::new("-m"),
                    OsStr::new("pip"),
                    OsStr::new("index"),
                    OsStr::new("versions"),
                    OsStr::new("--disable-pip-version-check"),
                    OsStr::new(s.package),
                ],
                &cwd,
                deadline,
                "pip index versions",
            )
        }
        Ecosystem::Node => {
            let npm = need("npm")?;
            install::step(
                &[
                    npm.as_os_str(),
                    OsStr::new("view"),
                    OsStr::new(s.package),
                    OsStr::new("version"),
                ],
                &cwd,
                deadline,
                "npm view",
            )
        }
        Ecosystem::Cargo => {
            let cargo = need("cargo")?;
            install::step(
                &[cargo.as_os_str(), OsStr::new("info"), OsStr::new(s.package)],
                &cwd,
                deadline,
                "cargo info",
            )
        }
        Ecosystem::Rustup => return Err(Error::ComesWithRustup),
    }?;
    parse_latest(s.ecosystem, &String::from_utf8_lossy(&out))
        .filter(|v| valid_version(v))
        .ok_or(Error::NoVersion)
}

/// `bandit (1.9.4)` (pip), `10.15.0` (npm), `version: 0.22.2` (cargo info).
fn parse_latest(e: Ecosystem, text: &str) -> Option<String> {
    match e {
        Ecosystem::Python => {
            let first = text.lines().next()?;
            let (_, rest) = first.split_once('(')?;
            Some(rest.split(')').next()?.trim().to_string())
        }
        Ecosystem::Node => text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string),
        Ecosystem::Cargo => text.lines().find_map(|l| {
            Some(
                l.trim()
                    .strip_prefix("version:")?
                    .split_whitespace()
                    .next()?
                    .to_string(),
            )
        }),
        Ecosystem::Rustup => None,
    }
}

/// One environment in the cache.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub tool: &'static str,
    pub version: String,
    pub complete: bool,
    pub path: PathBuf,
    pub bytes: u64,
}

fn dir_size(p: &Path) -> u64 {
    walkdir::WalkDir::new(p)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .fold(0u64, u64::saturating_add)
}

pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A project's choice for one tool (`analysis.tools.NAME`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pin {
    pub version: Option<String>,
    pub source: Option<Source>,
}

/// Called with a line to show the user (installing, installed).
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// How the analyzers find their tools: pins, default source, whether to install.
#[derive(Clone)]
pub struct Settings {
    pub pins: BTreeMap<String, Pin>,
    /// The source of a tool the config does not pin a source for.
    pub default_source: Source,
    /// Install a missing managed tool (off: `--no-install`, `analysis.install_tools`).
    pub install: bool,
    pub install_timeout: Duration,
    pub cache: Result<Cache, Error>,
    pub progress: Option<Progress>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("pins", &self.pins)
            .field("default_source", &self.default_source)
            .field("install", &self.install)
            .field("cache", &self.cache)
            .finish()
    }
}

impl Default for Settings {
    /// Managed tools, installed on first use, in the user cache.
    fn default() -> Settings {
        Settings {
            pins: BTreeMap::new(),
            default_source: default_source_from_env().unwrap_or(Source::Managed),
            install: true,
            install_timeout: Duration::from_secs(600),
            cache: Cache::from_env(),
            progress: None,
        }
    }
}

/// `$BGRUN_TOOL_SOURCE` (managed, project or system): the source of every tool the config
/// does not pin one for. CI images with preinstalled tools and bgrun's own tests use it.
pub fn default_source_from_env() -> Option<Source> {
    std::env::var("BGRUN_TOOL_SOURCE")
        .ok()
        .and_then(|s| Source::parse(s.trim()))
}

/// A tool found, ready to run.
#[derive(Debug, Clone)]
pub struct Located {
    pub exe: PathBuf,
    pub source: Source,
    /// The version, when bgrun knows it without asking the tool (managed).
    pub version: Option<String>,
    /// Installed by this lookup.
    pub installed_now: bool,
}

/// Why a tool cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// Not there, by choice or absence: reported as skipped.
    Skip(String),
    /// Could not be installed: reported as failed.
    Fail(String),
}

impl Settings {
    pub fn source_of(&self, name: &str) -> Source {
        self.pins
            .get(name)
            .and_then(|p| p.source)
            .unwrap_or(self.default_source)
    }

    /// The pinned version, else the table's default.
    pub fn version_of(&self, s: &Spec) -> String {
        self.pins
            .get(s.name)
            .and_then(|p| p.version.clone())
            .unwrap_or_else(|| s.default_version.to_string())
    }

    /// Find tool `name` from its source: the project's dirs (`project_dirs`: the analyzed
    /// dir, then the repo root), `$PATH`, or the managed cache (installing it when allowed).
    /// `hint` is how to install it by hand, for the skip message of project and system.
    pub fn locate(
        &self,
        name: &str,
        project_dirs: &[&Path],
        hint: &str,
    ) -> Result<Located, Missing> {
        let Some(s) = spec(name) else {
            return Err(Missing::Skip(format!("{name}: not a tool bgrun knows")));
        };
        let bin = s.bin;
        match self.source_of(name) {
            Source::System => find_on_path(bin)
                .map(|exe| Located {
                    exe,
                    source: Source::System,
                    version: None,
                    installed_now: false,
                })
                .ok_or_else(|| Missing::Skip(format!("{name} not installed ({hint})"))),
            Source::Project => find_in_project(bin, project_dirs)
                .map(|exe| Located {
                    exe,
                    source: Source::Project,
                    version: None,
                    installed_now: false,
                })
                .ok_or_else(|| {
                    Missing::Skip(format!(
                        "{name} not in the project's .venv/bin, venv/bin or node_modules/.bin \
                         (analysis.tools.{name}.source is \"project\"; {hint})"
                    ))
                }),
            Source::Managed => self.managed(s),
        }
    }

    /// The managed environment of `s`, installed now when missing and allowed.
    pub fn managed(&self, s: &Spec) -> Result<Located, Missing> {
        let name = s.name;
        if s.ecosystem == Ecosystem::Rustup {
            return Err(Missing::Skip(format!(
                "{name} comes with rustup, bgrun does not install it (rustup component add {name})"
            )));
        }
        let version = self.version_of(s);
        let cache = self
            .cache
            .as_ref()
            .map_err(|e| Missing::Fail(e.to_string()))?;
        if let Some(exe) = cache.installed(s, &version) {
            cache.touch(s, &version);
            return Ok(Located {
                exe,
                source: Source::Managed,
                version: Some(version),
                installed_now: false,
            });
        }
        // Tools sharing an environment (radon's three passes) install it once per process.
        // A failed install is not tried again by the next thread: it gets the same answer.
        let gate = gate_for(&format!("{name}-{version}"));
        let mut failed = gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(why) = failed.as_ref() {
            return Err(Missing::Fail(why.clone()));
        }
        if let Some(exe) = cache.installed(s, &version) {
            return Ok(Located {
                exe,
                source: Source::Managed,
                version: Some(version),
                installed_now: false,
            });
        }
        if !self.install {
            return Err(Missing::Skip(format!(
                "{name} {version} not installed and installing is off (--no-install or \
                 analysis.install_tools; run `bgrun tools install {name}`)"
            )));
        }
        if let Some(p) = &self.progress {
            p(&format!(
                "installing {name} {version} into {} (first use)...",
                cache.env_dir(s, &version).display()
            ));
        }
        match cache.install(s, &version, self.install_timeout) {
            Ok(done) => {
                if let Some(p) = &self.progress {
                    p(&if done.fresh {
                        format!("installed {name} {version} ({:.1}s)", done.seconds)
                    } else {
                        format!("{name} {version} ready (another bgrun installed it meanwhile)")
                    });
                }
                Ok(Located {
                    exe: done.exe,
                    source: Source::Managed,
                    version: Some(version),
                    installed_now: done.fresh,
                })
            }
            Err(e) => {
                let why = format!(
                    "could not install {name} {version} ({e}; retry: bgrun tools install {name})"
                );
                *failed = Some(why.clone());
                Err(Missing::Fail(why))
            }
        }
    }
}

/// One mutex per environment id, for the threads of this process.
type Gate = Arc<std::sync::Mutex<Option<String>>>;

/// One mutex per environment id, for the threads of this process; it holds the failure
/// of an install tried by an earlier thread.
fn gate_for(id: &str) -> Gate {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static GATES: OnceLock<Mutex<HashMap<String, Gate>>> = OnceLock::new();
    let map = GATES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut m = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    m.entry(id.to_string()).or_default().clone()
}

/// `$PATH` only.
pub fn find_on_path(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| is_executable(p))
}

/// The project's own environments only: `.venv/bin`, `venv/bin`, `node_modules/.bin`.
pub fn find_in_project(bin: &str, dirs: &[&Path]) -> Option<PathBuf> {
    dirs.iter()
        .flat_map(|d| {
            [".venv/bin", "venv/bin", "node_modules/.bin"]
                .into_iter()
                .map(move |sub| d.join(sub).join(bin))
        })
        .find(|p| is_executable(p))
}

/// The project's Python interpreter: `configured` (relative to the repo), else the
/// `.venv` or `venv` of the analyzed dir, then of the repo root.
pub fn project_python(configured: Option<&Path>, dirs: &[&Path]) -> Option<PathBuf> {
    if let Some(c) = configured {
        let p = match dirs.last() {
            Some(repo) if c.is_relative() => repo.join(c),
            _ => c.to_path_buf(),
        };
        return Some(p);
    }
    dirs.iter()
        .flat_map(|d| {
            [".venv/bin/python", "venv/bin/python"]
                .into_iter()
                .map(move |sub| d.join(sub))
        })
        .find(|p| is_executable(p))
}

/// The `site-packages` of a managed Python environment.
pub fn site_packages(env: &Path) -> Option<PathBuf> {
    let lib = env.join("lib");
    std::fs::read_dir(&lib)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_that_could_escape_a_path_are_refused() {
        for ok in [
            "1.9.4",
            "0.17.5rc1",
            "2.0.0+local",
            "1!2.0",
            "10.15.0-beta.1",
        ] {
            assert!(valid_version(ok), "{ok}");
        }
        for bad in ["", "../x", "1/2", "..", "a b", "-1", "1;rm", "1\n2", ".1"] {
            assert!(!valid_version(bad), "{bad:?}");
        }
    }

    #[test]
    fn pins_override_the_default_version_and_source() {
        let mut s = Settings {
            default_source: Source::Managed,
            ..Settings::default()
        };
        s.pins.insert(
            "ruff".into(),
            Pin {
                version: Some("0.17.5".into()),
                source: Some(Source::System),
            },
        );
        let ruff = spec("ruff").unwrap();
        assert_eq!(s.version_of(ruff), "0.17.5");
        assert_eq!(s.source_of("ruff"), Source::System);
        assert_eq!(s.source_of("bandit"), Source::Managed);
        assert_eq!(
            s.version_of(spec("bandit").unwrap()),
            spec("bandit").unwrap().default_version
        );
    }

    #[test]
    fn list_reads_tool_and_version_from_the_dir_names() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache {
            root: d.path().to_path_buf(),
        };
        std::fs::create_dir_all(d.path().join("pip-audit-2.10.1")).unwrap();
        std::fs::write(d.path().join("pip-audit-2.10.1").join(MARKER), "{}").unwrap();
        std::fs::create_dir_all(d.path().join("ruff-0.17.5")).unwrap();
        std::fs::create_dir_all(d.path().join(".tmp")).unwrap();
        let l = c.list();
        assert_eq!(l.len(), 2);
        assert_eq!(
            (l[0].tool, l[0].version.as_str(), l[0].complete),
            ("pip-audit", "2.10.1", true)
        );
        assert_eq!(
            (l[1].tool, l[1].version.as_str(), l[1].complete),
            ("ruff", "0.17.5", false)
        );
    }

    #[test]
    fn registry_answers_are_read() {
        assert_eq!(
            parse_latest(
                Ecosystem::Python,
                "bandit (1.9.4)\nAvailable versions: 1.9.4, 1.9.3\n"
            ),
            Some("1.9.4".into())
        );
        assert_eq!(
            parse_latest(Ecosystem::Node, "10.15.0\n"),
            Some("10.15.0".into())
        );
        assert_eq!(
            parse_latest(
                Ecosystem::Cargo,
                "cargo-audit #security\nAudit\nversion: 0.22.2\nlicense: MIT\n"
            ),
            Some("0.22.2".into())
        );
        assert_eq!(parse_latest(Ecosystem::Python, "WARNING: nothing\n"), None);
    }

    #[test]
    fn prune_keeps_pins_and_recent_and_running_installs() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache {
            root: d.path().to_path_buf(),
        };
        for (n, complete) in [
            ("ruff-0.17.5", true),
            ("ruff-0.17.6", true),
            ("bandit-1.9.4", false),
        ] {
            std::fs::create_dir_all(d.path().join(n)).unwrap();
            if complete {
                std::fs::write(d.path().join(n).join(MARKER), "{}").unwrap();
            }
        }
        std::fs::create_dir_all(d.path().join(".locks")).unwrap();
        std::fs::create_dir_all(d.path().join(".tmp/ruff-0.17.7-99")).unwrap();
        std::fs::create_dir_all(d.path().join(".tmp/pylint-4.1.4-98")).unwrap();
        // A running install of pylint holds its lock: its temp dir stays.
        let held = c.try_lock("pylint-4.1.4").unwrap();
        let keep = vec![("ruff".to_string(), "0.17.6".to_string())];
        let removed = c.prune(&keep, Duration::ZERO);
        let mut names: Vec<String> = removed
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["bandit-1.9.4", "ruff-0.17.5", "ruff-0.17.7-99"]);
        assert!(d.path().join("ruff-0.17.6").is_dir());
        assert!(d.path().join(".tmp/pylint-4.1.4-98").is_dir());
        drop(held);
        // Recently used ones stay with a real age limit.
        std::fs::create_dir_all(d.path().join("ruff-0.17.5")).unwrap();
        std::fs::write(d.path().join("ruff-0.17.5").join(MARKER), "{}").unwrap();
        // pylint's install is over (its lock is free): its debris goes now.
        let removed = c.prune(&[], Duration::from_secs(3600));
        assert_eq!(removed.len(), 1, "{removed:?}");
        assert!(removed[0].0.ends_with(".tmp/pylint-4.1.4-98"));
    }

    #[test]
    fn no_install_is_a_skip_naming_the_way_out() {
        let d = tempfile::tempdir().unwrap();
        let s = Settings {
            install: false,
            default_source: Source::Managed,
            cache: Ok(Cache {
                root: d.path().to_path_buf(),
            }),
            ..Settings::default()
        };
        match s.locate("bandit", &[], "pip install bandit") {
            Err(Missing::Skip(why)) => {
                assert!(why.contains("bgrun tools install bandit"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }
}
