//! Before pest runs: the guards that keep parsing bounded, and the cuts of a
//! rule file into pieces. Size is checked first (E007); nesting of brackets,
//! runs of prefix `not` / `-` and `if ... then ... else ...` (open from its `if`
//! to the end of its `else` branch) is measured with a loop, outside strings
//! and comments (E008), so no parser ever recurses deeper than [`MAX_DEPTH`].

use super::lexical::{OPERATOR_WORDS, string_end, string_starts};
use super::limits::{MAX_DEPTH, MAX_SOURCE_BYTES};
use crate::diag::{Diagnostic, Span};

/// E007 when the text is too large.
pub(super) fn check_size(text: &str) -> Option<Diagnostic> {
    (text.len() > MAX_SOURCE_BYTES).then(|| {
        Diagnostic::error(
            "E007",
            Span::new(0, 0),
            format!(
                "input too large: {} bytes, the limit is {MAX_SOURCE_BYTES}",
                text.len()
            ),
        )
    })
}

/// Byte offsets of the lines whose first word is the `rule` keyword.
/// Strings cannot span lines, so a line start is never inside one.
pub(super) fn rule_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start_matches([' ', '\t', '\r']);
        if let Some(rest) = trimmed.strip_prefix("rule")
            && !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        {
            starts.push(line_start);
        }
        line_start += line.len();
    }
    starts
}

/// The `##` lines directly above the line starting at `line_start`, without the markers.
pub(super) fn doc_comment(text: &str, line_start: usize) -> Vec<String> {
    let before = text.get(..line_start).unwrap_or("");
    let mut doc: Vec<String> = before
        .lines()
        .rev()
        .map(|line| line.trim())
        .take_while(|line| line.starts_with("##"))
        .map(|line| {
            let rest = line.get(2..).unwrap_or("");
            rest.strip_prefix(' ').unwrap_or(rest).to_string()
        })
        .collect();
    doc.reverse();
    doc
}

/// Whether `<` after `list` opens a nesting level (in a schema) or is an operator.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ScanMode {
    Expr,
    Schema,
}

/// What the end of a piece of a rule file stands for in "expected ..." messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum EndMeaning {
    /// The end of the input or of a rule: reported as "unexpected".
    Nothing,
    /// The prelude ends where the first `rule` starts.
    Rule,
}

/// What the nesting scan found.
pub(super) struct Scan {
    /// End of the last token that is not whitespace or a comment.
    pub(super) last_token_end: usize,
}

/// Scan `text[start..end]` for nesting depth and unterminated strings without
/// recursion, so that pest only ever sees bounded nesting.
pub(super) fn scan_nesting(
    text: &str,
    start: usize,
    end: usize,
    mode: ScanMode,
) -> Result<Scan, Diagnostic> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Prev {
        /// Start, an operator, an opening bracket or a comma: `-` and `not` are prefix here.
        Operator,
        /// After an operand: `-` is subtraction, `not` starts `not in`.
        Operand,
    }
    /// What is open: a bracket, the `<` of `list<`, or an `if` (whose last
    /// branch is open once its `else` came, and ends with what ends an expression).
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Open {
        Bracket,
        Angle,
        If { has_else: bool },
    }
    let bytes = text.as_bytes();
    // For each open level: the prefix operators pending when it opened, and what it is.
    let mut open: Vec<(usize, Open)> = Vec::new();
    let mut open_prefix_total = 0usize;
    let mut pending = 0usize;
    let mut prev = Prev::Operator;
    let mut last_word_is_list = false;
    let mut last_token_end = start;
    let too_deep = |at: usize, len: usize| {
        Diagnostic::error(
            "E008",
            Span::new(at, at + len),
            format!("expression nested too deeply (more than {MAX_DEPTH} levels)"),
        )
        .with_help("split it into smaller rules")
    };
    // `if`s whose `else` branch ends here (at `then`, `else`, `,` or a closing bracket)
    let close_ifs = |open: &mut Vec<(usize, Open)>, open_prefix_total: &mut usize| {
        while let Some(&(prefix, Open::If { has_else: true })) = open.last() {
            open.pop();
            *open_prefix_total -= prefix;
        }
    };
    let mut i = start;
    while i < end {
        let b = bytes.get(i).copied().unwrap_or(b' ');
        let is_list_word = std::mem::take(&mut last_word_is_list);
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                last_word_is_list = is_list_word;
                i += 1;
                continue;
            }
            b'#' => {
                while i < end && bytes.get(i) != Some(&b'\n') {
                    i += 1;
                }
                last_word_is_list = is_list_word;
                continue;
            }
            _ if string_starts(bytes, i) => {
                let open_at = i;
                i = string_end(bytes, i, end).map_err(|()| unterminated(open_at))?;
                prev = Prev::Operand;
                pending = 0;
            }
            b'(' | b'[' | b'{' | b'<'
                if b != b'<' || (mode == ScanMode::Schema && is_list_word) =>
            {
                open.push((
                    pending,
                    if b == b'<' {
                        Open::Angle
                    } else {
                        Open::Bracket
                    },
                ));
                open_prefix_total += pending;
                pending = 0;
                if open.len() + open_prefix_total > MAX_DEPTH {
                    return Err(too_deep(i, 1));
                }
                prev = Prev::Operator;
                i += 1;
            }
            b')' | b']' | b'}' | b'>'
                if b != b'>' || open.last().is_some_and(|(_, kind)| *kind == Open::Angle) =>
            {
                close_ifs(&mut open, &mut open_prefix_total);
                if let Some((prefix, _)) = open.pop() {
                    open_prefix_total -= prefix;
                }
                pending = 0;
                prev = Prev::Operand;
                i += 1;
            }
            b'-' if prev == Prev::Operator => {
                pending += 1;
                if open.len() + open_prefix_total + pending > MAX_DEPTH {
                    return Err(too_deep(i, 1));
                }
                i += 1;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                let word_start = i;
                while i < end
                    && bytes
                        .get(i)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    i += 1;
                }
                let word = text.get(word_start..i).unwrap_or("");
                match word {
                    "not" if prev == Prev::Operator => {
                        pending += 1;
                        if open.len() + open_prefix_total + pending > MAX_DEPTH {
                            return Err(too_deep(word_start, 3));
                        }
                    }
                    "if" => {
                        open.push((pending, Open::If { has_else: false }));
                        open_prefix_total += pending;
                        pending = 0;
                        if open.len() + open_prefix_total > MAX_DEPTH {
                            return Err(too_deep(word_start, 2));
                        }
                        prev = Prev::Operator;
                    }
                    "then" | "else" => {
                        close_ifs(&mut open, &mut open_prefix_total);
                        if word == "else"
                            && let Some((_, kind @ Open::If { has_else: false })) = open.last_mut()
                        {
                            *kind = Open::If { has_else: true };
                        }
                        prev = Prev::Operator;
                        pending = 0;
                    }
                    _ if OPERATOR_WORDS.contains(&word) => {
                        prev = Prev::Operator;
                        pending = 0;
                    }
                    _ => {
                        prev = Prev::Operand;
                        pending = 0;
                        last_word_is_list = word == "list";
                    }
                }
            }
            b',' => {
                close_ifs(&mut open, &mut open_prefix_total);
                prev = Prev::Operator;
                pending = 0;
                i += 1;
            }
            _ => {
                // Any other punctuation is an operator or separator.
                prev = Prev::Operator;
                pending = 0;
                i += 1;
            }
        }
        last_token_end = i.min(end);
    }
    Ok(Scan { last_token_end })
}

/// E001 for a string that does not end on its line.
pub(super) fn unterminated(open_at: usize) -> Diagnostic {
    Diagnostic::error(
        "E001",
        Span::new(open_at, open_at + 1),
        "unterminated string",
    )
    .with_help("a string ends with the same quote on the same line")
}
