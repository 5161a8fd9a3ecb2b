//! The command line: argument parsing and rendering, the only place that prints.
//!
//! The whole CLI is in the library so that an application can embed it with its own
//! saga handlers: [`run_with`] is `rulesaga` with the given handlers, and the
//! `rulesaga` binary is [`main`], that call with [`default_handlers`]. Logs
//! (`tracing`) go to standard error, filtered by `RUST_LOG` (default: errors only), as text or JSON
//! (`--log-format`); the subscriber is installed here and nowhere in the library.
//!
//! Exit codes: 0 success, 1 errors in rules or sagas (or a saga that did not
//! complete), 2 usage or data errors, 3 the saga store failed, 4 another process
//! holds the saga.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

#[macro_use]
mod out;
mod data;
mod diff;
mod files;
mod fmt;
mod help;
mod output;
mod progress;
mod render;
mod rules;
mod saga;
mod serve;
mod table;
mod test;

pub use saga::default_handlers;

use crate::saga::HandlerRegistry;

/// Declarative business rules and sagas.
#[derive(Parser, Debug)]
#[command(name = "rulesaga", version, about)]
struct Cli {
    /// How to print diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = ErrorFormat::Human)]
    error_format: ErrorFormat,
    /// How to print logs (to standard error; which ones: `RUST_LOG`, e.g. `rulesaga=info`; default: errors only).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// `--error-format`
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ErrorFormat {
    /// Text with carets.
    Human,
    /// One JSON object per diagnostic.
    Json,
}

/// `--log-format`
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// One line per event.
    Text,
    /// One JSON object per event.
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
    /// Run, validate, draw and operate sagas.
    #[command(subcommand)]
    Saga(saga::SagaCommand),
    /// Serve rules decisions and sagas over HTTP (JSON), until SIGTERM or SIGINT.
    Serve(serve::ServeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(help::CompletionsArgs),
    /// Print the man page (roff), or write one per command with `--dir`.
    Man(help::ManArgs),
}

/// The `rulesaga` command tree with every subcommand's examples (for
/// completions, man pages and tests that walk it).
pub fn command() -> clap::Command {
    help::with_examples(Cli::command())
}

/// The `rulesaga` command line, with [`default_handlers`].
pub fn main() -> ExitCode {
    run_with(default_handlers())
}

/// The `rulesaga` command line (from the process's arguments) with `handlers` as the
/// saga handlers: `myapp saga run`, `myapp saga recover` and the operator commands
/// then work for sagas whose handlers only `myapp` registers.
pub fn run_with(handlers: HandlerRegistry) -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = command()
        .try_get_matches_from(&args)
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && render::wants_json_errors(&args) => {
            err!("{}", render::usage_error_json(&e));
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    install_logging(cli.log_format);
    match cli.command {
        Command::Check(args) => rules::check(args, cli.error_format),
        Command::Parse(args) => rules::parse(args, cli.error_format),
        Command::Eval(args) => rules::eval(args, cli.error_format),
        Command::Diff(args) => diff::run(args, cli.error_format),
        Command::Fmt(args) => fmt::run(args, cli.error_format),
        Command::Test(args) => test::run(args, cli.error_format),
        Command::Saga(cmd) => saga::run(cmd, handlers, cli.error_format),
        Command::Serve(args) => serve::run(args, handlers, cli.error_format),
        Command::Completions(args) => help::completions(&args),
        Command::Man(args) => help::man(&args, cli.error_format),
    }
}

/// Logs to standard error, filtered by `RUST_LOG` (default: warnings). A closed
/// standard error loses the logs and nothing else.
fn install_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("error"));
    let writer = || LogWriter;
    let installed = match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(false)
            .try_init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(writer)
            .try_init(),
    };
    // a subscriber set by an embedding application stays
    let _ = installed;
}

/// Standard error through [`out`], so a closed stream never panics.
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        err!("{}", String::from_utf8_lossy(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
