//! The suite's crash-and-concurrency and config-fuzz tests (issue 14): 20 writers, 2
//! drainers, 30 random `kill -9`, 2,000 tasks, then 0 lost and 0 same-attempt duplicates;
//! mutated configs through the binary give exit 0 or 2 only, never a panic or a hang.

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

/// A small xorshift generator: the seed is printed so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("BGRUN_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("seed {seed} (set BGRUN_TEST_SEED to replay)");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn twenty_writers_two_drainers_thirty_kill_9_lose_nothing_and_never_run_an_attempt_twice() {
    const WRITERS: usize = 20;
    const PER_WRITER: usize = 100;
    const KILLS: usize = 30;
    let e = Env::new();
    e.config(
        r#"{"execution": {"max_concurrent_tasks": 4, "max_retries": 50, "kill_grace_seconds": 1,
                          "max_queue_size": 100000, "lock_timeout_seconds": 120},
            "notifications": {"channels": {"console": {"enabled": false}, "desktop": {"enabled": false},
                                           "file": {"enabled": false}}}}"#,
    );
    let runs = e.root().join("runs.txt");
    let script = format!(
        "echo \"$BGRUN_TASK_ID $BGRUN_ATTEMPT\" >> '{}'",
        runs.display()
    );
    let started = Instant::now();
    let writers_done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let root = e.root().to_path_buf();
            let script = script.clone();
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for i in 0..PER_WRITER {
                    let out = Command::new(bin())
                        .current_dir(&root)
                        .env_remove("BGRUN_CONFIG")
                        .env_remove("BGRUN_STATE_DIR")
                        .args(["enqueue", "--no-drain", "custom", "--", "sh", "-c", &script])
                        .arg(format!("w{w}-{i}"))
                        .output()
                        .expect("enqueue");
                    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
                    ids.push(text(&out.stdout).trim().to_string());
                }
                ids
            })
        })
        .collect();
    let mut rng = Rng::seeded();
    let spawn_drainer = || -> Child {
        e.cmd()
            .arg("drain")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("drain")
    };
    let mut drainers: Vec<Child> = vec![spawn_drainer(), spawn_drainer()];
    let mut kills = 0;
    while kills < KILLS {
        std::thread::sleep(Duration::from_millis(50 + rng.below(250)));
        let i = rng.below(2) as usize;
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(drainers[i].id() as i32, libc::SIGKILL) };
        let _ = drainers[i].wait();
        kills += 1;
        drainers[i] = spawn_drainer();
        // A drainer whose queue ran dry exits: keep two alive.
        for d in drainers.iter_mut() {
            if d.try_wait().ok().flatten().is_some() {
                *d = spawn_drainer();
            }
        }
    }
    let ids: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("writer"))
        .collect();
    writers_done.store(true, Ordering::SeqCst);
    let enqueued = ids.len();
    assert_eq!(enqueued, WRITERS * PER_WRITER);
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), enqueued, "every enqueue got its own id");
    for mut d in drainers {
        let _ = d.wait();
    }
    // Whatever is left (orphans of the killed drainers included) is finished by a last drain.
    wait_until("the queue to empty", Duration::from_secs(120), || {
        let out = e.run(&["drain"]);
        assert!(
            matches!(out.status.code(), Some(0) | Some(1)),
            "{}",
            text(&out.stderr)
        );
        let s = e.json(&["status"]);
        s["queued"].as_array().is_some_and(|q| q.is_empty())
            && s["running"].as_array().is_some_and(|r| r.is_empty())
    });
    let results = e.json(&["results", "--last", "100000"]);
    let mut final_ok: HashMap<String, u64> = HashMap::new();
    for r in results.as_array().expect("results") {
        if r["status"] == "succeeded" {
            *final_ok
                .entry(r["id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    let lost: Vec<&String> = ids
        .iter()
        .filter(|id| !final_ok.contains_key(*id))
        .collect();
    if !lost.is_empty() {
        let of_lost: Vec<String> = results
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["id"] == lost[0].as_str())
            .map(|r| format!("{} {} {}", r["status"], r["attempt"], r["error"]))
            .collect();
        let log = std::fs::read_to_string(e.state().join("bgrun.log")).unwrap_or_default();
        let mentions: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("task {} ", lost[0])))
            .collect();
        let ran: Vec<String> = std::fs::read_to_string(&runs)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(&format!("{} ", lost[0])))
            .map(String::from)
            .collect();
        let _ = Command::new("cp")
            .args(["-a"])
            .arg(e.state())
            .arg("/tmp/h14-crash-state")
            .status();
        panic!(
            "{} tasks lost: {:?}; runs {ran:?}; results of {}: {of_lost:?}; log: {mentions:?}",
            lost.len(),
            &lost[..lost.len().min(20)],
            lost[0]
        );
    }
    // A task may have run again only as a later attempt (an interrupted one); the same
    // attempt never has two results.
    let mut attempts: HashMap<(String, u64), u32> = HashMap::new();
    for r in results.as_array().unwrap() {
        let k = (
            r["id"].as_str().unwrap().to_string(),
            r["attempt"].as_u64().unwrap(),
        );
        *attempts.entry(k).or_default() += 1;
    }
    let twice: Vec<_> = attempts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "the same attempt has two results: {twice:?}"
    );
    let text_runs = std::fs::read_to_string(&runs).unwrap();
    let mut seen: HashMap<&str, u32> = HashMap::new();
    for line in text_runs.lines() {
        *seen.entry(line).or_default() += 1;
    }
    let dup: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dup.is_empty(), "the same attempt ran twice: {dup:?}");
    eprintln!(
        "{enqueued} tasks, {} executions, {KILLS} kill -9, in {:?}",
        seen.len(),
        started.elapsed()
    );
}

fn hostile(rng: &mut Rng) -> serde_json::Value {
    use serde_json::json;
    let pool = [
        serde_json::Value::Null,
        json!(true),
        json!(-1),
        json!(0),
        json!(1e20),
        json!(1.7e308),
        json!(9_223_372_036_854_775_808u64),
        json!(u64::MAX),
        json!(""),
        json!("x".repeat(3000)),
        json!("0 0 31 2 *"),
        json!("ünïcødé ☃"),
        json!([]),
        json!([1, "a", null]),
        json!({}),
        json!(["sh", "-c", "true"]),
        json!("critical"),
    ];
    pool[rng.below(pool.len() as u64) as usize].clone()
}

fn mutate(v: &mut serde_json::Value, rng: &mut Rng, depth: usize) {
    match v {
        serde_json::Value::Object(m) if !m.is_empty() && depth < 4 && rng.below(3) > 0 => {
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = keys[rng.below(keys.len() as u64) as usize].clone();
            match rng.below(10) {
                0 => {
                    m.remove(&k);
                }
                1 => {
                    m.insert(format!("{k}x"), hostile(rng));
                }
                _ => {
                    if let Some(x) = m.get_mut(&k) {
                        mutate(x, rng, depth + 1);
                    }
                }
            }
        }
        _ => *v = hostile(rng),
    }
}

/// Run with a bound; a hang is a failure.
fn run_bounded(e: &Env, args: &[&str]) -> std::process::Output {
    let mut child = e
        .cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("bgrun {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn mutated_configs_through_the_binary_exit_0_or_2_never_panic_or_hang() {
    let e = Env::new();
    let base = e.json(&["config", "check"])["config"].clone();
    let mut rng = Rng::seeded();
    let mut codes: HashMap<i32, usize> = HashMap::new();
    for i in 0..150 {
        let mut v = base.clone();
        for _ in 0..=rng.below(3) {
            mutate(&mut v, &mut rng, 0);
        }
        let cfg = serde_json::to_string(&v).unwrap();
        e.config(&cfg);
        for args in [
            vec!["config", "check"],
            vec![
                "enqueue",
                "--no-drain",
                "custom",
                "--",
                "true",
                &format!("{i}"),
            ],
        ] {
            let out = run_bounded(&e, &args);
            let code = out.status.code().unwrap_or(-1);
            let err = text(&out.stderr);
            assert!(
                matches!(code, 0 | 2) && !err.contains("panicked"),
                "{args:?} exit {code} on config {cfg}: {err}"
            );
            *codes.entry(code).or_default() += 1;
        }
    }
    eprintln!("exit codes: {codes:?}");
}
