//! `bgrun watch --poll` / `bgrun start` (issue 8), run as the built binary on real files.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::{Child, Stdio};

use serde_json::Value;

use super::*;

/// No task on change: these tests look at what the watcher sees.
const NO_TASKS: &str = r#"{"triggers": {"file_watch": {"task_types": []}}}"#;

/// Two user-defined task types fired by file changes (their command is `true`).
const TWO_TYPES: &str = r#"{
  "task_types": {
    "lint_a": {"command": ["true"], "auto_trigger": {"on_file_change": true}},
    "lint_b": {"command": ["true"], "auto_trigger": {"on_file_change": true}}
  },
  "triggers": {"file_watch": {"task_types": ["lint_a", "lint_b"]}}
}"#;

fn once(e: &Env, extra: &[&str]) -> Value {
    let out = e
        .cmd()
        .arg("--json")
        .args(["watch", "--poll", "--once"])
        .args(extra)
        .output()
        .expect("run bgrun");
    assert_code(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "not JSON ({err}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

fn list(v: &Value, k: &str) -> Vec<String> {
    v[k].as_array()
        .unwrap_or_else(|| panic!("no {k} in {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

fn set_mtime_back(path: &Path) {
    // Same bytes, a different mtime/ctime: what an editor's "save without changes" does.
    let out = Command::new("touch")
        .args(["-d", "2001-01-01 00:00:00"])
        .arg(path)
        .output()
        .expect("touch");
    assert!(out.status.success());
}

#[test]
fn once_reports_created_modified_deleted_but_not_a_touch() {
    let e = Env::new();
    e.config(NO_TASKS)
        .write("src/keep.py", "keep\n")
        .write("src/edit.py", "v1\n")
        .write("src/gone.py", "bye\n")
        .write("src/touched.py", "same\n")
        .write("notes.txt", "not watched\n");
    let first = once(&e, &[]);
    assert_eq!(first["baseline"], true);
    e.write("src/new.py", "new\n")
        .write("src/edit.py", "v2\n")
        .write("notes.txt", "changed, but not watched\n");
    std::fs::remove_file(e.root().join("src/gone.py")).unwrap();
    set_mtime_back(&e.root().join("src/touched.py"));
    let v = once(&e, &[]);
    assert_eq!(v["baseline"], false);
    assert_eq!(list(&v, "created"), ["src/new.py"]);
    assert_eq!(list(&v, "modified"), ["src/edit.py"]);
    assert_eq!(list(&v, "deleted"), ["src/gone.py"]);
    // The snapshot moved on: nothing more to report.
    let v = once(&e, &[]);
    assert!(list(&v, "created").is_empty() && list(&v, "modified").is_empty());
    assert!(list(&v, "deleted").is_empty());
}

#[test]
fn atomic_rename_over_save_is_one_modification() {
    let e = Env::new();
    e.config(NO_TASKS)
        .write("app.py", "print(1)\n")
        .write("same.py", "x = 1\n");
    once(&e, &[]);
    // An editor's atomic save: write a temp file, rename it over the original.
    e.write("app.py.tmp~", "print(2)\n");
    std::fs::rename(e.root().join("app.py.tmp~"), e.root().join("app.py")).unwrap();
    // The same bytes saved atomically: a new inode, no change.
    e.write("same.py.tmp~", "x = 1\n");
    std::fs::rename(e.root().join("same.py.tmp~"), e.root().join("same.py")).unwrap();
    let v = once(&e, &[]);
    assert_eq!(list(&v, "modified"), ["app.py"]);
    assert!(list(&v, "created").is_empty(), "{v}");
    assert!(list(&v, "deleted").is_empty(), "{v}");
}

#[test]
fn excluded_and_gitignored_folders_are_not_reported() {
    let e = Env::new();
    e.config(NO_TASKS)
        .write(".gitignore", "generated/\n")
        .write("node_modules/pkg/index.js", "a\n")
        .write("generated/out.py", "a\n")
        .write("lib/main.py", "a\n");
    once(&e, &[]);
    e.write("node_modules/pkg/index.js", "b\n")
        .write("node_modules/pkg/new.js", "b\n")
        .write("generated/out.py", "b\n")
        .write("lib/main.py", "b\n");
    let v = once(&e, &[]);
    assert_eq!(list(&v, "modified"), ["lib/main.py"]);
    assert!(list(&v, "created").is_empty(), "{v}");
    // --no-gitignore watches generated/ (a new baseline: other settings), never node_modules.
    let first = once(&e, &["--no-gitignore"]);
    assert_eq!(first["baseline"], true);
    e.write("generated/out.py", "c\n")
        .write("node_modules/pkg/index.js", "c\n");
    let v = once(&e, &["--no-gitignore"]);
    assert_eq!(list(&v, "modified"), ["generated/out.py"]);
}

#[test]
fn non_utf8_name_is_reported_and_kept_exact_in_the_task_context() {
    let e = Env::new();
    e.config(TWO_TYPES).write("a.py", "a\n");
    once(&e, &[]);
    let name = OsStr::from_bytes(b"caf\xe9 \"x\".py");
    std::fs::write(e.root().join(name), "hi\n").unwrap();
    let v = once(&e, &[]);
    assert_eq!(list(&v, "created"), ["caf\u{FFFD} \"x\".py"]);
    let enq = v["enqueued"].as_array().expect("enqueued");
    assert_eq!(enq.len(), 2, "{v}");
    let mut results = Value::Null;
    wait_until("both tasks' results", Duration::from_secs(30), || {
        results = e.json(&["results"]);
        results.as_array().is_some_and(|a| a.len() >= 2)
    });
    for r in results.as_array().unwrap() {
        assert_eq!(r["status"], "succeeded", "{r}");
        assert_eq!(r["trigger"], "watch");
        let hex: String = b"caf\xe9 \"x\".py"
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(r["context"]["created"][0]["hex"], hex.as_str(), "{r}");
    }
}

#[test]
fn symlinks_loops_and_odd_files_are_never_fatal() {
    let e = Env::new();
    e.config(NO_TASKS).write("real.py", "a\n");
    std::os::unix::fs::symlink(".", e.root().join("loop")).unwrap();
    std::os::unix::fs::symlink("self.py", e.root().join("self.py")).unwrap();
    std::os::unix::fs::symlink("real.py", e.root().join("link.py")).unwrap();
    once(&e, &[]);
    // Retargeting a symlink is a modification of the link.
    std::fs::remove_file(e.root().join("link.py")).unwrap();
    std::os::unix::fs::symlink("self.py", e.root().join("link.py")).unwrap();
    let v = once(&e, &[]);
    assert_eq!(list(&v, "modified"), ["link.py"]);
}

#[test]
fn a_damaged_snapshot_is_replaced_by_a_new_baseline() {
    let e = Env::new();
    e.config(NO_TASKS).write("a.py", "a\n");
    once(&e, &[]);
    let snap = e.state().join("watch.snapshot");
    let mut bytes = std::fs::read(&snap).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&snap, &bytes).unwrap();
    let out = e.run(&["watch", "--once"]);
    assert_exit_says(&out, 0, "taking a new baseline");
    assert_eq!(once(&e, &[])["baseline"], false);
}

#[test]
fn bad_arguments_are_usage_errors() {
    let e = Env::new();
    assert_code(&e.run(&["watch", "--interval", "0"]), 2);
    assert_code(&e.run(&["watch", "--full-hash-every", "0"]), 2);
    assert_code(&e.run(&["start", "--once"]), 2);
}

/// A running watcher whose stdout goes to a file.
struct Running {
    child: Child,
    out: PathBuf,
}

impl Running {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

fn spawn(e: &Env, args: &[&str]) -> Running {
    let out = e.root().join("watch.out");
    let child = e
        .cmd()
        .args(args)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn bgrun");
    let snap = e.state().join("watch.snapshot");
    wait_until("the baseline snapshot", Duration::from_secs(20), || {
        snap.exists()
    });
    Running { child, out }
}

#[test]
fn a_burst_of_500_changes_enqueues_each_task_type_once() {
    let e = Env::new();
    e.config(TWO_TYPES);
    for i in 0..500 {
        e.write(&format!("pkg/m{}/f{i}.py", i % 10), "v1\n");
    }
    let mut w = spawn(
        &e,
        &[
            "--json",
            "watch",
            "--poll",
            "--interval",
            "0.2",
            "--debounce",
            "0.7",
        ],
    );
    // A formatter rewriting 500 files.
    for i in 0..500 {
        e.write(&format!("pkg/m{}/f{i}.py", i % 10), "v2\n");
    }
    let events = |w: &Running| -> Vec<Value> {
        w.output()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    wait_until("two finished tasks", Duration::from_secs(30), || {
        events(&w)
            .iter()
            .filter_map(|v| v["finished"].as_array())
            .map(Vec::len)
            .sum::<usize>()
            >= 2
    });
    // `bgrun stop --all` ends the watcher cleanly.
    assert!(
        e.json(&["status"])["watchers"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    );
    assert_code(&e.run(&["stop", "--all"]), 0);
    let status = w.child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    let evs = events(&w);
    let modified: usize = evs.iter().map(|v| list(v, "modified").len()).sum();
    assert_eq!(modified, 500);
    let enq: Vec<&Value> = evs
        .iter()
        .filter_map(|v| v["enqueued"].as_array())
        .flatten()
        .collect();
    assert_eq!(enq.len(), 2, "one task per type: {enq:?}");
    let mut types: Vec<&str> = enq.iter().filter_map(|x| x["type"].as_str()).collect();
    types.sort();
    assert_eq!(types, ["lint_a", "lint_b"]);
    assert!(
        enq.iter()
            .all(|x| x["status"] == "queued" && x["files"] == 500)
    );
    let results = e.json(&["results"]);
    for r in results.as_array().unwrap() {
        assert_eq!(r["trigger"], "watch");
        assert_eq!(r["context"]["modified"].as_array().map(Vec::len), Some(500));
    }
    assert!(
        e.json(&["status"])["watchers"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}

#[test]
fn start_watches_prints_changes_and_stops_on_sigterm() {
    let e = Env::new();
    e.config(NO_TASKS).write("a.py", "1\n");
    let mut w = spawn(&e, &["start", "--interval", "0.2"]);
    e.write("b.py", "new\n");
    wait_until("the change line", Duration::from_secs(10), || {
        w.output().contains("+ b.py")
    });
    // SAGTERM as `kill` sends it (Ctrl-C is SIGINT, handled the same way).
    let pid = w.child.id() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = w.child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    let out = w.output();
    assert!(out.contains("bgrun start"), "{out}");
    assert!(out.contains("stopped after"), "{out}");
    // The snapshot was saved on the way out: --once has nothing new.
    let v = once(&e, &[]);
    assert!(list(&v, "created").is_empty(), "{v}");
}
