//! `bgrun completions bash|zsh|fish|man`: generated from the clap definitions.

use std::io::Write;

use anyhow::Result;
use clap::CommandFactory;

use crate::Exit;
use crate::cli::{Cli, CompletionShell};

pub fn run(shell: CompletionShell) -> Result<Exit> {
    let mut cmd = Cli::command();
    // Generated into memory, then written once: a closed stdout exits quietly.
    let mut out: Vec<u8> = Vec::new();
    match shell {
        CompletionShell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "bgrun", &mut out)
        }
        CompletionShell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "bgrun", &mut out)
        }
        CompletionShell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, "bgrun", &mut out)
        }
        CompletionShell::Man => clap_mangen::Man::new(cmd).render(&mut out)?,
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(&out).and_then(|()| stdout.flush()) {
        crate::output::exit_on_write_error(&e);
    }
    Ok(Exit::Ok)
}
