//! `bgrun run TYPE`: one task now, in the foreground, bypassing the queue; what it says is
//! `present::run`'s.

use anyhow::Result;

use crate::cli::RunArgs;
use crate::engine::{self, NewTask};
use crate::present::run as view;
use crate::state::task::Arg;
use crate::{Ctx, Exit};

pub fn run(ctx: &Ctx, a: RunArgs) -> Result<Exit> {
    let new = NewTask {
        task_type: a.task_type.clone(),
        name: None,
        argv: a.argv.iter().map(|s| Arg::from_os(s)).collect(),
        priority: None,
        timeout_s: a.timeout,
        trigger: "run".to_string(),
        context: serde_json::Value::Null,
    };
    let r = run_streaming(ctx, &new)?;
    if let Some(path) = &a.output {
        let body = view::output_body(&ctx.out, &ctx.repo, a.format, &r)?;
        crate::fsutil::write_output(path, &body)?;
    }
    view::result(&ctx.out, &r)?;
    Ok(if r.status == "succeeded" {
        Exit::Ok
    } else {
        Exit::WorkFailed
    })
}

/// Run the task, copying its output to the terminal as it is written (stdout; stderr with
/// `--json`, whose stdout is the result; nothing with `-q`). The log is kept as always.
fn run_streaming(ctx: &Ctx, new: &NewTask) -> Result<crate::results::TaskResult> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    if ctx.out.quiet() {
        return engine::run_now(ctx, new);
    }
    let done = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<std::path::PathBuf>();
    let to_stderr = ctx.out.json;
    std::thread::scope(|s| {
        let done = &done;
        let streamer = s.spawn(move || {
            let Ok(path) = rx.recv() else { return };
            let mut f = crate::tasklog::Follower::new(path, 0);
            let every = std::time::Duration::from_millis(50);
            let until = || done.load(Ordering::SeqCst);
            let _ = if to_stderr {
                f.follow_until(&mut std::io::stderr(), every, until)
            } else {
                f.follow_until(&mut std::io::stdout(), every, until)
            };
        });
        let r = engine::run_now_with(ctx, new, &mut |p| {
            let _ = tx.send(p.to_path_buf());
        });
        done.store(true, Ordering::SeqCst);
        drop(tx);
        let _ = streamer.join();
        r
    })
}
