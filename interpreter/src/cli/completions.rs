//! `froyo completions bash|zsh|fish`: a shell completion script generated from the clap
//! definitions, so completions can never disagree with the commands they complete.

use std::process::ExitCode;

use clap::{Args, CommandFactory, ValueEnum};

use crate::error::Error;

/// The shells a script is generated (and tested) for.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
#[command(after_help = "Install, for example:
  froyo completions bash > ~/.local/share/bash-completion/completions/froyo
  froyo completions zsh > ~/.zfunc/_froyo     # with `fpath+=~/.zfunc` before `compinit`
  froyo completions fish > ~/.config/fish/completions/froyo.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(args: &CompletionsArgs) -> Result<ExitCode, Error> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::aot::Shell::Bash,
        Shell::Zsh => clap_complete::aot::Shell::Zsh,
        Shell::Fish => clap_complete::aot::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::aot::generate(shell, &mut super::Cli::command(), "froyo", &mut script);
    super::write_stdout(&String::from_utf8_lossy(&script));
    Ok(ExitCode::SUCCESS)
}
