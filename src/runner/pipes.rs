//! A short-lived child's stdout and stderr read to the end on a thread each (so a chatty
//! child cannot block on a full pipe), and its process group killed when an escaped
//! grandchild keeps a pipe open: what the analyzers' and the tool installer's runs share.

use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

/// Read `r` to its end on a thread; the bytes arrive on the receiver.
pub fn drain<R: Read + Send + 'static>(mut r: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// What a [`drain`] read, after the child exited: if the pipe is still open 2 s later (a
/// grandchild holds it), kill the group `pgid` and take what arrives within 5 s more.
pub fn collect(rx: Option<mpsc::Receiver<Vec<u8>>>, pgid: i32) -> Vec<u8> {
    let Some(rx) = rx else { return Vec::new() };
    match rx.recv_timeout(Duration::from_secs(2)) {
        Ok(b) => b,
        Err(_) => {
            kill_group(pgid);
            rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default()
        }
    }
}

/// SIGKILL to process group `pgid` (never to group 0 or 1).
pub fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: kill with a negative pid signals that process group; no memory involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}
