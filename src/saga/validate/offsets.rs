//! Where the bytes of an expression are in the YAML text that holds it.
//!
//! A YAML scalar holds an expression verbatim (a plain scalar), or with quotes, escaped
//! quotes (`''`, `\"`), indentation and line breaks around it (quoted and block scalars).
//! Walking both texts side by side, skipping only those YAML-only characters, maps every
//! byte of the expression to its byte in the file, so a rules diagnostic points at the
//! exact place. Anything else (an escape such as `\t`) gives no map, and the diagnostic
//! points at the whole value instead.

use crate::diag::Span;

/// Maps expression byte offsets to file byte offsets.
pub(super) struct Offsets {
    /// `at[i]`: the file offset of expression byte `i`; `at[len]`: just past the last byte.
    at: Vec<u32>,
}

impl Offsets {
    /// The map of `text`, the value of the YAML scalar that starts at byte `start` of `yaml`.
    pub fn new(yaml: &str, start: usize, text: &str) -> Option<Offsets> {
        let mut y = start;
        let scalar = yaml.get(start..)?;
        if scalar.starts_with(['\'', '"']) {
            y += 1;
        } else if scalar.starts_with(['|', '>']) {
            // a block scalar starts on the line after its header
            y += scalar.find('\n')? + 1;
        }
        let mut at = Vec::with_capacity(text.len() + 1);
        for c in text.chars() {
            loop {
                let found = yaml.get(y..)?.chars().next()?;
                if found == c {
                    break;
                }
                if !matches!(found, ' ' | '\t' | '\n' | '\r' | '\'' | '"' | '\\') {
                    return None;
                }
                y += found.len_utf8();
            }
            for k in 0..c.len_utf8() {
                at.push(u32::try_from(y + k).ok()?);
            }
            y += c.len_utf8();
        }
        at.push(u32::try_from(y).ok()?);
        Some(Offsets { at })
    }

    /// The file span of an expression span (clamped to the expression).
    pub fn span(&self, span: Span) -> Span {
        let last = self.at.len() - 1;
        let start = (span.start as usize).min(last);
        let end = (span.end as usize).clamp(start, last);
        let file_end = if end > start {
            self.at[end - 1] + 1
        } else {
            self.at[start]
        };
        Span {
            start: self.at[start],
            end: file_end,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The file text under the expression span of `needle`.
    fn under(yaml: &str, text: &str, needle: &str) -> Option<String> {
        let start = yaml.find(": ").unwrap() + 2;
        let map = Offsets::new(yaml, start, text)?;
        let at = text.find(needle).unwrap();
        let span = map.span(Span::new(at, at + needle.len()));
        Some(yaml[span.range()].to_string())
    }

    #[test]
    fn every_scalar_style_maps_back() {
        let cases = [
            ("when: inptu.a > 1", "inptu.a > 1"),
            (
                "when: 'input.a == ''x'' or inptu.a'",
                "input.a == 'x' or inptu.a",
            ),
            (
                r#"when: "input.a == \"x\" or inptu.a""#,
                r#"input.a == "x" or inptu.a"#,
            ),
            (
                "when: |\n  input.a == 'é' or\n  inptu.a\n",
                "input.a == 'é' or\ninptu.a\n",
            ),
            (
                "when: >-\n  input.a == 1 or\n  inptu.a\n",
                "input.a == 1 or inptu.a",
            ),
            (
                "when: input.a == 1 or\n  inptu.a\n",
                "input.a == 1 or inptu.a",
            ),
        ];
        for (yaml, text) in cases {
            assert_eq!(
                under(yaml, text, "inptu").as_deref(),
                Some("inptu"),
                "{yaml}"
            );
            assert_eq!(under(yaml, text, "a").as_deref(), Some("a"), "{yaml}");
        }
    }

    #[test]
    fn escapes_give_no_map() {
        assert!(Offsets::new(r#"when: "a\tb""#, 6, "a\tb").is_none());
        assert!(Offsets::new("when: abc", 6, "abd").is_none());
        assert!(Offsets::new("when: ab", 6, "abc").is_none());
    }

    #[test]
    fn spans_are_clamped() {
        let map = Offsets::new("when: ab", 6, "ab").unwrap();
        assert_eq!(map.span(Span::new(0, 99)), Span::new(6, 8));
        assert_eq!(map.span(Span::new(99, 99)), Span::new(8, 8));
        assert_eq!(map.span(Span::new(1, 0)), Span::new(7, 7));
    }
}
