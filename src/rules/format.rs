//! The formatter: a rule file's text → the same file in canonical style, comments kept.
//!
//! 1. Parse the file (a file that does not parse is never formatted);
//! 2. scan its `#` comments (outside strings) and attach each to a place the
//!    printer can reproduce: above a declaration or schema field, at the end of
//!    its line, or at the end of the file. A comment inside a rule's body has no
//!    such place: it moves above the rule (reported in [`Formatted::moved`]);
//! 3. print each declaration with [`print_rule_file`] (the canonical printer),
//!    and the comments around it;
//! 4. check the result: it must parse to the same syntax tree and hold the same
//!    comments, or the file is refused ([`FormatError::Unsafe`]).
//!
//! Style: the printer's, plus what rustfmt keeps from the author: up to one blank
//! line between declarations, fields and comments, and the spacing in front of an
//! end-of-line comment (so hand-aligned comments stay aligned).

use std::sync::Arc;

use super::ast::{FieldDecl, RuleFile, SchemaDecl};
use super::lexical;
use super::{parse_rule_file, print_rule_file};
use crate::diag::{Diagnostics, Source, Span};

/// A formatted rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Formatted {
    /// The canonical text.
    pub text: String,
    /// Comments that were inside a rule's body and now stand above the rule.
    pub moved: Vec<Span>,
}

/// Why a file was not formatted.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The file does not parse.
    #[error("{0}")]
    Parse(Diagnostics),
    /// Formatting would have changed the rules or lost a comment (a bug in the
    /// formatter; the file is left alone).
    #[error("{file}: not formatted: {reason}")]
    Unsafe {
        /// The file.
        file: String,
        /// What would have changed.
        reason: String,
    },
}

/// A `#` comment in the source.
#[derive(Clone, Debug)]
struct Comment {
    /// From `#` to the end of the line, without `\r`.
    span: Span,
    /// Only whitespace before it on its line.
    own_line: bool,
}

/// Every `#` comment outside string literals (strings never span lines; a
/// raw string `r"..."` has no escapes).
fn scan_comments(text: &str) -> Vec<Comment> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut line_has_code = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\n' => {
                line_has_code = false;
                i += 1;
            }
            b'#' => {
                let rest = text.get(i..).unwrap_or("");
                let len = rest.find('\n').unwrap_or(rest.len());
                let body = rest.get(..len).unwrap_or("").trim_end_matches('\r');
                out.push(Comment {
                    span: Span::new(i, i + body.len()),
                    own_line: !line_has_code,
                });
                line_has_code = false;
                i += len;
            }
            _ if lexical::string_starts(bytes, i) => {
                line_has_code = true;
                // an unterminated string ends at its line (the file does not parse anyway)
                i = lexical::string_end(bytes, i, bytes.len()).unwrap_or_else(|()| {
                    bytes
                        .get(i..)
                        .and_then(|r| r.iter().position(|c| *c == b'\n'))
                        .map_or(bytes.len(), |n| i + n)
                });
            }
            b if lexical::is_ident_char(b) => {
                // a whole word, so that the `r` of `number"` never starts a raw string
                line_has_code = true;
                while bytes.get(i).is_some_and(|c| lexical::is_ident_char(*c)) {
                    i += 1;
                }
            }
            b if b.is_ascii_whitespace() => i += 1,
            _ => {
                line_has_code = true;
                i += 1;
            }
        }
    }
    out
}

fn line_start(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .and_then(|b| b.rfind('\n'))
        .map_or(0, |i| i + 1)
}

/// Is the line just before the line holding `offset` blank (and not the file's start)?
fn blank_before(text: &str, offset: usize) -> bool {
    let start = line_start(text, offset);
    if start == 0 {
        return false;
    }
    let prev_start = line_start(text, start - 1);
    text.get(prev_start..start - 1)
        .is_some_and(|l| l.trim().is_empty())
}

/// The whitespace between the code and an end-of-line comment, kept when it is spaces.
fn padding(text: &str, comment: &Comment) -> String {
    let before = text.get(..comment.span.start as usize).unwrap_or("");
    let gap = before.len() - before.trim_end().len();
    let ws = before.get(before.len() - gap..).unwrap_or("");
    if !ws.is_empty() && ws.chars().all(|c| c == ' ') {
        ws.to_string()
    } else {
        "  ".to_string()
    }
}

/// An own-line comment to print, with the author's blank line before it.
#[derive(Clone, Debug, Default)]
struct Leading {
    text: String,
    blank_before: bool,
}

/// Comments attached to one declaration or field.
#[derive(Clone, Debug, Default)]
struct Attached {
    leading: Vec<Leading>,
    /// Padding and text of the end-of-line comment.
    trailing: Option<(String, String)>,
}

impl Attached {
    fn push_trailing(&mut self, pad: String, text: String) {
        if let Some((_, previous)) = self.trailing.take() {
            self.leading.push(Leading {
                text: previous,
                blank_before: false,
            });
        }
        self.trailing = Some((pad, text));
    }
}

/// Output with at most one blank line in a row and none at the start.
struct Emitter {
    out: String,
}

impl Emitter {
    fn blank(&mut self, wanted: bool) {
        if wanted && !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn line(&mut self, indent: &str, text: &str) {
        self.out.push_str(indent);
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn leading(&mut self, indent: &str, comments: &[Leading]) {
        for c in comments {
            self.blank(c.blank_before);
            self.line(indent, &c.text);
        }
    }
}

fn field_text(field: &FieldDecl, span: Span) -> String {
    let file = RuleFile {
        schema: Some(SchemaDecl {
            fields: vec![field.clone()],
            span,
        }),
        rules: Vec::new(),
    };
    let printed = print_rule_file(&file);
    printed.lines().nth(1).unwrap_or("").trim().to_string()
}

/// Which comments are the `##` doc lines right above a rule (part of the syntax tree).
fn doc_flags(text: &str, file: &RuleFile, comments: &[Comment]) -> Vec<bool> {
    let mut is_doc = vec![false; comments.len()];
    for rule in &file.rules {
        let mut start = line_start(text, rule.span.start as usize);
        while start > 0 {
            let prev = line_start(text, start - 1);
            let line = text.get(prev..start - 1).unwrap_or("").trim();
            if !line.starts_with("##") {
                break;
            }
            if let Some(i) = comments.iter().position(|c| c.span.start as usize >= prev) {
                is_doc[i] = true;
            }
            start = prev;
        }
    }
    is_doc
}

/// Format a rule file, keeping every comment.
pub fn format_rule_file(source: &Arc<Source>) -> Result<Formatted, FormatError> {
    let file = parse_rule_file(source).map_err(FormatError::Parse)?;
    let text = source.text.as_str();
    let comments = scan_comments(text);
    let comment_text = |c: &Comment| text.get(c.span.range()).unwrap_or("").to_string();

    // doc comments (`##` lines right above a rule) are part of the syntax tree
    let is_doc = doc_flags(text, &file, &comments);

    let n_rules = file.rules.len();
    let mut schema_att = Attached::default();
    let mut field_att: Vec<Attached> = file
        .schema
        .as_ref()
        .map_or(Vec::new(), |s| vec![Attached::default(); s.fields.len()]);
    let mut before_close: Vec<Leading> = Vec::new();
    let mut rule_att = vec![Attached::default(); n_rules];
    let mut rule_moved: Vec<Vec<Leading>> = vec![Vec::new(); n_rules];
    let mut footer: Vec<Leading> = Vec::new();
    let mut moved = Vec::new();

    // declarations in source order: None for the schema, Some(i) for rule i
    let mut decls: Vec<(Span, Option<usize>)> = Vec::new();
    if let Some(s) = &file.schema {
        decls.push((s.span, None));
    }
    decls.extend(
        file.rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.span, Some(i))),
    );
    decls.sort_by_key(|(span, _)| span.start);

    for (ci, c) in comments.iter().enumerate() {
        if is_doc[ci] {
            continue;
        }
        let at = c.span.start;
        let body = comment_text(c);
        let leading = Leading {
            text: body.clone(),
            blank_before: blank_before(text, at as usize),
        };
        let inside = decls
            .iter()
            .find(|(span, _)| span.start <= at && at < span.end);
        match inside {
            Some((_, Some(rule))) => {
                moved.push(c.span);
                rule_moved[*rule].push(Leading {
                    text: body,
                    blank_before: false,
                });
            }
            Some((_, None)) => {
                let fields = file.schema.as_ref().map_or(&[][..], |s| &s.fields[..]);
                if c.own_line {
                    match fields.iter().position(|f| f.name.span.start > at) {
                        Some(f) => field_att[f].leading.push(leading),
                        None => before_close.push(leading),
                    }
                } else {
                    match fields.iter().rposition(|f| f.name.span.start < at) {
                        Some(f) => field_att[f].push_trailing(padding(text, c), body),
                        None => match field_att.first_mut() {
                            Some(first) => first.leading.push(leading),
                            None => before_close.push(leading),
                        },
                    }
                }
            }
            None => {
                let previous = decls.iter().rev().find(|(span, _)| span.end <= at);
                let same_line = previous.filter(|(span, _)| {
                    !c.own_line
                        && !text
                            .get(span.end as usize..at as usize)
                            .unwrap_or("\n")
                            .contains('\n')
                });
                match same_line {
                    Some((_, None)) => schema_att.push_trailing(padding(text, c), body),
                    Some((_, Some(rule))) => {
                        rule_att[*rule].push_trailing(padding(text, c), body);
                    }
                    None => match decls.iter().find(|(span, _)| span.start > at) {
                        Some((_, None)) => schema_att.leading.push(leading),
                        Some((_, Some(rule))) => rule_att[*rule].leading.push(leading),
                        None => footer.push(leading),
                    },
                }
            }
        }
    }

    let mut em = Emitter { out: String::new() };
    for (span, decl) in &decls {
        match decl {
            None => {
                let Some(schema) = &file.schema else { continue };
                em.leading("", &schema_att.leading);
                em.blank(blank_before(text, span.start as usize));
                let trailing = schema_att
                    .trailing
                    .as_ref()
                    .map(|(pad, t)| format!("{pad}{t}"))
                    .unwrap_or_default();
                if schema.fields.is_empty() && before_close.is_empty() {
                    em.line("", &format!("schema {{}}{trailing}"));
                    continue;
                }
                em.line("", "schema {");
                for (field, att) in schema.fields.iter().zip(&field_att) {
                    em.leading("  ", &att.leading);
                    em.blank(blank_before(text, field.name.span.start as usize));
                    let mut line = field_text(field, schema.span);
                    if let Some((pad, t)) = &att.trailing {
                        line.push_str(pad);
                        line.push_str(t);
                    }
                    em.line("  ", &line);
                }
                em.leading("  ", &before_close);
                em.line("", &format!("}}{trailing}"));
            }
            Some(i) => {
                let Some(rule) = file.rules.get(*i) else {
                    continue;
                };
                let att = &rule_att[*i];
                em.leading("", &att.leading);
                em.leading("", &rule_moved[*i]);
                let first_line = if rule.doc.is_empty() {
                    span.start as usize
                } else {
                    // the first `##` line above the rule
                    let mut start = line_start(text, span.start as usize);
                    for _ in 0..rule.doc.len() {
                        start = line_start(text, start.saturating_sub(1));
                    }
                    start
                };
                let last_comment_is_doc_like = att
                    .leading
                    .iter()
                    .chain(&rule_moved[*i])
                    .last()
                    .is_some_and(|c| c.text.starts_with("##"));
                // a plain `##` comment right above a rule would read back as its doc
                em.blank(blank_before(text, first_line) || last_comment_is_doc_like);
                let printed = print_rule_file(&RuleFile {
                    schema: None,
                    rules: vec![rule.clone()],
                });
                let mut printed = printed.trim_end_matches('\n').to_string();
                if let Some((pad, t)) = &att.trailing {
                    printed.push_str(pad);
                    printed.push_str(t);
                }
                em.line("", &printed);
            }
        }
    }
    em.leading("", &footer);

    let formatted = Formatted {
        text: em.out,
        moved,
    };
    verify(source, &file, &comments, &formatted.text)?;
    Ok(formatted)
}

/// The formatted text must parse to the same tree and keep every comment.
fn verify(
    source: &Arc<Source>,
    file: &RuleFile,
    comments: &[Comment],
    formatted: &str,
) -> Result<(), FormatError> {
    let unsafe_ = |reason: &str| FormatError::Unsafe {
        file: source.name.clone(),
        reason: reason.to_string(),
    };
    let again = Source::new(source.name.clone(), formatted.to_string());
    let reparsed = parse_rule_file(&again).map_err(|_| unsafe_("the result does not parse"))?;
    if &reparsed != file {
        return Err(unsafe_("the result would mean something else"));
    }
    // doc comments are compared as part of the tree; every other comment verbatim
    let texts = |text: &str, file: &RuleFile, cs: &[Comment]| {
        let docs = doc_flags(text, file, cs);
        let mut v: Vec<String> = cs
            .iter()
            .zip(docs)
            .filter(|(_, doc)| !doc)
            .map(|(c, _)| text.get(c.span.range()).unwrap_or("").to_string())
            .collect();
        v.sort();
        v
    };
    let after = scan_comments(formatted);
    if texts(&source.text, file, comments) != texts(formatted, &reparsed, &after) {
        return Err(unsafe_("a comment would be lost"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn fmt(text: &str) -> String {
        format_rule_file(&Source::new("t.rules", text))
            .unwrap()
            .text
    }

    #[test]
    fn comments_outside_strings() {
        let cs = scan_comments("rule a = b == \"#x\" # c\n  # d\nrule e = 'it\\'s # no' #f\r\n");
        let texts: Vec<bool> = cs.iter().map(|c| c.own_line).collect();
        assert_eq!(texts, [false, true, false]);
        assert_eq!(cs.len(), 3);
        // a raw string has no escapes: its `\` does not hide the closing quote
        let cs = scan_comments("rule a = x matches r\"a#b\\\" # c\nrule b = number\"#\" # d\n");
        let at: Vec<usize> = cs.iter().map(|c| c.span.start as usize).collect();
        assert_eq!(at, [27, 50]);
        assert_eq!(
            fmt("rule a = x  matches r\"^\\d+$\"   # digits\n"),
            "rule a = x matches r\"^\\d+$\"   # digits\n"
        );
    }

    #[test]
    fn canonical_spacing_and_comment_places() {
        let text = "# header\nschema{a:int # the a\n\n  # about b\n b ?: string,c: list<int>}\nrule   x(t=1)=a>t   and\n  # inside\n  b==\"#\"  # end\n\n\n## doc\nrule y = x # trailing\n# footer\n";
        let out = fmt(text);
        assert_eq!(
            out,
            "# header\nschema {\n  a: int # the a\n\n  # about b\n  b?: string\n  c: list<int>\n}\n# inside\nrule x(t = 1) = a > t and b == \"#\"  # end\n\n## doc\nrule y = x # trailing\n# footer\n"
        );
        assert_eq!(fmt(&out), out);
    }

    #[test]
    fn a_plain_double_hash_comment_never_becomes_a_doc() {
        let text = "rule a = 1 and\n  ## not a doc\n  2\n";
        let out = fmt(text);
        assert_eq!(out, "## not a doc\n\nrule a = 1 and 2\n");
        assert_eq!(fmt(&out), out);
    }

    #[test]
    fn empty_schema_keeps_its_comments() {
        assert_eq!(
            fmt("schema {\n # nothing yet\n}\n"),
            "schema {\n  # nothing yet\n}\n"
        );
        assert_eq!(fmt("schema {}  # none\n"), "schema {}  # none\n");
    }

    #[test]
    fn files_that_do_not_parse_are_refused() {
        let err = format_rule_file(&Source::new("t.rules", "rule a = (")).unwrap_err();
        assert!(matches!(err, FormatError::Parse(_)));
    }
}
