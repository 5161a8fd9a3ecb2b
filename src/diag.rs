//! Source text, spans and diagnostics shared by every phase.
//!
//! The library never prints: every phase returns [`Diagnostic`] values that
//! point into a [`Source`] by byte [`Span`]. The CLI renders them (human text
//! with carets through `miette`, or JSON). Messages follow one style:
//! lowercase, no final period, user input in backticks, no Rust type names.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// A half-open byte range `start..end` into one source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// A span from byte offsets (saturating at `u32::MAX`; inputs are capped far below that).
    pub fn new(start: usize, end: usize) -> Span {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Span {
            start: clamp(start),
            end: clamp(end),
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// The span as a `usize` range.
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A named source text (a file, `<expr>` for `-e`, or `<stdin>`).
#[derive(Debug, PartialEq, Eq)]
pub struct Source {
    /// Display name, usually the path as the user gave it.
    pub name: String,
    /// The whole text.
    pub text: String,
}

impl Source {
    /// A new shared source.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Source> {
        Arc::new(Source {
            name: name.into(),
            text: text.into(),
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = (offset as usize).min(self.text.len());
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = self
            .text
            .get(line_start..offset)
            .unwrap_or("")
            .chars()
            .count()
            + 1;
        (line, col)
    }
}

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Stops the file from being used.
    Error,
    /// A lint: the file works, but probably not as meant.
    Warning,
}

/// One problem found in a source text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable code such as `E001`, documented in `docs/errors.md`.
    pub code: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// One line, lowercase, no final period.
    pub message: String,
    /// Where in the source.
    pub span: Span,
    /// Short text shown under the caret.
    pub label: Option<String>,
    /// A suggestion, such as ``did you mean `total`?``.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A new error.
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            span,
            label: None,
            help: None,
        }
    }

    /// A new warning.
    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }

    /// With a label under the caret.
    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    /// With a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// With a help line when there is one.
    pub fn with_help_opt(mut self, help: Option<String>) -> Diagnostic {
        self.help = help;
        self
    }
}

/// All diagnostics of one source, errors and warnings, in source order.
#[derive(Clone, Debug)]
pub struct Diagnostics {
    /// The text the spans point into.
    pub source: Arc<Source>,
    /// The problems found.
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// True when at least one item is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// A serialisable view with line and column numbers, for `--error-format json`.
    pub fn to_json(&self) -> Vec<serde_json::Value> {
        self.items
            .iter()
            .map(|d| {
                let (line, column) = self.source.line_col(d.span.start);
                let (end_line, end_column) = self.source.line_col(d.span.end);
                serde_json::json!({
                    "file": self.source.name,
                    "line": line,
                    "column": column,
                    "end_line": end_line,
                    "end_column": end_column,
                    "severity": d.severity,
                    "code": d.code,
                    "message": d.message,
                    "label": d.label,
                    "help": d.help,
                })
            })
            .collect()
    }
}

impl fmt::Display for Diagnostics {
    /// Plain `file:line:col: severity[code]: message` lines, one per item.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let (line, col) = self.source.line_col(d.span.start);
            let sev = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            write!(
                f,
                "{}:{line}:{col}: {sev}[{}]: {}",
                self.source.name, d.code, d.message
            )?;
            if let Some(help) = &d.help {
                write!(f, " (help: {help})")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The bytes of the file at `path`, or of standard input when `path` is `-` (as
/// every command that reads a file accepts), refused when longer than `limit`.
/// The error is the message to show after the file's name.
pub fn read_bytes(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let too_long = |n: u64| format!("the input is {n} bytes or more; the limit is {limit} bytes");
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        if bytes.len() as u64 > limit {
            return Err(too_long(limit.saturating_add(1)));
        }
        return Ok(bytes);
    }
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > limit {
        return Err(too_long(meta.len()));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

/// Edit distance suggestion: the closest candidate within a small distance
/// (1 for names of up to 2 characters, else 2), as starlark's `did_you_mean`.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The candidate [`did_you_mean`] would suggest, as data.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = if name.chars().count() <= 2 { 1 } else { 2 };
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (levenshtein(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, c.to_string()))
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let src = Source::new("x", "ab\ncdé f");
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(3), (2, 1));
        // `é` is two bytes but one column
        assert_eq!(src.line_col(7), (2, 4));
    }

    #[test]
    fn suggestions_are_capped() {
        assert_eq!(
            did_you_mean("totl", ["total", "tier"]).as_deref(),
            Some("did you mean `total`?")
        );
        assert_eq!(did_you_mean("zzzz", ["total", "tier"]), None);
        assert_eq!(did_you_mean("ab", ["xy"]), None);
    }
}
