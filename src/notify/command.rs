//! The `command` channel: a user-configured program (argv, no shell) that gets the event
//! as one JSON object on stdin, e.g. a script posting to Slack. It runs in its own process
//! group, is killed (the whole group) past `timeout_seconds`, and a non-zero exit is a
//! failed delivery that quotes the end of its stderr.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Channel, Error, Notification};
use crate::config::CommandChannel;

pub struct CommandCh {
    name: String,
    argv: Vec<String>,
    timeout: Duration,
    cwd: std::path::PathBuf,
}

impl CommandCh {
    pub fn new(name: &str, c: &CommandChannel, repo: &std::path::Path) -> CommandCh {
        CommandCh {
            name: name.to_string(),
            argv: c.command.clone(),
            timeout: Duration::from_secs(c.timeout_seconds.clamp(1, 3600)),
            cwd: repo.to_path_buf(),
        }
    }
}

impl Channel for CommandCh {
    fn name(&self) -> &'static str {
        "command"
    }

    fn send(&self, n: &Notification) -> Result<(), Error> {
        let Some((program, args)) = self.argv.split_first() else {
            return Err(Error::EmptyCommand {
                channel: self.name.clone(),
            });
        };
        let payload = serde_json::to_vec(n)?;
        let mut child = Command::new(program)
            .args(args)
            .current_dir(&self.cwd)
            .env("BGRUN_CHANNEL", &self.name)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn {
                program: program.clone(),
                channel: self.name.clone(),
                source,
            })?;
        let pid = child.id();
        let stdin = child.stdin.take();
        let feeder = std::thread::spawn(move || {
            if let Some(mut w) = stdin {
                // A program that does not read its stdin is not an error.
                let _ = w.write_all(&payload);
            }
        });
        let stderr = child.stderr.take();
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = stderr {
                let _ = r.take(64 * 1024).read_to_end(&mut buf);
            }
            buf
        });
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) if Instant::now() >= deadline => break None,
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(source) => {
                    return Err(Error::Wait {
                        program: program.clone(),
                        source,
                    });
                }
            }
        };
        let Some(status) = status else {
            // SAFETY: kill(2) on the group this child leads.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
            let _ = child.wait();
            let _ = feeder.join();
            return Err(Error::Timeout {
                program: program.clone(),
                secs: self.timeout.as_secs(),
                channel: self.name.clone(),
            });
        };
        let _ = feeder.join();
        let err = reader.join().unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&err);
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        Err(Error::Failed {
            program: program.clone(),
            code: status.code(),
            last: last.trim().to_string(),
        })
    }
}
