//! Argument parsing and rendering: the only place that prints.
//!
//! Exit codes: 0 success, 1 errors in rules or sagas (or a failed saga run), 2 usage or data errors.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod data;
mod diff;
mod files;
mod fmt;
mod render;
mod rules;
mod saga;
mod test;

/// Declarative business rules and sagas.
#[derive(Parser, Debug)]
#[command(name = "rulesaga", version, about)]
pub struct Cli {
    /// How to print diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = ErrorFormat::Human)]
    pub error_format: ErrorFormat,
    #[command(subcommand)]
    command: Command,
}

/// `--error-format`
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ErrorFormat {
    /// Text with carets.
    Human,
    /// One JSON object per diagnostic.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and check rule files; exit 0 when clean, 1 with diagnostics.
    Check(rules::CheckArgs),
    /// Print the syntax tree of a rule file or an expression.
    Parse(rules::ParseArgs),
    /// Evaluate a rule or an expression over records.
    Eval(rules::EvalArgs),
    /// Which records a change of a rule flips (old → new), with explanations.
    Diff(diff::DiffArgs),
    /// Rewrite rule files in canonical style, keeping comments (`--check`: diff only).
    Fmt(fmt::FmtArgs),
    /// Run rule tests (`*.test.yaml`); exit 1 when a case fails.
    Test(test::TestArgs),
    /// Run, validate and draw sagas.
    #[command(subcommand)]
    Saga(saga::SagaCommand),
}

/// Run the command line.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Check(args) => rules::check(args, cli.error_format),
        Command::Parse(args) => rules::parse(args, cli.error_format),
        Command::Eval(args) => rules::eval(args, cli.error_format),
        Command::Diff(args) => diff::run(args, cli.error_format),
        Command::Fmt(args) => fmt::run(args, cli.error_format),
        Command::Test(args) => test::run(args, cli.error_format),
        Command::Saga(cmd) => saga::run(cmd, cli.error_format),
    }
}
