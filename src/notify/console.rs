//! Console channel: one line per notification on stderr (stdout stays free for a command's
//! own output and `--json`), an icon and a colour per severity; no colour when stderr is
//! not a terminal or `NO_COLOR` is set.

use std::io::{IsTerminal, Write};

use super::{Channel, Notification, Severity};

pub struct Console {
    color: bool,
}

impl Console {
    pub fn from_env() -> Console {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Console {
            color: std::io::stderr().is_terminal() && !no_color,
        }
    }
}

/// The line printed for a notification.
pub fn render(n: &Notification, color: bool) -> String {
    let tag = format!("[{}]", n.severity.as_str().to_uppercase());
    let (tag, title) = if color {
        let code = match n.severity {
            Severity::Info => "34",
            Severity::Warning => "33",
            Severity::Error => "31",
            Severity::Critical => "1;97;41",
        };
        (
            format!("\x1b[{code}m{tag}\x1b[0m"),
            format!("\x1b[1m{}\x1b[0m", n.title),
        )
    } else {
        (tag, n.title.clone())
    };
    let time = n.at.get(11..19).unwrap_or(&n.at);
    let mut line = format!("{} {time} {tag} {title}", n.severity.icon());
    if !n.message.is_empty() {
        line.push_str(": ");
        line.push_str(&n.message.replace('\n', "\n    "));
    }
    line.push('\n');
    line
}

impl Channel for Console {
    fn name(&self) -> &'static str {
        "console"
    }

    fn send(&self, n: &Notification) -> Result<(), String> {
        let line = render(n, self.color);
        let mut err = std::io::stderr().lock();
        err.write_all(line.as_bytes())
            .and_then(|()| err.flush())
            .map_err(|e| format!("cannot write to stderr: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_colored() {
        let n = Notification::custom(Severity::Critical, "Disk", "full");
        let plain = render(&n, false);
        assert!(plain.starts_with("🚨 "));
        assert!(plain.contains("[CRITICAL] Disk: full"));
        assert!(!plain.contains('\x1b'));
        let colored = render(&n, true);
        assert!(colored.contains("\x1b[1;97;41m[CRITICAL]\x1b[0m"));
    }
}
