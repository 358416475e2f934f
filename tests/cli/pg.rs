//! The shared PostgreSQL store, end to end against a real PostgreSQL 15 that each test
//! starts itself (`initdb` + `pg_ctl` in a temp dir, on a free loopback port, as a throwaway
//! system user when run as root) and stops on drop, even when the test panics. Without the
//! server binaries the tests skip loudly, unless `BGRUN_TEST_TOOLS` is set (scripts/test,
//! CI): then they must run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Env, assert_code, text, wait_until};

// ---------------------------------------------------------------- the server

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn required() -> bool {
    std::env::var_os("BGRUN_TEST_TOOLS").is_some()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A throwaway system user to run the server as (PostgreSQL refuses to run as root).
struct PgUser {
    name: String,
}

impl PgUser {
    fn create() -> PgUser {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "bgpg{}x{}",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("useradd")
            .args(["-M", "-s", "/bin/sh", &name])
            .output()
            .expect("useradd");
        assert!(out.status.success(), "useradd: {}", text(&out.stderr));
        PgUser { name }
    }
}

impl Drop for PgUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// A running PostgreSQL in a temp dir; stopped (immediate) when dropped.
pub struct Pg {
    dir: tempfile::TempDir,
    pub port: u16,
    user: Option<PgUser>,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Pg {
    /// Start a server, or `None` (after saying so) when PostgreSQL is not installed.
    pub fn start() -> Option<Pg> {
        if !Path::new(PG_BIN).join("initdb").is_file() {
            assert!(
                !required(),
                "BGRUN_TEST_TOOLS is set but PostgreSQL 15 is not installed under {PG_BIN} \
                 (scripts/deps/apt-store.txt: postgresql)"
            );
            eprintln!("\n*** SKIPPED: PostgreSQL 15 is not installed ({PG_BIN}) ***\n");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("bgrun-pg")
            .tempdir()
            .expect("tempdir");
        let user = is_root().then(PgUser::create);
        if let Some(u) = &user {
            let out = Command::new("chown")
                .args(["-R", &u.name])
                .arg(dir.path())
                .output()
                .expect("chown");
            assert!(out.status.success(), "chown: {}", text(&out.stderr));
        }
        let pg = Pg {
            dir,
            port: free_port(),
            user,
        };
        let out = pg
            .tool("initdb")
            .args(["-A", "trust", "-U", "bgrun", "-E", "UTF8", "--no-sync", "-D"])
            .arg(pg.data())
            .output()
            .expect("initdb");
        assert!(out.status.success(), "initdb: {}", text(&out.stderr));
        pg.start_server();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A server binary, run as the server's user.
    fn tool(&self, name: &str) -> Command {
        let exe = Path::new(PG_BIN).join(name);
        match &self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", &u.name, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    /// `pg_ctl start`, waiting until it accepts connections.
    pub fn start_server(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} \
             -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .tool("pg_ctl")
            .args(["-w", "-t", "60", "-s", "-D"])
            .arg(self.data())
            .args(["-l"])
            .arg(self.dir.path().join("server.log"))
            .args(["-o", &opts, "start"])
            .output()
            .expect("pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            text(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    /// `pg_ctl stop -m fast` (what a database restart looks like to clients).
    pub fn stop_server(&self) {
        let _ = self
            .tool("pg_ctl")
            .args(["-w", "-s", "-m", "fast", "-D"])
            .arg(self.data())
            .arg("stop")
            .output();
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://bgrun@127.0.0.1:{}/postgres?connect_timeout=5",
            self.port
        )
    }

    /// Run SQL through psql and return its unaligned output.
    pub fn sql(&self, q: &str) -> String {
        let out = Command::new(Path::new(PG_BIN).join("psql"))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url())
            .args(["-c", q])
            .output()
            .expect("psql");
        assert!(out.status.success(), "psql {q}: {}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .args(["-w", "-s", "-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop")
            .output();
    }
}

// ---------------------------------------------------------------- helpers

/// A "host": its own project dir, state dir and host name, pointed at the store.
fn host(pg: &Pg, name: &str, config: &str) -> Env {
    let e = Env::new();
    e.config(config);
    let _ = (pg, name);
    e
}

fn bg(e: &Env, pg: &Pg, host: &str) -> Command {
    let mut c = e.cmd();
    c.env("BGRUN_STORE", pg.url()).env("BGRUN_HOST", host);
    c
}

fn ok(out: Output) -> Output {
    assert_code(&out, 0);
    out
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

fn spawn_worker(e: &Env, pg: &Pg, host: &str, extra: &[&str]) -> Child {
    bg(e, pg, host)
        .arg("worker")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(e.root().join(format!("worker-{host}.err"))).expect("err"))
        .spawn()
        .expect("spawn worker")
}

fn sigterm(c: &Child) {
    // SAFETY: kill with a valid pid and signal.
    unsafe {
        libc::kill(c.id() as i32, libc::SIGTERM);
    }
}

/// Wait for a child with a deadline; kill it if it overstays.
fn wait_exit(c: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + timeout;
    loop {
        if let Some(s) = c.try_wait().expect("try_wait") {
            return s;
        }
        if Instant::now() > end {
            let _ = c.kill();
            panic!("process {} did not exit within {timeout:?}", c.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kill leftover workers when a test fails half way.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
