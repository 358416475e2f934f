//! Git hooks with real git in temp repos: chaining an existing hook (its exit code still
//! blocks the commit), byte-identical uninstall, core.hooksPath, linked worktrees, pre-push
//! with arguments and stdin, blocking hooks and BGRUN_SKIP.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::{Env, assert_code, bin, text};

/// git isolated from the caller's global and system config.
fn git_in(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("BGRUN_CONFIG")
        .env_remove("BGRUN_STATE_DIR")
        .env_remove("BGRUN_SKIP")
        .output()
        .expect("git")
}

fn git_ok(dir: &Path, args: &[&str]) -> Output {
    let out = git_in(dir, args);
    assert!(
        out.status.success(),
        "git {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

fn bgrun_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("BGRUN_CONFIG")
        .env_remove("BGRUN_STATE_DIR")
        .env("NO_COLOR", "1")
        .output()
        .expect("bgrun")
}

fn write_exec(p: &Path, body: &str) {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(p, body).expect("write");
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A config whose hooks run a task that copies its context file (`$BGRUN_CONTEXT`) into `out_dir`.
fn config_for(hooks: &str, out_dir: &Path, extra: &str) -> String {
    let out = out_dir.to_str().expect("utf-8 temp path");
    // Empty the default hooks this test does not name.
    let mut hooks = hooks.to_string();
    for h in ["pre_commit", "post_commit", "pre_push"] {
        if !hooks.contains(h) && !hooks.contains(&h.replace('_', "-")) {
            hooks.push_str(&format!(r#", "{h}": []"#));
        }
    }
    format!(
        r#"{{"task_types": {{
              "mark": {{"command": ["sh", "-c", "cp \"$BGRUN_CONTEXT\" \"$0/tmp-$$\" && mv \"$0/tmp-$$\" \"$0/ctx-$$.json\"", "{out}"],
                        "max_retries": 0}},
              "fail": {{"command": ["sh", "-c", "exit 3"], "max_retries": 0}}
            }},
            "triggers": {{"git_hooks": {{ {hooks} }}
                         {extra} }} }}"#
    )
}

/// The contexts the `mark` task saved, waiting for at least `n`.
fn contexts(dir: &Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while count_ctx(dir) < n {
        if std::time::Instant::now() > deadline {
            let state = dir.parent().expect("parent").join(".bgrun");
            let log = |f: &str| std::fs::read_to_string(state.join(f)).unwrap_or_default();
            panic!(
                "timed out waiting for {n} task context(s) in {}\ndrainer.log: {}\nbgrun.log: {}",
                dir.display(),
                log("drainer.log"),
                log("bgrun.log")
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("ctx-") {
            let b = std::fs::read(e.path()).expect("read ctx");
            v.push(serde_json::from_slice(&b).expect("context JSON"));
        }
    }
    v
}

fn count_ctx(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("ctx-"))
                .count()
        })
        .unwrap_or(0)
}

fn outdir(e: &Env) -> PathBuf {
    let d = e.root().join("out");
    std::fs::create_dir_all(&d).expect("mkdir out");
    d
}

fn listing(dir: &Path) -> Vec<(String, Vec<u8>, u32)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| {
            let m = std::fs::symlink_metadata(e.path()).expect("meta");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
                m.permissions().mode(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn existing_hook_is_chained_keeps_blocking_and_is_restored_byte_identical() {
    let e = Env::new();
    let out = outdir(&e);
    e.config(&config_for(r#""pre-commit": ["mark"]"#, &out, ""));
    let hook = e.root().join(".git/hooks/pre-commit");
    let original = "#!/bin/sh\n# the user's own gate\necho ran > \"$(git rev-parse --show-toplevel)/gate-ran\"\nexit 1\n";
    write_exec(&hook, original);
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o750)).expect("chmod");
    let before = listing(&e.root().join(".git/hooks"));

    assert_code(&bgrun_in(e.root(), &["hooks", "install"]), 0);
    let installed = listing(&e.root().join(".git/hooks"));
    let script = std::fs::read_to_string(&hook).expect("read hook");
    assert!(script.contains("# bgrun-managed-hook"), "{script}");
    assert!(script.contains(&bin().canonicalize().expect("bin").display().to_string()));
    // Installing twice changes nothing.
    assert_code(&bgrun_in(e.root(), &["install-hooks"]), 0);
    assert_eq!(listing(&e.root().join(".git/hooks")), installed);

    e.write("a.py", "print(1)\n");
    git_ok(e.root(), &["add", "a.py"]);
    let commit = git_in(e.root(), &["commit", "-m", "x"]);
    assert!(
        !commit.status.success(),
        "the original gate must still block the commit"
    );
    assert!(e.root().join("gate-ran").exists(), "the original hook ran");
    // bgrun's task ran too, with the staged files as context.
    let ctx = contexts(&out, 1);
    assert_eq!(ctx[0]["hook"], "pre-commit");
    assert_eq!(ctx[0]["changed_files"], serde_json::json!(["a.py"]));

    let st = bgrun_in(e.root(), &["hooks", "status", "--json"]);
    assert_code(&st, 0);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).expect("json");
    let pc = v["hooks"]
        .as_array()
        .expect("hooks")
        .iter()
        .find(|h| h["name"] == "pre-commit")
        .expect("pre-commit listed");
    assert_eq!(pc["state"], "installed");
    assert_eq!(pc["up_to_date"], true);
    assert!(pc["chained_backup"]["path"].is_string());

    assert_code(&bgrun_in(e.root(), &["hooks", "uninstall"]), 0);
    assert_eq!(listing(&e.root().join(".git/hooks")), before);
    assert_eq!(std::fs::read_to_string(&hook).expect("read"), original);
}

#[test]
fn core_hooks_path_relative_and_absolute_are_followed() {
    for absolute in [false, true] {
        let e = Env::new();
        let out = outdir(&e);
        e.config(&config_for(r#""post-commit": ["mark"]"#, &out, ""));
        let hooks_dir = e.root().join("my hooks");
        let value = if absolute {
            hooks_dir.to_str().expect("utf-8").to_string()
        } else {
            "my hooks".to_string()
        };
        git_ok(e.root(), &["config", "core.hooksPath", &value]);
        let r = bgrun_in(e.root(), &["hooks", "install"]);
        assert_code(&r, 0);
        assert!(
            text(&r.stdout).contains("core.hooksPath"),
            "{}",
            text(&r.stdout)
        );
        assert!(hooks_dir.join("post-commit").exists());
        assert!(!e.root().join(".git/hooks/post-commit").exists());
        git_ok(e.root(), &["commit", "-q", "--allow-empty", "-m", "x"]);
        let ctx = contexts(&out, 1);
        assert_eq!(ctx[0]["hook"], "post-commit");
        let head = text(&git_ok(e.root(), &["rev-parse", "HEAD"]).stdout);
        assert_eq!(ctx[0]["commit"], head.trim());
    }
}

#[test]
fn linked_worktree_installs_into_the_common_git_dir() {
    let e = Env::new();
    git_ok(e.root(), &["commit", "-q", "--allow-empty", "-m", "init"]);
    let wt_parent = tempfile::tempdir().expect("tempdir");
    let wt = wt_parent.path().join("wt");
    git_ok(
        e.root(),
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "side",
            wt.to_str().expect("utf-8"),
        ],
    );
    let out = outdir(&e);
    let cfg = config_for(r#""post-commit": ["mark"]"#, &out, "");
    std::fs::create_dir_all(wt.join(".bgrun")).expect("mkdir");
    std::fs::write(wt.join(".bgrun/config.json"), &cfg).expect("config");
    assert_code(&bgrun_in(&wt, &["hooks", "install"]), 0);
    assert!(e.root().join(".git/hooks/post-commit").exists());
    git_ok(&wt, &["commit", "-q", "--allow-empty", "-m", "in worktree"]);
    let ctx = contexts(&out, 1);
    assert_eq!(ctx[0]["branch"], "side");
}

#[test]
fn pre_push_passes_arguments_and_stdin_to_bgrun_and_the_original() {
    let e = Env::new();
    let out = outdir(&e);
    e.config(&config_for(r#""pre-push": ["mark"]"#, &out, ""));
    let remote = tempfile::tempdir().expect("tempdir");
    git_ok(remote.path(), &["init", "-q", "--bare"]);
    git_ok(
        e.root(),
        &[
            "remote",
            "add",
            "origin",
            remote.path().to_str().expect("utf-8"),
        ],
    );
    let seen = e.root().join("seen");
    write_exec(
        &e.root().join(".git/hooks/pre-push"),
        &format!(
            "#!/bin/sh\necho \"$1 $2\" > '{0}.args'\ncat > '{0}.stdin'\nexit \"${{PUSH_EXIT:-0}}\"\n",
            seen.display()
        ),
    );
    assert_code(&bgrun_in(e.root(), &["hooks", "install"]), 0);
    e.write("f.txt", "x\n");
    git_ok(e.root(), &["add", "f.txt"]);
    git_ok(e.root(), &["commit", "-q", "-m", "one"]);
    let head = text(&git_ok(e.root(), &["rev-parse", "HEAD"]).stdout)
        .trim()
        .to_string();

    // The original's exit code still stops the push.
    let failed = Command::new("git")
        .args(["push", "-q", "origin", "main"])
        .current_dir(e.root())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("PUSH_EXIT", "1")
        .output()
        .expect("git push");
    assert!(
        !failed.status.success(),
        "the original pre-push hook failed"
    );
    let stdin = std::fs::read_to_string(seen.with_extension("stdin")).expect("stdin");
    assert_eq!(
        stdin,
        format!(
            "refs/heads/main {head} refs/heads/main {}\n",
            "0".repeat(40)
        )
    );
    git_ok(e.root(), &["push", "-q", "origin", "main"]);
    let args = std::fs::read_to_string(seen.with_extension("args")).expect("args");
    assert_eq!(args.trim(), format!("origin {}", remote.path().display()));
    let ctx = contexts(&out, 1);
    let c = &ctx[0];
    assert_eq!(c["hook"], "pre-push");
    assert_eq!(c["remote"], "origin");
    assert_eq!(c["refs"][0]["local_sha"], head.as_str());
    assert_eq!(c["changed_files"], serde_json::json!(["f.txt"]));
}

#[test]
fn blocking_hook_fails_the_commit_and_bgrun_skip_skips() {
    let e = Env::new();
    let out = outdir(&e);
    e.config(&config_for(
        r#""pre-commit": ["fail"], "blocking": ["pre_commit"]"#,
        &out,
        "",
    ));
    assert_code(&bgrun_in(e.root(), &["hooks", "install"]), 0);
    let r = git_in(e.root(), &["commit", "--allow-empty", "-m", "x"]);
    assert!(
        !r.status.success(),
        "a failing blocking task fails the commit"
    );
    assert!(
        text(&r.stderr).contains("BGRUN_SKIP"),
        "{}",
        text(&r.stderr)
    );
    let r = Command::new("git")
        .args(["commit", "-q", "--allow-empty", "-m", "x"])
        .current_dir(e.root())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("BGRUN_SKIP", "pre-commit")
        .output()
        .expect("git");
    assert!(r.status.success(), "{}", text(&r.stderr));
}

#[test]
fn a_broken_config_never_fails_a_non_blocking_hook() {
    let e = Env::new();
    let out = outdir(&e);
    e.config(&config_for(r#""post-commit": ["mark"]"#, &out, ""));
    assert_code(&bgrun_in(e.root(), &["hooks", "install"]), 0);
    e.config("{ not json");
    let r = git_in(e.root(), &["commit", "--allow-empty", "-m", "x"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(text(&r.stderr).contains("warning"), "{}", text(&r.stderr));
}

#[test]
fn foreign_manager_hook_is_chained_and_reported() {
    let e = Env::new();
    let out = outdir(&e);
    e.config(&config_for(r#""post-commit": ["mark"]"#, &out, ""));
    let hook = e.root().join(".git/hooks/post-commit");
    write_exec(
        &hook,
        "#!/bin/sh\n# lefthook-like manager\necho lefthook > \"$(git rev-parse --show-toplevel)/lh\"\n",
    );
    let st = bgrun_in(e.root(), &["hooks", "status"]);
    assert!(
        text(&st.stdout).contains("foreign (lefthook)"),
        "{}",
        text(&st.stdout)
    );
    assert_code(&bgrun_in(e.root(), &["hooks", "install"]), 0);
    let st = bgrun_in(e.root(), &["hooks", "status"]);
    assert!(
        text(&st.stdout).contains("post-commit.bgrun-orig (lefthook)"),
        "{}",
        text(&st.stdout)
    );
    git_ok(e.root(), &["commit", "-q", "--allow-empty", "-m", "x"]);
    assert!(
        e.root().join("lh").exists(),
        "the manager's hook still runs"
    );
    contexts(&out, 1);
}

#[test]
fn bare_repository_is_refused() {
    let d = tempfile::tempdir().expect("tempdir");
    git_ok(d.path(), &["init", "-q", "--bare"]);
    let r = bgrun_in(d.path(), &["-C", ".", "hooks", "install"]);
    assert_code(&r, 2);
    assert!(text(&r.stderr).contains("bare"), "{}", text(&r.stderr));
}

#[test]
fn config_defined_hooks_are_reported() {
    let e = Env::new();
    git_ok(e.root(), &["config", "hook.lint.command", "make lint"]);
    git_ok(e.root(), &["config", "hook.lint.event", "pre-commit"]);
    let st = bgrun_in(e.root(), &["hooks", "status", "--json"]);
    assert_code(&st, 0);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).expect("json");
    assert_eq!(v["config_hooks"][0]["name"], "lint");
    assert_eq!(v["config_hooks"][0]["command"][0], "make lint");
    assert_eq!(v["config_hooks"][0]["events"][0], "pre-commit");
    assert!(v["config_hooks_supported"].is_boolean());
}

/// `bgrun hook ...` has a parser of its own (the hot path of every git command); what it
/// does not take still gets the full CLI's help, errors and global options.
#[test]
fn the_hook_parser_falls_back_to_the_full_cli() {
    let e = Env::new();
    let help = bgrun_in(e.root(), &["hook", "--help"]);
    assert_code(&help, 0);
    assert!(text(&help.stdout).contains("Usage: bgrun hook"), "{help:?}");
    let missing = bgrun_in(e.root(), &["hook"]);
    assert_code(&missing, 2);
    assert!(text(&missing.stderr).contains("<NAME>"), "{missing:?}");
    // The state directory from the environment, as the full CLI takes it.
    e.config(
        r#"{"task_types": {"noop": {"command": ["true"]}},
                 "triggers": {"git_hooks": {"post_commit": ["noop"]}}}"#,
    );
    let state = e.root().join("elsewhere");
    let out = Command::new(bin())
        .args(["hook", "post-commit"])
        .current_dir(e.root())
        .env("BGRUN_STATE_DIR", &state)
        .env("BGRUN_HOOK_SYNC", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("bgrun");
    assert_code(&out, 0);
    assert!(text(&out.stderr).contains("queued noop"), "{out:?}");
    let journal = std::fs::read_to_string(state.join("state.jsonl")).expect("journal there");
    assert!(journal.contains("noop"), "{journal}");
}

/// A post-commit hook with nothing to chain is installed in the direct form: bgrun is the
/// file's interpreter (`#!/path/to/bgrun hook`), no shell starts, and git's commit still
/// reaches the task with its context. With a hook to chain, or for a hook that can stop git,
/// it stays the sh script; `hooks status` calls each form up to date, and moving from one
/// to the other is an ordinary update.
#[test]
fn an_after_the_fact_hook_runs_bgrun_as_its_interpreter_without_a_shell() {
    let e = Env::new();
    let out = outdir(&e);
    // pre-commit runs another task type: the same one would be a duplicate of post-commit's
    // while still queued.
    e.config(&config_for(
        r#""post-commit": ["mark"], "pre-commit": ["fail"]"#,
        &out,
        "",
    ));
    assert_code(&bgrun_in(e.root(), &["hooks", "install"]), 0);
    let exe = bin().canonicalize().expect("bin");
    let post = std::fs::read(e.root().join(".git/hooks/post-commit")).expect("post-commit");
    let first = format!("#!{} hook\n", exe.display());
    assert!(
        post.starts_with(first.as_bytes()),
        "{}",
        String::from_utf8_lossy(&post)
    );
    let pre = std::fs::read_to_string(e.root().join(".git/hooks/pre-commit")).expect("pre");
    assert!(pre.starts_with("#!/bin/sh\n"), "{pre}");

    git_ok(e.root(), &["commit", "-q", "--allow-empty", "-m", "x"]);
    let ctx = contexts(&out, 1);
    assert_eq!(ctx[0]["hook"], "post-commit");
    assert!(ctx[0]["commit"].is_string(), "{}", ctx[0]);

    // `bgrun hook <path of a hook file>` is the hook of that file's name.
    let direct = Command::new(bin())
        .args(["-q", "hook"])
        .arg(e.root().join(".git/hooks/post-commit"))
        .current_dir(e.root())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("BGRUN_HOOK_SYNC", "1")
        .output()
        .expect("bgrun");
    assert_code(&direct, 0);
    let st = bgrun_in(e.root(), &["hooks", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).expect("json");
    for h in v["hooks"].as_array().expect("hooks") {
        assert_eq!(h["up_to_date"], true, "{h}");
    }

    // A foreign post-commit appears: installing again chains it through the sh script.
    assert_code(&bgrun_in(e.root(), &["hooks", "uninstall"]), 0);
    let hook = e.root().join(".git/hooks/post-commit");
    write_exec(
        &hook,
        "#!/bin/sh\necho mine > \"$(git rev-parse --show-toplevel)/mine\"\n",
    );
    assert_code(&bgrun_in(e.root(), &["hooks", "install"]), 0);
    let chained = std::fs::read_to_string(&hook).expect("post-commit");
    assert!(chained.starts_with("#!/bin/sh\n"), "{chained}");
    git_ok(e.root(), &["commit", "-q", "--allow-empty", "-m", "y"]);
    assert!(e.root().join("mine").exists(), "the chained hook ran");
    assert_code(&bgrun_in(e.root(), &["hooks", "uninstall"]), 0);
    assert_eq!(
        std::fs::read_to_string(&hook).expect("restored"),
        "#!/bin/sh\necho mine > \"$(git rev-parse --show-toplevel)/mine\"\n"
    );
}
