//! The `rulesaga` command line: see `rulesaga --help`. The whole CLI lives in the
//! library ([`rulesaga::cli`]), so an application can embed it with its own handlers.

fn main() -> std::process::ExitCode {
    rulesaga::cli::main()
}
