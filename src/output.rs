//! Console output policy: JSON or text, quiet/verbose, colour only on a TTY without NO_COLOR.

use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    /// -1 quiet, 0 normal, 1+ verbose.
    pub level: i8,
    pub color: bool,
    pub tty: bool,
}

impl Output {
    pub fn new(json: bool, quiet: u8, verbose: u8) -> Output {
        let tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Output {
            json,
            level: verbose as i8 - quiet as i8,
            color: tty && !no_color && !json,
            tty,
        }
    }

    pub fn quiet(&self) -> bool {
        self.level < 0
    }

    /// Wrap text in an ANSI colour when colour is on (`code` like "31" or "1;33").
    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Print a line unless quiet or JSON.
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.json && !self.quiet() {
            println!("{}", line.as_ref());
        }
    }

    /// Print a warning on stderr unless quiet.
    pub fn warn(&self, line: impl AsRef<str>) {
        if !self.quiet() {
            eprintln!("bgrun: warning: {}", line.as_ref());
        }
    }
}

/// Write to stdout (what `print!` and `println!` do in this crate). A reader that went away
/// (EPIPE) ends the process at once with exit 0: nothing is left to say to anyone. Any other
/// error (a full disk behind a redirect) is reported on stderr with exit 1.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        exit_on_write_error(&e);
    }
}

/// What a failed write to stdout means for the process: exit 0 on EPIPE, else 1 with a message.
pub fn exit_on_write_error(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("bgrun: cannot write to stdout: {e}");
    std::process::exit(1);
}
