//! Cron with the real `crontab`, always against a throwaway user this test creates
//! (`useradd`, `crontab -u USER` through BGRUN_CRONTAB_USER), never the caller's crontab.
//! Needs root (CI runs as root); without it the crontab tests say so and pass.
//! One slow test starts the real cron daemon and waits for the block to fire `tick`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::{Env, TempUser, assert_code, is_root, text, wait_until};

/// The user's crontab, read and written with `crontab -u`.
trait Crontab {
    fn crontab(&self) -> Vec<u8>;
    fn set_crontab(&self, bytes: &[u8]);
}

impl Crontab for TempUser {
    fn crontab(&self) -> Vec<u8> {
        let out = Command::new("crontab")
            .args(["-u", &self.name, "-l"])
            .output()
            .expect("crontab -l");
        if out.status.success() {
            out.stdout
        } else {
            Vec::new()
        }
    }

    fn set_crontab(&self, bytes: &[u8]) {
        let mut c = Command::new("crontab")
            .args(["-u", &self.name, "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("crontab -");
        use std::io::Write;
        c.stdin
            .take()
            .expect("stdin")
            .write_all(bytes)
            .expect("write");
        assert!(c.wait().expect("wait").success());
    }
}

fn bgrun(e: &Env, user: &TempUser, args: &[&str]) -> Output {
    e.cmd()
        .env("BGRUN_CRONTAB_USER", &user.name)
        .args(args)
        .output()
        .expect("bgrun")
}

const SCHEDULES: &str = r#"{"task_types": {"security_scan": {"auto_trigger": {"interval_minutes": 45}}},
    "triggers": {"scheduled": {"tasks": [
        {"name": "nightly", "task_type": "security_scan", "schedule": "30 2 * * mon-fri"},
        {"name": "boot", "task_type": "code_analysis", "schedule": "@reboot"}]}}}"#;

#[test]
fn install_and_uninstall_keep_every_other_line() {
    if !is_root() {
        eprintln!("skipped: needs root to create a throwaway user for crontab -u");
        return;
    }
    let u = TempUser::new("bgrt");
    let e = Env::new();
    e.config(SCHEDULES);
    let before = b"MAILTO=\"\"\n# my own job, 100% mine\n0 5 * * * echo 'hi'   \n".to_vec();
    u.set_crontab(&before);

    let r = bgrun(&e, &u, &["cron", "install"]);
    assert_code(&r, 0);
    let tab = u.crontab();
    assert!(tab.starts_with(&before), "{}", text(&tab));
    let t = text(&tab);
    assert!(t.contains("# >>> bgrun schedules for "), "{t}");
    assert!(t.contains("30 2 * * 1-5 PATH="), "{t}");
    assert!(t.contains("@reboot PATH="), "{t}");
    assert!(
        t.contains("* * * * * PATH="),
        "45 min wakes every minute: {t}"
    );
    assert!(t.contains("' 'tick' >>'"), "{t}");

    // Lines added after the block survive a re-install and the uninstall.
    let after = b"# after the block\n15 * * * * true\n";
    let mut with_after = tab.clone();
    with_after.extend_from_slice(after);
    u.set_crontab(&with_after);
    let r = bgrun(&e, &u, &["cron", "install"]);
    assert_code(&r, 0);
    assert!(text(&r.stdout).contains("already up to date"));
    assert_eq!(u.crontab(), with_after);

    let list = e
        .cmd()
        .env("BGRUN_CRONTAB_USER", &u.name)
        .args(["--json", "cron", "list"])
        .output()
        .expect("list");
    assert_code(&list, 0);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(v["crontab"], "installed");
    let items = v["schedules"].as_array().expect("schedules");
    assert_eq!(items.len(), 3);
    assert!(
        items
            .iter()
            .any(|s| s["key"] == "schedule:boot" && s["next"].is_null())
    );
    assert!(
        items
            .iter()
            .all(|s| s["key"] == "schedule:boot" || s["next"].is_string())
    );

    assert_code(&bgrun(&e, &u, &["cron", "uninstall"]), 0);
    let mut expect = before.clone();
    expect.extend_from_slice(after);
    assert_eq!(text(&u.crontab()), text(&expect));
}

#[test]
fn bad_expression_is_exit_2_naming_task_and_field_and_changes_nothing() {
    if !is_root() {
        eprintln!("skipped: needs root to create a throwaway user for crontab -u");
        return;
    }
    let u = TempUser::new("bgrt");
    let e = Env::new();
    u.set_crontab(b"1 1 * * * true\n");
    e.config(
        r#"{"triggers": {"scheduled": {"tasks": [
            {"name": "late", "task_type": "security_scan", "schedule": "0 24 * * *"}]}}}"#,
    );
    let r = bgrun(&e, &u, &["cron", "install"]);
    assert_code(&r, 2);
    let err = text(&r.stderr);
    assert!(
        err.contains("\"late\"") && err.contains("hour field"),
        "{err}"
    );
    assert_eq!(u.crontab(), b"1 1 * * * true\n".to_vec());
    let r = bgrun(&e, &u, &["tick"]);
    assert_code(&r, 2);
}

#[test]
fn tick_fires_each_due_time_once() {
    let e = Env::new();
    let out = e.root().join("fired");
    e.config(&format!(
        r#"{{"task_types": {{"mark": {{"command": ["sh", "-c", "echo x >> \"$0\"", "{}"], "max_retries": 0}}}},
            "triggers": {{"scheduled": {{"tasks": [
                {{"name": "minutely", "task_type": "mark", "schedule": "* * * * *"}}]}}}}}}"#,
        out.display()
    ));
    let first = e.run(&["tick"]);
    assert_code(&first, 0);
    assert!(text(&first.stdout).contains("schedule:minutely: queued mark"));
    // Overlapping ticks right after: nothing more is due.
    let ticks: Vec<_> = (0..3)
        .map(|_| e.cmd().arg("tick").spawn().expect("tick"))
        .collect();
    for mut t in ticks {
        assert!(t.wait().expect("wait").success());
    }
    // The task writes its file before its drainer records the result: wait for the result.
    wait_until("the task ran", Duration::from_secs(30), || {
        out.exists()
            && e.json(&["results"])
                .as_array()
                .is_some_and(|a| !a.is_empty())
    });
    let results = e.json(&["results"]);
    let n = results
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["trigger"] == "schedule:minutely")
                .count()
        })
        .unwrap_or_else(|| panic!("results: {results}"));
    assert_eq!(n, 1, "{results}");
    let book: serde_json::Value =
        serde_json::from_slice(&std::fs::read(e.state().join("schedule.json")).expect("book"))
            .expect("json");
    assert!(book["last"]["schedule:minutely"].is_i64());
}

/// The cron daemon: already running (its pid file names a live process), or started here
/// in the foreground and stopped on drop.
struct Daemon(Option<std::process::Child>);

impl Daemon {
    fn ensure() -> Daemon {
        let pidfile = Path::new("/run/crond.pid");
        if let Ok(s) = std::fs::read_to_string(pidfile) {
            let pid = s.trim();
            if !pid.is_empty() && Path::new(&format!("/proc/{pid}")).exists() {
                return Daemon(None);
            }
            let _ = std::fs::remove_file(pidfile);
        }
        let child = Command::new("cron")
            .arg("-f")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start cron -f (apt install cron)");
        Daemon(Some(child))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
            let _ = std::fs::remove_file("/run/crond.pid");
        }
    }
}

/// Slow (up to about 70 s): the real daemon runs the installed `* * * * *` line.
#[test]
fn slow_real_cron_daemon_fires_tick_within_70s() {
    if !is_root() {
        eprintln!("skipped: needs root to create a user and run the cron daemon");
        return;
    }
    let u = TempUser::new("bgrt");
    let e = Env::new();
    let fired = e.root().join("fired");
    e.config(&format!(
        r#"{{"task_types": {{"mark": {{"command": ["sh", "-c", "id -un > \"$0\"", "{}"], "max_retries": 0,
                                     "auto_trigger": {{"interval_minutes": 1}}}}}},
            "triggers": {{"scheduled": {{"enabled": false, "tasks": []}}}}}}"#,
        fired.display()
    ));
    // The job runs as the throwaway user: give it the project.
    let st = Command::new("chown")
        .args(["-R", &u.name])
        .arg(e.root())
        .status()
        .expect("chown");
    assert!(st.success());
    std::fs::set_permissions(e.root(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let r = bgrun(&e, &u, &["cron", "install"]);
    assert_code(&r, 0);
    assert!(text(&u.crontab()).contains("* * * * * PATH="));
    let _daemon = Daemon::ensure();
    let book = e.state().join("schedule.json");
    wait_until("cron to run `bgrun tick`", Duration::from_secs(70), || {
        book.exists()
    });
    wait_until("the scheduled task to run", Duration::from_secs(30), || {
        std::fs::read_to_string(&fired).is_ok_and(|s| s.trim() == u.name)
    });
    let log = std::fs::read_to_string(e.state().join("bgrun.log")).unwrap_or_default();
    assert!(log.contains("tick: interval:mark: queued mark"), "{log}");
}
