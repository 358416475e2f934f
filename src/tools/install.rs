//! Building one tool environment: under `<cache>/.locks/<tool>-<version>.lock` (an
//! exclusive `flock`, released by the kernel even on `kill -9`), in
//! `<cache>/.tmp/<tool>-<version>-<pid>`, renamed to `<cache>/<tool>-<version>` once the
//! marker is written. Each step is an argv with a deadline, in its own process group, and
//! dies with bgrun (PR_SET_PDEATHSIG) so an interrupted install leaves no writer behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runner::capture;

use super::error::io_err;
use super::{Cache, Ecosystem, Error, MARKER, Spec, valid_version};

/// A complete environment.
#[derive(Debug, Clone)]
pub struct Installed {
    pub exe: PathBuf,
    /// Installed by this call (false: it was there, or another process installed it).
    pub fresh: bool,
    pub seconds: f64,
}

/// Install `s` at `version` into `cache` unless it is complete there already.
pub fn install(
    cache: &Cache,
    s: &Spec,
    version: &str,
    timeout: Duration,
) -> Result<Installed, Error> {
    let t0 = Instant::now();
    if s.ecosystem == Ecosystem::Rustup {
        return Err(Error::Rustup {
            tool: s.name.to_string(),
        });
    }
    if !valid_version(version) {
        return Err(Error::NotAVersion {
            version: version.to_string(),
            tool: s.name.to_string(),
        });
    }
    // cargo install compiles: measured 526 CPU-seconds for cargo-audit 0.22.2, which is
    // past 600 s of wall time on a loaded 2-core machine. It gets three times the deadline.
    let timeout = if s.ecosystem == Ecosystem::Cargo {
        timeout.saturating_mul(3)
    } else {
        timeout
    };
    let deadline = t0 + timeout;
    let locks = cache.root.join(".locks");
    let tmp_root = cache.root.join(".tmp");
    for d in [&cache.root, &locks, &tmp_root] {
        std::fs::create_dir_all(d).map_err(io_err("create", d))?;
    }
    let id = format!("{}-{version}", s.name);
    let _lock = lock(&locks.join(format!("{id}.lock")), deadline)?;
    let dest = cache.env_dir(s, version);
    if let Some(exe) = cache.installed(s, version) {
        return Ok(Installed {
            exe,
            fresh: false,
            seconds: t0.elapsed().as_secs_f64(),
        });
    }
    // We hold the lock: whatever is left of this environment is debris of an interrupted
    // or failed install.
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(io_err("remove the incomplete", &dest))?;
    }
    clear_debris(&tmp_root, &id);
    let tmp = tmp_root.join(format!("{id}-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
    let built = build(s, version, &tmp, &dest, deadline);
    let result = built.and_then(|packages| {
        let marker = serde_json::json!({
            "tool": s.name,
            "package": s.package,
            "version": version,
            "ecosystem": s.ecosystem,
            "installed_at": crate::timefmt::rfc3339(crate::timefmt::now()),
            "packages": packages,
        });
        let bytes = serde_json::to_vec_pretty(&marker).map_err(|e| Error::Json(Arc::new(e)))?;
        std::fs::write(tmp.join(MARKER), bytes).map_err(|e| Error::Write {
            file: "the marker",
            source: Arc::new(e),
        })?;
        std::fs::rename(&tmp, &dest).map_err(|e| Error::Move {
            from: tmp.clone(),
            to: dest.clone(),
            source: Arc::new(e),
        })
    });
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let exe = Cache::exe_in(s, &dest);
    if !super::is_executable(&exe) {
        return Err(Error::NoExe { exe });
    }
    Ok(Installed {
        exe,
        fresh: true,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Remove `<tmp_root>/<id>-*` left by interrupted installs (the caller holds the lock).
fn clear_debris(tmp_root: &Path, id: &str) {
    let Ok(rd) = std::fs::read_dir(tmp_root) else {
        return;
    };
    let prefix = format!("{id}-");
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.strip_prefix(&prefix)
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()))
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Wait for the environment's lock until `deadline`.
fn lock(path: &Path, deadline: Instant) -> Result<File, Error> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("open the lock", path))?;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(io_err("lock", path)(e));
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::Busy {
                lock: path.to_path_buf(),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Build the environment in `tmp` (to live at `dest`); returns the installed packages.
fn build(
    s: &Spec,
    version: &str,
    tmp: &Path,
    dest: &Path,
    deadline: Instant,
) -> Result<Vec<String>, Error> {
    match s.ecosystem {
        Ecosystem::Python => {
            let python = super::find_on_path("python3").ok_or(Error::NotOnPath {
                program: "python3",
                hint: " (install Python 3 with venv)",
            })?;
            // Without pip in the venv (ensurepip costs more than the tool itself); the base
            // interpreter's pip installs into it (`pip --python`). With no pip there, the
            // venv gets its own.
            step(
                &[
                    python.as_os_str(),
                    "-m".as_ref(),
                    "venv".as_ref(),
                    "--without-pip".as_ref(),
                    tmp.as_os_str(),
                ],
                tmp,
                deadline,
                "python3 -m venv",
            )?;
            let py = tmp.join("bin/python");
            let req = format!("{}=={version}", s.package);
            // pip-audit calls pip in its own environment.
            let mut reqs = vec![req.as_str()];
            if s.name == "pip-audit" {
                reqs.push("pip");
            }
            let pip_args = |verb: &'static str| -> Vec<std::ffi::OsString> {
                let mut v: Vec<std::ffi::OsString> =
                    vec![verb.into(), "--disable-pip-version-check".into()];
                if verb == "install" {
                    v.extend(
                        ["--no-input", "--quiet", "--retries", "2", "--timeout", "20"]
                            .map(std::ffi::OsString::from),
                    );
                    v.extend(reqs.iter().map(std::ffi::OsString::from));
                }
                v
            };
            let base_pip = |verb: &'static str| {
                let mut argv: Vec<std::ffi::OsString> = vec![
                    python.clone().into(),
                    "-m".into(),
                    "pip".into(),
                    "--python".into(),
                    py.clone().into(),
                ];
                argv.extend(pip_args(verb));
                argv
            };
            let run = |argv: Vec<std::ffi::OsString>, what: &str| {
                let refs: Vec<&std::ffi::OsStr> = argv.iter().map(|a| a.as_os_str()).collect();
                step(&refs, tmp, deadline, what)
            };
            let own_pip = match run(base_pip("install"), "pip install") {
                Ok(_) => false,
                Err(Error::StepFailed { tail, .. })
                    if tail.contains("No module named pip")
                        || tail.contains("no such option: --python") =>
                {
                    run(
                        vec![
                            py.clone().into(),
                            "-m".into(),
                            "ensurepip".into(),
                            "--default-pip".into(),
                        ],
                        "ensurepip",
                    )?;
                    let mut argv: Vec<std::ffi::OsString> =
                        vec![py.clone().into(), "-m".into(), "pip".into()];
                    argv.extend(pip_args("install"));
                    run(argv, "pip install")?;
                    true
                }
                Err(e) => return Err(e),
            };
            let frozen = if own_pip {
                let mut argv: Vec<std::ffi::OsString> =
                    vec![py.clone().into(), "-m".into(), "pip".into()];
                argv.extend(pip_args("freeze"));
                run(argv, "pip freeze")?
            } else {
                run(base_pip("freeze"), "pip freeze")?
            };
            relocate_scripts(&tmp.join("bin"), tmp, dest)?;
            Ok(String::from_utf8_lossy(&frozen)
                .lines()
                .map(str::to_string)
                .collect())
        }
        Ecosystem::Node => {
            let npm = super::find_on_path("npm").ok_or(Error::NotOnPath {
                program: "npm",
                hint: " (install Node.js and npm)",
            })?;
            std::fs::write(
                tmp.join("package.json"),
                format!(
                    "{{\"name\": \"bgrun-tool-{}\", \"private\": true}}\n",
                    s.name
                ),
            )
            .map_err(|e| Error::Write {
                file: "package.json",
                source: Arc::new(e),
            })?;
            let pkg = format!("{}@{version}", s.package);
            step(
                &[
                    npm.as_os_str(),
                    "install".as_ref(),
                    "--prefix".as_ref(),
                    tmp.as_os_str(),
                    "--save-exact".as_ref(),
                    "--no-audit".as_ref(),
                    "--no-fund".as_ref(),
                    "--loglevel=error".as_ref(),
                    "--fetch-retries=1".as_ref(),
                    "--fetch-timeout=30000".as_ref(),
                    pkg.as_ref(),
                ],
                tmp,
                deadline,
                "npm install",
            )?;
            Ok(vec![pkg])
        }
        Ecosystem::Cargo => {
            let cargo = super::find_on_path("cargo").ok_or(Error::NotOnPath {
                program: "cargo",
                hint: " (install Rust with rustup)",
            })?;
            step(
                &[
                    cargo.as_os_str(),
                    "install".as_ref(),
                    "--locked".as_ref(),
                    "--quiet".as_ref(),
                    "--root".as_ref(),
                    tmp.as_os_str(),
                    "--version".as_ref(),
                    version.as_ref(),
                    s.package.as_ref(),
                ],
                tmp,
                deadline,
                "cargo install",
            )?;
            Ok(vec![format!("{} {version}", s.package)])
        }
        Ecosystem::Rustup => Err(Error::Install(
            "rustup components are not installed by bgrun",
        )),
    }
}

/// pip writes the venv's absolute path into each script's shebang: point them at `dest`.
fn relocate_scripts(bin: &Path, tmp: &Path, dest: &Path) -> Result<(), Error> {
    use std::os::unix::ffi::OsStrExt;
    let from = tmp.as_os_str().as_bytes();
    let to = dest.as_os_str().as_bytes();
    let rd = std::fs::read_dir(bin).map_err(io_err("read", bin))?;
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if !ft.is_file() {
            continue;
        }
        let p = e.path();
        let Ok(meta) = e.metadata() else { continue };
        if meta.len() > 1 << 20 {
            continue;
        }
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        if !bytes.starts_with(b"#!") || memchr::memmem::find(&bytes, from).is_none() {
            continue;
        }
        let mut out = Vec::with_capacity(bytes.len() + to.len());
        let mut rest: &[u8] = &bytes;
        while let Some(i) = memchr::memmem::find(rest, from) {
            out.extend_from_slice(&rest[..i]);
            out.extend_from_slice(to);
            rest = &rest[i + from.len()..];
        }
        out.extend_from_slice(rest);
        std::fs::write(&p, out).map_err(io_err("rewrite", &p))?;
        std::fs::set_permissions(&p, meta.permissions()).map_err(io_err("chmod", &p))?;
    }
    Ok(())
}

/// Run one step with the deadline; `Ok` is its stdout. `what` names it in errors.
pub(super) fn step(
    argv: &[&std::ffi::OsStr],
    cwd: &Path,
    deadline: Instant,
    what: &str,
) -> Result<Vec<u8>, Error> {
    let (program, args) = argv.split_first().ok_or(Error::Install("empty command"))?;
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Error::TooLate {
            what: what.to_string(),
        });
    }
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .env("PIP_NO_INPUT", "1")
        .env_remove("PYTHONPATH")
        .env_remove("VIRTUAL_ENV");
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let done = capture::run(&mut cmd, left).map_err(|e| match e {
        capture::Error::Spawn { source, .. } => Error::Spawn {
            what: what.to_string(),
            source: Arc::new(source),
        },
        capture::Error::Wait(e) => Error::Wait {
            what: what.to_string(),
            source: Arc::new(e),
        },
        capture::Error::Timeout(_) => Error::Timeout {
            what: what.to_string(),
        },
    })?;
    let (status, stdout, stderr) = (done.status, done.stdout, done.stderr);
    if status.success() {
        return Ok(stdout);
    }
    let text = if stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        stderr
    } else {
        stdout
    };
    Err(Error::StepFailed {
        what: what.to_string(),
        tail: tail(&text),
    })
}

/// The last telling lines of a failed step's output, short.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("[notice]"))
        .collect();
    // pip prints its verdict on `ERROR:` lines; prefer them.
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| {
            l.starts_with("ERROR:") || l.starts_with("error:") || l.starts_with("npm error")
        })
        .collect();
    let pick = if errors.is_empty() { &lines } else { &errors };
    let start = pick.len().saturating_sub(2);
    let mut s = pick[start..].join(" | ");
    if s.len() > 500 {
        let cut = (0..=500)
            .rev()
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        s.truncate(cut);
        s.push_str("...");
    }
    if s.is_empty() {
        s = "no output".into();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_pointed_at_the_final_dir() {
        let d = tempfile::tempdir().unwrap();
        let tmp = d.path().join(".tmp/ruff-1-42");
        let bin = tmp.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let script = format!("#!{}/bin/python\nimport x\n", tmp.display());
        std::fs::write(bin.join("ruff"), &script).unwrap();
        std::fs::write(bin.join("data"), "no shebang").unwrap();
        let dest = d.path().join("ruff-1");
        relocate_scripts(&bin, &tmp, &dest).unwrap();
        let got = std::fs::read_to_string(bin.join("ruff")).unwrap();
        assert_eq!(got, format!("#!{}/bin/python\nimport x\n", dest.display()));
    }

    #[test]
    fn a_failing_step_says_what_and_why() {
        let d = tempfile::tempdir().unwrap();
        let e = step(
            &[
                "sh".as_ref(),
                "-c".as_ref(),
                "echo noise; echo 'ERROR: no such version' >&2; exit 1".as_ref(),
            ],
            d.path(),
            Instant::now() + Duration::from_secs(10),
            "pip install",
        )
        .unwrap_err();
        assert!(matches!(&e, Error::StepFailed { what, .. } if what == "pip install"));
        assert_eq!(e.to_string(), "pip install failed: ERROR: no such version");
        let t = Instant::now();
        let e = step(
            &["sh".as_ref(), "-c".as_ref(), "sleep 30".as_ref()],
            d.path(),
            Instant::now() + Duration::from_millis(300),
            "npm install",
        )
        .unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert!(e.to_string().contains("timed out"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn debris_of_this_tool_only_is_cleared() {
        let d = tempfile::tempdir().unwrap();
        for n in ["ruff-1-12", "ruff-1-13", "ruff-1.1-12", "ruff-10-1"] {
            std::fs::create_dir_all(d.path().join(n)).unwrap();
        }
        clear_debris(d.path(), "ruff-1");
        let mut left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["ruff-1.1-12", "ruff-10-1"]);
    }
}
