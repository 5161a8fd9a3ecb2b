//! `rulesaga fmt FILE...`: rewrite rule files in canonical style, or `--check` them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::rules::{EXIT_DATA, EXIT_RULES};
use super::{ErrorFormat, render};
use crate::Source;
use crate::rules::format::{FormatError, format_rule_file};
use crate::rules::read_text;

/// `rulesaga fmt`
#[derive(Args, Debug)]
pub struct FmtArgs {
    /// Rule files, or folders to search for `*.rules`.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Change nothing: print the diff and exit 1 when a file is not formatted.
    #[arg(long)]
    check: bool,
}

/// Rule files under the given paths (folders searched recursively), sorted.
fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    super::files::find(paths, super::files::is_rule_file)
}

/// A unified diff of two texts, `--- a` / `+++ b` headers, 3 lines of context.
fn unified_diff(old: &str, new: &str, name: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{name} (original)"),
            &format!("{name} (formatted)"),
        )
        .to_string()
}

/// `rulesaga fmt`
pub fn run(args: FmtArgs, format: ErrorFormat) -> ExitCode {
    let files = match rule_files(&args.paths) {
        Ok(f) => f,
        Err(e) => {
            err!("{}", render::plain_error(&e, format));
            return ExitCode::from(EXIT_DATA);
        }
    };
    let mut code = ExitCode::SUCCESS;
    let mut n_changed = 0;
    for path in &files {
        let name = path.display().to_string();
        let text = match read_text(path) {
            Ok(t) => t,
            Err(e) => {
                err!("{}", render::plain_error(&e.to_string(), format));
                code = ExitCode::from(EXIT_DATA);
                continue;
            }
        };
        let source = Source::new(name.clone(), text);
        let formatted = match format_rule_file(&source) {
            Ok(f) => f,
            Err(FormatError::Parse(d)) => {
                err!("{}", render::diagnostics(&d, format));
                code = ExitCode::from(EXIT_RULES);
                continue;
            }
            Err(e) => {
                err!("{}", render::plain_error(&e.to_string(), format));
                code = ExitCode::from(EXIT_RULES);
                continue;
            }
        };
        let stdin = path.as_os_str() == "-";
        if formatted.text == source.text {
            if stdin && !args.check {
                out!("{}", formatted.text);
            }
            continue;
        }
        n_changed += 1;
        for span in &formatted.moved {
            let (line, _) = source.line_col(span.start);
            let note = "a comment inside a rule moves above the rule";
            match format {
                ErrorFormat::Json => errln!(
                    "{}",
                    serde_json::json!({"severity": "note", "message": note, "file": name, "line": line})
                ),
                ErrorFormat::Human => errln!("note: {name}:{line}: {note}"),
            }
        }
        if args.check {
            out!("{}", unified_diff(&source.text, &formatted.text, &name));
            code = ExitCode::from(EXIT_RULES);
        } else if stdin {
            // standard input is formatted to standard output
            out!("{}", formatted.text);
        } else if let Err(e) = std::fs::write(path, &formatted.text) {
            err!(
                "{}",
                render::plain_error(&format!("cannot write `{name}`: {e}"), format)
            );
            code = ExitCode::from(EXIT_DATA);
        } else if format == ErrorFormat::Human {
            errln!("formatted {name}");
        }
    }
    if args.check && n_changed > 0 && format == ErrorFormat::Human {
        errln!(
            "{n_changed} of {} file{} would be reformatted",
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        );
    }
    code
}
