//! `froyo lsp`: the language server on stdin/stdout (the `froyo-lsp` crate, with the
//! interpreter behind it through [`crate::lsp_bridge`]). Logs go to stderr.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::error::Error;

#[derive(Debug, Args)]
pub struct LspArgs {
    /// Accepted because many editors pass it; stdio is the only transport.
    #[arg(long)]
    stdio: bool,
}

pub fn run(_args: &LspArgs) -> Result<ExitCode, Error> {
    froyo_lsp::serve(Arc::new(crate::lsp_bridge::Bridge))
        .map_err(|e| Error::Usage(format!("language server: {e}")))?;
    Ok(ExitCode::SUCCESS)
}
