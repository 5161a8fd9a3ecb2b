//! Rendering diagnostics for people (miette, with carets) or for tools (JSON lines).

use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource};

use super::ErrorFormat;
use crate::{Diagnostics, Severity};

/// Render all diagnostics of one source to a string (stderr-ready).
pub fn diagnostics(diags: &Diagnostics, format: ErrorFormat) -> String {
    match format {
        ErrorFormat::Json => diags.to_json().iter().map(|j| format!("{j}\n")).collect(),
        ErrorFormat::Human => {
            let theme = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            {
                GraphicalTheme::unicode()
            } else {
                GraphicalTheme::unicode_nocolor()
            };
            let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
            let mut out = String::new();
            for d in &diags.items {
                let (line, col) = diags.source.line_col(d.span.start);
                let severity = match d.severity {
                    Severity::Error => miette::Severity::Error,
                    Severity::Warning => miette::Severity::Warning,
                };
                let len = (d.span.end.saturating_sub(d.span.start)) as usize;
                let label = LabeledSpan::new(d.label.clone(), d.span.start as usize, len);
                let mut md = MietteDiagnostic::new(format!(
                    "{}:{line}:{col}: {}",
                    diags.source.name, d.message
                ))
                .with_code(d.code)
                .with_severity(severity)
                .with_label(label);
                if let Some(help) = &d.help {
                    md = md.with_help(help.clone());
                }
                let report = miette::Report::new(md).with_source_code(NamedSource::new(
                    diags.source.name.clone(),
                    diags.source.text.clone(),
                ));
                if handler.render_report(&mut out, report.as_ref()).is_err() {
                    out.push_str(&diags.to_string());
                }
                out.push('\n');
            }
            out
        }
    }
}

/// Where a data error is: the data (or test) file, the 1-based line and
/// column when known, the record's index, the YAML path in a test file.
#[derive(Default)]
pub struct At<'a> {
    pub file: &'a str,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub record: Option<usize>,
    pub yaml_path: Option<&'a str>,
}

/// An error about data at a place: `file:line: record 3: message` for people;
/// for tools, a JSON object with `file`, `line`, `column`, `record` and
/// `yaml_path` as fields (those that are known) beside `message`.
pub fn data_error(at: &At<'_>, message: &str, format: ErrorFormat) -> String {
    match format {
        ErrorFormat::Json => {
            let mut j =
                serde_json::json!({"severity": "error", "message": message, "file": at.file});
            if let Some(map) = j.as_object_mut() {
                let fields = [
                    ("line", at.line.map(serde_json::Value::from)),
                    ("column", at.column.map(serde_json::Value::from)),
                    ("record", at.record.map(serde_json::Value::from)),
                    ("yaml_path", at.yaml_path.map(serde_json::Value::from)),
                ];
                for (key, value) in fields {
                    if let Some(value) = value {
                        map.insert(key.to_string(), value);
                    }
                }
            }
            format!("{j}\n")
        }
        ErrorFormat::Human => {
            let mut place = at.file.to_string();
            if let Some(line) = at.line {
                place.push_str(&format!(":{line}"));
                if let Some(column) = at.column {
                    place.push_str(&format!(":{column}"));
                }
            }
            if let Some(path) = at.yaml_path {
                place.push_str(&format!(": {path}"));
            }
            if let Some(record) = at.record {
                place.push_str(&format!(": record {record}"));
            }
            format!("error: {place}: {message}\n")
        }
    }
}

/// A command-line usage error (from clap) as one JSON object: `kind` (clap's
/// name for it, e.g. `UnknownArgument`) and the message.
pub fn usage_error_json(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let message = text
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_string();
    let kind = format!("{:?}", e.kind());
    format!(
        "{}\n",
        serde_json::json!({"severity": "error", "kind": kind, "message": message, "usage": text.trim_end()})
    )
}

/// True when the raw arguments ask for `--error-format json`: a usage error is
/// reported before the arguments are parsed.
pub fn wants_json_errors(args: &[std::ffi::OsString]) -> bool {
    args.iter()
        .zip(args.iter().skip(1))
        .any(|(a, b)| a == "--error-format" && b == "json")
        || args.iter().any(|a| a == "--error-format=json")
}

/// serde_json's message without the position it ends with (` at line 1 column 5`):
/// the fields of [`At`] carry it.
pub fn json_message(e: &serde_json::Error) -> String {
    let message = e.to_string();
    message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_string()
}

/// An error with an optional help line, in the chosen format.
pub fn rule_error(message: &str, help: Option<&str>, format: ErrorFormat) -> String {
    match help {
        Some(help) => plain_error_with_help(message, help, format),
        None => plain_error(message, format),
    }
}

/// A plain error with help text (did-you-mean, the fix), in the chosen format.
pub fn plain_error_with_help(message: &str, help: &str, format: ErrorFormat) -> String {
    match format {
        ErrorFormat::Json => format!(
            "{}\n",
            serde_json::json!({"severity": "error", "message": message, "help": help})
        ),
        ErrorFormat::Human => format!("error: {message}\n  help: {help}\n"),
    }
}

/// A plain error without a source position (I/O, usage, data), in the chosen format.
pub fn plain_error(message: &str, format: ErrorFormat) -> String {
    match format {
        ErrorFormat::Json => format!(
            "{}\n",
            serde_json::json!({"severity": "error", "message": message})
        ),
        ErrorFormat::Human => format!("error: {message}\n"),
    }
}
