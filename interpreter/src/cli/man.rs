//! `froyo man [DIR]`: man pages generated from the clap definitions (`froyo.1` and one
//! `froyo-COMMAND.1` per subcommand), so the manual cannot drift from `--help`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory};

use crate::error::Error;

#[derive(Debug, Args)]
#[command(after_help = "Read one without installing it: froyo man | man -l -")]
pub struct ManArgs {
    /// Write every page into DIR (created if missing); without it, print `froyo.1` to stdout.
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: &ManArgs) -> Result<ExitCode, Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let cmd = super::Cli::command();
    let Some(dir) = &args.dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut page)
            .map_err(io(Path::new("-")))?;
        super::write_stdout(&String::from_utf8_lossy(&page));
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    clap_mangen::generate_to(cmd, dir).map_err(io(dir))?;
    let mut pages: Vec<String> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("froyo") && n.ends_with(".1"))
        .collect();
    pages.sort();
    super::write_stdout(&format!(
        "Wrote {} man pages to {}: {}\n",
        pages.len(),
        dir.display(),
        pages.join(" ")
    ));
    Ok(ExitCode::SUCCESS)
}
