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

/// The bgrun under test: the one cargo built for these tests, or `BGRUN_TEST_BIN` when set
/// (scripts/test runs the suite a second time on the shipped build, statically linked).
pub fn bin() -> PathBuf {
    match std::env::var_os("BGRUN_TEST_BIN") {
        Some(b) if !b.is_empty() => PathBuf::from(b),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_bgrun")),
    }
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
/// The command exited with `code` and its stderr says `needle` (a warning, or the error
/// naming what was wrong and the way out).
pub fn assert_exit_says(out: &Output, code: i32, needle: &str) {
    assert_code(out, code);
    assert!(
        text(&out.stderr).contains(needle),
        "stderr lacks {needle:?}: {}",
        text(&out.stderr)
    );
}

pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Certificates made with the `openssl` CLI for the TLS tests: a CA, a leaf for a server
/// (CA:FALSE, the given subjectAltName, e.g. `DNS:localhost`) signed by it, and a second,
/// unrelated CA that signed nothing. Files in `dir`: ca.pem, leaf.pem, leaf.key, other-ca.pem.
pub struct TestCerts {
    pub ca: PathBuf,
    pub leaf: PathBuf,
    pub key: PathBuf,
    pub other_ca: PathBuf,
}

pub fn make_certs(dir: &Path, san: &str) -> TestCerts {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (scripts/deps/apt-notify.txt, apt-store.txt: openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            text(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (name, cn) in [("ca", "bgrun test CA"), ("other-ca", "bgrun other CA")] {
        let key = format!("{name}.key");
        let pem = format!("{name}.pem");
        let subj = format!("/CN={cn}");
        let mut a = vec!["req", "-x509"];
        a.extend(ec);
        a.extend([
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&a);
    }
    let mut a = vec!["req"];
    a.extend(ec);
    a.extend([
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(&a);
    std::fs::write(
        dir.join("leaf.ext"),
        format!(
            "basicConstraints=critical,CA:FALSE\nsubjectAltName={san}\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "2",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "leaf.pem",
    ]);
    TestCerts {
        ca: dir.join("ca.pem"),
        leaf: dir.join("leaf.pem"),
        key: dir.join("leaf.key"),
        other_ca: dir.join("other-ca.pem"),
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A system user that exists for one test (made with `useradd`, needs root); deleted, with
/// its crontab if it has one, on drop.
pub struct TempUser {
    pub name: String,
}

impl TempUser {
    /// A new user named `<prefix><pid>x<n>`.
    pub fn new(prefix: &str) -> TempUser {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "{prefix}{}x{}",
            std::process::id() % 100_000,
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let out = Command::new("useradd")
            .args(["-M", "-s", "/bin/sh", &name])
            .output()
            .expect("useradd");
        assert!(out.status.success(), "useradd: {}", text(&out.stderr));
        TempUser { name }
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("crontab")
            .args(["-u", &self.name, "-r"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}
