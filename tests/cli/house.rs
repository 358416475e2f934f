//! The house keeping of issue 11: output to a closed pipe, colours, git through `git`.

use super::*;
use std::process::{Command, Stdio};

/// `bgrun status | true`: a reader that is gone is no reason to panic (exit 101).
#[test]
fn a_closed_stdout_exits_quietly() {
    let e = Env::new();
    for args in [
        &["status"][..],
        &["--json", "status"],
        &["completions", "bash"],
        &["results"],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = e
            .cmd()
            .args(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .expect("run bgrun");
        let err = text(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

/// git isolated from the caller's config, in `dir`.
fn git(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env_remove("BGRUN_CONFIG")
        .env_remove("BGRUN_STATE_DIR")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    out
}

/// A reftable repository (git 2.45+): libgit2 refused it ("unsupported extension name
/// extensions.refstorage"); through the git command, hooks install and the post-commit
/// context (commit, branch, changed files, a name with a space) come through.
#[test]
fn hooks_install_and_run_on_a_reftable_repository() {
    let d = tempfile::tempdir().expect("tempdir");
    let root = d.path();
    git(root, &["init", "-q", "-b", "main", "--ref-format=reftable"]);
    git(root, &["commit", "-q", "--allow-empty", "-m", "init"]);
    let out = root.join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::create_dir_all(root.join(".bgrun")).expect("mkdir");
    std::fs::write(
        root.join(".bgrun/config.json"),
        format!(
            r#"{{"task_types": {{"mark": {{"command": ["sh", "-c", "cp \"$BGRUN_CONTEXT\" \"$0/ctx.tmp\" && mv \"$0/ctx.tmp\" \"$0/ctx.json\"", "{}"], "max_retries": 0}}}},
                "triggers": {{"git_hooks": {{"pre_commit": [], "pre_push": [], "post_commit": ["mark"]}}}}}}"#,
            out.display()
        ),
    )
    .expect("config");
    let r = Command::new(bin())
        .args(["hooks", "install"])
        .current_dir(root)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("BGRUN_CONFIG")
        .env_remove("BGRUN_STATE_DIR")
        .output()
        .expect("bgrun");
    assert_code(&r, 0);
    assert!(root.join(".git/hooks/post-commit").exists());
    std::fs::write(root.join("a file.txt"), "x\n").expect("write");
    git(root, &["add", "a file.txt"]);
    git(root, &["commit", "-q", "-m", "two"]);
    let head = text(&git(root, &["rev-parse", "HEAD"]).stdout)
        .trim()
        .to_string();
    let ctx_file = out.join("ctx.json");
    wait_until("the post-commit task", Duration::from_secs(30), || {
        ctx_file.exists()
    });
    let ctx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ctx_file).expect("read")).expect("json");
    assert_eq!(ctx["hook"], "post-commit");
    assert_eq!(ctx["commit"], head.as_str());
    assert_eq!(ctx["branch"], "main");
    assert_eq!(ctx["changed_files"], serde_json::json!(["a file.txt"]));
}

/// Remove ANSI SGR sequences.
fn strip_sgr(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' && it.peek() == Some(&'[') {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// CLICOLOR_FORCE colours a pipe, NO_COLOR wins over it, and colour changes no column.
#[test]
fn colour_follows_clicolor_and_no_color_and_keeps_columns() {
    let e = Env::new();
    e.config(r#"{"execution": {"max_retries": 0}}"#);
    for argv in [&["true"][..], &["false"]] {
        let mut args = vec!["enqueue", "--no-drain", "custom", "--"];
        args.extend_from_slice(argv);
        assert_code(&e.run(&args), 0);
    }
    assert_code(&e.run(&["drain", "-q"]), 1);
    let status = |vars: &[(&str, &str)]| {
        let mut c = e.cmd();
        c.env_remove("NO_COLOR")
            .env_remove("CLICOLOR")
            .env_remove("CLICOLOR_FORCE");
        for (k, v) in vars {
            c.env(k, v);
        }
        let out = c.arg("status").output().expect("status");
        assert_code(&out, 0);
        text(&out.stdout)
    };
    let plain = status(&[]);
    assert!(!plain.contains('\x1b'), "a pipe is not coloured: {plain}");
    let forced = status(&[("CLICOLOR_FORCE", "1")]);
    assert!(forced.contains("\x1b["), "CLICOLOR_FORCE colours: {forced}");
    assert_eq!(strip_sgr(&forced), plain, "the same columns with colour");
    let no = status(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!no.contains('\x1b'), "NO_COLOR wins: {no}");
}

/// Seconds of the day of an RFC 3339 time (`...THH:MM:SS.mmmZ`).
fn day_seconds(ts: &str) -> f64 {
    let t = &ts[11..ts.len() - 1];
    let p: Vec<f64> = t.split(':').map(|x| x.parse().expect("number")).collect();
    p[0] * 3600.0 + p[1] * 60.0 + p[2]
}

/// A webhook that never answers must not stall the drain loop: with one task at a time,
/// each failed task's announcement (1 s webhook timeout) used to hold up the next claim.
/// Now results are recorded back to back and the outbox delivers them afterwards.
#[test]
fn a_silent_webhook_does_not_stall_draining() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming().flatten() {
            held.push(conn); // accepted, never answered
        }
    });
    let e = Env::new();
    e.config(
        &serde_json::json!({
            "execution": {"max_retries": 0, "max_concurrent_tasks": 1},
            "notifications": {"enabled": true, "channels": {
                "console": {"enabled": false},
                "desktop": {"enabled": false},
                "email": {"enabled": false},
                "file": {"enabled": true, "min_severity": "info"},
                "webhook": {"enabled": true, "min_severity": "info",
                            "url": format!("http://127.0.0.1:{port}/hook"), "timeout_seconds": 1}
            }}
        })
        .to_string(),
    );
    for i in 0..3 {
        let n = i.to_string();
        assert_code(
            &e.run(&[
                "enqueue",
                "--no-drain",
                "custom",
                "--",
                "sh",
                "-c",
                "exit 1",
                &n,
            ]),
            0,
        );
    }
    assert_code(&e.run(&["drain", "-q"]), 1);
    let results = e.json(&["results"]);
    let ends: Vec<f64> = results
        .as_array()
        .expect("results")
        .iter()
        .map(|r| day_seconds(r["finished_at"].as_str().expect("finished_at")))
        .collect();
    assert_eq!(ends.len(), 3, "{results}");
    let spread = ends.iter().cloned().fold(f64::MIN, f64::max)
        - ends.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        spread < 0.9,
        "results {spread:.2}s apart: the webhook stalled the loop"
    );
    // Every announcement still went out (the file channel saw all three) before drain ended.
    let log = std::fs::read_to_string(e.state().join("notifications.jsonl")).unwrap_or_default();
    assert_eq!(log.lines().count(), 3, "{log}");
}
