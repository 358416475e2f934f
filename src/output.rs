//! Console output policy: JSON or text, quiet/verbose, colour only on a TTY without NO_COLOR.

use std::io::IsTerminal;

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
