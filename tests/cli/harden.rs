//! Hardening (issue 14): one end-to-end test per defect, each of which failed on the main
//! of before the fix: escaped grandchildren, claims made durable before a spawn, full disks,
//! hostile state dirs, file modes, scrubbed task environments.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use super::*;

/// Processes whose command line contains `token`.
fn procs_with(token: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline"))
            && String::from_utf8_lossy(&cmd)
                .replace('\0', " ")
                .contains(token)
        {
            out.push(pid);
        }
    }
    out
}

fn kill_all_with(token: &str) {
    for pid in procs_with(token) {
        // SAFETY: plain kill of a test's own leftover.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}

/// A small tmpfs mounted on a directory for the life of the value (needs root; `None`
/// when it cannot be mounted, and the test says it was skipped).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "skipped: cannot mount a tmpfs on {} (not root?)",
                dir.display()
            );
            return None;
        }
        Some(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    /// Bind-mount the file `from` onto the file `onto`.
    fn bind(from: &Path, onto: &Path) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .arg("--bind")
            .arg(from)
            .arg(onto)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs {
            dir: onto.to_path_buf(),
        })
    }

    /// Fill the file system, then free `pages` pages (4 KiB each).
    fn fill_leaving(&self, pages: u64) -> PathBuf {
        let filler = self.dir.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = [0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let len = f.metadata().unwrap().len();
        f.set_len((len / 4096).saturating_sub(pages) * 4096)
            .unwrap();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Pad the journal with a no-op line so that its size is `rem` modulo 4096.
fn pad_journal(journal: &Path, rem: u64) {
    let len = std::fs::metadata(journal).unwrap().len();
    let overhead = r#"{"op":"can","id":"0","key":""}"#.len() as u64 + 1;
    let target = (len + overhead).div_ceil(4096) * 4096 + rem;
    let target = if target < len + overhead {
        target + 4096
    } else {
        target
    };
    let pad = "z".repeat((target - len - overhead) as usize);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(journal)
        .unwrap();
    f.write_all(format!("{{\"op\":\"can\",\"id\":\"0\",\"key\":\"{pad}\"}}\n").as_bytes())
        .unwrap();
    assert_eq!(std::fs::metadata(journal).unwrap().len() % 4096, rem);
}

#[test]
fn an_escaped_grandchild_neither_freezes_the_drainer_nor_outlives_the_timeout() {
    let e = Env::new();
    e.config(
        r#"{"execution": {"max_retries": 0, "kill_grace_seconds": 1, "max_concurrent_tasks": 2}}"#,
    );
    let escape = "setsid sleep 41.3141 & sleep 600.3141";
    for (timeout, argv) in [
        ("2", vec!["bash", "-c", escape]),
        ("3", vec!["sleep", "602.3141"]),
    ] {
        let mut args = vec![
            "enqueue",
            "--no-drain",
            "--timeout",
            timeout,
            "custom",
            "--",
        ];
        args.extend(argv);
        assert_code(&e.run(&args), 0);
    }
    let t = Instant::now();
    let mut drain = e
        .cmd()
        .arg("drain")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_child(&mut drain, Duration::from_secs(20));
    let took = t.elapsed();
    let escaped_left = procs_with("41.3141");
    kill_all_with(".3141");
    assert!(
        status.is_some(),
        "the drainer froze on the escaped grandchild"
    );
    assert!(took < Duration::from_secs(10), "drain took {took:?}");
    assert!(
        escaped_left.is_empty(),
        "the escaped sleep survived its task's timeout"
    );
    let r = e.json(&["results"]);
    let rs = r.as_array().unwrap();
    assert_eq!(rs.len(), 2);
    for x in rs {
        assert_eq!(x["status"], "timed_out", "{x}");
        assert!(x["duration_s"].as_f64().unwrap() < 6.0, "{x}");
    }
}

#[test]
fn sigterm_stops_a_drainer_whose_task_has_an_escaped_grandchild() {
    let e = Env::new();
    e.config(r#"{"execution": {"max_retries": 0, "kill_grace_seconds": 1}}"#);
    assert_code(
        &e.run(&[
            "enqueue",
            "--no-drain",
            "custom",
            "--",
            "bash",
            "-c",
            "setsid sleep 43.2718 & sleep 600.2718",
        ]),
        0,
    );
    let mut drain = e
        .cmd()
        .arg("drain")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the escapee to start", Duration::from_secs(10), || {
        procs_with("43.2718").into_iter().any(|p| {
            std::fs::read(format!("/proc/{p}/cmdline")).unwrap() == b"sleep\x0043.2718\x00"
        })
    });
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(drain.id() as i32, libc::SIGTERM) };
    let status = wait_child(&mut drain, Duration::from_secs(8));
    let left = procs_with("43.2718");
    kill_all_with(".2718");
    assert!(status.is_some(), "SIGTERM did not stop the drainer");
    assert!(left.is_empty(), "the escapee outlived its cancelled task");
    assert_eq!(e.json(&["results"])[0]["status"], "cancelled");
}

#[test]
fn a_full_disk_never_spawns_a_task_whose_claim_is_not_durable() {
    let e = Env::new();
    let state = e.root().join("state");
    let Some(fs) = Tmpfs::mount(&state, "64k") else {
        return;
    };
    let sd = state.to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let mut a = vec!["--state-dir", sd.as_str()];
        a.extend_from_slice(args);
        e.run(&a)
    };
    assert_code(
        &run(&[
            "enqueue",
            "--no-drain",
            "custom",
            "--",
            "sh",
            "-c",
            "echo x >> ran.txt",
        ]),
        0,
    );
    // The journal's last page has 1 byte of room, and the disk one free page (which the
    // drainer's registration takes): the claim cannot be appended.
    pad_journal(&state.join("state.jsonl"), 4095);
    let filler = fs.fill_leaving(1);
    for _ in 0..3 {
        let out = run(&["drain"]);
        assert_exit_says(&out, 3, "state.jsonl");
    }
    assert!(
        !e.root().join("ran.txt").exists(),
        "a task ran without a durable claim: {:?}",
        std::fs::read_to_string(e.root().join("ran.txt"))
    );
    std::fs::remove_file(filler).unwrap();
    assert_code(&run(&["drain"]), 0);
    assert_eq!(
        std::fs::read_to_string(e.root().join("ran.txt")).unwrap(),
        "x\n"
    );
}

#[test]
fn a_full_disk_appends_results_whole_or_not_at_all_and_names_the_file() {
    let e = Env::new();
    let results = e.state().join("results.jsonl");
    assert_code(
        &e.run(&["enqueue", "--no-drain", "custom", "--", "true"]),
        0,
    );
    assert_code(&e.run(&["drain"]), 0);
    // results.jsonl moves onto a small tmpfs of its own (a bind mount of the file), padded
    // with valid lines so that its last page has 100 bytes of room, and that disk is full.
    let Some(fs) = Tmpfs::mount(&e.root().join("tiny"), "32k") else {
        return;
    };
    let line = std::fs::read_to_string(&results).unwrap();
    let len = line.len() as u64;
    let pad_to = 4096 - 100;
    let mut content = line.clone();
    while content.len() as u64 + 2 * len <= pad_to {
        content.push_str(&line);
    }
    let mut last = line.trim_end().to_string();
    last.insert_str(
        1,
        &" ".repeat((pad_to - content.len() as u64 - len) as usize),
    );
    content.push_str(&last);
    content.push('\n');
    assert_eq!(content.len() as u64, pad_to);
    let tiny = fs.dir.join("results.jsonl");
    std::fs::write(&tiny, &content).unwrap();
    std::fs::set_permissions(&tiny, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let Some(_bind) = Tmpfs::bind(&tiny, &results) else {
        return;
    };
    let filler = fs.fill_leaving(0);
    assert_code(
        &e.run(&["enqueue", "--no-drain", "custom", "--", "true"]),
        0,
    );
    let out = e.run(&["drain"]);
    let err = text(&out.stderr);
    let message = err
        .lines()
        .find(|l| l.contains("results.jsonl"))
        .unwrap_or_else(|| panic!("the message names the file: {err}"));
    assert!(message.contains("No space left"), "{message}");
    assert!(message.contains("kept"), "says what was kept: {message}");
    // Room again: the next result must read, and every line is whole.
    std::fs::remove_file(filler).unwrap();
    let out = e.run(&["enqueue", "--no-drain", "custom", "--", "true"]);
    assert_code(&out, 0);
    let id = text(&out.stdout).trim().to_string();
    assert_code(&e.run(&["drain"]), 0);
    let bytes = std::fs::read(&results).unwrap();
    for (i, l) in bytes.split(|b| *b == b'\n').enumerate() {
        if !l.is_empty() {
            assert!(
                serde_json::from_slice::<serde_json::Value>(l).is_ok(),
                "line {} of results.jsonl is torn: {}",
                i + 1,
                text(l)
            );
        }
    }
    let last = e.json(&["results", &id]);
    assert_eq!(last[0]["status"], "succeeded", "{last}");
}

#[test]
fn a_claim_whose_pid_never_reached_the_journal_is_found_and_killed_before_a_rerun() {
    let e = Env::new();
    e.config(r#"{"execution": {"kill_grace_seconds": 1, "max_retries": 1}}"#);
    assert_code(
        &e.run(&["enqueue", "--no-drain", "custom", "--", "true"]),
        0,
    );
    // A drainer (now dead) made its claim durable, spawned the child, and died before
    // appending the child's pid.
    let journal = e.state().join("state.jsonl");
    let text_j = std::fs::read_to_string(&journal).unwrap();
    let enq: serde_json::Value = serde_json::from_str(text_j.lines().nth(1).unwrap()).unwrap();
    let claim = serde_json::json!({"op": "clm", "id": "1", "key": enq["key"],
        "drainer": "999999-1", "at": 1.0});
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    f.write_all(format!("{claim}\n").as_bytes()).unwrap();
    drop(f);
    let mut orphan = Command::new("sleep")
        .arg("45.5151")
        .env("BGRUN_CLAIM", "999999-1/1/1")
        .spawn()
        .unwrap();
    assert_code(&e.run(&["status"]), 0);
    let gone = orphan.try_wait().unwrap().is_some() || {
        std::thread::sleep(Duration::from_millis(200));
        orphan.try_wait().unwrap().is_some()
    };
    let _ = orphan.kill();
    let _ = orphan.wait();
    assert!(gone, "the orphan of the claim was left running");
    let s = e.json(&["status"]);
    assert_eq!(
        s["queued"][0]["attempt"], 1,
        "re-queued as the next attempt: {s}"
    );
}

#[test]
fn an_existing_state_dir_is_never_chmodded_only_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let e = Env::new();
    let shared = e.root().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let sd = shared.to_str().unwrap();
    let out = e.run(&["--state-dir", sd, "status"]);
    assert_code(&out, 0);
    let mode = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o1777, "the existing dir was chmodded");
    assert!(text(&out.stderr).contains("1777"), "{}", text(&out.stderr));
    // A new one is created private.
    let fresh = e.root().join("fresh");
    assert_code(
        &e.run(&["--state-dir", fresh.to_str().unwrap(), "status"]),
        0,
    );
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn a_read_only_state_dir_is_exit_3_for_every_command() {
    let e = Env::new();
    let state = e.root().join("ro");
    std::fs::create_dir_all(&state).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,size=64k,mode=0700", "tmpfs"])
        .arg(&state)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: cannot mount a read-only tmpfs (not root?)");
        return;
    }
    let _guard = Tmpfs { dir: state.clone() };
    let sd = state.to_str().unwrap();
    for args in [
        vec!["drain"],
        vec!["status"],
        vec!["enqueue", "--no-drain", "custom", "--", "true"],
    ] {
        let mut a = vec!["--state-dir", sd];
        a.extend(args.iter().copied());
        let out = e.run(&a);
        assert_code(&out, 3);
        assert!(
            text(&out.stderr).contains(sd),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn last_cleanup_and_context_files_are_0600() {
    use std::os::unix::fs::PermissionsExt;
    let e = Env::new();
    e.config(
        r#"{"task_types": {"ctx": {"command": ["sh", "-c", "cat \"$BGRUN_CONTEXT\" > seen.json"]}},
        "triggers": {"git_hooks": {"post-commit": ["ctx"]}}}"#,
    );
    e.write("a.txt", "a");
    e.git(&["add", "a.txt"]);
    e.git(&["commit", "-qm", "a"]);
    let out = e.run(&["hook", "post-commit"]);
    assert_code(&out, 0);
    wait_until("the hook's task ran", Duration::from_secs(15), || {
        e.root().join("seen.json").exists()
            && e.json(&["results"])
                .as_array()
                .is_some_and(|a| !a.is_empty())
    });
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let reports: Vec<PathBuf> = std::fs::read_dir(e.state().join("reports"))
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .filter(|p| p.to_string_lossy().ends_with(".context.json"))
        .collect();
    assert!(!reports.is_empty());
    for p in &reports {
        assert_eq!(mode(p), 0o600, "{}", p.display());
    }
    assert_code(&e.run(&["drain"]), 0);
    let lc = e.state().join("last-cleanup");
    wait_until("last-cleanup", Duration::from_secs(5), || lc.exists());
    assert_eq!(mode(&lc), 0o600);
}

#[test]
fn bgrun_secrets_never_reach_a_task_environment() {
    let e = Env::new();
    e.config(r#"{"notifications": {"channels": {"email": {"password_env": "MY_MAIL_SECRET"}}}}"#);
    let out = e
        .cmd()
        .env("BGRUN_SMTP_PASSWORD", "hunter2-smtp")
        .env("MY_MAIL_SECRET", "hunter2-mine")
        .env("HARMLESS_VAR", "visible")
        .args(["run", "custom", "--", "sh", "-c", "env > env.txt"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let env = std::fs::read_to_string(e.root().join("env.txt")).unwrap();
    assert!(
        !env.contains("hunter2"),
        "a secret reached the task:\n{env}"
    );
    assert!(env.contains("HARMLESS_VAR=visible"));
    let out = e
        .cmd()
        .env("BGRUN_SMTP_PASSWORD", "hunter2-smtp")
        .args([
            "enqueue",
            "--no-drain",
            "custom",
            "--",
            "sh",
            "-c",
            "env > env2.txt",
        ])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let out = e
        .cmd()
        .env("BGRUN_SMTP_PASSWORD", "hunter2-smtp")
        .arg("drain")
        .output()
        .unwrap();
    assert_code(&out, 0);
    let env = std::fs::read_to_string(e.root().join("env2.txt")).unwrap();
    assert!(
        !env.contains("hunter2"),
        "a secret reached the task:\n{env}"
    );
}

#[test]
fn a_report_task_output_is_capped_in_memory_like_logs() {
    let e = Env::new();
    e.config(
        r#"{"execution": {"log_max_kb": 1024},
            "task_types": {"big": {"command": ["sh", "-c", "head -c 80000000 /dev/zero | tr '\\0' ' '; echo '{\"findings\": []}'"],
                                   "report": "findings"}}}"#,
    );
    assert_code(&e.run(&["enqueue", "--no-drain", "big"]), 0);
    let mut drain = e
        .cmd()
        .arg("drain")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = drain.id();
    let mut hwm_kb = 0u64;
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(l) = s.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kb: u64 = l.split_whitespace().nth(1).unwrap().parse().unwrap();
            hwm_kb = hwm_kb.max(kb);
        }
        if drain.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = drain.kill();
    let _ = drain.wait();
    assert!(hwm_kb < 60 * 1024, "the drainer held {hwm_kb} KiB");
    let r = e.json(&["results"]);
    assert_eq!(r[0]["status"], "failed", "{r}");
    assert!(
        r[0]["error"].as_str().unwrap().contains("log_max_kb"),
        "{r}"
    );
}

#[test]
fn enqueue_status_and_drain_agree_on_what_journal_is_valid() {
    let e = Env::new();
    for i in 0..3 {
        let cmd = format!("echo {i} >> ran.txt");
        assert_code(
            &e.run(&["enqueue", "--no-drain", "custom", "--", "sh", "-c", &cmd]),
            0,
        );
    }
    let journal = e.state().join("state.jsonl");
    let good = std::fs::read_to_string(&journal).unwrap();
    // A damaged middle line: every reader refuses it, and nothing is appended.
    let bad: Vec<String> = good
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 2 {
                l.replacen("\"priority\":", "\"priority\":XX", 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    let bad = bad.join("\n") + "\n";
    assert_ne!(bad, good);
    std::fs::write(&journal, &bad).unwrap();
    assert_code(&e.run(&["status"]), 3);
    for _ in 0..2 {
        let out = e.run(&["enqueue", "--no-drain", "custom", "--", "true"]);
        assert_exit_says(&out, 3, "line 3");
    }
    assert_code(&e.run(&["drain"]), 3);
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), bad, "untouched");
    // The same journal written with spaces: every reader accepts it.
    let spaced: String = good
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let mut s = serde_json::to_string_pretty(&v).unwrap().replace('\n', " ");
            s.push('\n');
            s
        })
        .collect();
    std::fs::write(&journal, &spaced).unwrap();
    assert_code(&e.run(&["status"]), 0);
    let out = e.run(&[
        "enqueue",
        "--no-drain",
        "custom",
        "--",
        "sh",
        "-c",
        "echo 0 >> ran.txt",
    ]);
    assert_code(&out, 0);
    assert!(
        text(&out.stdout).contains("1"),
        "a duplicate of task 1: {}",
        text(&out.stdout)
    );
    assert_code(
        &e.run(&[
            "enqueue",
            "--no-drain",
            "custom",
            "--",
            "sh",
            "-c",
            "echo 3 >> ran.txt",
        ]),
        0,
    );
    assert_code(&e.run(&["drain"]), 0);
    let ran = std::fs::read_to_string(e.root().join("ran.txt")).unwrap();
    let mut lines: Vec<&str> = ran.lines().collect();
    lines.sort();
    assert_eq!(lines, ["0", "1", "2", "3"]);
}

#[test]
fn a_journal_cut_in_the_middle_of_a_line_is_corruption_for_every_reader() {
    let e = Env::new();
    for i in 0..5 {
        let cmd = format!("echo {i} >> ran.txt");
        assert_code(
            &e.run(&["enqueue", "--no-drain", "custom", "--", "sh", "-c", &cmd]),
            0,
        );
    }
    let journal = e.state().join("state.jsonl");
    let good = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    // Line 3 loses its second half (and its newline): lines 4-6 follow it directly.
    let l3 = lines[2];
    let mut cut = lines[..2].join("\n") + "\n";
    cut.push_str(&l3[..l3.len() / 2]);
    cut.push_str(&(lines[3..].join("\n") + "\n"));
    std::fs::write(&journal, &cut).unwrap();
    assert_code(&e.run(&["status"]), 3);
    assert_code(
        &e.run(&["enqueue", "--no-drain", "custom", "--", "true"]),
        3,
    );
    assert_code(&e.run(&["drain"]), 3);
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), cut, "untouched");
    assert!(!e.root().join("ran.txt").exists());
}

/// A repository whose committed `.bgrun/` plants a queued command and symlinks pointing
/// outside, cloned as a victim would.
fn hostile_clone(outside: &Path) -> Env {
    let origin = Env::new();
    origin.write("README", "hi");
    let state = origin.state();
    std::fs::create_dir_all(&state).unwrap();
    let pwned = outside.join("pwned");
    let victim = Env::new();
    // A journal as bgrun writes it, with one queued command.
    let scratch = Env::new();
    assert_code(
        &scratch.run(&[
            "enqueue",
            "--no-drain",
            "custom",
            "--",
            "sh",
            "-c",
            &format!("id > {}", pwned.display()),
        ]),
        0,
    );
    std::fs::copy(
        scratch.state().join("state.jsonl"),
        state.join("state.jsonl"),
    )
    .unwrap();
    std::fs::write(outside.join("victim.log"), "untouched\n").unwrap();
    std::fs::create_dir_all(outside.join("logs")).unwrap();
    for (name, target) in [
        ("bgrun.log", outside.join("victim.log")),
        ("results.jsonl", outside.join("victim.log")),
        ("lock", outside.join("victim.lock")),
        ("logs", outside.join("logs")),
    ] {
        std::os::unix::fs::symlink(target, state.join(name)).unwrap();
    }
    origin.git(&["add", "-A", "-f"]);
    origin.git(&["commit", "-qm", "plant"]);
    let out = Command::new("git")
        .args(["clone", "-q"])
        .arg(origin.root())
        .arg(victim.root().join("clone"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The victim Env's repo is the clone.
    let clone = victim.root().join("clone");
    let tmp = tempfile::tempdir().unwrap();
    let moved = tmp.path().join("repo");
    std::fs::rename(&clone, &moved).unwrap();
    std::fs::remove_dir_all(victim.root()).unwrap();
    std::fs::rename(&moved, victim.root()).unwrap();
    victim
}

#[test]
fn a_cloned_state_dir_with_planted_queue_and_symlinks_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let outside = tempfile::tempdir().unwrap();
    std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let e = hostile_clone(outside.path());
    assert!(e.state().join("state.jsonl").exists());
    let user_config = outside.path().join("mine.json");
    std::fs::write(&user_config, "{}").unwrap();
    for args in [
        vec!["enqueue", "custom", "--", "echo", "x"],
        vec!["drain"],
        vec!["status"],
    ] {
        let out = e
            .cmd()
            .env("BGRUN_CONFIG", &user_config)
            .args(&args)
            .output()
            .unwrap();
        assert_code(&out, 3);
        let err = text(&out.stderr);
        assert!(
            err.contains(".bgrun") && err.contains("git"),
            "{args:?}: {err}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !outside.path().join("pwned").exists(),
        "the planted command ran"
    );
    assert_eq!(
        std::fs::read_to_string(outside.path().join("victim.log")).unwrap(),
        "untouched\n"
    );
    assert!(!outside.path().join("victim.lock").exists());
    assert_eq!(
        std::fs::read_dir(outside.path().join("logs"))
            .unwrap()
            .count(),
        0
    );
    let mode = std::fs::metadata(outside.path().join("logs"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o777, 0o700, "the outside dir was chmodded");
}

#[test]
fn symlinks_planted_in_an_own_state_dir_are_not_followed() {
    let e = Env::new();
    assert_code(&e.run(&["status"]), 0);
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim.txt");
    std::fs::write(&victim, "untouched\n").unwrap();
    // After bgrun made it, something (a `git pull` of a committed .bgrun/...) plants links.
    std::os::unix::fs::symlink(&victim, e.state().join("results.jsonl")).unwrap();
    std::os::unix::fs::symlink(&victim, e.state().join("bgrun.log")).unwrap();
    std::os::unix::fs::symlink(outside.path(), e.state().join("logs")).unwrap();
    assert_code(
        &e.run(&["enqueue", "--no-drain", "custom", "--", "echo", "x"]),
        0,
    );
    let out = e.run(&["drain"]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("symbolic link"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn webhook_credentials_in_userinfo_query_and_path_are_redacted() {
    let e = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://user:hunter2pw@127.0.0.1:{port}/path-hunter2?token=hunter2tok");
    e.config(&format!(
        r#"{{"notifications": {{"channels": {{
            "console": {{"enabled": true, "min_severity": "info"}},
            "desktop": {{"enabled": false}}, "file": {{"enabled": false}},
            "email": {{"enabled": false}},
            "webhook": {{"enabled": true, "min_severity": "info", "url": "{url}", "timeout_seconds": 1}}}}}}}}"#
    ));
    let out = e.run(&["--json", "notify", "-s", "error", "-t", "T", "-m", "M"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("127.0.0.1"), "the host is shown: {all}");
    assert!(!all.contains("hunter2"), "a credential leaked: {all}");
    let deliveries =
        std::fs::read_to_string(e.state().join("deliveries.jsonl")).unwrap_or_default();
    assert!(!deliveries.contains("hunter2"), "{deliveries}");
    let log = std::fs::read_to_string(e.state().join("bgrun.log")).unwrap_or_default();
    assert!(!log.contains("hunter2"), "{log}");
}

#[test]
fn out_of_range_numbers_are_exit_2_naming_key_and_range() {
    let e = Env::new();
    for (json, key, range) in [
        (
            r#"{"execution": {"lock_timeout_seconds": 1e20}}"#,
            "execution.lock_timeout_seconds",
            "0 to 3600",
        ),
        (
            r#"{"execution": {"kill_grace_seconds": 9223372036854775808}}"#,
            "execution.kill_grace_seconds",
            "0 to 3600",
        ),
        (
            r#"{"results": {"retention_days": 9223372036854775808}}"#,
            "results.retention_days",
            "0 to 36500",
        ),
        (
            r#"{"resource_limits": {"max_memory_mb": 17592186044416}}"#,
            "resource_limits.max_memory_mb",
            "1 to 16777216",
        ),
        (
            r#"{"execution": {"log_max_kb": 18014398509481984}}"#,
            "execution.log_max_kb",
            "1 to 1048576",
        ),
        (
            r#"{"execution": {"task_timeout_seconds": 0}}"#,
            "execution.task_timeout_seconds",
            "1 to 604800",
        ),
    ] {
        e.config(json);
        for args in [
            vec!["config", "check"],
            vec!["enqueue", "--no-drain", "custom", "--", "true"],
            vec!["stop", "--all"],
        ] {
            let out = e.run(&args);
            assert_code(&out, 2);
            let err = text(&out.stderr);
            assert!(
                err.contains(key) && err.contains(range),
                "{args:?} {json}: {err}"
            );
        }
    }
}

#[test]
fn config_smaller_checks_bom_duplicates_near_keys_never_firing_cron_and_strict() {
    let e = Env::new();
    std::fs::create_dir_all(e.state()).unwrap();
    let json = "\u{feff}{\"execution\": {\"max_concurent_tasks\": 3, \"kill_grace_seconds\": 2, \"kill_grace_seconds\": 3},
        \"triggers\": {\"scheduled\": {\"enabled\": true, \"tasks\": [
            {\"name\": \"feb31\", \"task_type\": \"code_analysis\", \"schedule\": \"0 0 31 2 *\"}]}}}";
    std::fs::write(e.state().join("config.json"), json).unwrap();
    let out = e.run(&["config", "check"]);
    assert_code(&out, 0);
    let err = text(&out.stderr);
    assert!(err.contains("did you mean `max_concurrent_tasks`"), "{err}");
    assert!(
        err.contains("kill_grace_seconds: the key appears more than once"),
        "{err}"
    );
    assert!(err.contains("never fires"), "{err}");
    let out = e.run(&["config", "check", "--strict"]);
    assert_code(&out, 2);
    assert!(text(&out.stderr).contains("max_concurent_tasks"));
    let v = e.json(&["config", "check"]);
    assert_eq!(
        v["config"]["execution"]["kill_grace_seconds"], 3,
        "the last value is taken"
    );
}

#[test]
fn a_committed_config_with_commands_runs_only_once_trusted() {
    let e = Env::new();
    let data = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let pwned = outside.path().join("pwned");
    let config = |marker: &str| {
        format!(
            r#"{{"task_types": {{"mark": {{"command": ["sh", "-c", "echo {marker} >> {}"],
                                         "auto_trigger": {{"interval_minutes": 1}}}}}},
                "triggers": {{"git_hooks": {{"post-commit": ["mark"]}}}}}}"#,
            pwned.display()
        )
    };
    e.write(".claude/config/background-tasks.json", &config("one"));
    e.git(&["add", "-A"]);
    e.git(&["commit", "-qm", "config"]);
    let run = |args: &[&str]| e.run_with(&[("BGRUN_DATA_DIR", data.path())], args);
    // Manual commands ask for trust; triggers record and notify, and run nothing.
    let out = run(&["enqueue", "--no-drain", "mark"]);
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.contains("bgrun config diff") && err.contains("--trust-once"),
        "{err}"
    );
    assert_code(&run(&["hook", "post-commit"]), 0);
    let out = run(&["tick"]);
    assert_code(&out, 0);
    assert!(
        text(&out.stderr)
            .contains("config changed: review with bgrun config diff, then bgrun trust")
    );
    assert_code(&run(&["watch", "--poll", "--once"]), 0);
    std::thread::sleep(Duration::from_millis(500));
    let log = std::fs::read_to_string(e.state().join("bgrun.log")).unwrap_or_default();
    assert!(log.contains("post-commit hook: nothing run"), "{log}");
    assert!(log.contains("tick: nothing run"), "{log}");
    let s = e.json(&["status"]);
    assert_eq!(s["queued"].as_array().map(Vec::len), Some(0), "{s}");
    assert!(!pwned.exists(), "an untrusted command ran");
    assert!(text(&run(&["trust", "--show"]).stdout).contains("not trusted"));
    assert!(text(&run(&["config", "diff"]).stdout).contains("+ "));
    // Approved: it runs.
    assert_code(&run(&["trust"]), 0);
    assert!(text(&run(&["trust", "--show"]).stdout).contains(": trusted"));
    assert_code(&run(&["enqueue", "--no-drain", "mark"]), 0);
    assert_code(&run(&["drain"]), 0);
    assert_eq!(std::fs::read_to_string(&pwned).unwrap(), "one\n");
    // A changed config (a hostile pull) is refused again, and the diff shows the change.
    e.write(".claude/config/background-tasks.json", &config("two"));
    assert_code(&run(&["enqueue", "--no-drain", "mark"]), 2);
    let diff = text(&run(&["config", "diff"]).stdout);
    assert!(diff.contains("- ") && diff.contains("echo two"), "{diff}");
    assert_code(&run(&["--trust-once", "enqueue", "--no-drain", "mark"]), 0);
    assert_code(&run(&["drain"]), 0);
    assert_eq!(std::fs::read_to_string(&pwned).unwrap(), "one\ntwo\n");
    assert_code(&run(&["trust"]), 0);
    assert_code(&run(&["untrust"]), 0);
    assert_code(&run(&["enqueue", "--no-drain", "mark"]), 2);
    // The user's own config (--config) needs no trust.
    let own = outside.path().join("own.json");
    std::fs::write(&own, config("own")).unwrap();
    assert_code(
        &run(&[
            "--config",
            own.to_str().unwrap(),
            "enqueue",
            "--no-drain",
            "mark",
        ]),
        0,
    );
}

#[test]
fn analyze_in_an_untrusted_repo_never_runs_its_planted_tools() {
    let e = Env::new();
    let data = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let marker = outside.path().join("planted-ran");
    e.write("pyproject.toml", "[project]\nname = \"x\"\n");
    e.write("a.py", "x = 1\n");
    for dir in [".venv/bin", "node_modules/.bin"] {
        for tool in ["ruff", "pylint", "radon", "bandit", "eslint"] {
            let p = e.root().join(dir).join(tool);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(
                &p,
                format!(
                    "#!/bin/sh\necho {tool} >> {}\necho '[]'\n",
                    marker.display()
                ),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    e.config(
        r#"{"analysis": {"disabled_tools": ["pip-audit", "pytest", "unittest"],
            "tools": {"ruff": {"source": "project"}, "pylint": {"source": "project"},
                      "radon": {"source": "project"}, "bandit": {"source": "project"},
                      "eslint": {"source": "project"}}}}"#,
    );
    let analyze = || {
        e.cmd()
            .env("BGRUN_DATA_DIR", data.path())
            .env("BGRUN_NO_INSTALL", "1")
            .args(["analyze", "code", "--format", "json", "--output"])
            .arg(e.root().join("r.json"))
            .output()
            .unwrap()
    };
    let out = analyze();
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !marker.exists(),
        "a planted tool ran: {:?}",
        std::fs::read_to_string(&marker)
    );
    // Once the user trusts the repository, its own tools are used (as before).
    let out = e
        .cmd()
        .env("BGRUN_DATA_DIR", data.path())
        .arg("trust")
        .output()
        .unwrap();
    assert_code(&out, 0);
    let _ = analyze();
    assert!(marker.exists(), "the trusted repository's own tools run");
}

#[test]
fn a_committed_personal_config_is_not_trusted_with_the_state_dir_elsewhere() {
    let e = Env::new();
    let data = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    e.config(r#"{"task_types": {"mark": {"command": ["sh", "-c", "echo ran > ran.txt"]}}}"#);
    e.git(&["add", "-f", ".bgrun/config.json"]);
    e.git(&["commit", "-qm", "a committed personal config"]);
    let sd = elsewhere.path().join("state");
    let out = e
        .cmd()
        .env("BGRUN_DATA_DIR", data.path())
        .args([
            "--state-dir",
            sd.to_str().unwrap(),
            "enqueue",
            "--no-drain",
            "mark",
        ])
        .output()
        .unwrap();
    assert_exit_says(&out, 2, "bgrun config diff");
}

/// A config written by `bgrun init` on this machine is trusted from the start; an edit of it
/// (a pull, or your own) needs `bgrun trust` again before its commands run.
#[test]
fn a_config_written_by_init_is_trusted_until_it_changes() {
    let e = Env::new();
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| e.run_with(&[("BGRUN_DATA_DIR", data.path())], args);
    assert_code(&run(&["init"]), 0);
    e.git(&["add", "bgrun.json"]);
    e.git(&["commit", "-qm", "bgrun config"]);
    let out = run(&["trust", "--show"]);
    assert_code(&out, 0);
    assert!(
        text(&out.stdout).contains("bgrun.json: trusted (sha256"),
        "{}",
        text(&out.stdout)
    );
    // Add a command: the committed config changed, so it is not run until trusted again.
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(e.root().join("bgrun.json")).unwrap())
            .unwrap();
    cfg["task_types"]["mark"] = serde_json::json!({"command": ["true"]});
    e.write("bgrun.json", &cfg.to_string());
    e.git(&["commit", "-qam", "a command"]);
    let out = run(&["trust", "--show"]);
    assert!(
        text(&out.stdout).contains("changed since trusted"),
        "{}",
        text(&out.stdout)
    );
    assert_code(&run(&["enqueue", "--no-drain", "mark"]), 2);
    assert_code(&run(&["trust"]), 0);
    assert_code(&run(&["enqueue", "--no-drain", "mark"]), 0);
}

/// `trust --show --json` prints one JSON object and trusts nothing.
#[test]
fn trust_show_json_is_one_object_and_changes_nothing() {
    let e = Env::new();
    let data = tempfile::tempdir().unwrap();
    e.write(
        "bgrun.json",
        r#"{"task_types": {"mark": {"command": ["true"]}}}"#,
    );
    e.git(&["add", "-A"]);
    e.git(&["commit", "-qm", "config"]);
    let run = |args: &[&str]| e.run_with(&[("BGRUN_DATA_DIR", data.path())], args);
    let out = run(&["--json", "trust", "--show"]);
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["state"], "not trusted");
    assert_eq!(v["repo_tools_trusted"], false);
    // Still untrusted: --show approved nothing.
    assert_code(&run(&["enqueue", "--no-drain", "mark"]), 2);
}
