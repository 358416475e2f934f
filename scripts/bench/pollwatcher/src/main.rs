//! The baseline of scripts/bench/watch: the `notify` crate's PollWatcher on the same tree.
//!
//! Usage: pollwatcher-bench DIR [POLLS] [--compare-contents]
//!
//! Watches every top-level entry of DIR except `.git` and `.bgrun` (PollWatcher has no
//! pruning: it scans everything it is given, as a user of it would), then runs POLLS
//! manual polls of the unchanged tree. A poll runs on notify's own thread; its end is seen
//! by `unwatch` of a path never watched, which waits for the lock the poll holds. Prints
//! one line per poll, `cpu_ms wall_ms`, then `median_cpu_ms median_wall_ms`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use notify::{Config, PollWatcher, RecursiveMode, Watcher};

fn cpu_ms() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1).map(PathBuf::from) else {
        eprintln!("usage: pollwatcher-bench DIR [POLLS] [--compare-contents]");
        std::process::exit(2);
    };
    let polls: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let compare = args.iter().any(|a| a == "--compare-contents");
    let config = Config::default()
        .with_manual_polling()
        .with_compare_contents(compare);
    let mut w = PollWatcher::new(|_res| {}, config).expect("PollWatcher");
    let entries = std::fs::read_dir(&dir).expect("read dir");
    let t = Instant::now();
    for e in entries.flatten() {
        let name = e.file_name();
        if name == ".git" || name == ".bgrun" {
            continue;
        }
        w.watch(&e.path(), RecursiveMode::Recursive).expect("watch");
    }
    eprintln!("initial scan: {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
    let never = dir.join(".never-watched");
    let (mut cpus, mut walls) = (Vec::new(), Vec::new());
    for _ in 0..polls {
        let (c0, t0) = (cpu_ms(), Instant::now());
        w.poll().expect("poll");
        // Let notify's thread wake and take its lock, then wait for it to let go.
        std::thread::sleep(Duration::from_millis(5));
        let _ = w.unwatch(&never);
        let (cpu, wall) = (cpu_ms() - c0, t0.elapsed().as_secs_f64() * 1e3);
        println!("{cpu:.1} {wall:.1}");
        cpus.push(cpu);
        walls.push(wall);
    }
    println!("{:.1} {:.1}", median(cpus), median(walls));
}
