//! Console channel: one line per notification on stderr (stdout stays free for a command's
//! own output and `--json`), an icon and a colour per severity. Colour as the conventions
//! say (`NO_COLOR`, `CLICOLOR`, `CLICOLOR_FORCE`, a terminal); no icon with `NO_COLOR`.

use std::io::Write;

use super::{Channel, Error, Notification, Severity};

pub struct Console {
    color: bool,
    emoji: bool,
}

impl Console {
    pub fn from_env() -> Console {
        Console {
            color: crate::output::colour_for(&std::io::stderr()),
            emoji: crate::output::emoji_allowed(),
        }
    }
}

/// The line printed for a notification (with the severity's icon when `emoji`).
pub fn render(n: &Notification, color: bool, emoji: bool) -> String {
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
    let mut line = if emoji {
        format!("{} {time} {tag} {title}", n.severity.icon())
    } else {
        format!("{time} {tag} {title}")
    };
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

    fn send(&self, n: &Notification) -> Result<(), Error> {
        let line = render(n, self.color, self.emoji);
        let mut err = std::io::stderr().lock();
        err.write_all(line.as_bytes())
            .and_then(|()| err.flush())
            .map_err(Error::Stderr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_colored() {
        let n = Notification::custom(Severity::Critical, "Disk", "full");
        let plain = render(&n, false, true);
        assert!(plain.starts_with("🚨 "));
        assert!(plain.contains("[CRITICAL] Disk: full"));
        assert!(!plain.contains('\x1b'));
        let bare = render(&n, false, false);
        assert!(bare.is_ascii(), "no emoji: {bare}");
        let colored = render(&n, true, true);
        assert!(colored.contains("\x1b[1;97;41m[CRITICAL]\x1b[0m"));
    }
}
