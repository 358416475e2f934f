//! The house keeping of issue 11: output to a closed pipe, colours, git through `git`.

use super::*;
use std::process::Stdio;

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
