//! The core: config, queue, pool, state safety.

use super::*;

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
}
