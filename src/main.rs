use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = bgrun::cli::Cli::parse();
    match bgrun::run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            let code = bgrun::error::exit_of(&err);
            eprintln!("bgrun: {}", bgrun::error::render(&err));
            ExitCode::from(code as u8)
        }
    }
}
