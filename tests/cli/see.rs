//! Issue 15, "see what happened": task logs (`log`, `log --follow`, `run` streaming),
//! readable results, the terminal inbox, desktop "auto", command channels, CI formats and
//! the HTML report.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::*;

/// PATH with the pinned test tools first (as tests/cli/analyze.rs does).
pub fn tools_path() -> OsString {
    let root = std::env::var_os("BGRUN_TEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let mut dirs = vec![
        root.join(".venv-tools/bin"),
        root.join("tools/node_modules/.bin"),
    ];
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(dirs).expect("PATH")
}

fn have_pytest() -> bool {
    if std::env::split_paths(&tools_path()).any(|d| d.join("pytest").is_file()) {
        return true;
    }
    assert!(
        std::env::var_os("BGRUN_TEST_TOOLS").is_none(),
        "pytest missing (scripts/test installs it)"
    );
    eprintln!("\n*** SKIPPED: pytest not installed ***\n");
    false
}

/// Copy fixtures/NAME into the env's repo.
pub fn fixture_into(e: &Env, name: &str) {
    fn copy(from: &Path, to: &Path) {
        for entry in std::fs::read_dir(from).expect("fixture dir") {
            let entry = entry.expect("entry");
            let dest = to.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                std::fs::create_dir_all(&dest).expect("mkdir");
                copy(&entry.path(), &dest);
            } else {
                std::fs::copy(entry.path(), &dest).expect("copy");
            }
        }
    }
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name),
        e.root(),
    );
}

/// A shell script (run with `sh`, as argv) that prints `first`, waits for `go` to exist,
/// then prints `second`.
fn gated_script(e: &Env) -> String {
    let go = e.root().join("go");
    format!(
        "echo first; i=0; while [ ! -e '{}' ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; echo second",
        go.display()
    )
}

/// Read lines from a child's stdout on a thread; returns a receiver of lines.
fn lines_of(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn run_streams_the_output_while_the_task_runs_and_keeps_the_log() {
    let e = Env::new();
    let mut child = e
        .cmd()
        .args(["run", "custom", "--", "sh", "-c", &gated_script(&e)])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let rx = lines_of(child.stdout.take().expect("stdout"));
    // `first` arrives while the task still waits for `go`: it was streamed, not printed at the end.
    let l = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("first line streamed");
    assert_eq!(l, "first");
    assert!(child.try_wait().expect("wait").is_none(), "still running");
    std::fs::write(e.root().join("go"), "").expect("go");
    let rest: Vec<String> = rx.iter().collect();
    assert!(child.wait().expect("wait").success());
    assert_eq!(rest[0], "second");
    assert!(rest[1].starts_with("custom: sh -c"), "{rest:?}");
    let log = rest
        .iter()
        .find_map(|l| l.strip_prefix("log: "))
        .expect("log line");
    assert_eq!(
        std::fs::read_to_string(log).expect("log kept"),
        "first\nsecond\n"
    );
}

#[test]
fn log_follow_prints_lines_as_written_and_exits_when_the_task_ends() {
    let e = Env::new();
    let out = e.run(&["enqueue", "custom", "--", "sh", "-c", &gated_script(&e)]);
    assert_code(&out, 0);
    let id = text(&out.stdout)
        .split_whitespace()
        .find(|w| w.chars().all(|c| c.is_ascii_digit()))
        .expect("id")
        .to_string();
    let mut child = e
        .cmd()
        .args(["log", &id, "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let rx = lines_of(child.stdout.take().expect("stdout"));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).expect("first"),
        "first"
    );
    assert!(
        child.try_wait().expect("wait").is_none(),
        "follows a running task"
    );
    std::fs::write(e.root().join("go"), "").expect("go");
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).expect("second"),
        "second"
    );
    wait_until("log --follow to exit", Duration::from_secs(10), || {
        child.try_wait().expect("wait").is_some()
    });
    assert!(child.wait().expect("wait").success());
    // Without --follow: the whole log, or its last N lines.
    let out = e.run(&["log", &id]);
    assert_eq!(text(&out.stdout), "first\nsecond\n");
    let out = e.run(&["log", &id, "--lines", "1"]);
    assert_eq!(text(&out.stdout), "second\n");
    let out = e.run(&["log", "999"]);
    assert_code(&out, 2);
    assert!(text(&out.stderr).contains("no task with id"));
}

#[test]
fn results_and_status_show_the_command_and_no_missing_log_path() {
    let e = Env::new();
    let out = e.run(&["run", "custom", "--", "true"]);
    assert_code(&out, 0);
    assert!(!text(&out.stdout).contains("log:"), "no log for no output");
    let out = e.run(&["results"]);
    assert!(
        text(&out.stdout).contains("custom: true"),
        "{}",
        text(&out.stdout)
    );
    let out = e.run(&["status"]);
    assert!(
        text(&out.stdout).contains("custom: true"),
        "{}",
        text(&out.stdout)
    );
    let v = e.json(&["status"]);
    assert_eq!(v["recent"][0]["what"], "custom: true");
    let id = v["recent"][0]["id"].as_str().expect("id").to_string();
    let out = e.run(&["results", &id]);
    assert_code(&out, 0);
    assert!(text(&out.stdout).contains("output: none"));
    let out = e.run(&["results", "999"]);
    assert_code(&out, 2);
    assert!(text(&out.stderr).contains("no result for task id"));
}

#[test]
fn results_id_shows_findings_new_first_and_failing_tests_with_causes() {
    let e = Env::new();
    // A custom analyzer reporting findings (the baseline field is rendered when present).
    e.write(
        "report.json",
        r#"{"findings": [
            {"tool": "lint", "rule": "R1", "severity": "low", "file": "a.py", "line": 3, "message": "old one"},
            {"tool": "bandit", "rule": "B602", "severity": "high", "file": "app/runner.py", "line": 10, "message": "shell=True"}
        ]}"#,
    );
    e.config(
        r#"{"task_types": {"lint": {"command": ["cat", "report.json"], "report": "findings"}}}"#,
    );
    let out = e.run(&["run", "lint"]);
    assert_code(&out, 0);
    let v = e.json(&["results", "--last", "1"]);
    let id = v[0]["id"].as_str().expect("id").to_string();
    let out = e.run(&["results", &id]);
    let s = text(&out.stdout);
    assert!(s.contains("findings (2)"), "{s}");
    let high = s
        .find("bandit B602  app/runner.py:10  shell=True")
        .expect("high");
    let low = s.find("lint R1  a.py:3  old one").expect("low");
    assert!(high < low, "most severe first: {s}");

    if !have_pytest() {
        return;
    }
    let e = Env::new();
    fixture_into(&e, "pytest-fail");
    let out = e
        .cmd()
        .env("PATH", tools_path())
        .args(["run", "test_runner"])
        .output()
        .expect("run");
    assert_code(&out, 1);
    let v = e.json(&["results", "--last", "1"]);
    let id = v[0]["id"].as_str().expect("id").to_string();
    let out = e.run(&["results", &id]);
    let s = text(&out.stdout);
    assert!(s.contains("test_runner: bgrun analyze tests"), "{s}");
    assert!(
        s.contains("FAILED tests/test_mixed.py::test_broken (tests/test_mixed.py:9)"),
        "{s}"
    );
    assert!(s.contains("AssertionError: arithmetic is off"), "{s}");
}

// ---------------------------------------------------------------- desktop "auto", command channels

/// `bgrun --json notify ...` without any session bus (a headless machine).
fn notify_headless(e: &Env, extra: &[(&str, &str)], args: &[&str]) -> (i32, Value) {
    let mut c = e.cmd();
    c.env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("XDG_RUNTIME_DIR");
    for (k, v) in extra {
        c.env(k, v);
    }
    let out = c
        .arg("--json")
        .arg("notify")
        .args(args)
        .output()
        .expect("notify");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {} {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn delivery<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["channels"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["channel"] == name))
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

#[test]
fn headless_default_config_notify_exits_0_and_no_channel_is_failing() {
    let e = Env::new();
    let (code, v) = notify_headless(&e, &[], &["-s", "error", "-t", "T", "-m", "M"]);
    assert_eq!(code, 0, "{v}");
    let d = delivery(&v, "desktop");
    assert_eq!(d["status"], "skipped", "{v}");
    assert!(d["reason"].as_str().unwrap_or("").contains("auto"), "{v}");
    let s = e.json(&["status"]);
    assert_eq!(s["failing_channels"], serde_json::json!([]), "{s}");
    // A session bus with no notification server on it is no desktop either, and answers fast.
    if std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join("dbus-daemon").is_file())
    {
        let out = Command::new("dbus-run-session")
            .args(["--", bin().to_str().expect("utf8"), "--json", "notify"])
            .args(["-s", "error", "-t", "T", "-m", "M"])
            .current_dir(e.root())
            .env("NO_COLOR", "1")
            .output()
            .expect("dbus-run-session");
        assert_code(&out, 0);
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(delivery(&v, "desktop")["status"], "skipped", "{v}");
    }
    // An explicit `true` keeps the clear failure.
    e.config(r#"{"notifications": {"channels": {"desktop": {"enabled": true}}}}"#);
    let (code, v) = notify_headless(&e, &[], &["-s", "error", "-t", "T", "-m", "M"]);
    assert_eq!(code, 1, "{v}");
    let d = delivery(&v, "desktop");
    assert_eq!(d["status"], "failed");
    assert!(
        d["error"]
            .as_str()
            .unwrap_or("")
            .contains("no D-Bus session bus"),
        "{v}"
    );
    let s = e.json(&["status"]);
    assert_eq!(s["failing_channels"][0]["channel"], "desktop", "{s}");
    // A bad value names the field.
    e.config(r#"{"notifications": {"channels": {"desktop": {"enabled": "maybe"}}}}"#);
    let out = e.run(&["status"]);
    assert_exit_says(&out, 2, "notifications.channels.desktop.enabled");
}

#[test]
fn command_channels_get_the_event_on_stdin_with_a_timeout_and_are_logged() {
    let e = Env::new();
    let got = e.root().join("got.json");
    let got2 = e.root().join("got two.json");
    let cfg = serde_json::json!({"notifications": {"channels": {
        "desktop": {"enabled": false},
        "slack": {"type": "command", "command": ["sh", "-c", "cat > \"$1\"", "sh", got], "min_severity": "warning"},
        "pager": {"type": "command", "command": ["sh", "-c", "cat > \"$1\"", "sh", got2], "min_severity": "critical"},
        "broken": {"type": "command", "command": ["sh", "-c", "echo 'no route to slack' >&2; exit 3"]},
        "slow": {"type": "command", "command": ["sleep", "30"], "timeout_seconds": 1}
    }}});
    e.config(&cfg.to_string());
    let start = std::time::Instant::now();
    let (code, v) = notify_headless(&e, &[], &["-s", "error", "-t", "Scan", "-m", "1 high"]);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "the timeout bounds it"
    );
    assert_eq!(code, 1, "{v}");
    assert_eq!(delivery(&v, "slack")["status"], "delivered", "{v}");
    assert_eq!(delivery(&v, "pager")["status"], "skipped", "{v}");
    let b = delivery(&v, "broken");
    assert_eq!(b["status"], "failed");
    assert!(
        b["error"]
            .as_str()
            .unwrap_or("")
            .contains("exited with code 3: no route to slack"),
        "{v}"
    );
    let s = delivery(&v, "slow");
    assert_eq!(s["status"], "failed");
    assert!(
        s["error"]
            .as_str()
            .unwrap_or("")
            .contains("did not finish within 1 s"),
        "{v}"
    );
    let ev: Value =
        serde_json::from_slice(&std::fs::read(&got).expect("stdin written")).expect("JSON");
    assert_eq!(ev["title"], "Scan");
    assert_eq!(ev["message"], "1 high");
    assert_eq!(ev["severity"], "error");
    assert!(!got2.exists());
    // The delivery log records them like every other channel.
    let log = std::fs::read_to_string(e.state().join("deliveries.jsonl")).expect("log");
    for name in ["slack", "broken", "slow"] {
        assert!(log.contains(&format!("\"channel\":\"{name}\"")), "{log}");
    }
    let st = e.json(&["status"]);
    let failing: Vec<&str> = st["failing_channels"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["channel"].as_str())
        .collect();
    assert_eq!(failing, vec!["broken", "slow"], "{st}");
    // --channel names a custom one; a wrong type is a config error naming the field.
    let (code, v) = notify_headless(
        &e,
        &[],
        &["-s", "critical", "-t", "P", "-m", "x", "--channel", "pager"],
    );
    assert_eq!(code, 0, "{v}");
    assert!(got2.exists());
    e.config(r#"{"notifications": {"channels": {"x": {"type": "smoke", "command": ["true"]}}}}"#);
    let out = e.run(&["status"]);
    assert_exit_says(&out, 2, "notifications.channels.x.type");
}

// ---------------------------------------------------------------- the terminal inbox

/// `git ARGS` in the env's repo, with the environment the hooks tests use.
fn git_out(e: &Env, args: &[&str]) -> std::process::Output {
    let out = Command::new("git")
        .args(args)
        .current_dir(e.root())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("BGRUN_CONFIG")
        .env_remove("BGRUN_STATE_DIR")
        .env_remove("BGRUN_SKIP")
        .env("NO_COLOR", "1")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    out
}

fn results_of_type(e: &Env, ty: &str) -> Vec<Value> {
    e.json(&["results", "--last", "100"])
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["type"] == ty)
        .collect()
}

#[test]
fn the_next_git_command_prints_a_failed_background_task_once() {
    let e = Env::new();
    // Fails the first time (printing why), succeeds after.
    e.config(
        r#"{"task_types": {"flaky": {"command": ["sh", "-c",
              "if [ -e .bgrun/ok ]; then exit 0; fi; touch .bgrun/ok; echo 'boom: disk on fire'; exit 1"],
              "max_retries": 0}},
            "triggers": {"git_hooks": {"pre_commit": [], "pre_push": [], "post_commit": ["flaky"]}}}"#,
    );
    assert_code(&e.run(&["hooks", "install"]), 0);
    let first = git_out(&e, &["commit", "-q", "--allow-empty", "-m", "one"]);
    assert!(
        !text(&first.stderr).contains("bgrun: flaky"),
        "nothing unread yet"
    );
    wait_until("the first task's result", Duration::from_secs(20), || {
        !results_of_type(&e, "flaky").is_empty()
    });
    let r = &results_of_type(&e, "flaky")[0];
    assert_eq!(r["status"], "failed");
    let id = r["id"].as_str().expect("id").to_string();
    let head = text(&git_out(&e, &["rev-parse", "--short=7", "HEAD"]).stdout)
        .trim()
        .to_string();
    // status shows it unread, and does not mark it read.
    let st = e.json(&["status"]);
    assert_eq!(st["unread"][0]["id"], id.as_str(), "{st}");
    let out = e.run(&["status"]);
    assert!(
        text(&out.stdout).contains("unread (1)"),
        "{}",
        text(&out.stdout)
    );

    let second = git_out(&e, &["commit", "-q", "--allow-empty", "-m", "two"]);
    let err = text(&second.stderr);
    let want = format!(
        "bgrun: flaky #{id} (your commit {head}): failed: exited with code 1 — bgrun results {id}"
    );
    assert!(err.contains(&want), "want {want:?} in:\n{err}");
    assert!(err.contains("bgrun:   | boom: disk on fire"), "{err}");
    assert_eq!(
        e.json(&["status"])["unread"],
        serde_json::json!([]),
        "marked read"
    );
    wait_until("the second task's result", Duration::from_secs(20), || {
        results_of_type(&e, "flaky").len() >= 2
    });
    let third = git_out(&e, &["commit", "-q", "--allow-empty", "-m", "three"]);
    let err = text(&third.stderr);
    assert!(!err.contains(&format!("#{id} ")), "not shown again:\n{err}");
    assert!(err.contains("succeeded"), "the second one is news:\n{err}");
}

// ---------------------------------------------------------------- CI formats

fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/schemas")
}

fn have_on_path(tool: &str) -> bool {
    if std::env::split_paths(&tools_path()).any(|d| d.join(tool).is_file()) {
        return true;
    }
    assert!(
        std::env::var_os("BGRUN_TEST_TOOLS").is_none(),
        "{tool} missing (scripts/test installs it)"
    );
    eprintln!("\n*** SKIPPED: {tool} not installed ***\n");
    false
}

/// A project with a bandit finding and a failing pytest test.
fn ci_project() -> Env {
    let e = Env::new();
    fixture_into(&e, "python-app");
    fixture_into(&e, "pytest-fail");
    e.write(
        "app/odd, name:x.py",
        "import subprocess\nsubprocess.call('ls', shell=True)\n",
    );
    e.config(r#"{"analysis": {"disabled_tools": ["pip-audit"]}}"#);
    e
}

fn analyze_to(
    e: &Env,
    format: &str,
    extra_env: &[(&str, &Path)],
) -> (std::process::Output, PathBuf) {
    let out_file = e.root().join(format!("report.{format}"));
    let mut c = e.cmd();
    c.env("PATH", tools_path())
        .args(["analyze", "all", "--format", format, "--output"])
        .arg(&out_file);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    (c.output().expect("analyze"), out_file)
}

#[test]
fn junit_validates_against_the_xsd_and_holds_findings_and_failing_tests() {
    if !have_pytest() || !have_on_path("bandit") || !have_on_path("xmllint") {
        return;
    }
    let e = ci_project();
    let (out, file) = analyze_to(&e, "junit", &[]);
    assert_code(&out, 1); // a test failed
    let v = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(schemas().join("junit-10.xsd"))
        .arg(&file)
        .output()
        .expect("xmllint");
    assert!(v.status.success(), "{}{}", text(&v.stdout), text(&v.stderr));
    let xml = std::fs::read_to_string(&file).expect("xml");
    let doc = roxmltree::Document::parse(&xml).expect("well-formed");
    let cases: Vec<(String, String, Option<String>)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| {
            let failure = n
                .children()
                .find(|c| c.has_tag_name("failure"))
                .and_then(|f| f.attribute("type").map(str::to_string));
            (
                n.attribute("classname").unwrap_or("").to_string(),
                n.attribute("name").unwrap_or("").to_string(),
                failure,
            )
        })
        .collect();
    assert!(
        cases.contains(&(
            "bgrun.bandit".into(),
            "B602 app/runner.py:10".into(),
            Some("high".into())
        )),
        "{cases:?}"
    );
    assert!(
        cases.contains(&(
            "bgrun.bandit".into(),
            "B602 app/odd, name:x.py:2".into(),
            Some("low".into())
        )),
        "{cases:?}"
    );
    assert!(
        cases.contains(&(
            "bgrun.pytest".into(),
            "tests/test_mixed.py::test_broken".into(),
            Some("test-failure".into())
        )),
        "{cases:?}"
    );
    assert!(
        cases.contains(&("bgrun.pytest".into(), "1 passed".into(), None)),
        "{cases:?}"
    );
}

#[test]
fn codequality_follows_gitlabs_format_and_github_annotates_and_summarizes() {
    if !have_on_path("bandit") {
        return;
    }
    let e = ci_project();
    let (_, file) = analyze_to(&e, "codequality", &[]);
    let issues: Value = serde_json::from_slice(&std::fs::read(&file).expect("cq")).expect("JSON");
    let arr = issues.as_array().expect("array");
    let b602: Vec<&Value> = arr
        .iter()
        .filter(|i| i["check_name"] == "bandit/B602")
        .collect();
    assert_eq!(b602.len(), 2, "{issues}");
    assert!(b602.iter().any(|i| i["severity"] == "critical"
        && i["location"]["path"] == "app/runner.py"
        && i["location"]["lines"]["begin"] == 10));
    assert!(
        b602.iter()
            .any(|i| i["severity"] == "minor" && i["location"]["path"] == "app/odd, name:x.py")
    );
    let mut fps: Vec<&str> = arr
        .iter()
        .filter_map(|i| i["fingerprint"].as_str())
        .collect();
    fps.sort();
    fps.dedup();
    assert_eq!(fps.len(), arr.len(), "fingerprints are unique");
    // Against the documented format, with the test venv's jsonschema.
    let py = std::env::split_paths(&tools_path())
        .map(|d| d.join("python3"))
        .find(|p| {
            Command::new(p)
                .args(["-c", "import jsonschema"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
    match py {
        Some(py) => {
            let check = "import json, sys, jsonschema\n\
                jsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])))";
            let v = Command::new(py)
                .args(["-c", check])
                .arg(schemas().join("gitlab-codequality.schema.json"))
                .arg(&file)
                .output()
                .expect("python");
            assert!(v.status.success(), "{}", text(&v.stderr));
        }
        None => assert!(
            std::env::var_os("BGRUN_TEST_TOOLS").is_none(),
            "jsonschema missing"
        ),
    }
    // GitHub: one workflow command per finding on stdout, a Markdown summary appended.
    let summary = e.root().join("summary.md");
    std::fs::write(&summary, "earlier step\n").expect("summary");
    let out = e
        .cmd()
        .env("PATH", tools_path())
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["analyze", "security", "--format", "github"])
        .output()
        .expect("analyze");
    assert_code(&out, 0);
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("::error file=app/runner.py,line=10,col=")
                && l.contains(",title=bandit B602::")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("::warning file=app/odd%2C name%3Ax.py,line=2,")),
        "{stdout}"
    );
    let md = std::fs::read_to_string(&summary).expect("summary");
    assert!(md.starts_with("earlier step\n## bgrun: "), "{md}");
    assert!(
        md.contains("| high | bandit | B602 | `app/runner.py:10` |"),
        "{md}"
    );
}

#[test]
fn results_format_junit_of_a_background_task() {
    if !have_on_path("bandit") || !have_on_path("xmllint") {
        return;
    }
    let e = ci_project();
    let out = e
        .cmd()
        .env("PATH", tools_path())
        .args(["run", "security_scan"])
        .output()
        .expect("run");
    assert_code(&out, 0);
    e.run(&["run", "custom", "--", "sh", "-c", "exit 3"]);
    let out = e.run(&["results", "--format", "junit"]);
    assert_code(&out, 0);
    let file = e.root().join("results.xml");
    std::fs::write(&file, &out.stdout).expect("write");
    let v = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(schemas().join("junit-10.xsd"))
        .arg(&file)
        .output()
        .expect("xmllint");
    assert!(v.status.success(), "{}{}", text(&v.stdout), text(&v.stderr));
    let xml = text(&out.stdout);
    assert!(xml.contains("name=\"B602 app/runner.py:10\""), "{xml}");
    assert!(xml.contains("custom: sh -c &quot;exit 3&quot;"), "{xml}");
    let out = e.run(&["results", "--format", "codequality"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v.as_array().is_some_and(|a| !a.is_empty()));
}

// ---------------------------------------------------------------- the HTML report in a real browser

/// Standard base64 (what CDP returns for screenshots).
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// A Chrome DevTools Protocol client over `--remote-debugging-pipe` (fd 3 in, fd 4 out,
/// messages NUL-terminated JSON): no websocket, no port, nothing on the network.
struct Cdp {
    child: std::process::Child,
    to: std::io::PipeWriter,
    from: std::sync::mpsc::Receiver<Value>,
    next: u64,
    events: Vec<Value>,
}

impl Drop for Cdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cdp {
    fn start(profile: &Path) -> Cdp {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let (chrome_in, to) = std::io::pipe().expect("pipe");
        let (from_r, chrome_out) = std::io::pipe().expect("pipe");
        // The network is off: a fresh network namespace (root), else only the flags below.
        let isolated = Command::new("unshare")
            .args(["--net", "true"])
            .output()
            .is_ok_and(|o| o.status.success());
        let mut cmd = if isolated {
            let mut c = Command::new("unshare");
            c.args(["--net", "--", "chromium"]);
            c
        } else {
            Command::new("chromium")
        };
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--remote-debugging-pipe",
            "--window-size=1280,1800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(profile.join("chromium.log")).expect("log"));
        let (ci, co) = (chrome_in.as_raw_fd(), chrome_out.as_raw_fd());
        // SAFETY: dup2 only, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Move both out of the way first, so that neither is already 3 or 4.
                let (a, b) = (libc::dup(ci), libc::dup(co));
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("chromium");
        drop(chrome_in);
        drop(chrome_out);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(from_r);
            loop {
                let mut buf = Vec::new();
                match r.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        buf.pop();
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                            && tx.send(v).is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
        Cdp {
            child,
            to,
            from: rx,
            next: 0,
            events: Vec::new(),
        }
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        use std::io::Write;
        self.next += 1;
        let id = self.next;
        let mut msg = serde_json::json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        let mut bytes = serde_json::to_vec(&msg).expect("json");
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        loop {
            let v = self
                .from
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no answer to {method}"));
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    fn wait_event(&mut self, method: &str) {
        if self.events.iter().any(|e| e["method"] == method) {
            return;
        }
        loop {
            let v = self
                .from
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no {method} event"));
            let hit = v["method"] == method;
            self.events.push(v);
            if hit {
                return;
            }
        }
    }
}

/// Runs a closure when dropped (to show Chromium's log when the test fails).
struct Defer<F: FnMut()>(F);

impl<F: FnMut()> Drop for Defer<F> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            (self.0)();
        }
    }
}

/// What a page did when Chromium opened it.
struct Opened {
    load_ms: f64,
    errors: Vec<String>,
    requests: Vec<String>,
    screenshot: Vec<u8>,
    svg_count: u64,
    session: String,
}

fn open_in_chromium(cdp: &mut Cdp, url: &str) -> Opened {
    let t = cdp.call(
        None,
        "Target.createTarget",
        serde_json::json!({"url": "about:blank"}),
    );
    let target = t["targetId"].as_str().expect("target").to_string();
    let a = cdp.call(
        None,
        "Target.attachToTarget",
        serde_json::json!({"targetId": target, "flatten": true}),
    );
    let session = a["sessionId"].as_str().expect("session").to_string();
    let s = Some(session.as_str());
    for m in [
        "Page.enable",
        "Runtime.enable",
        "Log.enable",
        "Network.enable",
    ] {
        cdp.call(s, m, serde_json::json!({}));
    }
    cdp.events.clear();
    cdp.call(s, "Page.navigate", serde_json::json!({"url": url}));
    cdp.wait_event("Page.loadEventFired");
    let nav = cdp.call(
        s,
        "Runtime.evaluate",
        serde_json::json!({
            "expression": "JSON.stringify({load: performance.getEntriesByType('navigation')[0].loadEventEnd, svgs: document.querySelectorAll('svg').length})",
            "returnByValue": true
        }),
    );
    let nav: Value =
        serde_json::from_str(nav["result"]["value"].as_str().expect("value")).expect("json");
    let shot = cdp.call(
        s,
        "Page.captureScreenshot",
        serde_json::json!({"format": "png"}),
    );
    let screenshot = base64_decode(shot["data"].as_str().expect("png"));
    let mut errors = Vec::new();
    let mut requests = Vec::new();
    for e in &cdp.events {
        let p = &e["params"];
        match e["method"].as_str().unwrap_or("") {
            "Runtime.exceptionThrown" => errors.push(p["exceptionDetails"].to_string()),
            "Runtime.consoleAPICalled" if p["type"] == "error" || p["type"] == "assert" => {
                errors.push(p["args"].to_string())
            }
            "Log.entryAdded" if p["entry"]["level"] == "error" => {
                errors.push(p["entry"].to_string())
            }
            "Network.requestWillBeSent" => {
                let u = p["request"]["url"].as_str().unwrap_or("").to_string();
                if u != url {
                    requests.push(u);
                }
            }
            _ => {}
        }
    }
    Opened {
        load_ms: nav["load"].as_f64().unwrap_or(f64::MAX),
        errors,
        requests,
        screenshot,
        svg_count: nav["svgs"].as_u64().unwrap_or(0),
        session: session.clone(),
    }
}

/// 1,000 results (analyzer runs with findings, command tasks, some failing), their metrics
/// samples, and reports with baseline data, written as bgrun stores them.
fn thousand_results(e: &Env) {
    let state = e.state();
    std::fs::create_dir_all(state.join("reports")).expect("mkdir");
    let t0 = 1_780_000_000.0_f64;
    let mut results = String::new();
    let mut metrics = String::new();
    for i in 0..1000u32 {
        let at = t0 + f64::from(i) * 600.0;
        let finished = bgrun::timefmt::rfc3339(at);
        let kind = i % 4;
        let (ty, argv, status) = match kind {
            0 => (
                "security_scan",
                serde_json::json!(["bgrun analyze security"]),
                "succeeded",
            ),
            1 => (
                "test_runner",
                serde_json::json!(["bgrun analyze tests"]),
                if i % 3 == 0 { "failed" } else { "succeeded" },
            ),
            2 => (
                "custom",
                serde_json::json!(["sh", "-c", "make lint"]),
                "succeeded",
            ),
            _ => (
                "code_analysis",
                serde_json::json!(["bgrun analyze code"]),
                "succeeded",
            ),
        };
        let mut r = serde_json::json!({
            "id": (i + 1).to_string(), "type": ty, "name": ty, "status": status,
            "exit_code": if status == "succeeded" { 0 } else { 1 }, "attempt": 1,
            "trigger": "hook:post-commit", "enqueued_at": finished, "finished_at": finished,
            "duration_s": 1.0 + f64::from(i % 17), "queue_s": f64::from(i % 5) * 0.3,
            "argv": argv,
        });
        if kind != 2 {
            let n = u64::from(i % 7);
            r["findings"] = serde_json::json!({"critical": n / 3, "high": n, "medium": 2 * n, "low": 3, "info": 1});
        }
        if i >= 990 && kind == 0 {
            let path = state.join("reports").join(format!("{}-1.json", i + 1));
            let findings: Vec<Value> = (0..300)
                .map(|k| {
                    let tool = ["bandit", "ruff", "pylint"][k % 3];
                    let sev = ["critical", "high", "medium", "low", "info"][k % 5];
                    serde_json::json!({
                        "tool": tool, "rule": format!("R{}", k % 40),
                        "severity": sev,
                        "file": format!("src/mod_{}/file <{k}>.py", k % 9), "line": k + 1,
                        "message": format!("finding number {k} with \"quotes\" & <tags>"),
                        "fix": "", "baseline": if k % 10 == 0 { "new" } else { "unchanged" }
                    })
                })
                .collect();
            let report = serde_json::json!({
                "schema_version": 1, "kind": "security", "root": "", "generated_at": finished,
                "findings": findings, "counts": {}, "tools": [{"name": "bandit", "kind": "security",
                "status": "ran", "why": "", "version": null, "duration_s": 1.0, "counts": {}}],
                "fixed": [{"tool": "bandit", "rule": "B101", "severity": "low", "file": "old.py", "line": 1, "message": "gone"}]
            });
            std::fs::write(&path, report.to_string()).expect("report");
            r["report_path"] = serde_json::json!(path);
        }
        if i >= 990 && kind == 1 {
            let path = state.join("reports").join(format!("{}-1.json", i + 1));
            let report = serde_json::json!({
                "schema_version": 1, "kind": "tests", "root": "", "generated_at": finished,
                "findings": [], "counts": {}, "tools": [{"name": "pytest", "kind": "tests",
                "status": "ran", "why": "", "version": null, "duration_s": 3.0, "counts": {},
                "tests": {"passed": 40, "failed": 1, "skipped": 0, "failures": [
                    {"name": "tests/test_api.py::test_login", "message": "AssertionError: 401 != 200", "file": "tests/test_api.py", "line": 12}]}}]
            });
            std::fs::write(&path, report.to_string()).expect("report");
            r["report_path"] = serde_json::json!(path);
        }
        results.push_str(&r.to_string());
        results.push('\n');
        let s = serde_json::json!({
            "at": at, "type": ty, "status": status, "duration_s": 1.0 + f64::from(i % 17),
            "queue_s": f64::from(i % 5) * 0.3, "peak_rss_mb": 20.0, "cpu_s": 0.5,
            "queue_len": i % 3, "concurrent": 1
        });
        metrics.push_str(&s.to_string());
        metrics.push('\n');
    }
    std::fs::write(state.join("results.jsonl"), results).expect("results");
    std::fs::write(state.join("metrics.jsonl"), metrics).expect("metrics");
}

#[test]
fn the_report_of_1000_results_opens_in_headless_chromium_offline_fast_and_clean() {
    if !have_on_path("chromium") {
        return;
    }
    let e = Env::new();
    thousand_results(&e);
    let html = e.root().join("out dir").join("report.html");
    let out = e
        .cmd()
        .arg("report")
        .arg("--output")
        .arg(&html)
        .output()
        .expect("report");
    assert_code(&out, 0);
    let body = std::fs::read_to_string(&html).expect("html");
    // Self-contained: nothing to fetch.
    for bad in [
        "src=\"http",
        "href=\"http",
        "<link",
        "@import",
        "url(http",
        "<script src",
    ] {
        assert!(!body.contains(bad), "{bad} in the report");
    }
    assert!(body.contains("tests/test_api.py::test_login"));
    assert!(body.contains("src/mod_0/file &lt;0&gt;.py:1"));

    let profile = tempfile::tempdir().expect("profile");
    let mut cdp = Cdp::start(profile.path());
    let log = profile.path().join("chromium.log");
    let _show = Defer(move || {
        eprintln!(
            "chromium: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    let blank = open_in_chromium(&mut cdp, "about:blank");
    let url = format!("file://{}", html.display()).replace(' ', "%20");
    let page = open_in_chromium(&mut cdp, &url);
    assert!(page.errors.is_empty(), "console errors: {:?}", page.errors);
    assert!(
        page.requests.is_empty(),
        "requests leaving the file: {:?}",
        page.requests
    );
    assert!(page.svg_count >= 6, "charts drawn: {}", page.svg_count);
    assert!(page.load_ms < 1000.0, "rendered in {} ms", page.load_ms);
    // Kept as an artifact; a blank page compresses to almost nothing.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts");
    std::fs::write(dir.join("report-1000.png"), &page.screenshot).expect("png");
    assert!(page.screenshot.starts_with(b"\x89PNG"), "a PNG");
    assert!(
        page.screenshot.len() > 10 * blank.screenshot.len().max(1000),
        "not blank: {} bytes vs {} for about:blank",
        page.screenshot.len(),
        blank.screenshot.len()
    );
    // The findings table's filters work.
    let filtered = cdp.call(
        Some(&page.session),
        "Runtime.evaluate",
        serde_json::json!({
            "expression": "var s=document.getElementById('f-sev'); s.value='critical'; s.dispatchEvent(new Event('change')); document.getElementById('f-count').textContent",
            "returnByValue": true
        }),
    );
    assert_eq!(filtered["result"]["value"], "60 of 300");
    eprintln!(
        "report of 1000 results: {} bytes, loaded in {:.0} ms",
        body.len(),
        page.load_ms
    );
}

#[test]
fn report_auto_refreshes_the_report_after_a_drain() {
    let e = Env::new();
    e.config(r#"{"report": {"auto": true}}"#);
    let out = e.run(&[
        "enqueue",
        "--no-drain",
        "custom",
        "--",
        "sh",
        "-c",
        "echo hi",
    ]);
    assert_code(&out, 0);
    assert!(!e.state().join("report.html").exists());
    let out = e.run(&["drain"]);
    assert_code(&out, 0);
    let html = std::fs::read_to_string(e.state().join("report.html")).expect("refreshed");
    assert!(
        html.contains("custom: sh -c &quot;echo hi&quot;"),
        "the run is listed"
    );
    e.config(r#"{"report": {"auto": "yes"}}"#);
    let out = e.run(&["status"]);
    assert_exit_says(&out, 2, "report.auto");
}

#[test]
fn analyze_shows_per_tool_progress_on_a_tty_only() {
    if !have_on_path("radon") || !have_on_path("script") {
        return;
    }
    let e = Env::new();
    fixture_into(&e, "python-app");
    // `script` runs it on a pseudo-terminal (argv joined for script's own `sh -c`; the
    // binary path is quoted).
    let cmdline = format!("'{}' analyze performance", bin().display());
    let out = Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .current_dir(e.root())
        .env("PATH", tools_path())
        .env_remove("NO_COLOR")
        .output()
        .expect("script");
    let s = text(&out.stdout);
    assert!(s.contains("radon-cc     running"), "{s}");
    assert!(s.contains("radon-cc     done in"), "{s}");
    assert!(s.contains("sizes        done in"), "{s}");
    // Not a terminal: no progress lines.
    let out = e
        .cmd()
        .env("PATH", tools_path())
        .args(["analyze", "performance"])
        .output()
        .expect("analyze");
    assert!(!text(&out.stdout).contains("running") && !text(&out.stderr).contains("running"));
}

/// The `bgrun ...` command lines of the README's CI example after `marker`.
fn readme_ci_lines(marker: &str) -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let at = readme
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in README"));
    let block = &readme[at..];
    let start = block.find("```yaml").expect("yaml block") + 7;
    let end = start + block[start..].find("```").expect("block end");
    block[start..end]
        .lines()
        .filter_map(|l| {
            let l = l
                .trim()
                .trim_start_matches("- ")
                .trim_start_matches("run: ");
            l.starts_with("bgrun ")
                .then(|| l.split_whitespace().skip(1).map(str::to_string).collect())
        })
        .collect()
}

#[test]
fn the_readme_ci_examples_run_and_produce_valid_files() {
    if !have_pytest() || !have_on_path("bandit") || !have_on_path("xmllint") {
        return;
    }
    let e = ci_project();
    let summary = e.root().join("step-summary.md");
    for (marker, n) in [
        ("<!-- bgrun-ci:github -->", 4),
        ("<!-- bgrun-ci:gitlab -->", 3),
    ] {
        let lines = readme_ci_lines(marker);
        assert_eq!(lines.len(), n, "{marker}: {lines:?}");
        for argv in lines {
            let out = e
                .cmd()
                .env("PATH", tools_path())
                .env("GITHUB_STEP_SUMMARY", &summary)
                .args(&argv)
                .output()
                .expect("bgrun");
            let tests = argv.iter().any(|a| a == "tests" || a == "all");
            // The fixture has a failing test: those steps fail, after writing their file.
            assert_code(&out, if tests { 1 } else { 0 });
            if argv.iter().any(|a| a == "github") {
                assert!(
                    text(&out.stdout).lines().any(|l| l.starts_with("::")),
                    "{argv:?}"
                );
            }
        }
    }
    let md = std::fs::read_to_string(&summary).expect("step summary");
    assert!(md.matches("## bgrun: ").count() >= 2, "{md}");
    let junit = e.root().join("bgrun-junit.xml");
    let v = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(schemas().join("junit-10.xsd"))
        .arg(&junit)
        .output()
        .expect("xmllint");
    assert!(v.status.success(), "{}", text(&v.stderr));
    for f in [
        "gl-code-quality-security.json",
        "gl-code-quality-code.json",
        "bgrun.sarif",
    ] {
        let v: Value =
            serde_json::from_slice(&std::fs::read(e.root().join(f)).expect(f)).expect("JSON");
        assert!(!v.is_null(), "{f}");
    }
}

/// A child killed and reaped when dropped.
struct Kid(std::process::Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawn, and return the first line it prints on stdout.
fn first_line(mut cmd: Command) -> (Kid, String) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn");
    let rx = lines_of(child.stdout.take().expect("stdout"));
    let kid = Kid(child);
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("first line");
    (kid, line.trim().to_string())
}

#[test]
fn desktop_auto_is_on_where_a_notification_server_answers() {
    for t in ["Xvfb", "dbus-daemon", "dunst", "dunstctl"] {
        if !have_on_path(t) {
            return;
        }
    }
    let e = Env::new();
    let dir = e.root().join("desk");
    std::fs::create_dir_all(dir.join("home/.config")).expect("mkdir");
    let mut x = Command::new("Xvfb");
    x.args([
        "-displayfd",
        "1",
        "-nolisten",
        "tcp",
        "-screen",
        "0",
        "640x480x24",
    ])
    .stderr(Stdio::null());
    let (_xvfb, display) = first_line(x);
    let conf = dir.join("bus.conf");
    std::fs::write(
        &conf,
        format!(
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
             \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
             <busconfig><type>session</type><listen>unix:dir={}</listen><auth>EXTERNAL</auth>\
             <policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>\
             <allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>\n",
            dir.display()
        ),
    )
    .expect("bus.conf");
    let mut bus = Command::new("dbus-daemon");
    bus.arg(format!("--config-file={}", conf.display()))
        .args(["--nofork", "--print-address=1"]);
    let (_bus, addr) = first_line(bus);
    let _dunst = Kid(Command::new("dunst")
        .env("DISPLAY", format!(":{display}"))
        .env("DBUS_SESSION_BUS_ADDRESS", &addr)
        .env("HOME", dir.join("home"))
        .env("XDG_CONFIG_HOME", dir.join("home/.config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dunst"));
    wait_until("dunst on the bus", Duration::from_secs(15), || {
        Command::new("dunstctl")
            .arg("is-paused")
            .env("DBUS_SESSION_BUS_ADDRESS", &addr)
            .output()
            .is_ok_and(|o| o.status.success())
    });
    // The default config ("auto"), with a desktop: delivered.
    let (code, v) = notify_headless(
        &e,
        &[("DBUS_SESSION_BUS_ADDRESS", addr.as_str())],
        &["-s", "error", "-t", "T", "-m", "M"],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(delivery(&v, "desktop")["status"], "delivered", "{v}");
}

#[test]
fn an_analyzer_finding_reaches_the_next_git_command_in_the_issues_format() {
    let e = Env::new();
    e.write(
        "findings.json",
        r#"{"findings": [
            {"tool": "bandit", "rule": "B602", "severity": "high", "file": "app/runner.py", "line": 10, "message": "shell=True"},
            {"tool": "bandit", "rule": "B101", "severity": "low", "file": "t.py", "line": 2, "message": "assert"}
        ]}"#,
    );
    e.config(
        r#"{"task_types": {"security_scan": {"command": ["cat", "findings.json"], "report": "findings"}},
            "triggers": {"git_hooks": {"pre_commit": [], "pre_push": [], "post_commit": ["security_scan"]}}}"#,
    );
    assert_code(&e.run(&["hooks", "install"]), 0);
    git_out(&e, &["commit", "-q", "--allow-empty", "-m", "one"]);
    let head = text(&git_out(&e, &["rev-parse", "--short=7", "HEAD"]).stdout)
        .trim()
        .to_string();
    wait_until("the scan's result", Duration::from_secs(20), || {
        !results_of_type(&e, "security_scan").is_empty()
    });
    let id = results_of_type(&e, "security_scan")[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let next = git_out(&e, &["commit", "-q", "--allow-empty", "-m", "two"]);
    let want = format!(
        "bgrun: security_scan #{id} (your commit {head}): 1 high finding: bandit B602 app/runner.py:10 (+1 more) — bgrun results {id}"
    );
    assert!(
        text(&next.stderr).contains(&want),
        "want {want:?} in:\n{}",
        text(&next.stderr)
    );
}

/// `--output` naming a device or a FIFO writes into it (report, analyze, run): a rename
/// over it replaced /dev/null with a regular file when run as root.
#[test]
fn output_into_a_fifo_writes_through_it_and_leaves_it_a_fifo() {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let e = Env::new();
    e.run(&["enqueue", "--no-drain", "custom", "--", "true"]);
    e.run(&["drain", "-q"]);
    for args in [
        &["report", "--output"][..],
        &["analyze", "security", "--format", "json", "--output"][..],
        &["run", "custom", "--format", "json", "--output"][..],
    ] {
        let fifo = e.root().join("pipe");
        let _ = std::fs::remove_file(&fifo);
        let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let fifo = fifo.clone();
            std::thread::spawn(move || tx.send(std::fs::read(fifo).expect("read the fifo")));
        }
        let mut argv: Vec<&str> = args.to_vec();
        argv.push(fifo.to_str().unwrap());
        if args[0] == "run" {
            argv.extend(["--", "true"]);
        }
        let out = e.run(&argv);
        // A run that never opened the fifo leaves the reader waiting: let it go.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo);
        // analyze exits 1 when no tool ran (an empty tree), with its report all the same.
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args:?}: {out:?}"
        );
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_default();
        assert!(!got.is_empty(), "{args:?} wrote nothing into the fifo");
        let kind = std::fs::symlink_metadata(&fifo)
            .expect("still there")
            .file_type();
        assert!(kind.is_fifo(), "{args:?} replaced the fifo: {kind:?}");
    }
}
