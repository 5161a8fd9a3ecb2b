//! `rulesaga saga ...` (being written).
use std::process::ExitCode;

use clap::Subcommand;

use super::ErrorFormat;

/// Saga subcommands.
#[derive(Subcommand, Debug)]
pub enum SagaCommand {
    /// Validate saga files.
    Validate {
        /// Saga files.
        files: Vec<std::path::PathBuf>,
    },
}

/// Run a saga subcommand.
pub fn run(cmd: SagaCommand, error_format: ErrorFormat) -> ExitCode {
    let _ = (cmd, error_format);
    ExitCode::from(2)
}
