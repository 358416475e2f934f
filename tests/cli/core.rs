//! The core: config, queue, pool, state safety (issue 4).

use std::collections::BTreeSet;
use std::process::Stdio;

use super::*;

/// Processes whose command line contains `token`.
fn procs_with(token: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            // Zombies have an empty cmdline; only live processes count.
            if String::from_utf8_lossy(&cmd)
                .replace('\0', " ")
                .contains(token)
            {
                out.push(pid);
            }
        }
    }
    out
}

#[test]
fn enqueue_drain_runs_a_custom_task() {
    let e = Env::new();
    let out = e.run(&[
        "enqueue",
        "--no-drain",
        "custom",
        "--",
        "sh",
        "-c",
        "echo hello",
    ]);
    assert_code(&out, 0);
    assert_eq!(text(&out.stdout).trim(), "1");
    let out = e.run(&["drain"]);
    assert_code(&out, 0);
    let r = e.json(&["results"]);
    assert_eq!(r[0]["status"], "succeeded");
    assert_eq!(r[0]["exit_code"], 0);
    let log = r[0]["log"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(log).unwrap(), "hello\n");
}

#[test]
fn twenty_concurrent_enqueuers_800_tasks_each_run_exactly_once() {
    let e = Env::new();
    e.config(r#"{"execution": {"max_concurrent_tasks": 4, "max_queue_size": 1000}}"#);
    let out_file = e.root().join("ran.txt");
    let mut kids = Vec::new();
    for p in 0..20 {
        let mut script = String::new();
        for i in 0..40 {
            // Each task appends its own tag; argv differs, so no duplicates.
            script.push_str(&format!(
                "{} enqueue --no-drain custom -- sh -c 'echo \"$1\" >> \"$2\"' sh {p}-{i} '{}' || exit 1\n",
                bin().display(),
                out_file.display()
            ));
        }
        kids.push(
            std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .current_dir(e.root())
                .env("NO_COLOR", "1")
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    for mut k in kids {
        assert!(k.wait().unwrap().success());
    }
    let status = e.json(&["status"]);
    assert_eq!(status["queued"].as_array().unwrap().len(), 800);
    let out = e.run(&["drain"]);
    assert_code(&out, 0);
    let lines = std::fs::read_to_string(&out_file).unwrap();
    let all: Vec<&str> = lines.lines().collect();
    let unique: BTreeSet<&str> = all.iter().copied().collect();
    assert_eq!(all.len(), 800, "every task ran exactly once");
    assert_eq!(unique.len(), 800);
    let status = e.json(&["status"]);
    assert_eq!(status["queued"].as_array().unwrap().len(), 0);
    assert_eq!(status["running"].as_array().unwrap().len(), 0);
}

#[test]
fn kill_9_of_a_drainer_loses_nothing_and_the_orphan_is_recovered() {
    let e = Env::new();
    // Only this test's processes: other test runs on the machine may leave a sleep 424242.
    let root = e.root().to_path_buf();
    let procs_with = |token: &str| -> Vec<u32> {
        procs_with(token)
            .into_iter()
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/environ")).is_ok_and(|env| {
                    let want = format!("BGRUN_REPO={}", root.display());
                    env.split(|b| *b == 0).any(|kv| kv == want.as_bytes())
                })
            })
            .collect()
    };
    e.config(r#"{"execution": {"max_concurrent_tasks": 1, "kill_grace_seconds": 1}}"#);
    // The first run marks itself and hangs; the re-run after recovery finishes.
    // A sleep no other test run on this machine has (procs_with scans all of /proc).
    let token = format!("sleep {}", 1_000_000 + std::process::id());
    let slow =
        format!("if [ -f marker ]; then echo second; exit 0; fi; touch marker; exec {token}");
    let slow = slow.as_str();
    assert_code(
        &e.run(&[
            "enqueue",
            "--no-drain",
            "-p",
            "high",
            "custom",
            "--",
            "sh",
            "-c",
            slow,
        ]),
        0,
    );
    for i in 0..3 {
        assert_code(
            &e.run(&[
                "enqueue",
                "--no-drain",
                "custom",
                "--",
                "sh",
                "-c",
                &format!("echo {i} >> quick.txt"),
            ]),
            0,
        );
    }
    let mut drainer = e.cmd().arg("drain").stdout(Stdio::null()).spawn().unwrap();
    wait_until("the slow task to start", Duration::from_secs(10), || {
        e.root().join("marker").exists() && !procs_with(&token).is_empty()
    });
    // SAFETY: plain kill of our own child.
    unsafe { libc::kill(drainer.id() as i32, libc::SIGKILL) };
    let _ = drainer.wait();
    assert!(
        !procs_with(&token).is_empty(),
        "the task's group outlives its drainer"
    );
    // The next command of any kind finds the orphan, kills its group and re-queues it.
    assert_code(&e.run(&["results"]), 0);
    assert!(
        procs_with(&token).is_empty(),
        "the old group was killed before any re-run"
    );
    let s = e.json(&["status"]);
    let requeued = s["queued"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "1")
        .cloned();
    assert_eq!(
        requeued.map(|t| t["attempt"].clone()),
        Some(serde_json::json!(1))
    );
    let out = e.run(&["drain"]);
    assert_code(&out, 0);
    assert!(
        procs_with(&token).is_empty(),
        "no second copy of the old group"
    );
    let results = e.json(&["results", "1"]);
    assert_eq!(results[0]["status"], "succeeded");
    assert_eq!(results[0]["attempt"], 2);
    let quick = std::fs::read_to_string(e.root().join("quick.txt")).unwrap();
    assert_eq!(quick.lines().count(), 3);
}

#[test]
fn timeout_kills_the_whole_group_with_its_forked_children() {
    let e = Env::new();
    e.config(r#"{"execution": {"max_retries": 0, "kill_grace_seconds": 1}}"#);
    let script = "sleep 737373 & sleep 737373 & (trap '' TERM; sleep 737373) & wait";
    assert_code(
        &e.run(&[
            "enqueue",
            "--no-drain",
            "--timeout",
            "1",
            "custom",
            "--",
            "sh",
            "-c",
            script,
        ]),
        0,
    );
    let t = Instant::now();
    let out = e.run(&["drain"]);
    assert_code(&out, 1);
    assert!(t.elapsed() < Duration::from_secs(8));
    let r = e.json(&["results"]);
    assert_eq!(r[0]["status"], "timed_out");
    wait_until("no sleep child left", Duration::from_secs(3), || {
        procs_with("sleep 737373").is_empty()
    });
}

#[test]
fn a_task_over_its_memory_limit_is_killed() {
    let e = Env::new();
    e.config(r#"{"execution": {"max_retries": 0}, "resource_limits": {"max_memory_mb": 64, "max_cpu_percent": 100}}"#);
    let hog = "x = bytearray(300 * 1024 * 1024)\nfor i in range(0, len(x), 4096): x[i] = 1\nimport time; time.sleep(20)";
    assert_code(
        &e.run(&[
            "enqueue",
            "--no-drain",
            "custom",
            "--",
            "python3",
            "-c",
            hog,
        ]),
        0,
    );
    let t = Instant::now();
    assert_code(&e.run(&["drain"]), 1);
    assert!(t.elapsed() < Duration::from_secs(10));
    let r = e.json(&["results"]);
    assert_eq!(r[0]["status"], "killed_memory");
    assert!(r[0]["peak_rss_mb"].as_f64().unwrap() > 64.0, "{}", r[0]);
}

#[test]
fn a_cpu_hog_is_throttled_to_the_limit() {
    let e = Env::new();
    e.config(r#"{"resource_limits": {"max_cpu_percent": 10}}"#);
    let spin = "import time\nend = time.time() + 3\nwhile time.time() < end: pass";
    assert_code(
        &e.run(&[
            "enqueue",
            "--no-drain",
            "custom",
            "--",
            "python3",
            "-c",
            spin,
        ]),
        0,
    );
    assert_code(&e.run(&["drain"]), 0);
    let r = e.json(&["results"]);
    let cpu = r[0]["cpu_s"].as_f64().unwrap();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    // Unthrottled, 3 s of wall would burn about 3 s of CPU.
    assert!(
        cpu < 3.0 * 0.10 * cores * 2.5 + 0.3,
        "cpu {cpu} s in 3 s wall at a 10% cap"
    );
}

#[test]
fn corrupt_state_gives_exit_3_and_stays_byte_identical() {
    let e = Env::new();
    assert_code(
        &e.run(&["enqueue", "--no-drain", "custom", "--", "true"]),
        0,
    );
    let path = e.state().join("state.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(
        b"{\"op\":\"enq\",\"id\":\"9\",GARBAGE\n{\"op\":\"end\",\"id\":\"9\",\"key\":\"\"}\n",
    );
    std::fs::write(&path, &bytes).unwrap();
    for args in [
        &["status"][..],
        &["enqueue", "--no-drain", "custom", "--", "echo"][..],
        &["drain"][..],
    ] {
        let out = e.run(args);
        assert_code(&out, 3);
        let err = text(&out.stderr);
        assert!(
            err.contains("state.jsonl") && err.contains("bgrun state reset"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{args:?} left the file alone"
        );
    }
    // A future schema version is refused the same way.
    let e2 = Env::new();
    // (bgrun makes the state dir: one made by hand with state in it is refused, issue 14.)
    assert_code(&e2.run(&["status"]), 0);
    let future = "{\"op\":\"hdr\",\"id\":\"\",\"key\":\"\",\"schema_version\":99,\"next_seq\":1,\"created_at\":0}\n";
    std::fs::write(e2.state().join("state.jsonl"), future).unwrap();
    let out = e2.run(&["status"]);
    assert_code(&out, 3);
    assert!(text(&out.stderr).contains("schema version 99"));
    // The way out: reset moves it aside, never deleting it.
    assert_code(&e.run(&["state", "reset"]), 0);
    let aside: Vec<_> = std::fs::read_dir(e.state())
        .unwrap()
        .flatten()
        .filter(|f| {
            f.file_name()
                .to_string_lossy()
                .starts_with("state.jsonl.broken-")
        })
        .collect();
    assert_eq!(std::fs::read(aside[0].path()).unwrap(), bytes);
    assert_code(&e.run(&["status"]), 0);
}

#[test]
fn a_held_lock_gives_exit_3_within_the_bound() {
    let e = Env::new();
    e.config(r#"{"execution": {"lock_timeout_seconds": 0.5}}"#);
    assert_code(&e.run(&["status"]), 0);
    let mut holder = std::process::Command::new("flock")
        .arg(e.state().join("lock"))
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let out = e.run(&["enqueue", "--no-drain", "custom", "--", "true"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_code(&out, 3);
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(text(&out.stderr).contains("lock"), "{}", text(&out.stderr));
}

#[test]
fn state_dir_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let e = Env::new();
    assert_code(
        &e.run(&["enqueue", "--no-drain", "custom", "--", "true"]),
        0,
    );
    assert_code(&e.run(&["drain"]), 0);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&e.state()), 0o700);
    for f in ["state.jsonl", "results.jsonl", "metrics.jsonl", "lock"] {
        assert_eq!(mode(&e.state().join(f)), 0o600, "{f}");
    }
    assert_code(
        &e.run(&["enqueue", "--no-drain", "custom", "--", "echo", "out"]),
        0,
    );
    assert_code(&e.run(&["drain"]), 0);
    assert_eq!(mode(&e.state().join("logs")), 0o700);
    for f in std::fs::read_dir(e.state().join("logs")).unwrap().flatten() {
        assert_eq!(mode(&f.path()), 0o600, "{}", f.path().display());
    }
}

#[test]
fn predecessor_config_passes_and_bad_configs_name_file_path_position() {
    let e = Env::new();
    let pred = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/config/predecessor.json");
    std::fs::create_dir_all(e.root().join(".claude/config")).unwrap();
    std::fs::copy(&pred, e.root().join(".claude/config/background-tasks.json")).unwrap();
    let out = e.run(&["config", "check"]);
    assert_code(&out, 0);
    assert!(
        text(&out.stdout).contains("background-tasks.json"),
        "discovered: {}",
        text(&out.stdout)
    );
    let v = e.json(&["config", "check"]);
    assert_eq!(
        v["config"]["execution"]["max_queue_size"], 1000,
        "defaults filled in"
    );

    e.config(r#"{"task_types": {"security_scan": {"priority": true}}, "execution": {"max_retries": "x"}}"#);
    let out = e.run(&["config", "check"]);
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.contains("config.json: task_types.security_scan.priority"),
        "{err}"
    );
    assert!(err.contains("config.json: execution.max_retries"), "{err}");

    e.config("{\n  \"execution\": {\n    \"max_retries\": 3,,\n  }\n}\n");
    let out = e.run(&["config", "check"]);
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(err.contains("config.json:3:"), "line and column: {err}");
    // Any command refuses a broken config with exit 2 and changes nothing.
    assert_code(&e.run(&["enqueue", "custom", "--", "true"]), 2);
    assert!(!e.state().join("state.jsonl").exists());

    e.config(r#"{"triggers": {"scheduled": {"tasks": [{"name": "nightly", "task_type": "security_scan", "schedule": "0 25 * * *"}]}}}"#);
    let out = e.run(&["config", "check"]);
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.contains("config.json: triggers.scheduled.tasks[0].schedule")
            && err.contains("nightly"),
        "a bad cron expression names the task and the field: {err}"
    );

    e.config(r#"{"bogus": 1, "execution": {"max_concurrent_tasks": 2, "typo_key": 1}}"#);
    let out = e.run(&["config", "check"]);
    assert_code(&out, 0);
    let err = text(&out.stderr);
    assert!(
        err.contains("bogus") && err.contains("execution.typo_key"),
        "unknown keys warn: {err}"
    );
}

#[test]
fn duplicates_are_not_added_and_overflow_drops_the_lowest_visibly() {
    let e = Env::new();
    e.config(r#"{"execution": {"max_queue_size": 3}}"#);
    assert_code(
        &e.run(&[
            "enqueue",
            "--no-drain",
            "-p",
            "low",
            "custom",
            "--",
            "echo",
            "a",
        ]),
        0,
    );
    let dup = e.run(&[
        "enqueue",
        "--no-drain",
        "-p",
        "low",
        "custom",
        "--",
        "echo",
        "a",
    ]);
    assert_code(&dup, 0);
    assert!(text(&dup.stderr).contains("already queued as 1"));
    assert_code(
        &e.run(&[
            "enqueue",
            "--no-drain",
            "-p",
            "medium",
            "custom",
            "--",
            "echo",
            "b",
        ]),
        0,
    );
    assert_code(
        &e.run(&[
            "enqueue",
            "--no-drain",
            "-p",
            "high",
            "custom",
            "--",
            "echo",
            "c",
        ]),
        0,
    );
    let over = e.run(&[
        "enqueue",
        "--no-drain",
        "-p",
        "critical",
        "custom",
        "--",
        "echo",
        "d",
    ]);
    assert_code(&over, 0);
    assert!(
        text(&over.stderr).contains(r#"dropped task 1 (custom "echo a", the lowest priority)"#),
        "{}",
        text(&over.stderr)
    );
    let low = e.run(&[
        "enqueue",
        "--no-drain",
        "-p",
        "low",
        "custom",
        "--",
        "echo",
        "e",
    ]);
    assert_code(&low, 0);
    assert!(text(&low.stderr).contains("dropped"));
    let s = e.json(&["status"]);
    let ids: Vec<&str> = s["queued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec!["4", "3", "2"],
        "priority order, the low one dropped"
    );
    let r = e.json(&["results"]);
    let dropped: Vec<&str> = r
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["status"] == "dropped")
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(dropped.len(), 2);
    assert!(
        std::fs::read_to_string(e.state().join("bgrun.log"))
            .unwrap()
            .contains("dropped task 1")
    );
}

#[test]
fn status_json_has_the_contract_fields() {
    let e = Env::new();
    assert_code(
        &e.run(&[
            "enqueue",
            "--no-drain",
            "-p",
            "42",
            "--name",
            "n1",
            "custom",
            "--",
            "true",
        ]),
        0,
    );
    let s = e.json(&["status"]);
    let q = &s["queued"][0];
    for k in [
        "id",
        "type",
        "name",
        "priority",
        "effective_priority",
        "enqueued_at",
        "trigger",
        "attempt",
    ] {
        assert!(!q[k].is_null(), "queued.{k} in {q}");
    }
    assert_eq!(q["priority"], 42);
    assert_eq!(q["trigger"], "manual");
    assert!(s["running"].is_array() && s["recent"].is_array() && s["drainers"].is_array());
    assert_code(&e.run(&["drain"]), 0);
    let s = e.json(&["status"]);
    let r = &s["recent"][0];
    for k in [
        "id",
        "type",
        "status",
        "exit_code",
        "duration_s",
        "finished_at",
        "findings",
    ] {
        assert!(!r[k].is_null(), "recent.{k} in {r}");
    }
}

#[test]
fn enqueue_starts_a_detached_drainer_and_returns_at_once() {
    let e = Env::new();
    let t = Instant::now();
    let out = e.run(&[
        "enqueue",
        "custom",
        "--",
        "sh",
        "-c",
        "sleep 3; echo done > done.txt",
    ]);
    assert_code(&out, 0);
    // Well under the task's 3 s: enqueue did not wait for it (a loaded machine can take a
    // second to start the debug binary twice).
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "returned at once: {:?}",
        t.elapsed()
    );
    wait_until(
        "the background drainer to run it",
        Duration::from_secs(10),
        || e.root().join("done.txt").exists(),
    );
    wait_until("the drainer to exit", Duration::from_secs(5), || {
        e.json(&["status"])["drainers"]
            .as_array()
            .is_some_and(|d| d.is_empty())
    });
}

#[test]
fn stop_removes_queued_and_terminates_running() {
    let e = Env::new();
    e.config(r#"{"execution": {"kill_grace_seconds": 1}}"#);
    assert_code(
        &e.run(&[
            "enqueue",
            "--no-drain",
            "-p",
            "high",
            "custom",
            "--",
            "sleep",
            "616161",
        ]),
        0,
    );
    assert_code(
        &e.run(&["enqueue", "--no-drain", "custom", "--", "echo", "later"]),
        0,
    );
    let mut d = e
        .cmd()
        .args(["drain", "--max-concurrent", "1"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("sleep to run", Duration::from_secs(10), || {
        !procs_with("sleep 616161").is_empty()
    });
    let out = e.run(&["stop", "1", "2"]);
    assert_code(&out, 0);
    let _ = d.wait();
    assert!(procs_with("sleep 616161").is_empty());
    let r = e.json(&["results"]);
    let statuses: BTreeSet<String> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, BTreeSet::from(["cancelled".to_string()]));
    assert_code(&e.run(&["stop", "99"]), 1);
}

#[test]
fn odd_argv_bytes_reach_the_task_unchanged() {
    use std::os::unix::ffi::OsStrExt;
    let e = Env::new();
    let name = std::ffi::OsStr::from_bytes(b"we\xffird name \"q\" 'x'\nline");
    let out = e
        .cmd()
        .args(["enqueue", "--no-drain", "custom", "--", "touch"])
        .arg(name)
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_code(&e.run(&["drain"]), 0);
    assert!(e.root().join(name).exists());
}

#[test]
fn retries_do_not_block_other_tasks() {
    let e = Env::new();
    e.config(
        r#"{"execution": {"max_retries": 1, "retry_delay_seconds": 2, "max_concurrent_tasks": 1}}"#,
    );
    assert_code(
        &e.run(&[
            "enqueue",
            "--no-drain",
            "-p",
            "high",
            "custom",
            "--",
            "sh",
            "-c",
            "echo x >> tries; exit 3",
        ]),
        0,
    );
    assert_code(
        &e.run(&[
            "enqueue",
            "--no-drain",
            "custom",
            "--",
            "sh",
            "-c",
            "echo ok > other",
        ]),
        0,
    );
    let out = e.run(&["drain"]);
    assert_code(&out, 1);
    let r = e.json(&["results"]);
    let by: Vec<(String, String, u64)> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["id"].as_str().unwrap().into(),
                x["status"].as_str().unwrap().into(),
                x["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    // Newest first: the retry ran last, after the other task used the delay.
    assert_eq!(by[0], ("1".into(), "failed".into(), 2));
    assert_eq!(by[1], ("2".into(), "succeeded".into(), 1));
    assert_eq!(by[2], ("1".into(), "failed".into(), 1));
    assert_eq!(
        std::fs::read_to_string(e.root().join("tries"))
            .unwrap()
            .lines()
            .count(),
        2
    );
}

#[test]
fn completions_and_man_page_are_generated() {
    let e = Env::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = e.run(&["completions", shell]);
        assert_code(&out, 0);
        assert!(text(&out.stdout).contains("enqueue"), "{shell}");
    }
    let out = e.run(&["completions", "man"]);
    assert_code(&out, 0);
    assert!(text(&out.stdout).contains(".TH bgrun"));
}

#[test]
fn init_writes_config_and_refuses_to_overwrite() {
    let e = Env::new();
    assert_code(&e.run(&["init"]), 0);
    // The team's config, committed (issue 13); .bgrun/ stays private.
    assert!(e.root().join("bgrun.json").exists());
    let excl = std::fs::read_to_string(e.root().join(".git/info/exclude")).unwrap();
    assert!(excl.contains("/.bgrun/"));
    let out = e.run(&["init"]);
    assert_code(&out, 2);
    assert!(text(&out.stderr).contains("--force"));
    assert_code(&e.run(&["config", "check"]), 0);
    assert_code(&e.run(&["init", "--force"]), 0);
    assert!(e.root().join("bgrun.json.bak").exists());
}

#[test]
fn metrics_and_cleanup_report() {
    let e = Env::new();
    e.config(r#"{"execution": {"max_retries": 0}}"#);
    assert_code(
        &e.run(&["enqueue", "--no-drain", "custom", "--", "true"]),
        0,
    );
    assert_code(
        &e.run(&["enqueue", "--no-drain", "custom", "--", "false"]),
        0,
    );
    assert_code(&e.run(&["drain"]), 1);
    let m = e.json(&["metrics"]);
    assert_eq!(m["per_type"]["custom"]["executions"], 2);
    assert_eq!(m["per_type"]["custom"]["success_rate"], 0.5);
    let c = e.json(&["cleanup"]);
    assert_eq!(c["results"], 0, "nothing is old yet");
}
