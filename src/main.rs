//! The `rulesaga` command line: see `rulesaga --help`.

fn main() -> std::process::ExitCode {
    rulesaga_cli::main()
}

#[path = "cli/mod.rs"]
mod rulesaga_cli;
