//! Console output policy: JSON or text, quiet/verbose, and colour as the conventions say
//! (anstream's choice: `NO_COLOR` off, `CLICOLOR_FORCE` on, `CLICOLOR=0` off, else on a
//! colour terminal), with anstyle styles that keep padded columns aligned.

use std::fmt;
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
        Output {
            json,
            level: verbose as i8 - quiet as i8,
            color: !json && colour_for(&std::io::stdout()),
            tty,
        }
    }

    pub fn quiet(&self) -> bool {
        self.level < 0
    }

    /// Text in a style when colour is on (`code`: SGR numbers like "31" or "1;33", read
    /// into an [`anstyle::Style`]). Padding given to the result (`{:<13}`) applies to the
    /// text inside the style, so columns line up with colour on or off.
    pub fn paint(&self, code: &str, text: &str) -> Painted {
        Painted {
            style: self.color.then(|| style_of(code)),
            text: text.to_string(),
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

/// Whether to colour what goes to `stream` (stdout or stderr).
pub fn colour_for<S: anstream::stream::RawStream>(stream: &S) -> bool {
    anstream::AutoStream::choice(stream) != anstream::ColorChoice::Never
}

/// Whether pictographs (emoji) may be printed: not with `NO_COLOR`, which asks for plain
/// output.
pub fn emoji_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Styled text (see [`Output::paint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Painted {
    style: Option<anstyle::Style>,
    text: String,
}

impl fmt::Display for Painted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.style {
            Some(style) => {
                write!(f, "{style}")?;
                f.pad(&self.text)?;
                write!(f, "{style:#}")
            }
            None => f.pad(&self.text),
        }
    }
}

impl From<Painted> for String {
    fn from(p: Painted) -> String {
        p.to_string()
    }
}

/// An SGR code list ("1;97;41") as an anstyle style: bold, dim, italic, underline, the
/// eight colours and their bright forms, foreground and background.
pub fn style_of(code: &str) -> anstyle::Style {
    use anstyle::{AnsiColor, Color, Effects, Style};
    const COLOURS: [AnsiColor; 8] = [
        AnsiColor::Black,
        AnsiColor::Red,
        AnsiColor::Green,
        AnsiColor::Yellow,
        AnsiColor::Blue,
        AnsiColor::Magenta,
        AnsiColor::Cyan,
        AnsiColor::White,
    ];
    let mut st = Style::new();
    for part in code.split(';') {
        let Ok(n) = part.trim().parse::<u8>() else {
            continue;
        };
        let colour = |base: u8| Color::Ansi(COLOURS[usize::from(n - base)]);
        let bright = |base: u8| Color::Ansi(COLOURS[usize::from(n - base)].bright(true));
        st = match n {
            1 => st.effects(st.get_effects() | Effects::BOLD),
            2 => st.effects(st.get_effects() | Effects::DIMMED),
            3 => st.effects(st.get_effects() | Effects::ITALIC),
            4 => st.effects(st.get_effects() | Effects::UNDERLINE),
            30..=37 => st.fg_color(Some(colour(30))),
            40..=47 => st.bg_color(Some(colour(40))),
            90..=97 => st.fg_color(Some(bright(90))),
            100..=107 => st.bg_color(Some(bright(100))),
            _ => st,
        };
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_applies_inside_the_style() {
        let on = Output {
            json: false,
            level: 0,
            color: true,
            tty: true,
        };
        let off = Output { color: false, ..on };
        let plain = format!("[{:<8}]", off.paint("31", "failed"));
        assert_eq!(plain, "[failed  ]");
        let coloured = format!("[{:<8}]", on.paint("1;31", "failed"));
        assert_eq!(coloured, "[\x1b[1m\x1b[31mfailed  \x1b[0m]");
        assert_eq!(
            style_of("1;97;41").render().to_string(),
            "\x1b[1m\x1b[97m\x1b[41m"
        );
    }
}
