//! Step one and a half: YAML text → [`SagaFile`], with serde-saphyr budgets on, and
//! YAML errors turned into diagnostics that carry a line, a column and a YAML path.

use std::collections::HashMap;

use serde_saphyr::Location;

use super::file::SagaFile;
use super::validate::MAX_FILE_BYTES;
use crate::diag::{Diagnostic, Source, Span, did_you_mean};

fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = 32;
    budget.max_aliases = 256;
    budget.max_anchors = 256;
    budget.max_nodes = 100_000;
    budget.max_total_scalar_bytes = MAX_FILE_BYTES;
    budget.max_documents = 1;
    options.budget = Some(budget);
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.with_snippet = false;
    options
}

pub(crate) fn parse_yaml(source: &Source) -> Result<SagaFile, Diagnostic> {
    let err = match serde_saphyr::from_str_with_options::<SagaFile>(&source.text, yaml_options()) {
        Ok(file) => return Ok(file),
        Err(err) => err,
    };
    let span = err
        .location()
        .map_or(Span::new(0, 0), |loc| location_span(source, &loc));
    let path = yaml_path_at(&source.text, span.start as usize);
    let d = match &err {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => Diagnostic::error("S002", span, format!("unknown key `{field}`"))
            .with_help_opt(did_you_mean(field, expected.iter().copied())),
        serde_saphyr::Error::DuplicateMappingKey { key, .. } => Diagnostic::error(
            "S003",
            span,
            match key {
                Some(k) => format!("duplicate key `{k}`"),
                None => "duplicate key".to_string(),
            },
        ),
        serde_saphyr::Error::SerdeMissingField { field, .. } => {
            Diagnostic::error("S004", span, format!("missing key `{field}`"))
        }
        other => Diagnostic::error("S001", span, clean_message(&other.to_string())),
    };
    Err(d.with_label(path))
}

/// serde-saphyr messages, in house style: first letter lowercase, no position suffix.
fn clean_message(m: &str) -> String {
    let first_line = m.lines().next().unwrap_or("invalid yaml");
    let trimmed = match first_line.find(" at line ") {
        Some(i) => &first_line[..i],
        None => first_line,
    };
    let trimmed = trimmed.trim_end_matches('.');
    let mut chars = trimmed.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
        None => "invalid yaml".to_string(),
    }
}

/// The byte span of a YAML location.
pub(crate) fn location_span(source: &Source, loc: &Location) -> Span {
    let span = loc.span();
    if let (Some(off), Some(len)) = (span.byte_offset(), span.byte_len()) {
        let start = usize::try_from(off)
            .unwrap_or(usize::MAX)
            .min(source.text.len());
        let end = start
            .saturating_add(usize::try_from(len).unwrap_or(0))
            .min(source.text.len());
        return Span::new(start, end);
    }
    // Fall back to line and column (characters, 1-based).
    let line = usize::try_from(loc.line()).unwrap_or(0);
    let col = usize::try_from(loc.column()).unwrap_or(0);
    let mut offset = 0;
    for (i, l) in source.text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let in_line: usize = l
                .chars()
                .take(col.saturating_sub(1))
                .map(char::len_utf8)
                .sum();
            return Span::new(offset + in_line, offset + in_line);
        }
        offset += l.len();
    }
    Span::new(offset, offset)
}

/// The YAML path of the block-style node at a byte offset (`steps[1].retry`), found
/// from indentation: good for the block style saga files use.
pub fn yaml_path_at(text: &str, offset: usize) -> String {
    // Stack of (indent, segment, is_sequence_item).
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut seq_counters: HashMap<(usize, usize), usize> = HashMap::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        if line_start > offset {
            break;
        }
        let content = line.trim_end_matches(['\n', '\r']);
        let mut indent = content.len() - content.trim_start().len();
        let mut rest = content.trim_start();
        if rest.is_empty() || rest.starts_with('#') {
            line_start += line.len();
            continue;
        }
        let cut_at = offset.saturating_sub(line_start);
        // Sequence items: `- ` (possibly several on one line).
        while rest.starts_with("- ") || rest == "-" {
            if line_start + indent > offset {
                break;
            }
            stack.retain(|(i, _)| *i < indent);
            let parent_depth = stack.len();
            let counter = seq_counters.entry((parent_depth, indent)).or_insert(0);
            let idx = *counter;
            *counter += 1;
            // Reset counters of deeper sequences.
            seq_counters.retain(|(d, _), _| *d <= parent_depth);
            stack.push((indent, format!("[{idx}]")));
            let after = rest.get(1..).unwrap_or("");
            let spaces = after.len() - after.trim_start().len();
            indent += 1 + spaces;
            rest = after.trim_start();
        }
        if let Some(colon) = key_colon(rest)
            && (line_start + indent <= offset || cut_at >= indent)
        {
            let key = rest[..colon].trim().trim_matches(['"', '\'']).to_string();
            stack.retain(|(i, _)| *i < indent);
            let depth = stack.len();
            seq_counters.retain(|(d, _), _| *d <= depth);
            stack.push((indent, key));
        }
        line_start += line.len();
    }
    let mut out = String::new();
    for (_, seg) in &stack {
        if seg.starts_with('[') || out.is_empty() {
            out.push_str(seg);
        } else {
            out.push('.');
            out.push_str(seg);
        }
    }
    out
}

/// Position of the `:` ending a mapping key at the start of `rest`.
fn key_colon(rest: &str) -> Option<usize> {
    if rest.starts_with(['"', '\'', '{', '[', '|', '>']) {
        return None;
    }
    let i = rest.find(':')?;
    let after = rest.get(i + 1..).unwrap_or("");
    (after.is_empty() || after.starts_with([' ', '\t'])).then_some(i)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn yaml_paths_from_indentation() {
        let text = "saga: x\nsteps:\n  - name: a\n    action: {noop: true}\n  - name: b\n    retry:\n      max_attempts: 0\n";
        let at = text.find("0\n").unwrap();
        assert_eq!(yaml_path_at(text, at), "steps[1].retry.max_attempts");
        let at = text.find("name: a").unwrap();
        assert_eq!(yaml_path_at(text, at), "steps[0].name");
    }
}
