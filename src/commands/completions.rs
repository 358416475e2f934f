//! `bgrun completions bash|zsh|fish|man`: generated from the clap definitions.

use anyhow::Result;
use clap::CommandFactory;

use crate::Exit;
use crate::cli::{Cli, CompletionShell};

pub fn run(shell: CompletionShell) -> Result<Exit> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout();
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
    Ok(Exit::Ok)
}
