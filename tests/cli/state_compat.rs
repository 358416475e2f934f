//! The checked-in v1 state files (fixtures/state/v1) work with this binary: status,
//! results and metrics read them, the orphan in them is recovered, and new tasks follow.

use super::*;

fn with_v1_state() -> Env {
    let e = Env::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/state/v1");
    std::fs::create_dir_all(e.state()).expect("mkdir");
    for f in ["state.jsonl", "results.jsonl", "metrics.jsonl"] {
        std::fs::copy(src.join(f), e.state().join(f)).expect("copy fixture");
    }
    e
}

#[test]
fn v1_state_files_load_and_the_queue_goes_on() {
    let e = with_v1_state();
    let s = e.json(&["status"]);
    let mut queued: Vec<(String, u64)> = s["queued"]
        .as_array()
        .expect("queued")
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    queued.sort();
    // 4 and 5 were queued; 9's drainer died (kill -9): recovered as its second attempt.
    let want: Vec<(String, u64)> = vec![("4".into(), 0), ("5".into(), 0), ("9".into(), 1)];
    assert_eq!(queued, want);
    assert_eq!(s["running"].as_array().map(Vec::len), Some(0));
    assert_eq!(s["metrics"]["executions"], 6);

    let results = e.json(&["results", "--last", "50"]);
    let statuses: Vec<&str> = results
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "succeeded",
            "cancelled",
            "dropped",
            "failed",
            "failed",
            "succeeded"
        ]
    );
    assert_code(&e.run(&["metrics"]), 0);

    // The sequence goes on after the old one; duplicates of old tasks are recognised.
    let out = e.run(&["enqueue", "--no-drain", "custom", "--", "true"]);
    assert_code(&out, 0);
    // (seq 10 went to the recovered task 9.)
    assert_eq!(text(&out.stdout).trim(), "11");
    let out = e.run(&["enqueue", "--no-drain", "code_analysis"]);
    assert_code(&out, 0);
    assert!(
        text(&out.stdout).contains('5') || text(&out.stderr).contains('5'),
        "a duplicate of queued task 5: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}
