//! Managed tools (issue 13) end to end: real installs from the package registries into an
//! empty cache (`XDG_CACHE_HOME` in a tempdir), concurrency, `kill -9`, an unreachable
//! index, side-by-side pins, `--no-install`, the project's interpreter for its tests, and
//! the layered config (team `bgrun.json`, personal `.bgrun/config.json`, comments, BOM).
//!
//! The installs need the registries (PyPI); CI has them. Tests that do not test the
//! install itself share one cache per build (`CARGO_TARGET_TMPDIR/tools-cache`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::analyze::fixture;
use super::*;

/// `bgrun` with managed tools (the default source) and the cache under `cache`.
fn managed(e: &Env, cache: &Path) -> Command {
    let mut c = e.cmd();
    c.env_remove("BGRUN_TOOL_SOURCE")
        .env("XDG_CACHE_HOME", cache)
        .env_remove("PIP_REQUIRE_VIRTUALENV");
    c
}

fn tools_root(cache: &Path) -> PathBuf {
    cache.join("bgrun/tools")
}

/// The cache shared by the tests that do not test the install itself.
fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tools-cache")
}

fn report(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("report")).expect("report JSON")
}

fn tool<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["tools"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("no tool {name} in {r}"))
}

fn debris(cache: &Path) -> Vec<String> {
    std::fs::read_dir(tools_root(cache).join(".tmp"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn bandit_installs_on_first_use_once_across_two_concurrent_runs_then_never_again() {
    let cache = tempfile::tempdir().unwrap();
    let e = fixture("python-app");
    e.config(r#"{"analysis": {"disabled_tools": ["pip-audit"]}}"#);
    let spawn = |out: &str| {
        managed(&e, cache.path())
            .args(["analyze", "security", "--output", out])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let a = spawn(".r1.json");
    let b = spawn(".r2.json");
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_code(&a, 0);
    assert_code(&b, 0);
    let installs = [&a, &b]
        .iter()
        .filter(|o| text(&o.stderr).contains("installed bandit 1.9.4"))
        .count();
    assert_eq!(
        installs,
        1,
        "exactly one process installs:\n{}\n---\n{}",
        text(&a.stderr),
        text(&b.stderr)
    );
    for f in [".r1.json", ".r2.json"] {
        let r = report(&e.root().join(f));
        let b = tool(&r, "bandit");
        assert_eq!(b["status"], "ran", "{b}");
        assert_eq!(b["version"], "1.9.4");
        assert_eq!(b["source"], "managed");
        let rules: Vec<&str> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["rule"].as_str())
            .collect();
        assert!(rules.contains(&"B602"), "{rules:?}");
    }
    assert!(
        debris(cache.path()).is_empty(),
        "{:?}",
        debris(cache.path())
    );
    // A second run installs nothing and names version and source.
    let out = managed(&e, cache.path())
        .args(["analyze", "security"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(
        !text(&out.stderr).contains("install"),
        "{}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("bandit       1.9.4 (managed)"), "{stdout}");
    assert!(stdout.contains("B602"), "{stdout}");
    // `tools which` and `tools list` see it.
    let which = managed(&e, cache.path())
        .args(["tools", "which", "bandit"])
        .output()
        .unwrap();
    assert_code(&which, 0);
    assert_eq!(
        text(&which.stdout).trim(),
        tools_root(cache.path())
            .join("bandit-1.9.4/bin/bandit")
            .display()
            .to_string()
    );
    let list = managed(&e, cache.path())
        .args(["--json", "tools", "list"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&list.stdout).unwrap();
    let row = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tool"] == "bandit")
        .unwrap();
    assert_eq!(row["installed"], true, "{row}");
    assert!(row["cached"][0]["bytes"].as_u64().unwrap() > 1_000_000);
}

#[test]
fn kill_9_mid_install_is_repaired_and_a_project_pin_installs_side_by_side() {
    let cache = tempfile::tempdir().unwrap();
    let e = fixture("python-app");
    let mut child = managed(&e, cache.path())
        .args(["tools", "install", "ruff"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill bgrun once the venv is being built in its temp dir.
    let tmp = tools_root(cache.path()).join(".tmp");
    wait_until("the install to start", Duration::from_secs(120), || {
        std::fs::read_dir(&tmp)
            .is_ok_and(|rd| rd.flatten().any(|d| d.path().join("pyvenv.cfg").is_file()))
    });
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    let env = tools_root(cache.path()).join("ruff-0.17.6");
    assert!(
        !env.join("bgrun-tool.json").exists(),
        "an interrupted install must not look complete"
    );
    // A half environment in place (no marker) is not used either.
    std::fs::create_dir_all(env.join("bin")).unwrap();
    std::fs::write(env.join("bin/ruff"), "#!/bin/sh\necho broken\n").unwrap();
    let which = managed(&e, cache.path())
        .args(["tools", "which", "ruff"])
        .output()
        .unwrap();
    assert_code(&which, 1);
    // The next run repairs it.
    let out = managed(&e, cache.path())
        .args(["tools", "install", "ruff"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(
        text(&out.stdout).contains("installed ruff 0.17.6"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        debris(cache.path()).is_empty(),
        "{:?}",
        debris(cache.path())
    );
    let v = Command::new(env.join("bin/ruff"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(text(&v.stdout).trim(), "ruff 0.17.6", "{}", text(&v.stderr));

    // The team pins another version: it installs beside the default one.
    e.write(
        "bgrun.json",
        r#"{"analysis": {"tools": {"ruff": {"version": "0.17.5"}},
            "disabled_tools": ["pylint"]}}"#,
    );
    let out = managed(&e, cache.path())
        .args(["analyze", "code", "--output", ".r.json"])
        .output()
        .unwrap();
    assert_exit_says(&out, 0, "installed ruff 0.17.5");
    let r = report(&e.root().join(".r.json"));
    assert_eq!(tool(&r, "ruff")["version"], "0.17.5");
    assert_eq!(tool(&r, "ruff")["source"], "managed");
    assert!(env.join("bin/ruff").is_file());
    assert!(
        tools_root(cache.path())
            .join("ruff-0.17.5/bin/ruff")
            .is_file()
    );
}

#[test]
fn an_unreachable_index_is_a_clear_per_tool_failure_within_the_timeout() {
    let cache = tempfile::tempdir().unwrap();
    let e = fixture("python-app");
    e.config(
        r#"{"analysis": {"disabled_tools": ["pip-audit"], "tool_timeout_seconds": 90,
            "install_timeout_seconds": 90}}"#,
    );
    let t = std::time::Instant::now();
    let out = managed(&e, cache.path())
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_CONFIG_FILE", "/dev/null")
        .args(["analyze", "all", "--output", ".r.json"])
        .output()
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(90),
        "took {:?}",
        t.elapsed()
    );
    assert_code(&out, 0);
    let r = report(&e.root().join(".r.json"));
    for name in ["bandit", "radon-cc", "pylint", "ruff"] {
        let t = tool(&r, name);
        assert_eq!(t["status"], "failed", "{t}");
        let why = t["why"].as_str().unwrap();
        assert!(why.starts_with("could not install "), "{why}");
        assert!(why.contains("pip install failed"), "{why}");
        assert!(why.contains("retry: bgrun tools install "), "{why}");
    }
    assert_eq!(tool(&r, "sizes")["status"], "ran", "the others still run");
    assert!(
        debris(cache.path()).is_empty(),
        "{:?}",
        debris(cache.path())
    );
    assert!(!tools_root(cache.path()).join("bandit-1.9.4").exists());
}

#[test]
fn no_install_skips_the_tool_and_drain_passes_it_on() {
    let cache = tempfile::tempdir().unwrap();
    let e = fixture("python-app");
    e.config(r#"{"analysis": {"disabled_tools": ["pip-audit"]}}"#);
    let out = managed(&e, cache.path())
        .args(["analyze", "security", "--no-install", "--output", ".r.json"])
        .output()
        .unwrap();
    // No tool ran: exit 1 (the work did not happen).
    assert_code(&out, 1);
    let why = tool(&report(&e.root().join(".r.json")), "bandit")["why"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        why.contains("bandit 1.9.4 not installed and installing is off")
            && why.contains("bgrun tools install bandit"),
        "{why}"
    );
    assert_code(
        &managed(&e, cache.path())
            .args(["enqueue", "--no-drain", "security_scan"])
            .output()
            .unwrap(),
        0,
    );
    let out = managed(&e, cache.path())
        .args(["drain", "--no-install"])
        .output()
        .unwrap();
    assert_code(&out, 1);
    let reports: Vec<PathBuf> = std::fs::read_dir(e.state().join("reports"))
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .collect();
    // Nothing ran, so the task failed and was retried: every attempt skipped bandit.
    assert!(!reports.is_empty());
    for r in &reports {
        assert_eq!(tool(&report(r), "bandit")["status"], "skipped", "{r:?}");
    }
    assert!(!tools_root(cache.path()).join("bandit-1.9.4").exists());
}

#[test]
fn pytest_runs_in_the_projects_interpreter_or_says_how_to_make_one() {
    let e = fixture("pytest-pass");
    // A dependency only the project's environment has.
    e.write("vendor/depmod.py", "VALUE = 6\n");
    e.write(
        "tests/test_dep.py",
        "import depmod\n\n\ndef test_dep():\n    assert depmod.VALUE == 6\n",
    );
    // The project's own interpreter runs only in a trusted repository (issue 14); the
    // approval is kept in a throwaway data dir.
    let data = tempfile::tempdir().unwrap();
    let managed = |e: &Env, cache: &Path| {
        let mut c = managed(e, cache);
        c.env("BGRUN_DATA_DIR", data.path());
        c
    };
    assert_code(
        &e.cmd()
            .env("BGRUN_DATA_DIR", data.path())
            .arg("trust")
            .output()
            .unwrap(),
        0,
    );
    let out = managed(&e, &shared_cache())
        .args(["analyze", "tests", "--output", ".r.json"])
        .output()
        .unwrap();
    // Nothing ran (both runners skipped): exit 1.
    assert_code(&out, 1);
    let r = report(&e.root().join(".r.json"));
    let why = tool(&r, "pytest")["why"].as_str().unwrap().to_string();
    assert!(
        why.starts_with("no project environment") && why.contains("python3 -m venv .venv"),
        "{why}"
    );
    // With a .venv (no pytest in it): the managed pytest runs in the project's python.
    let venv = Command::new("python3")
        .args(["-m", "venv", "--without-pip", ".venv"])
        .current_dir(e.root())
        .output()
        .unwrap();
    assert!(venv.status.success(), "{}", text(&venv.stderr));
    let site = std::fs::read_dir(e.root().join(".venv/lib"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path()
        .join("site-packages");
    std::fs::write(
        site.join("vendor.pth"),
        format!("{}\n", e.root().join("vendor").display()),
    )
    .unwrap();
    let out = managed(&e, &shared_cache())
        .args(["analyze", "tests", "--output", ".r.json"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let r = report(&e.root().join(".r.json"));
    let p = tool(&r, "pytest");
    assert_eq!(p["status"], "ran", "{p}\n{}", text(&out.stderr));
    assert_eq!(p["source"], "managed");
    assert_eq!(p["version"], "9.2.0");
    assert_eq!(r["tests"]["passed"], 3, "{r}");
    assert_eq!(r["tests"]["failed"], 0, "{r}");
    assert!(
        p["command"]
            .as_str()
            .unwrap()
            .starts_with(&e.root().join(".venv/bin/python").display().to_string()),
        "{p}"
    );
}

#[test]
fn config_layers_comments_bom_and_provenance() {
    let e = Env::new();
    e.write(
        ".claude/config/background-tasks.json",
        r#"{"execution": {"max_retries": 1, "max_queue_size": 50}}"#,
    );
    e.write(
        "bgrun.json",
        "\u{feff}{\n  // the team's pins\n  \"analysis\": {\"tools\": {\"ruff\": {\"version\": \"0.17.5\"}}},\n  /* shared */ \"execution\": {\"max_retries\": 2}\n}\n",
    );
    e.config(r#"{"execution": {"max_retries": 3}}"#);
    let v = e.json(&["config", "check"]);
    assert_eq!(v["config"]["execution"]["max_retries"], 3, "{v}");
    assert_eq!(v["config"]["execution"]["max_queue_size"], 50);
    assert_eq!(
        v["config"]["analysis"]["tools"]["ruff"]["version"],
        "0.17.5"
    );
    let prov = &v["provenance"];
    let ends = |k: &str, tail: &str| {
        let p = prov[k].as_str().unwrap_or_else(|| panic!("{k} in {prov}"));
        assert!(p.ends_with(tail), "{k}: {p}");
    };
    ends("execution.max_retries", ".bgrun/config.json");
    ends("execution.max_queue_size", "background-tasks.json");
    ends("analysis.tools.ruff.version", "bgrun.json");
    assert!(prov.get("execution.kill_grace_seconds").is_none());
    assert_eq!(v["files"].as_array().unwrap().len(), 3);

    // A bad value is reported with the file that set it.
    e.config(r#"{"analysis": {"tools": {"ruff": {"source": "nowhere"}}}}"#);
    let out = e.run(&["config", "check"]);
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.contains(
            ".bgrun/config.json: analysis.tools.ruff.source: expected managed, project or system"
        ),
        "{err}"
    );
    // Broken JSON after a comment and a BOM: line and column of the file itself.
    e.write("bgrun.json", "\u{feff}// c\n/* a\n b */ {\"x\": ,}\n");
    let out = e.run(&["config", "check"]);
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(err.contains("bgrun.json:3:13: not valid JSON"), "{err}");
    // --config replaces the file part of the chain.
    e.write("other.json", r#"{"execution": {"max_retries": 7}}"#);
    let v = e.json(&["--config", "other.json", "config", "check"]);
    assert_eq!(v["config"]["execution"]["max_retries"], 7);
    assert_eq!(v["config"]["execution"]["max_queue_size"], 1000, "{v}");
}

#[test]
fn tools_update_moves_the_pins_and_keeps_the_rest_of_the_team_config() {
    let e = Env::new();
    e.write("app.py", "print('hi')\n");
    e.write(
        "bgrun.json",
        "{\n  // keep me\n  \"execution\": {\"max_retries\": 2},\n  \"analysis\": {\"tools\": {\"ruff\": {\"version\": \"0.17.5\", \"source\": \"managed\"}}}\n}\n",
    );
    let cache = tempfile::tempdir().unwrap();
    let out = managed(&e, cache.path())
        .args(["tools", "update"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ruff: 0.17.5 -> "), "{stdout}");
    let v: Value =
        serde_json::from_slice(&std::fs::read(e.root().join("bgrun.json")).unwrap()).unwrap();
    assert_eq!(v["execution"]["max_retries"], 2);
    assert_eq!(v["analysis"]["tools"]["ruff"]["source"], "managed");
    let ruff = v["analysis"]["tools"]["ruff"]["version"].as_str().unwrap();
    assert_ne!(ruff, "0.17.5");
    for t in ["bandit", "radon", "pylint"] {
        assert!(
            v["analysis"]["tools"][t]["version"].is_string(),
            "{t} pinned: {v}"
        );
    }
    // The commented original is kept.
    assert!(
        std::fs::read_to_string(e.root().join("bgrun.json.bak"))
            .unwrap()
            .contains("// keep me")
    );
    assert_code(&e.run(&["config", "check"]), 0);
}

#[test]
fn tools_dir_and_unknown_tool() {
    let e = Env::new();
    let cache = tempfile::tempdir().unwrap();
    let out = managed(&e, cache.path())
        .args(["tools", "dir"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(
        text(&out.stdout).trim(),
        tools_root(cache.path()).display().to_string()
    );
    let out = managed(&e, cache.path())
        .args(["tools", "which", "nope"])
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(text(&out.stderr).contains("unknown tool \"nope\""));
    e.config(r#"{"analysis": {"tools": {"ruff": {"version": "../../x"}}}}"#);
    let out = e.run(&["config", "check"]);
    assert_exit_says(
        &out,
        2,
        "analysis.tools.ruff.version: \"../../x\" is not a version",
    );
}
