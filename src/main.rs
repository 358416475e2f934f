use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = bgrun::cli::Cli::parse_args();
    match bgrun::run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            let code = bgrun::error::exit_of(&err);
            eprintln!("bgrun: {}", bgrun::error::render(&err));
            ExitCode::from(code as u8)
        }
    }
}
