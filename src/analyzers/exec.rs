//! Running one tool: its argv (never a shell) with colour off, through the runner's
//! [`capture`] (own process group, deadline, both streams read), and its result file read.
//! Also finding a tool's executable and its version, looked up cheaply.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Error, Invocation, Raw};
use crate::runner::capture;

/// Run `inv` with a deadline (through [`crate::runner::capture`]). `Err` says why the tool
/// could not run or was killed.
pub fn run(inv: &Invocation, timeout: Duration) -> Result<Raw, Error> {
    let (program, args) = inv.argv.split_first().ok_or(Error::EmptyCommand)?;
    if let Some(f) = &inv.result_file {
        let _ = std::fs::remove_file(f);
    }
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(&inv.cwd)
        .env("NO_COLOR", "1")
        .env("CARGO_TERM_COLOR", "never")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    cmd.envs(inv.env.iter().map(|(k, v)| (k, v)));
    let done = capture::run(&mut cmd, timeout)?;
    let result_file = inv.result_file.as_ref().and_then(|f| {
        let bytes = std::fs::read(f).ok();
        let _ = std::fs::remove_file(f);
        bytes
    });
    Ok(Raw {
        code: done.status.code(),
        signal: done.status.signal(),
        stdout: done.stdout,
        stderr: done.stderr,
        result_file,
        started: Some(done.started),
    })
}

/// Find an executable: the project's `.venv/bin`, `venv/bin`, `node_modules/.bin` (in the
/// analyzed dir, then the repo root), then `$PATH`.
pub fn find(name: &str, dirs: &[&Path]) -> Option<PathBuf> {
    for d in dirs {
        for sub in [".venv/bin", "venv/bin", "node_modules/.bin"] {
            let p = d.join(sub).join(name);
            if is_executable(&p) {
                return Some(p);
            }
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A tool's version: from its Python dist-info or npm package.json next to the executable
/// when it has one (no process), else the first line of `EXE --version`.
pub fn version(exe: &Path, package: &str) -> Option<String> {
    version_within(exe, package, Duration::from_secs(20))
}

/// [`version`], waiting at most `limit` for `EXE --version`.
pub fn version_within(exe: &Path, package: &str, limit: Duration) -> Option<String> {
    if let Some(v) = python_dist_version(exe, package).or_else(|| npm_version(exe, package)) {
        return Some(v);
    }
    command_version(exe, limit)
}

/// The first line `EXE --version` prints, waiting at most `limit`.
pub fn command_version(exe: &Path, limit: Duration) -> Option<String> {
    let inv = Invocation {
        argv: vec![exe.as_os_str().to_owned(), OsString::from("--version")],
        cwd: std::env::temp_dir(),
        env: Vec::new(),
        result_file: None,
        version_of: None,
        source: None,
    };
    let raw = run(&inv, limit).ok()?;
    let text = String::from_utf8_lossy(if raw.stdout.is_empty() {
        &raw.stderr
    } else {
        &raw.stdout
    })
    .into_owned();
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.chars().take(80).collect())
}

/// `<bin>/../lib/python3*/{site,dist}-packages/<package>-<version>.dist-info`.
fn python_dist_version(exe: &Path, package: &str) -> Option<String> {
    let lib = exe.parent()?.parent()?.join("lib");
    let want = package.replace('-', "_").to_ascii_lowercase();
    for py in std::fs::read_dir(&lib).ok()?.flatten() {
        if !py.file_name().to_string_lossy().starts_with("python3") {
            continue;
        }
        for sub in ["site-packages", "dist-packages"] {
            let Ok(rd) = std::fs::read_dir(py.path().join(sub)) else {
                continue;
            };
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                let Some(stem) = n.strip_suffix(".dist-info") else {
                    continue;
                };
                if let Some((name, ver)) = stem.split_once('-')
                    && name.replace('-', "_").to_ascii_lowercase() == want
                {
                    return Some(ver.to_string());
                }
            }
        }
    }
    None
}

/// `node_modules/.bin/eslint` -> `node_modules/eslint/package.json`'s version.
fn npm_version(exe: &Path, package: &str) -> Option<String> {
    let bin = exe.parent()?;
    if bin.file_name()? != ".bin" {
        return None;
    }
    let pj = bin.parent()?.join(package).join("package.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(pj).ok()?).ok()?;
    v.get("version")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(argv: &[&str]) -> Invocation {
        Invocation {
            argv: argv.iter().map(OsString::from).collect(),
            cwd: std::env::temp_dir(),
            env: Vec::new(),
            result_file: None,
            version_of: None,
            source: None,
        }
    }

    #[test]
    fn runs_and_captures_both_streams() {
        let raw = run(
            &inv(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(raw.code, Some(3));
        assert_eq!(raw.stdout, b"out\n");
        assert_eq!(raw.stderr, b"err\n");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let t = std::time::Instant::now();
        let e = run(
            &inv(&["sh", "-c", "sleep 30 & sleep 30"]),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Timeout(_)), "{e}");
        assert!(e.to_string().contains("timed out after"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn missing_program_is_a_clear_error() {
        let e = run(&inv(&["/nonexistent/tool"]), Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, Error::Spawn { .. }), "{e}");
        assert!(
            e.to_string().contains("cannot start /nonexistent/tool"),
            "{e}"
        );
    }
}
