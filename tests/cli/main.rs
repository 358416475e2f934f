//! End-to-end tests: each runs the built `bgrun` binary against a temp git repo.
//! One module per area; `Env` is the shared builder.

mod analyze;
mod changed;
mod core;
mod crash;
mod cron;
mod harden;
mod hooks;
mod house;
mod notify;
mod pg;
mod see;
mod state_compat;
mod tools;
mod watch;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A temp project (a git repo) with its own state dir and config.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    /// A fresh git repo with no config (the embedded defaults apply).
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Env { dir };
        e.git(&["init", "-q", "-b", "main"]);
        e.git(&["config", "user.email", "t@example.com"]);
        e.git(&["config", "user.name", "t"]);
        e
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn state(&self) -> PathBuf {
        self.root().join(".bgrun")
    }

    /// Write `<repo>/.bgrun/config.json`.
    pub fn config(&self, json: &str) -> &Env {
        std::fs::create_dir_all(self.state()).expect("mkdir");
        std::fs::write(self.state().join("config.json"), json).expect("write config");
        self
    }

    pub fn write(&self, rel: &str, text: &str) -> &Env {
        let p = self.root().join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(p, text).expect("write");
        self
    }

    pub fn git(&self, args: &[&str]) -> Output {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.root())
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// A `bgrun` command in the repo, isolated from the caller's environment.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(self.root());
        c.env_remove("BGRUN_CONFIG")
            .env_remove("BGRUN_STATE_DIR")
            .env("NO_COLOR", "1")
            // Analyzer tests use the tools on PATH (BGRUN_TEST_TOOLS); tests/cli/tools.rs
            // tests the managed installs themselves (issue 13).
            .env("BGRUN_TOOL_SOURCE", "system");
        c
    }

    /// Run `bgrun ARGS` and return its output.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.cmd().args(args).output().expect("run bgrun")
    }

    /// Run `bgrun ARGS` with extra environment variables.
    pub fn run_with<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        &self,
        vars: &[(K, V)],
        args: &[&str],
    ) -> Output {
        let mut c = self.cmd();
        for (k, v) in vars {
            c.env(k, v);
        }
        c.args(args).output().expect("run bgrun")
    }

    /// `bgrun --json ARGS` parsed.
    pub fn json<S: AsRef<OsStr>>(&self, args: &[S]) -> serde_json::Value {
        let out = self
            .cmd()
            .arg("--json")
            .args(args)
            .output()
            .expect("run bgrun");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\nstderr: {}",
                text(&out.stdout),
                text(&out.stderr)
            )
        })
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bgrun"))
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Wait for `cond` with a deadline, polling; never a bare sleep.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// Wait for a child with a bound; past it, kill it and return None.
pub fn wait_child(
    child: &mut std::process::Child,
    bound: Duration,
) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + bound;
    while Instant::now() < end {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Assert an exit code, showing the output when it differs.
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}
