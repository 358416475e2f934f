//! Issue 12 end to end, with the real tools on repos with history: changed files only, the
//! result cache, the baseline (new / unchanged / fixed), notifications about the change,
//! and nothing that did not run looking like success.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::analyze::{analyze, analyze_with, have, test_path, tool};
use super::*;

const RUNNER: &str = "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n\n\ndef check(x):\n    assert x\n    return x\n";
const STORE: &str = "import pickle\n\n\ndef load(b):\n    return pickle.loads(b)\n";

/// A repo with two Python files that already have bandit findings, committed.
fn project() -> Env {
    let e = Env::new();
    e.config(r#"{"analysis": {"disabled_tools": ["pip-audit"]}}"#);
    e.write(".gitignore", ".bgrun/\n.bgrun-report.json\n");
    e.write("app/runner.py", RUNNER);
    e.write("app/store.py", STORE);
    e.git(&["add", "-A"]);
    e.git(&["commit", "-qm", "init"]);
    e
}

/// (tool, rule, file, line, baseline) of every finding.
fn rows(r: &Value, key: &str) -> Vec<(String, String, String, u64, String)> {
    let mut v: Vec<_> = r[key]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|f| {
            (
                f["tool"].as_str().unwrap_or("").to_string(),
                f["rule"].as_str().unwrap_or("").to_string(),
                f["file"].as_str().unwrap_or("").to_string(),
                f["line"].as_u64().unwrap_or(0),
                f["baseline"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn new_ones(r: &Value) -> Vec<(String, String, String, u64, String)> {
    rows(r, "findings")
        .into_iter()
        .filter(|f| f.4 == "new")
        .collect()
}

fn row(
    tool: &str,
    rule: &str,
    file: &str,
    line: u64,
    b: &str,
) -> (String, String, String, u64, String) {
    (tool.into(), rule.into(), file.into(), line, b.into())
}

#[test]
fn a_new_finding_is_new_fixing_it_is_fixed_a_rename_is_unchanged_a_deletion_drops_them() {
    if !have(&["bandit"]) {
        return;
    }
    let e = project();
    let (out, r) = analyze(&e, &["security"]);
    assert_code(&out, 0);
    assert_eq!(rows(&r, "findings").len(), 5, "{r}");
    assert!(r["baseline"].is_null(), "no baseline on the first run");

    // One commit adds a finding to a file that already has others: exactly that one is new.
    e.write(
        "app/runner.py",
        &format!("{RUNNER}\n\ndef run2(c):\n    return subprocess.Popen(c, shell=True)\n"),
    );
    e.git(&["commit", "-qam", "add a shell call"]);
    let (out, r) = analyze(&e, &["security", "--since", "HEAD~1"]);
    assert_code(&out, 0);
    assert_eq!(
        new_ones(&r),
        vec![row("bandit", "B602", "app/runner.py", 14, "new")]
    );
    assert_eq!(r["baseline"]["source"], "previous");
    assert_eq!(
        (
            r["baseline"]["new"].as_u64(),
            r["baseline"]["unchanged"].as_u64()
        ),
        (Some(1), Some(5))
    );
    assert!(
        r["findings"][0]["fingerprint"]
            .as_str()
            .is_some_and(|f| f.len() == 32),
        "{r}"
    );
    // Only the changed file ran; the other came from the cache.
    assert_eq!(tool(&r, "bandit")["files_run"], 1);
    assert_eq!(tool(&r, "bandit")["files_cached"], 1);
    assert!(
        text(&out.stdout).contains("NEW app/runner.py:14:12  bandit B602"),
        "{}",
        text(&out.stdout)
    );

    // --new-only shows just that one.
    let (_, only) = analyze(&e, &["security", "--new-only"]);
    assert!(
        new_ones(&only).is_empty(),
        "the previous run is the baseline now: {only}"
    );

    // Fixing it: reported fixed, nothing new.
    e.write("app/runner.py", RUNNER);
    e.git(&["commit", "-qam", "fix"]);
    let (_, r) = analyze(&e, &["security", "--changed"]);
    assert!(new_ones(&r).is_empty(), "{r}");
    assert_eq!(
        rows(&r, "fixed"),
        vec![row("bandit", "B602", "app/runner.py", 14, "absent")]
    );

    // A rename (with an edit that moves the lines) keeps the old findings unchanged.
    e.git(&["mv", "app/store.py", "app/storage.py"]);
    e.write("app/storage.py", &format!("\"\"\"Storage.\"\"\"\n{STORE}"));
    e.git(&["commit", "-qam", "rename"]);
    let (_, r) = analyze(&e, &["security", "--since", "HEAD~1"]);
    assert!(new_ones(&r).is_empty(), "{r}");
    assert!(rows(&r, "fixed").is_empty(), "{r}");
    assert!(rows(&r, "findings").contains(&row(
        "bandit",
        "B301",
        "app/storage.py",
        6,
        "unchanged"
    )));
    assert_eq!(
        r["changed"]["renamed"][0],
        serde_json::json!(["app/store.py", "app/storage.py"])
    );

    // A deleted file drops its findings (they are the fixed ones).
    e.git(&["rm", "-q", "app/storage.py"]);
    e.git(&["commit", "-qm", "delete"]);
    let (_, r) = analyze(&e, &["security", "--since", "HEAD~1"]);
    assert!(
        rows(&r, "findings").iter().all(|f| f.2 == "app/runner.py"),
        "{r}"
    );
    let fixed: Vec<String> = rows(&r, "fixed").into_iter().map(|f| f.1).collect();
    assert_eq!(fixed, ["B301", "B403"]);
    assert_eq!(r["changed"]["deleted"][0], "app/storage.py");

    // SARIF carries baselineState and primaryLocationLineHash, the fixed ones as absent.
    e.write(
        "app/runner.py",
        &format!("{RUNNER}\nimport os\nos.system('ls ' + __name__)\n"),
    );
    let (_, s) = analyze(&e, &["security", "--changed", "--format", "sarif"]);
    let results = s["runs"][0]["results"].as_array().expect("results");
    let states: Vec<&str> = results
        .iter()
        .filter_map(|x| x["baselineState"].as_str())
        .collect();
    assert!(
        states.contains(&"new") && states.contains(&"unchanged"),
        "{states:?}"
    );
    assert!(
        results
            .iter()
            .all(|x| x["partialFingerprints"]["primaryLocationLineHash"].is_string())
    );
}

#[test]
fn files_as_well_as_folders_and_each_tools_own_excludes() {
    if !have(&["bandit", "ruff"]) {
        return;
    }
    let e = project();
    e.write(
        "pyproject.toml",
        "[project]\nname = \"x\"\nversion = \"0\"\n\n[tool.ruff]\nextend-exclude = [\"docs\"]\n\n[tool.bandit]\nexclude_dirs = [\"scripts\"]\n",
    );
    e.write("docs/conf.py", "import os\n");
    e.write(
        "scripts/tool.py",
        "import subprocess\nsubprocess.call('x', shell=True)\n",
    );
    e.write("app/lint.py", "import sys\n");
    // A file: only its findings; project-wide tools whose inputs are not named are skipped.
    let (out, r) = analyze(&e, &["security", "app/store.py"]);
    assert_code(&out, 0);
    assert!(
        rows(&r, "findings").iter().all(|f| f.2 == "app/store.py"),
        "{r}"
    );
    assert_eq!(rows(&r, "findings").len(), 2);
    // Several paths, a folder among them.
    let (_, r) = analyze(&e, &["security", "app/store.py", "scripts"]);
    assert!(
        rows(&r, "findings").iter().all(|f| f.2 == "app/store.py"),
        "bandit's exclude_dirs applies to named files: {r}"
    );
    // ruff given file paths still honours the project's exclude (--force-exclude).
    let (_, r) = analyze(&e, &["code"]);
    let ruff: Vec<String> = rows(&r, "findings")
        .into_iter()
        .filter(|f| f.0 == "ruff")
        .map(|f| f.2)
        .collect();
    assert!(ruff.contains(&"app/lint.py".to_string()), "{r}");
    assert!(!ruff.iter().any(|f| f.starts_with("docs/")), "{ruff:?}");
    // A path outside the project, or missing: exit 2.
    let out = e.run(&["analyze", "security", "nope.py"]);
    assert_code(&out, 2);
    let out = e.run(&["analyze", "security", "--since", "no-such-ref"]);
    assert_exit_says(&out, 2, "--since no-such-ref");
}

#[test]
fn the_cache_serves_a_warm_run_and_a_damaged_entry_is_a_miss() {
    if !have(&["bandit", "ruff"]) {
        return;
    }
    let e = project();
    let (_, cold) = analyze(&e, &["security"]);
    let (_, warm) = analyze(&e, &["security"]);
    assert_eq!(tool(&warm, "bandit")["files_run"], 0);
    assert_eq!(tool(&warm, "bandit")["files_cached"], 2);
    assert_eq!(rows(&cold, "findings").len(), rows(&warm, "findings").len());
    // Damage every entry: truncate some, garble others. Every one is a miss, same answer.
    let mut n = 0;
    for entry in walk(&e.state().join("cache/results")) {
        let b = std::fs::read(&entry).unwrap();
        let damaged = if n % 2 == 0 {
            b[..b.len() / 2].to_vec()
        } else {
            String::from_utf8(b)
                .unwrap()
                .replace("bandit", "bandiX")
                .into_bytes()
        };
        std::fs::write(&entry, damaged).unwrap();
        n += 1;
    }
    assert!(n >= 2);
    let (_, again) = analyze(&e, &["security"]);
    assert_eq!(tool(&again, "bandit")["files_run"], 2, "{again}");
    let strip = |r: &Value| {
        rows(r, "findings")
            .into_iter()
            .map(|f| (f.0, f.1, f.2, f.3))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&again), strip(&cold));
    // --full ignores the cache.
    let (_, full) = analyze(&e, &["security", "--full"]);
    assert_eq!(tool(&full, "bandit")["files_run"], 2);
}

fn walk(d: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn project_wide_tools_run_only_when_their_inputs_changed() {
    if !have(&["pytest"]) {
        return;
    }
    let e = Env::new();
    e.write(".gitignore", ".bgrun/\n.bgrun-report.json\n");
    e.write("calc.py", "def add(a, b):\n    return a + b\n");
    e.write("conftest.py", "");
    e.write(
        "tests/test_calc.py",
        "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    );
    e.write("README.md", "calc\n");
    e.git(&["add", "-A"]);
    e.git(&["commit", "-qm", "init"]);
    let (out, r) = analyze(&e, &["tests", "--changed"]);
    assert_code(&out, 0);
    assert_eq!(tool(&r, "pytest")["status"], "ran");
    assert!(tool(&r, "pytest")["reused"].is_null());
    // A non-source change: the last result stands.
    e.write("README.md", "calc, the adder\n");
    let (out, r) = analyze(&e, &["tests", "--changed"]);
    assert_code(&out, 0);
    let why = tool(&r, "pytest")["reused"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(why.starts_with("unchanged since "), "{r}");
    assert_eq!(r["tests"]["passed"], 1);
    // A source change: it runs, and the newly failing test is named with its cause.
    e.write("calc.py", "def add(a, b):\n    return a - b\n");
    let (out, r) = analyze(&e, &["tests", "--changed"]);
    assert_code(&out, 1);
    assert!(tool(&r, "pytest")["reused"].is_null());
    let nf = &r["baseline"]["newly_failing"][0];
    assert!(nf["name"].as_str().unwrap().contains("test_add"), "{r}");
    assert!(nf["message"].as_str().unwrap().contains("assert"), "{r}");
    // Fixed again: newly passing.
    e.write("calc.py", "def add(a, b):\n    return a + b\n");
    let (out, r) = analyze(&e, &["tests", "--changed"]);
    assert_code(&out, 0);
    assert!(
        r["baseline"]["newly_passing"][0]
            .as_str()
            .unwrap()
            .contains("test_add"),
        "{r}"
    );
}

#[test]
fn nothing_that_did_not_run_looks_like_success() {
    if !have(&["pytest"]) {
        return;
    }
    // No tool at all on PATH: --fail-on says nothing was checked, exit 1.
    let e = project();
    let out = e
        .cmd()
        .env("PATH", "/usr/bin:/bin")
        .args(["analyze", "security", "--fail-on", "high"])
        .output()
        .unwrap();
    if !Path::new("/usr/bin/bandit").exists() {
        assert_exit_says(&out, 1, "--fail-on high: no tool ran");
    }
    // A test runner that found no tests is a failure with its cause.
    let e = Env::new();
    e.write("calc.py", "X = 1\n");
    e.write("tests/test_nothing.py", "X = 2\n");
    e.git(&["add", "-A"]);
    e.git(&["commit", "-qm", "init"]);
    let (out, r) = analyze(&e, &["tests"]);
    assert_code(&out, 1);
    assert_eq!(tool(&r, "pytest")["status"], "failed");
    assert!(
        tool(&r, "pytest")["why"]
            .as_str()
            .unwrap()
            .contains("collected no tests"),
        "{r}"
    );
}

/// A tiny deterministic generator (no dependency): xorshift64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SNIPPETS: &[&str] = &[
    "subprocess.call(cmd, shell=True)",
    "import os",
    "assert value",
    "password = 'hunter2'",
    "eval(text)",
    "x = 1",
    "if a == None: pass",
    "import pickle",
    "data = pickle.loads(blob)",
    "l = lambda: 0",
];

fn python_files(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = walk(&root.join("pkg"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "py"))
        .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Findings of the file-local tools, line for line, without the baseline marks.
fn local_findings(r: &Value) -> Vec<String> {
    let mut v: Vec<String> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            ["bandit", "ruff", "radon-cc", "radon-mi", "sizes"]
                .contains(&f["tool"].as_str().unwrap_or(""))
        })
        .map(|f| {
            format!(
                "{} {} {} {}:{}:{} {}",
                f["tool"],
                f["rule"],
                f["severity"],
                f["file"],
                f["line"],
                f["column"],
                f["message"]
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn incremental_runs_equal_cold_full_runs_over_20_random_edits() {
    if !have(&["bandit", "ruff", "radon"]) {
        return;
    }
    let e = Env::new();
    e.write(".gitignore", ".bgrun/\n.bgrun-report.json\ncold/\n");
    let disabled =
        r#"{"analysis": {"disabled_tools": ["pip-audit", "pylint", "pytest", "unittest"]}}"#;
    e.config(disabled);
    for i in 0..6 {
        e.write(
            &format!("pkg/m{i}.py"),
            &format!("import subprocess\n\n\ndef f{i}(cmd, value, text):\n    return subprocess.call(cmd)\n"),
        );
    }
    e.git(&["add", "-A"]);
    e.git(&["commit", "-qm", "init"]);
    let cold_state = e.root().join("cold");
    std::fs::create_dir_all(&cold_state).unwrap();
    std::fs::write(cold_state.join("config.json"), disabled).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut created = 0;
    for step in 0..20 {
        let files = python_files(e.root());
        let what = rng.below(10);
        let pick = files[rng.below(files.len())].clone();
        match what {
            0 if files.len() > 2 => {
                std::fs::remove_file(e.root().join(&pick)).unwrap();
            }
            1 => {
                let to = format!("pkg/renamed{step}.py");
                std::fs::rename(e.root().join(&pick), e.root().join(to)).unwrap();
            }
            2 => {
                created += 1;
                e.write(
                    &format!("pkg/new{created}.py"),
                    &format!("{}\n", SNIPPETS[rng.below(SNIPPETS.len())]),
                );
            }
            3 => {
                // Delete a random line.
                let body = std::fs::read_to_string(e.root().join(&pick)).unwrap();
                let mut lines: Vec<&str> = body.lines().collect();
                if !lines.is_empty() {
                    lines.remove(rng.below(lines.len()));
                }
                e.write(&pick, &(lines.join("\n") + "\n"));
            }
            _ => {
                // Insert a snippet at a random line (top level: stays valid Python).
                let body = std::fs::read_to_string(e.root().join(&pick)).unwrap();
                let mut lines: Vec<String> = body.lines().map(str::to_string).collect();
                let at = rng.below(lines.len() + 1);
                let at = if lines.get(at).is_some_and(|l| l.starts_with(' ')) {
                    lines.len()
                } else {
                    at
                };
                lines.insert(at, SNIPPETS[rng.below(SNIPPETS.len())].to_string());
                e.write(&pick, &(lines.join("\n") + "\n"));
            }
        }
        if rng.below(2) == 0 {
            e.git(&["add", "-A"]);
            e.git(&["commit", "-qm", &format!("step {step}")]);
        }
        let (_, inc) = analyze(&e, &["all", "--changed"]);
        let cold_arg = cold_state.as_os_str().to_owned();
        let _ = std::fs::remove_dir_all(cold_state.join("cache"));
        let (_, cold) = analyze_with(&e, &["all", "--full"], &[("BGRUN_STATE_DIR", &cold_arg)]);
        let (a, b) = (local_findings(&inc), local_findings(&cold));
        assert!(!b.is_empty());
        assert_eq!(a, b, "step {step}: incremental and cold full differ");
        let ran: u64 = inc["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["files_run"].as_u64())
            .sum();
        let cached: u64 = inc["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["files_cached"].as_u64())
            .sum();
        assert!(
            step == 0 || cached > 0,
            "step {step}: nothing came from the cache: {inc}"
        );
        let _ = ran;
    }
}

#[test]
fn a_post_commit_hook_notifies_exactly_the_new_finding() {
    if !have(&["bandit"]) {
        return;
    }
    let e = project();
    e.config(
        r#"{"analysis": {"disabled_tools": ["pip-audit"]},
            "triggers": {"git_hooks": {"pre_commit": [], "post_commit": ["security_scan"], "pre_push": []},
                         "file_watch": {"enabled": false}},
            "notifications": {"channels": {"desktop": {"enabled": false}, "console": {"enabled": false},
                                           "file": {"enabled": true, "min_severity": "info"}}}}"#,
    );
    let out = e
        .cmd()
        .env("PATH", test_path())
        .args(["hooks", "install"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let commit = |msg: &str| {
        let out = Command::new("git")
            .args(["commit", "-qam", msg])
            .current_dir(e.root())
            .env("PATH", test_path())
            .env_remove("BGRUN_STATE_DIR")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    let notes = |n: usize| -> Vec<Value> {
        let p = e.state().join("notifications.jsonl");
        let mut got = Vec::new();
        wait_until("the hook's notification", Duration::from_secs(60), || {
            got = std::fs::read_to_string(&p)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| v["metadata"]["task_type"] == "security_scan")
                .collect();
            got.len() >= n
        });
        got
    };
    // The first commit's run is the baseline for the next.
    e.write("app/store.py", &format!("{STORE}\n"));
    commit("touch");
    notes(1);
    e.write(
        "app/runner.py",
        &format!("{RUNNER}\n\ndef run2(c):\n    return subprocess.Popen(c, shell=True)\n"),
    );
    commit("add a shell call");
    let n = notes(2);
    assert_eq!(n[1]["event"], "issues_found", "{}", n[1]);
    assert_eq!(
        n[1]["message"], "1 new: bandit B602 app/runner.py:14",
        "{}",
        n[1]
    );
    e.write("app/runner.py", RUNNER);
    commit("fix it");
    let n = notes(3);
    assert_eq!(n[2]["event"], "task_completed", "{}", n[2]);
    let out = e
        .cmd()
        .args(["--json", "results", "--last", "1"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).expect("results JSON");
    let st = e.json(&["status", "--new-only"]);
    let recent = st["recent"].as_array().expect("recent");
    assert_eq!(recent[0]["findings"]["high"], 0, "{st}");
    assert_eq!(recent[1]["findings"]["high"], 1, "{st}");
    assert_eq!(recent[1]["findings"]["low"], 0, "{st}");
    let st = e.json(&["status"]);
    assert_eq!(st["recent"][1]["findings"]["low"], 3, "{st}");
    let path = v[0]["report_path"]
        .as_str()
        .expect("report_path")
        .to_string();
    let last: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let last = serde_json::json!({"report": last});
    assert_eq!(last["report"]["baseline"]["fixed"], 1, "{last}");
    assert_eq!(last["report"]["baseline"]["new"], 0, "{last}");
    assert_eq!(
        last["report"]["changed"]["source"], "hook:post-commit",
        "{last}"
    );
    assert_eq!(
        last["report"]["changed"]["changed"][0], "app/runner.py",
        "{last}"
    );
}

#[test]
fn eslint_gets_the_walked_files_and_its_own_ignores_still_apply() {
    if !have(&["eslint"]) {
        return;
    }
    let e = Env::new();
    e.write(
        "eslint.config.mjs",
        "export default [{ignores: [\"gen/**\"]}, {files: [\"**/*.js\"], rules: {\"no-undef\": \"error\"}}];\n",
    );
    e.write("src/a.js", "undefinedThing();\n");
    e.write("gen/b.js", "alsoUndefined();\n");
    e.git(&["add", "-A"]);
    e.git(&["commit", "-qm", "init"]);
    let (out, r) = analyze(&e, &["code"]);
    assert_code(&out, 0);
    let files: Vec<String> = rows(&r, "findings")
        .into_iter()
        .filter(|f| f.0 == "eslint")
        .map(|f| f.2)
        .collect();
    assert_eq!(files, ["src/a.js"], "{r}");
    // A change to one file: only it is given to ESLint again.
    e.write("src/c.js", "x();\n");
    let (_, r) = analyze(&e, &["code", "--changed"]);
    assert_eq!(tool(&r, "eslint")["files_run"], 1, "{r}");
    // src/a.js, gen/b.js (ignored: an empty result) and eslint.config.mjs itself.
    assert_eq!(tool(&r, "eslint")["files_cached"], 3, "{r}");
    assert_eq!(rows(&r, "findings").len(), 2, "{r}");
}

/// A repo whose tests pass, committed (pytest's inputs: its Python files).
fn calc_project() -> Env {
    let e = Env::new();
    e.write(".gitignore", ".bgrun/\n.bgrun-report.json\n");
    e.write("calc.py", "def add(a, b):\n    return a + b\n");
    e.write("conftest.py", "");
    e.write(
        "tests/test_calc.py",
        "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    );
    e.git(&["add", "-A"]);
    e.git(&["commit", "-qm", "init"]);
    e
}

#[test]
fn a_project_wide_tool_runs_again_when_its_version_or_its_config_changes() {
    if !have(&["pytest"]) {
        return;
    }
    let e = calc_project();
    // The real pytest, installed as a venv would hold it, with its version in the
    // `pytest-X.dist-info` folder bgrun reads it from: renaming that folder is what an
    // upgrade looks like to bgrun (the tool itself stays the real one).
    let venv = tempfile::tempdir().unwrap();
    let bin = venv.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real = std::env::split_paths(&test_path())
        .map(|d| d.join("pytest"))
        .find(|p| p.is_file())
        .expect("pytest");
    std::fs::copy(&real, bin.join("pytest")).unwrap();
    let site = venv.path().join("lib/python3.11/site-packages");
    std::fs::create_dir_all(site.join("pytest-8.0.0.dist-info")).unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin.clone()).chain(std::env::split_paths(&test_path())),
    )
    .unwrap();
    let run = || {
        let (out, r) = analyze_with(&e, &["tests", "--changed"], &[("PATH", &path)]);
        assert_code(&out, 0);
        let t = tool(&r, "pytest").clone();
        assert_eq!(t["status"], "ran", "{r}");
        t
    };
    let t = run();
    assert_eq!(t["version"], "8.0.0", "{t}");
    assert!(t["reused"].is_null(), "{t}");
    assert!(
        run()["reused"].is_string(),
        "same tool, same inputs: reused"
    );
    // Another version of the tool: its last result does not stand.
    std::fs::rename(
        site.join("pytest-8.0.0.dist-info"),
        site.join("pytest-8.0.1.dist-info"),
    )
    .unwrap();
    let t = run();
    assert!(t["reused"].is_null(), "a new pytest version reused: {t}");
    assert_eq!(t["version"], "8.0.1", "{t}");
    assert!(run()["reused"].is_string());
    // Its own config file changed (not a source file): it runs again.
    e.write("pytest.ini", "[pytest]\nmarkers =\n    slow: slow tests\n");
    let t = run();
    assert!(t["reused"].is_null(), "a new pytest.ini reused: {t}");
    assert!(run()["reused"].is_string());
}

#[test]
fn pylint_findings_on_its_config_stay_when_every_file_comes_from_the_cache() {
    if !have(&["pylint", "ruff"]) {
        return;
    }
    let e = Env::new();
    e.config(r#"{"analysis": {"disabled_tools": ["pip-audit"]}}"#);
    e.write(".gitignore", ".bgrun/\n.bgrun-report.json\n");
    e.write("app/a.py", "\"\"\"A.\"\"\"\nimport os\n");
    e.write("app/b.py", "\"\"\"B.\"\"\"\n");
    // An option pylint does not know: it reports it on pyproject.toml, a file it was not
    // given, in every run.
    e.write("pyproject.toml", "[tool.pylint.main]\nno-such-option = 1\n");
    e.git(&["add", "-A"]);
    e.git(&["commit", "-qm", "init"]);
    let on_config = |r: &Value| -> Vec<(String, String)> {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["tool"] == "pylint" && f["file"] == "pyproject.toml")
            .map(|f| {
                (
                    f["rule"].as_str().unwrap().into(),
                    f["file"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let (_, cold) = analyze(&e, &["code"]);
    let want = vec![("E0015".to_string(), "pyproject.toml".to_string())];
    assert_eq!(on_config(&cold), want, "{cold}");
    let (_, warm) = analyze(&e, &["code"]);
    assert_eq!(tool(&warm, "pylint")["files_run"], 0, "{warm}");
    assert_eq!(on_config(&warm), want, "the warm run lost them: {warm}");
    let strip = |r: &Value| {
        rows(r, "findings")
            .into_iter()
            .map(|f| (f.0, f.1, f.2, f.3))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&warm), strip(&cold));
    // One file changed: pylint runs on it alone, the config's findings are there once.
    e.write("app/b.py", "\"\"\"B.\"\"\"\nimport sys\n");
    let (_, inc) = analyze(&e, &["code", "--changed"]);
    assert_eq!(tool(&inc, "pylint")["files_run"], 1, "{inc}");
    assert_eq!(on_config(&inc), want, "{inc}");
    // Their entry lost: one file runs again to get them back, never a silent gap.
    for entry in walk(&e.state().join("cache/last")) {
        std::fs::remove_file(entry).unwrap();
    }
    let (_, again) = analyze(&e, &["code"]);
    assert_eq!(tool(&again, "pylint")["files_run"], 1, "{again}");
    assert_eq!(on_config(&again), want, "{again}");
    // A fixed config: they are gone (the config is part of the key).
    e.write("pyproject.toml", "[tool.pylint.main]\njobs = 1\n");
    let (_, fixed) = analyze(&e, &["code"]);
    assert!(on_config(&fixed).is_empty(), "{fixed}");
}

#[test]
fn pylint_runs_with_bgruns_gc_hook_and_the_projects_own_init_hook_still_runs() {
    if !have(&["pylint"]) {
        return;
    }
    let e = Env::new();
    e.config(r#"{"analysis": {"disabled_tools": ["pip-audit"]}}"#);
    e.write(".gitignore", ".bgrun/\n.bgrun-report.json\n");
    e.write(
        "app/a.py",
        "\"\"\"A.\"\"\"\nimport vendored\n\nprint(vendored.VALUE)\n",
    );
    // Not walked (`build/` is skipped): importable only through the project's init-hook.
    e.write("build/vendored.py", "\"\"\"V.\"\"\"\nVALUE = 1\n");
    // The project's hook puts build/ on sys.path only when bgrun's hook ran before it (the
    // collector's threshold is bgrun's): no import-error proves both ran, bgrun's first.
    e.write(
        "pyproject.toml",
        "[tool.pylint.main]\ninit-hook = \"import gc, sys; sys.path.insert(0, 'build' if gc.get_threshold()[0] == 100000 else 'nowhere')\"\n",
    );
    e.git(&["add", "-A"]);
    e.git(&["commit", "-qm", "init"]);
    for args in [
        &["code"][..],
        &["code", "--full"],
        &["code", "--full", "app/a.py"],
    ] {
        let (_, r) = analyze(&e, args);
        let t = tool(&r, "pylint");
        assert_eq!(t["status"], "ran", "{args:?}: {r}");
        assert!(
            t["command"]
                .as_str()
                .unwrap_or("")
                .contains("--init-hook=import gc; hasattr(gc, 'freeze') and gc.freeze();"),
            "{args:?}: {t}"
        );
        let import_errors: Vec<_> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["tool"] == "pylint" && f["rule"] == "E0401")
            .collect();
        assert!(import_errors.is_empty(), "{args:?}: {import_errors:?}");
        assert_eq!(t["files_run"], 1, "{args:?}: {t}");
    }
}

#[test]
fn the_cache_is_bounded_by_analysis_cache_max_mb_and_bad_values_exit_2() {
    if !have(&["bandit"]) {
        return;
    }
    let e = project();
    // 3 MiB of old entries already in the cache.
    let junk = e.state().join("cache/results/00");
    std::fs::create_dir_all(&junk).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    for i in 0..48 {
        let p = junk.join(format!("junk{i}.json"));
        std::fs::write(&p, vec![b'x'; 64 * 1024]).unwrap();
        let f = std::fs::File::options().append(true).open(&p).unwrap();
        f.set_modified(old).unwrap();
    }
    let size = || -> u64 {
        walk(&e.state().join("cache/results"))
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum()
    };
    // The default bound (64 MiB) keeps them.
    let (out, _) = analyze(&e, &["security"]);
    assert_code(&out, 0);
    assert!(size() > 3 * 1024 * 1024, "{}", size());
    // 1 MiB: the oldest go first; the run's own entries (just used) stay.
    e.config(r#"{"analysis": {"disabled_tools": ["pip-audit"], "cache_max_mb": 1}}"#);
    let (out, _) = analyze(&e, &["security"]);
    assert_code(&out, 0);
    assert!(size() <= 1024 * 1024, "{}", size());
    let (_, warm) = analyze(&e, &["security"]);
    assert_eq!(tool(&warm, "bandit")["files_cached"], 2, "{warm}");
    // Out of range, negative, not a number: exit 2 naming the key.
    for bad in ["0", "-1", "\"64\"", "1048577"] {
        e.config(&format!(
            r#"{{"analysis": {{"disabled_tools": ["pip-audit"], "cache_max_mb": {bad}}}}}"#
        ));
        let out = e
            .cmd()
            .env("PATH", test_path())
            .args(["analyze", "security"])
            .output()
            .unwrap();
        assert_code(&out, 2);
        assert!(
            text(&out.stderr).contains("cache_max_mb"),
            "{bad}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn the_watchers_changed_paths_are_the_queued_analyzer_tasks_changed_set() {
    if !have(&["bandit"]) {
        return;
    }
    let e = project();
    e.config(
        r#"{"analysis": {"disabled_tools": ["pip-audit"]},
            "triggers": {"file_watch": {"task_types": ["security_scan"], "debounce_seconds": 0},
                         "git_hooks": {"pre_commit": [], "post_commit": [], "pre_push": []},
                         "scheduled": {"enabled": false}},
            "notifications": {"channels": {"desktop": {"enabled": false}, "console": {"enabled": false}}}}"#,
    );
    // A full run first: the cache holds both files, and it is the baseline.
    let (out, _) = analyze(&e, &["security"]);
    assert_code(&out, 0);
    let once = || {
        let out = e
            .cmd()
            .env("PATH", test_path())
            .args(["--json", "watch", "--poll", "--once"])
            .output()
            .unwrap();
        assert_code(&out, 0);
        serde_json::from_slice::<Value>(&out.stdout).expect("watch JSON")
    };
    assert_eq!(once()["baseline"], true);
    e.write(
        "app/runner.py",
        &format!("{RUNNER}\n\ndef run2(c):\n    return subprocess.Popen(c, shell=True)\n"),
    );
    let v = once();
    let enq = v["enqueued"].as_array().expect("enqueued");
    assert_eq!(enq.len(), 1, "{v}");
    assert_eq!(enq[0]["type"], "security_scan", "{v}");
    let mut results = Value::Null;
    wait_until("the watch task's result", Duration::from_secs(90), || {
        results = e.json(&["results"]);
        results.as_array().is_some_and(|a| {
            a.iter()
                .any(|r| r["trigger"] == "watch" && r["status"] != "running")
        })
    });
    let r = results
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["trigger"] == "watch")
        .unwrap()
        .clone();
    assert_eq!(r["status"], "succeeded", "{r}");
    let path = r["report_path"].as_str().expect("report_path");
    let report: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(report["changed"]["source"], "watch", "{report}");
    assert_eq!(
        report["changed"]["changed"],
        serde_json::json!(["app/runner.py"]),
        "{report}"
    );
    assert_eq!(tool(&report, "bandit")["files_run"], 1, "{report}");
    assert_eq!(tool(&report, "bandit")["files_cached"], 1, "{report}");
    assert_eq!(
        new_ones(&report),
        vec![row("bandit", "B602", "app/runner.py", 14, "new")],
        "{report}"
    );
}
