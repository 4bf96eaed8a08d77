//! The `froyo-runner` binary: parses arguments, runs the session, exits 0.

use std::io::{self, Write};
use std::process::ExitCode;

use froyo_runner::config::USAGE;
use froyo_runner::{Config, Invocation};

fn main() -> ExitCode {
    match Config::from_args(std::env::args().skip(1)) {
        Ok(Invocation::Run(config)) => {
            froyo_runner::run(&config);
            ExitCode::SUCCESS
        }
        Ok(Invocation::Help) => {
            let _ = writeln!(io::stdout(), "{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Invocation::Version) => {
            let _ = writeln!(
                io::stdout(),
                "froyo-runner {}",
                froyo_runner::protocol::VERSION
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(io::stderr(), "froyo-runner: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
