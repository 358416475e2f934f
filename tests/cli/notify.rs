//! notify: every channel against a real server started by the test itself (aiosmtpd on
//! loopback, a private D-Bus session bus with dunst under Xvfb, an HTTP listener on a
//! thread), the failure modes (each a per-channel error, exit 1, under 2 s), and the wiring
//! from task results to events. Tests needing Xvfb/dunst/aiosmtpd skip loudly when those
//! are missing, unless `BGRUN_TEST_TOOLS` is set (scripts/test, CI): then they must run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Env, assert_code, text, wait_until};

// ---------------------------------------------------------------- helpers

fn required() -> bool {
    std::env::var_os("BGRUN_TEST_TOOLS").is_some()
}

/// Missing tool: fail when the tools are required, else say loudly that we skip.
fn missing(what: &str) {
    assert!(
        !required(),
        "BGRUN_TEST_TOOLS is set but {what} (scripts/test installs it)"
    );
    eprintln!(
        "\n*** SKIPPED: {what}; run scripts/test (or set BGRUN_TEST_TOOLS) to run this test ***\n"
    );
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

fn have(tools: &[&str]) -> bool {
    for t in tools {
        if !on_path(t) {
            missing(&format!("`{t}` is not on PATH"));
            return false;
        }
    }
    true
}

/// A child process killed (and reaped) when dropped.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawn with stdout piped and return the first line it prints (within `within`).
fn spawn_first_line(mut cmd: Command, within: Duration) -> (Kid, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let out = child.stdout.take().expect("stdout");
    let kid = Kid(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(out).lines();
        if let Some(Ok(l)) = lines.next() {
            let _ = tx.send(l);
        }
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(within)
        .unwrap_or_else(|_| panic!("{cmd:?} printed nothing within {within:?}"));
    (kid, line.trim().to_string())
}

/// A config with the given channels on top of: console and file on, the rest off.
fn notify_config(env: &Env, channels: Value) {
    let mut base = json!({
        "console": {"enabled": true, "min_severity": "info"},
        "desktop": {"enabled": false},
        "file": {"enabled": true, "min_severity": "info"},
        "email": {"enabled": false},
        "webhook": {"enabled": false},
    });
    if let (Some(b), Value::Object(o)) = (base.as_object_mut(), channels) {
        for (k, v) in o {
            b.insert(k, v);
        }
    }
    env.config(&json!({"notifications": {"enabled": true, "channels": base}}).to_string());
}

/// `bgrun --json notify ...` with a clean D-Bus environment: (exit code, JSON, stderr, time).
fn notify(env: &Env, extra_env: &[(&str, &str)], args: &[&str]) -> (i32, Value, String, Duration) {
    let mut c = env.cmd();
    c.env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("BGRUN_SMTP_PASSWORD");
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.arg("--json").arg("notify").args(args);
    let start = Instant::now();
    let out = c.output().expect("run bgrun");
    let took = start.elapsed();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v, text(&out.stderr), took)
}

fn channel<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["channels"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["channel"] == name))
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

fn file_events(env: &Env) -> Vec<Value> {
    std::fs::read_to_string(env.state().join("notifications.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

const QUICK: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------- console, file, CLI

#[test]
fn console_prints_icon_and_severity_without_color_when_not_a_tty() {
    let env = Env::new();
    notify_config(
        &env,
        json!({"console": {"enabled": true, "min_severity": "warning"}}),
    );
    let console_notify = |no_color: bool| {
        let mut c = env.cmd();
        if !no_color {
            c.env_remove("NO_COLOR");
        }
        c.args([
            "notify",
            "-s",
            "error",
            "-t",
            "Build",
            "-m",
            "broken",
            "--channel",
            "console",
        ])
        .output()
        .expect("run")
    };
    // NO_COLOR asks for plain output: no colour and no emoji.
    let plain = console_notify(true);
    assert_code(&plain, 0);
    let err = text(&plain.stderr);
    assert!(
        err.contains("[ERROR] Build: broken") && !err.contains('❌') && !err.contains('\x1b'),
        "{err}"
    );
    let out = console_notify(false);
    assert_code(&out, 0);
    let err = text(&out.stderr);
    assert!(
        err.contains("❌ ") && err.contains("[ERROR] Build: broken"),
        "{err}"
    );
    assert!(!err.contains('\x1b'), "colour on a pipe: {err:?}");
    assert!(text(&out.stdout).contains("console: delivered"));
    // Below min_severity: skipped, not failed, nothing printed.
    let (code, v, stderr, _) = notify(
        &env,
        &[],
        &[
            "-s",
            "info",
            "-t",
            "Quiet",
            "-m",
            "x",
            "--channel",
            "console",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(channel(&v, "console")["status"], "skipped");
    assert!(!stderr.contains("Quiet"));
}

#[test]
fn file_channel_logs_every_notification_as_json_lines() {
    let env = Env::new();
    notify_config(&env, json!({}));
    for i in 0..3 {
        let (code, v, _, _) = notify(
            &env,
            &[],
            &["-s", "warning", "-t", &format!("T{i}"), "-m", "line\nnext"],
        );
        assert_eq!(code, 0, "{v}");
        assert_eq!(channel(&v, "file")["status"], "delivered");
    }
    let ev = file_events(&env);
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[2]["title"], "T2");
    assert_eq!(ev[2]["severity"], "warning");
    assert_eq!(ev[2]["event"], "custom");
    assert_eq!(ev[2]["message"], "line\nnext");
}

#[test]
fn unwritable_file_directory_fails_that_channel_only() {
    let env = Env::new();
    // A file where the log's directory should be: not writable, even for root.
    env.write("blocked", "a file, not a directory");
    notify_config(
        &env,
        json!({"file": {"enabled": true, "path": "blocked/n.jsonl"}}),
    );
    let (code, v, _, took) = notify(&env, &[], &["-s", "error", "-t", "T", "-m", "M"]);
    assert_eq!(code, 1, "{v}");
    let f = channel(&v, "file");
    assert_eq!(f["status"], "failed");
    assert!(
        f["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot create the directory") && e.contains("blocked")),
        "{f}"
    );
    assert_eq!(channel(&v, "console")["status"], "delivered");
    assert!(took < QUICK, "{took:?}");
    // bgrun status names the failing channel.
    let s = env.json(&["status"]);
    let failing = s["failing_channels"].as_array().expect("failing_channels");
    assert!(failing.iter().any(|c| c["channel"] == "file"), "{s}");
}

#[test]
fn bad_severity_or_channel_is_a_usage_error() {
    let env = Env::new();
    let out = env.run(&["notify", "-s", "fatal", "-t", "T", "-m", "M"]);
    assert_code(&out, 2);
    assert!(text(&out.stderr).contains("--severity"));
    let out = env.run(&[
        "notify",
        "-s",
        "info",
        "-t",
        "T",
        "-m",
        "M",
        "--channel",
        "pager",
    ]);
    assert_code(&out, 2);
    assert!(text(&out.stderr).contains("--channel \"pager\""));
}

#[test]
fn a_password_in_the_config_is_refused_with_the_way_out() {
    let env = Env::new();
    env.config(r#"{"notifications": {"channels": {"email": {"password": "hunter2"}}}}"#);
    let out = env.run(&["config", "check"]);
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.contains("notifications.channels.email.password") && err.contains("password_env"),
        "{err}"
    );
}

// ---------------------------------------------------------------- webhook

struct Req {
    head: String,
    body: Vec<u8>,
}

/// An HTTP listener on a thread: answers each request with `status`, or never (0).
fn http_listener(status: u16) -> (u16, mpsc::Receiver<Req>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming().take(8) {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i + 4);
                }
            };
            let Some(head_end) = head_end else { continue };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            while buf.len() < head_end + len {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body = buf[head_end..].to_vec();
            let _ = tx.send(Req { head, body });
            if status == 0 {
                std::thread::sleep(Duration::from_secs(5));
                continue;
            }
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"
            );
        }
    });
    (port, rx)
}

#[test]
fn webhook_posts_a_slack_compatible_payload() {
    let env = Env::new();
    let (port, rx) = http_listener(200);
    notify_config(
        &env,
        json!({"webhook": {"enabled": true, "min_severity": "info",
        "url": format!("http://127.0.0.1:{port}/services/T0/B0"), "timeout_seconds": 2}}),
    );
    let (code, v, _, took) = notify(
        &env,
        &[],
        &["-s", "critical", "-t", "Disk full", "-m", "95% used"],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(channel(&v, "webhook")["status"], "delivered");
    assert!(took < QUICK);
    let req = rx.recv_timeout(Duration::from_secs(5)).expect("a request");
    assert!(
        req.head.starts_with("POST /services/T0/B0 HTTP/1.1\r\n"),
        "{}",
        req.head
    );
    assert!(
        req.head
            .to_ascii_lowercase()
            .contains("content-type: application/json")
    );
    let p: Value = serde_json::from_slice(&req.body).expect("JSON body");
    assert!(
        p["text"]
            .as_str()
            .is_some_and(|t| t.contains("Disk full") && t.contains("95% used")),
        "{p}"
    );
    assert_eq!(p["blocks"][0]["type"], "header");
    assert_eq!(p["attachments"][0]["fields"][0]["value"], "critical");
    assert_eq!(p["bgrun"]["severity"], "critical");
}

#[test]
fn webhook_errors_and_silence_fail_fast() {
    let env = Env::new();
    let (port, _rx) = http_listener(500);
    let (silent, _rx2) = http_listener(0);
    for (url, want) in [
        (format!("http://127.0.0.1:{port}/hook"), "HTTP 500"),
        (
            format!("http://127.0.0.1:{silent}/hook"),
            "POST http://127.0.0.1",
        ),
        (
            format!("http://127.0.0.1:{}/hook", closed_port()),
            "POST http://127.0.0.1",
        ),
    ] {
        notify_config(
            &env,
            json!({"webhook": {"enabled": true, "min_severity": "info", "url": url, "timeout_seconds": 1}}),
        );
        let (code, v, _, took) = notify(&env, &[], &["-s", "error", "-t", "T", "-m", "M"]);
        assert_eq!(code, 1, "{v}");
        let w = channel(&v, "webhook");
        assert_eq!(w["status"], "failed");
        assert!(w["error"].as_str().is_some_and(|e| e.contains(want)), "{w}");
        assert!(
            !w["error"].as_str().unwrap_or("").contains("/hook"),
            "the URL path is a secret: {w}"
        );
        assert_eq!(channel(&v, "file")["status"], "delivered");
        assert!(took < QUICK, "{url}: {took:?}");
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

// ---------------------------------------------------------------- email

fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("BGRUN_TEST_TOOLS")
        .map(|r| PathBuf::from(r).join(".venv-tools/bin/python3"))
        .filter(|p| p.is_file());
    let py = venv.unwrap_or_else(|| PathBuf::from("python3"));
    let ok = Command::new(&py)
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(py)
    } else {
        missing("the Python package aiosmtpd is not importable");
        None
    }
}

struct Smtpd {
    _kid: Kid,
    port: u16,
    out: PathBuf,
}

fn smtpd(dir: &Path, args: &[&str], password: &str) -> Option<Smtpd> {
    let py = python()?;
    let out = dir.join("mail");
    let mut c = Command::new(py);
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtpd.py"))
        .arg("--out")
        .arg(&out)
        .args(args)
        .env("SMTPD_TEST_PASSWORD", password)
        .stdin(Stdio::piped());
    let (kid, line) = spawn_first_line(c, Duration::from_secs(20));
    let port = line
        .strip_prefix("READY ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("smtpd said {line:?}"));
    Some(Smtpd {
        _kid: kid,
        port,
        out,
    })
}

impl Smtpd {
    /// The Nth message received (1-based): the parsed view written by the server.
    fn message(&self, n: usize) -> Value {
        let eml = self.out.join(format!("{n:04}.eml"));
        wait_until(
            "the SMTP server to store the message",
            Duration::from_secs(10),
            || eml.exists(),
        );
        let meta = std::fs::read(self.out.join(format!("{n:04}.json"))).expect("meta");
        serde_json::from_slice(&meta).expect("meta JSON")
    }

    fn count(&self) -> usize {
        std::fs::read_dir(&self.out)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .count()
            })
            .unwrap_or(0)
    }
}

/// The test certificates, the leaf for 127.0.0.1 and localhost: (ca, leaf, key, other CA).
fn certs(dir: &Path) -> Option<(PathBuf, PathBuf, PathBuf, PathBuf)> {
    if !have(&["openssl"]) {
        return None;
    }
    let c = crate::make_certs(dir, "IP:127.0.0.1,DNS:localhost");
    Some((c.ca, c.leaf, c.key, c.other_ca))
}

fn email_channel(port: u16, extra: Value) -> Value {
    let mut e = json!({"enabled": true, "min_severity": "warning", "smtp_server": "127.0.0.1",
        "smtp_port": port, "tls": "none", "from_email": "bgrun <bgrun@example.com>",
        "to_emails": ["dev@example.com", "ops@example.com"], "format": "both", "timeout_seconds": 3});
    if let (Some(o), Value::Object(x)) = (e.as_object_mut(), extra) {
        o.extend(x);
    }
    json!({"email": e})
}

fn assert_message(m: &Value, title: &str, body: &str) {
    let h = &m["headers"];
    assert_eq!(h["Subject"], format!("[bgrun] [ERROR] {title}"), "{m}");
    assert_eq!(h["From"], "bgrun <bgrun@example.com>");
    assert!(
        h["To"]
            .as_str()
            .is_some_and(|t| t.contains("dev@example.com") && t.contains("ops@example.com")),
        "{m}"
    );
    assert_eq!(h["X-Bgrun-Severity"], "error");
    assert_eq!(h["X-Bgrun-Event"], "custom");
    assert!(h["Date"].is_string() && h["Message-ID"].is_string(), "{m}");
    assert_eq!(m["content_type"], "multipart/alternative");
    assert_eq!(m["rcpt_tos"], json!(["dev@example.com", "ops@example.com"]));
    let parts = m["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 2, "{m}");
    assert_eq!(parts[0]["content_type"], "text/plain");
    let plain = parts[0]["text"].as_str().expect("plain");
    assert!(plain.contains(title) && plain.contains(body), "{plain}");
    assert_eq!(parts[1]["content_type"], "text/html");
    let html = parts[1]["text"].as_str().expect("html");
    assert!(
        html.contains("<html>") && html.contains(&title.replace('<', "&lt;").replace('>', "&gt;")),
        "{html}"
    );
}

#[test]
fn email_plain_relay_gets_headers_and_both_parts() {
    let env = Env::new();
    let Some(srv) = smtpd(env.root(), &[], "") else {
        return;
    };
    notify_config(&env, email_channel(srv.port, json!({})));
    let title = "Build <main> broken";
    let (code, v, _, took) = notify(
        &env,
        &[],
        &[
            "-s",
            "error",
            "-t",
            title,
            "-m",
            "3 tests failed\nsee the log",
        ],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(channel(&v, "email")["status"], "delivered");
    assert!(took < QUICK, "{took:?}");
    let m = srv.message(1);
    assert_message(&m, title, "3 tests failed");
    assert_eq!(m["tls"], false);
    // Below the channel's min_severity: not sent.
    let (code, v, _, _) = notify(&env, &[], &["-s", "info", "-t", "FYI", "-m", "x"]);
    assert_eq!(code, 0);
    assert_eq!(channel(&v, "email")["status"], "skipped");
    assert_eq!(srv.count(), 1);
}

#[test]
fn email_starttls_with_auth_from_an_env_var() {
    let env = Env::new();
    let Some((ca, leaf, key, _)) = certs(env.root()) else {
        return;
    };
    let (leaf, key) = (
        leaf.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    );
    let Some(srv) = smtpd(
        env.root(),
        &["--starttls", &leaf, &key, "--auth", "ci-bot"],
        "s3cret pass",
    ) else {
        return;
    };
    notify_config(
        &env,
        email_channel(
            srv.port,
            json!({"tls": "starttls", "username": "ci-bot",
        "password_env": "BGRUN_TEST_SMTP_PW", "ca_file": ca}),
        ),
    );
    let (code, v, _, _) = notify(
        &env,
        &[("BGRUN_TEST_SMTP_PW", "s3cret pass")],
        &["-s", "error", "-t", "Secure", "-m", "over TLS"],
    );
    assert_eq!(code, 0, "{v}");
    let m = srv.message(1);
    assert_message(&m, "Secure", "over TLS");
    assert_eq!(m["tls"], true);
    assert_eq!(m["authenticated"], true);
    assert_eq!(m["login"], "ci-bot");
}

#[test]
fn email_implicit_tls_with_a_password_file() {
    let env = Env::new();
    let Some((ca, leaf, key, _)) = certs(env.root()) else {
        return;
    };
    let (leaf, key) = (
        leaf.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    );
    let Some(srv) = smtpd(
        env.root(),
        &["--implicit", &leaf, &key, "--auth", "ci-bot"],
        "from-a-file",
    ) else {
        return;
    };
    env.write("secrets/smtp", "from-a-file\n");
    notify_config(
        &env,
        email_channel(
            srv.port,
            json!({"tls": "implicit", "username": "ci-bot",
        "password_file": "secrets/smtp", "ca_file": ca}),
        ),
    );
    let (code, v, _, _) = notify(
        &env,
        &[],
        &["-s", "critical", "-t", "Implicit", "-m", "wrapped"],
    );
    assert_eq!(code, 0, "{v}");
    let m = srv.message(1);
    assert_eq!(m["tls"], true);
    assert_eq!(m["login"], "ci-bot");
    assert_eq!(m["headers"]["X-Bgrun-Severity"], "critical");
}

#[test]
fn email_failures_are_per_channel_clear_and_fast() {
    let env = Env::new();
    let Some((ca, leaf, key, other_ca)) = certs(env.root()) else {
        return;
    };
    let (leaf, key) = (
        leaf.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    );
    let Some(srv) = smtpd(
        env.root(),
        &["--starttls", &leaf, &key, "--auth", "ci-bot"],
        "right",
    ) else {
        return;
    };
    let cases = [
        (
            "server down",
            closed_port(),
            json!({}),
            "right",
            "Connection refused",
        ),
        (
            "AUTH refused",
            srv.port,
            json!({"tls": "starttls", "username": "ci-bot", "ca_file": ca}),
            "wrong",
            "535",
        ),
        (
            "wrong certificate",
            srv.port,
            json!({"tls": "starttls", "username": "ci-bot", "ca_file": other_ca}),
            "right",
            "certificate",
        ),
    ];
    for (what, port, extra, pw, want) in cases {
        notify_config(&env, email_channel(port, extra));
        let (code, v, _, took) = notify(
            &env,
            &[("BGRUN_SMTP_PASSWORD", pw)],
            &["-s", "error", "-t", "T", "-m", "M"],
        );
        assert_eq!(code, 1, "{what}: {v}");
        let e = channel(&v, "email");
        assert_eq!(e["status"], "failed", "{what}");
        let err = e["error"].as_str().unwrap_or("");
        assert!(
            err.starts_with("smtp 127.0.0.1:") && err.contains(want),
            "{what}: {err}"
        );
        assert_eq!(channel(&v, "file")["status"], "delivered", "{what}");
        assert_eq!(channel(&v, "console")["status"], "delivered", "{what}");
        assert!(took < QUICK, "{what}: {took:?}");
        let s = env.json(&["status"]);
        assert!(
            s["failing_channels"]
                .as_array()
                .is_some_and(|a| a.iter().any(|c| c["channel"] == "email")),
            "{s}"
        );
    }
    assert_eq!(srv.count(), 0);
    // A delivery that works clears the failing state.
    notify_config(
        &env,
        email_channel(
            srv.port,
            json!({"tls": "starttls", "username": "ci-bot", "ca_file": ca}),
        ),
    );
    let (code, v, _, _) = notify(
        &env,
        &[("BGRUN_SMTP_PASSWORD", "right")],
        &["-s", "error", "-t", "T", "-m", "M"],
    );
    assert_eq!(code, 0, "{v}");
    let s = env.json(&["status"]);
    assert_eq!(s["failing_channels"], json!([]), "{s}");
}

// ---------------------------------------------------------------- desktop

/// A private session bus (our own config: no service activation, eavesdropping allowed).
fn session_bus(dir: &Path) -> (Kid, String) {
    let conf = dir.join("bus.conf");
    std::fs::write(
        &conf,
        format!(
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
             \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
             <busconfig><type>session</type><listen>unix:dir={}</listen><auth>EXTERNAL</auth>\
             <policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>\
             <allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>\n",
            dir.display()
        ),
    )
    .expect("bus.conf");
    let mut c = Command::new("dbus-daemon");
    c.arg(format!("--config-file={}", conf.display()))
        .args(["--nofork", "--print-address=1"]);
    spawn_first_line(c, Duration::from_secs(10))
}

#[test]
fn desktop_reaches_a_real_notification_server() {
    if !have(&["Xvfb", "dbus-daemon", "dbus-monitor", "dunst", "dunstctl"]) {
        return;
    }
    let env = Env::new();
    let dir = env.root().join("desk");
    std::fs::create_dir_all(dir.join("home/.config")).expect("mkdir");
    let mut x = Command::new("Xvfb");
    x.args([
        "-displayfd",
        "1",
        "-nolisten",
        "tcp",
        "-screen",
        "0",
        "800x600x24",
    ])
    .stderr(Stdio::null());
    let (_xvfb, display) = spawn_first_line(x, Duration::from_secs(20));
    let (_bus, addr) = session_bus(&dir);
    let dunst = Kid(Command::new("dunst")
        .env("DISPLAY", format!(":{display}"))
        .env("DBUS_SESSION_BUS_ADDRESS", &addr)
        .env("HOME", dir.join("home"))
        .env("XDG_CONFIG_HOME", dir.join("home/.config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dunst"));
    let dunstctl = |args: &[&str]| {
        Command::new("dunstctl")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &addr)
            .output()
            .expect("dunstctl")
    };
    wait_until(
        "dunst to own org.freedesktop.Notifications",
        Duration::from_secs(15),
        || dunstctl(&["is-paused"]).status.success(),
    );
    // An independent witness: record the Notify calls on the bus.
    let log = dir.join("monitor.txt");
    let _monitor = Kid(Command::new("dbus-monitor")
        .args([
            "--address",
            &addr,
            "type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
        ])
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("dbus-monitor"));
    wait_until("dbus-monitor to start", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("NameLost"))
    });
    notify_config(
        &env,
        json!({"desktop": {"enabled": true, "min_severity": "warning"}}),
    );
    let bus = [("DBUS_SESSION_BUS_ADDRESS", addr.as_str())];
    for (sev, title) in [("critical", "Security scan"), ("warning", "Slow tests")] {
        let (code, v, _, took) = notify(
            &env,
            &bus,
            &["-s", sev, "-t", title, "-m", &format!("{sev} body")],
        );
        assert_eq!(code, 0, "{v}");
        assert_eq!(channel(&v, "desktop")["status"], "delivered");
        assert!(took < QUICK);
    }
    // Below min_severity: not sent.
    let (_, v, _, _) = notify(&env, &bus, &["-s", "info", "-t", "Chatter", "-m", "x"]);
    assert_eq!(channel(&v, "desktop")["status"], "skipped");
    wait_until(
        "two Notify calls on the bus",
        Duration::from_secs(10),
        || std::fs::read_to_string(&log).is_ok_and(|t| t.matches("int32 ").count() >= 2),
    );
    let calls = parse_notify_calls(&std::fs::read_to_string(&log).expect("log"));
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        calls[0],
        (
            "bgrun".into(),
            "🚨 Security scan".into(),
            "critical body".into(),
            2
        )
    );
    assert_eq!(
        calls[1],
        (
            "bgrun".into(),
            "⚠️ Slow tests".into(),
            "warning body".into(),
            1
        )
    );
    // And the server itself has them (dunst keeps closed ones in its history).
    assert!(dunstctl(&["close-all"]).status.success());
    wait_until("dunst history", Duration::from_secs(10), || {
        let h = dunstctl(&["history"]);
        let v: Value = serde_json::from_slice(&h.stdout).unwrap_or(Value::Null);
        let got: Vec<(String, String)> = v["data"][0]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|n| {
                        (
                            n["summary"]["data"].as_str().unwrap_or("").to_string(),
                            n["body"]["data"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        got.contains(&("🚨 Security scan".into(), "critical body".into()))
            && got.contains(&("⚠️ Slow tests".into(), "warning body".into()))
    });
    drop(dunst);
}

/// (app, summary, body, urgency) of each Notify call in dbus-monitor's text output.
fn parse_notify_calls(log: &str) -> Vec<(String, String, String, u8)> {
    let mut calls = Vec::new();
    for block in log.split("method call ").skip(1) {
        if !block.contains("member=Notify") {
            continue;
        }
        let strings: Vec<String> = block
            .lines()
            .filter_map(|l| l.trim().strip_prefix("string \""))
            .map(|s| s.trim_end_matches('"').to_string())
            .collect();
        let lines: Vec<&str> = block.lines().map(str::trim).collect();
        let urgency = lines
            .iter()
            .position(|l| *l == "string \"urgency\"")
            .and_then(|i| lines.get(i + 1))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(255);
        if strings.len() >= 4 {
            calls.push((
                strings[0].clone(),
                strings[2].clone(),
                strings[3].clone(),
                urgency,
            ));
        }
    }
    calls
}

#[test]
fn desktop_without_a_bus_fails_fast_and_clearly() {
    let env = Env::new();
    notify_config(
        &env,
        json!({"desktop": {"enabled": true, "min_severity": "info"}}),
    );
    let (code, v, _, took) = notify(&env, &[], &["-s", "error", "-t", "T", "-m", "M"]);
    assert_eq!(code, 1, "{v}");
    let d = channel(&v, "desktop");
    assert_eq!(d["status"], "failed");
    assert!(
        d["error"]
            .as_str()
            .is_some_and(|e| e.contains("no D-Bus session bus")),
        "{d}"
    );
    assert_eq!(channel(&v, "file")["status"], "delivered");
    assert!(took < QUICK, "{took:?}");
}

#[test]
fn desktop_on_a_bus_that_never_answers_gives_up_within_its_timeout() {
    let env = Env::new();
    // A socket that accepts and never says a word: a hung bus.
    let sock = env.root().join("silent-bus");
    let l = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().take(16).flatten() {
            held.push(s);
        }
    });
    notify_config(
        &env,
        json!({"desktop": {"enabled": true, "min_severity": "info", "timeout_ms": 800, "retries": 2}}),
    );
    let addr = format!("unix:path={}", sock.display());
    let (code, v, _, took) = notify(
        &env,
        &[("DBUS_SESSION_BUS_ADDRESS", &addr)],
        &["-s", "error", "-t", "T", "-m", "M"],
    );
    assert_eq!(code, 1, "{v}");
    let d = channel(&v, "desktop");
    assert!(
        d["error"]
            .as_str()
            .is_some_and(|e| e.contains("no answer") && e.contains("800 ms")),
        "{d}"
    );
    assert!(took < QUICK, "{took:?}");
    assert_eq!(channel(&v, "console")["status"], "delivered");
}

#[test]
fn desktop_on_a_bus_without_a_notification_server_fails_fast() {
    if !have(&["dbus-daemon"]) {
        return;
    }
    let env = Env::new();
    let (_bus, addr) = session_bus(env.root());
    notify_config(
        &env,
        json!({"desktop": {"enabled": true, "min_severity": "info"}}),
    );
    let (code, v, _, took) = notify(
        &env,
        &[("DBUS_SESSION_BUS_ADDRESS", &addr)],
        &["-s", "error", "-t", "T", "-m", "M"],
    );
    assert_eq!(code, 1, "{v}");
    let d = channel(&v, "desktop");
    assert!(
        d["error"]
            .as_str()
            .is_some_and(|e| e.contains("org.freedesktop.Notifications")),
        "{d}"
    );
    assert!(took < QUICK, "{took:?}");
}

// ---------------------------------------------------------------- task events

#[test]
fn task_results_notify_by_the_rules() {
    let env = Env::new();
    let (port, rx) = http_listener(200);
    env.config(
        &json!({
            "execution": {"kill_grace_seconds": 1},
            "task_types": {
                "broken": {"command": ["sh", "-c", "echo oops >&2; exit 3"], "max_retries": 0,
                           "notification_on_complete": false, "notification_on_issues": true},
                "slow": {"command": ["sleep", "30"], "timeout_seconds": 1, "max_retries": 0,
                         "notification_on_issues": true},
                "fine": {"command": ["true"], "notification_on_complete": true},
                "quiet": {"command": ["true"], "notification_on_complete": false},
            },
            "notifications": {"enabled": true, "channels": {
                "console": {"enabled": false}, "desktop": {"enabled": false},
                "file": {"enabled": true, "min_severity": "info"},
                "webhook": {"enabled": true, "min_severity": "error", "timeout_seconds": 2,
                            "url": format!("http://127.0.0.1:{port}/hook")},
            }},
        })
        .to_string(),
    );
    for (ty, code) in [("broken", 1), ("slow", 1), ("fine", 0), ("quiet", 0)] {
        let out = env
            .cmd()
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .args(["run", ty])
            .output()
            .expect("run");
        assert_code(&out, code);
    }
    let ev = file_events(&env);
    let got: Vec<(&str, &str)> = ev
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or(""),
                e["severity"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("task_failed", "error"),
            ("task_timed_out", "error"),
            ("task_completed", "info")
        ],
        "{ev:?}"
    );
    assert_eq!(ev[0]["metadata"]["task_type"], "broken");
    assert_eq!(ev[0]["metadata"]["exit_code"], 3);
    // The webhook (min error) saw the two failures, not the completion.
    let a = rx.recv_timeout(Duration::from_secs(5)).expect("first POST");
    let b = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("second POST");
    let events: Vec<Value> = [a, b]
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).expect("json")["bgrun"]["event"].clone())
        .collect();
    assert_eq!(events, [json!("task_failed"), json!("task_timed_out")]);
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    let deliveries =
        std::fs::read_to_string(env.state().join("deliveries.jsonl")).expect("deliveries");
    assert_eq!(deliveries.lines().count(), 5, "{deliveries}");
}
