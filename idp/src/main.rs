//! `idp`: settings, then telemetry, then the command.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use idp::cli::{self, Cli, Command};
use idp::config::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => return fail(&e.to_string(), 2),
    };
    match cli.command {
        Command::Serve => {
            idp::telemetry::init(settings.log_format, &settings.log_level);
            match idp::startup::serve(settings).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e.to_string(), e.exit_code()),
            }
        }
        command => {
            // Commands print results on stdout; only warnings go to the log.
            idp::telemetry::init(settings.log_format, "warn");
            match cli::run(command, settings).await {
                Ok(output) => {
                    print!("{output}");
                    ExitCode::SUCCESS
                }
                Err(failure) => fail(&failure.message, failure.code),
            }
        }
    }
}

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("idp: {message}");
    ExitCode::from(code)
}
