//! The words and literals of the language, decoded once for both parsers.
//!
//! The pest grammar (`grammar/spec.pest`) says which texts are tokens; this
//! module says what they mean: the keyword table, and the decoding of string
//! escapes, numbers, durations, dates and datetimes. The pest driver
//! (`parse.rs`) turns a decoding failure into a diagnostic, the fast parser
//! (`fastparse.rs`) into "give up", so the two can never decode a literal
//! differently. Data read against a schema (`schema.rs`) and date strings met
//! while evaluating (`ops.rs`) use the same decoders.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta};

use super::ast::Literal;

/// Reserved words, which cannot be identifiers (the grammar's `keyword` rule;
/// a test checks the two lists agree).
pub const KEYWORDS: [&str; 20] = [
    "and",
    "or",
    "not",
    "in",
    "is",
    "null",
    "true",
    "false",
    "between",
    "contains",
    "starts_with",
    "ends_with",
    "matches",
    "any",
    "all",
    "rule",
    "schema",
    "if",
    "then",
    "else",
];

/// The keywords that are infix or prefix operators (or, like `then`, come
/// before an operand): after one, `-` and `not` are prefix.
pub(crate) const OPERATOR_WORDS: [&str; 13] = [
    "and",
    "or",
    "not",
    "in",
    "is",
    "between",
    "contains",
    "starts_with",
    "ends_with",
    "matches",
    "if",
    "then",
    "else",
];

/// Is `word` a reserved word?
pub(crate) fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}

/// Can this byte start an identifier (or a key after `.` and `$`)?
pub(crate) fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

/// Can this byte continue an identifier?
pub(crate) fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Is `text` a word: `[A-Za-z_][A-Za-z0-9_]*` (keywords included)?
pub(crate) fn is_word(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.first().is_some_and(|b| is_ident_start(*b)) && bytes.iter().all(|b| is_ident_char(*b))
}

/// Does a string literal start at `i`: a quote, or `r` and a quote (a raw
/// string)? `i` must be the start of a token (not inside a word).
pub(crate) fn string_starts(bytes: &[u8], i: usize) -> bool {
    match bytes.get(i) {
        Some(b'"' | b'\'') => true,
        Some(b'r') => matches!(bytes.get(i + 1), Some(b'"' | b'\'')),
        _ => false,
    }
}

/// The extent of the string literal starting at `i` (see [`string_starts`]),
/// as the grammar's `string` and `raw_string` read it: `Ok` with the position
/// after the closing quote, or `Err` when the line (or the text, at `end`)
/// ends first. In a raw string a backslash is just a backslash.
pub(crate) fn string_end(bytes: &[u8], i: usize, end: usize) -> Result<usize, ()> {
    let raw = bytes.get(i) == Some(&b'r');
    let open = if raw { i + 1 } else { i };
    let quote = *bytes.get(open).ok_or(())?;
    let mut j = open + 1;
    while j < end {
        match bytes.get(j) {
            None | Some(b'\n') => return Err(()),
            Some(b'\\') if !raw => {
                // an escape takes the next character, which cannot be a new line
                if matches!(bytes.get(j + 1), None | Some(b'\n')) {
                    return Err(());
                }
                j += 2;
            }
            Some(c) if *c == quote => return Ok(j + 1),
            Some(_) => j += 1,
        }
    }
    Err(())
}

/// The shape of a `numeric` token, told apart by its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Numeric {
    Int,
    Float,
    Duration,
    Date,
    DateTime,
}

/// The shape of a numeric literal accepted by the grammar: a date prefix is
/// four digits and a `-` (no other shape has four digits then `-`); durations have a
/// unit letter; floats a `.` or an exponent.
pub(crate) fn numeric_kind(text: &str) -> Numeric {
    let bytes = text.as_bytes();
    let date_prefix = bytes.get(4) == Some(&b'-')
        && bytes
            .get(..4)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if date_prefix {
        if bytes.len() == 10 {
            Numeric::Date
        } else {
            Numeric::DateTime
        }
    } else if bytes.iter().any(|b| b"wdhms".contains(b)) {
        Numeric::Duration
    } else if bytes.iter().any(|b| b".eE".contains(b)) {
        Numeric::Float
    } else {
        Numeric::Int
    }
}

/// A number literal that does not fit its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutOfRange {
    /// An int outside 64 bits (E002).
    Int,
    /// A float that is not finite (E003).
    Float,
    /// A duration beyond 64-bit milliseconds (E006).
    Duration,
}

/// Decode an int, float or duration token (`numeric_kind` says which), negated
/// when a `-` came right before it: `-9223372036854775808` fits.
pub(crate) fn number(text: &str, negative: bool) -> Result<Literal, OutOfRange> {
    match numeric_kind(text) {
        Numeric::Float => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Literal::Float(if negative { -f } else { f })),
            _ => Err(OutOfRange::Float),
        },
        Numeric::Duration => match duration_ms(text) {
            Some(ms) => Ok(Literal::Duration(if negative { -ms } else { ms })),
            None => Err(OutOfRange::Duration),
        },
        // dates are not numbers; the callers never ask
        Numeric::Int | Numeric::Date | Numeric::DateTime => {
            let n: u64 = text.parse().map_err(|_| OutOfRange::Int)?;
            let n = if negative {
                0i64.checked_sub_unsigned(n)
            } else {
                i64::try_from(n).ok()
            };
            n.map(Literal::Int).ok_or(OutOfRange::Int)
        }
    }
}

/// Milliseconds of a duration such as `30d` or `1h30m`, or `None` when the
/// text is not one (or overflows 64-bit milliseconds).
pub(crate) fn duration_ms(text: &str) -> Option<i64> {
    if text.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (digits, after) = rest.split_at(digits_end);
        let unit_len = if after.starts_with("ms") { 2 } else { 1 };
        let (unit, after) = after.split_at(unit_len.min(after.len()));
        let scale: i64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return None,
        };
        let n: i64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(scale)?)?;
        rest = after;
    }
    Some(total)
}

/// A duration written as in rules (`30d`, `1h30m`, `250ms`): literals and data strings.
pub(crate) fn duration(text: &str) -> Option<TimeDelta> {
    TimeDelta::try_milliseconds(duration_ms(text)?)
}

/// A calendar date `YYYY-MM-DD`.
pub(crate) fn date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// An RFC 3339 datetime.
pub(crate) fn datetime(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok()
}

/// One invalid escape in a string body: its byte range in the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BadEscape {
    pub start: usize,
    pub end: usize,
    /// A `\u{...}` escape (which gets its own help).
    pub unicode: bool,
}

/// Decode the escapes of a string body (the text between the quotes):
/// `\" \' \\ \n \t \r \u{1F600}`. Every invalid escape is reported.
pub(crate) fn unescape(raw: &str) -> Result<String, Vec<BadEscape>> {
    let mut out = String::with_capacity(raw.len());
    let mut bad = Vec::new();
    let mut chars = raw.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((_, esc)) = chars.next() else {
            bad.push(BadEscape {
                start: i,
                end: i + 1,
                unicode: false,
            });
            continue;
        };
        let decoded = match esc {
            '"' => '"',
            '\'' => '\'',
            '\\' => '\\',
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'u' => {
                // `\u{` 1 to 6 hex digits `}`
                let mut end = i + 2;
                let mut code = None;
                if chars.peek().is_some_and(|(_, c)| *c == '{') {
                    chars.next();
                    end += 1;
                    let mut digits = String::new();
                    while let Some(&(j, d)) = chars.peek() {
                        if d == '}' {
                            chars.next();
                            end = j + 1;
                            code = (1..=6)
                                .contains(&digits.len())
                                .then(|| u32::from_str_radix(&digits, 16).ok())
                                .flatten()
                                .and_then(char::from_u32);
                            break;
                        }
                        if !d.is_ascii_hexdigit() || digits.len() > 6 {
                            end = j;
                            break;
                        }
                        digits.push(d);
                        chars.next();
                        end = j + 1;
                    }
                }
                match code {
                    Some(c) => c,
                    None => {
                        bad.push(BadEscape {
                            start: i,
                            end,
                            unicode: true,
                        });
                        continue;
                    }
                }
            }
            other => {
                bad.push(BadEscape {
                    start: i,
                    end: i + 1 + other.len_utf8(),
                    unicode: false,
                });
                continue;
            }
        };
        out.push(decoded);
    }
    if bad.is_empty() { Ok(out) } else { Err(bad) }
}

fn digit_at(bytes: &[u8], i: usize) -> bool {
    bytes.get(i).is_some_and(u8::is_ascii_digit)
}

fn ident_char_at(bytes: &[u8], i: usize) -> bool {
    bytes.get(i).copied().is_some_and(is_ident_char)
}

/// End of the grammar's `numeric` token starting at `start` (a digit), or
/// `None` where the grammar fails (the fast parser's scanner); the alternatives are tried in the
/// grammar's order, with its backtracking.
pub(crate) fn numeric_end(bytes: &[u8], start: usize) -> Option<usize> {
    date_end(bytes, start).or_else(|| number_end(bytes, start))
}

/// The date / datetime alternative of `numeric`.
fn date_end(bytes: &[u8], p: usize) -> Option<usize> {
    let shape = [true, true, true, true, false, true, true, false, true, true];
    for (k, digit) in shape.iter().enumerate() {
        let ok = if *digit {
            digit_at(bytes, p + k)
        } else {
            bytes.get(p + k) == Some(&b'-')
        };
        if !ok {
            return None;
        }
    }
    let q = p + 10;
    if matches!(bytes.get(q), Some(b'T' | b't')) {
        // `T` (digit | `:` | `.`)+ then an optional zone, then no identifier character.
        let mut r = q + 1;
        while bytes
            .get(r)
            .is_some_and(|b| b.is_ascii_digit() || *b == b':' || *b == b'.')
        {
            r += 1;
        }
        if r == q + 1 {
            return None;
        }
        match bytes.get(r) {
            Some(b'Z' | b'z') => r += 1,
            Some(b'+' | b'-')
                if digit_at(bytes, r + 1)
                    && digit_at(bytes, r + 2)
                    && bytes.get(r + 3) == Some(&b':')
                    && digit_at(bytes, r + 4)
                    && digit_at(bytes, r + 5) =>
            {
                r += 6
            }
            _ => {}
        }
        // Failing here, the other branch (`!ident_char` right after the
        // date) fails too: `T` is an identifier character.
        return (!ident_char_at(bytes, r)).then_some(r);
    }
    (!ident_char_at(bytes, q)).then_some(q)
}

/// Length of a duration unit (`ms`, `w`, `d`, `h`, `m`, `s`) at `i`, or 0.
fn unit_len(bytes: &[u8], i: usize) -> usize {
    match bytes.get(i) {
        Some(b'm') if bytes.get(i + 1) == Some(&b's') => 2,
        Some(b'w' | b'd' | b'h' | b'm' | b's') => 1,
        _ => 0,
    }
}

/// The duration / float / integer alternative of `numeric`.
fn number_end(bytes: &[u8], p: usize) -> Option<usize> {
    let mut r = p;
    while digit_at(bytes, r) {
        r += 1;
    }
    if r == p {
        return None;
    }
    // Duration: unit (digits unit)* then no identifier character.
    let first = unit_len(bytes, r);
    if first > 0 {
        let mut e = r + first;
        loop {
            let mut d = e;
            while digit_at(bytes, d) {
                d += 1;
            }
            let unit = unit_len(bytes, d);
            if d == e || unit == 0 {
                break;
            }
            e = d + unit;
        }
        if !ident_char_at(bytes, e) {
            return Some(e);
        }
    }
    // Float: `.` digits exponent? | exponent, then no identifier character.
    let float_end = if bytes.get(r) == Some(&b'.') && digit_at(bytes, r + 1) {
        let mut e = r + 1;
        while digit_at(bytes, e) {
            e += 1;
        }
        Some(exponent_end(bytes, e).unwrap_or(e))
    } else {
        exponent_end(bytes, r)
    };
    if let Some(e) = float_end
        && !ident_char_at(bytes, e)
    {
        return Some(e);
    }
    // Integer.
    (!ident_char_at(bytes, r)).then_some(r)
}

/// End of an exponent `e[+-]digits` at `i`.
fn exponent_end(bytes: &[u8], i: usize) -> Option<usize> {
    if !matches!(bytes.get(i), Some(b'e' | b'E')) {
        return None;
    }
    let mut e = i + 1;
    if matches!(bytes.get(e), Some(b'+' | b'-')) {
        e += 1;
    }
    let digits_start = e;
    while digit_at(bytes, e) {
        e += 1;
    }
    (e > digits_start).then_some(e)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_add_up() {
        assert_eq!(duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(duration_ms("250ms"), Some(250));
        assert_eq!(duration_ms("2w"), Some(1_209_600_000));
        assert_eq!(duration_ms("99999999999999999w"), None);
        assert_eq!(duration_ms(""), None);
        assert_eq!(duration_ms("30"), None);
    }

    #[test]
    fn numbers_at_the_edges() {
        assert_eq!(
            number("9223372036854775808", true),
            Ok(Literal::Int(i64::MIN))
        );
        assert_eq!(number("9223372036854775808", false), Err(OutOfRange::Int));
        assert_eq!(number("1e400", false), Err(OutOfRange::Float));
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"a\n\u{1F600}").unwrap(), "a\n\u{1F600}");
        let bad = unescape(r"\d and \u{zz}").unwrap_err();
        assert_eq!(bad.len(), 2);
        assert_eq!((bad[0].start, bad[0].end, bad[0].unicode), (0, 2, false));
        assert!(bad[1].unicode);
    }

    /// The grammar's `keyword` rule lists exactly [`KEYWORDS`].
    #[test]
    fn keywords_match_the_grammar() {
        let grammar = include_str!("../../grammar/spec.pest");
        let line = grammar
            .lines()
            .find(|l| l.starts_with("keyword = "))
            .unwrap();
        let inner = line.split_once('(').unwrap().1.split_once(')').unwrap().0;
        let words: Vec<&str> = inner
            .split('|')
            .map(|w| w.trim().trim_matches('"'))
            .collect();
        assert_eq!(words, KEYWORDS);
    }

    #[test]
    fn numeric_tokens_follow_the_grammar() {
        let end = |s: &str| numeric_end(s.as_bytes(), 0);
        assert_eq!(end("2024-01-31"), Some(10));
        assert_eq!(end("2024-01-311"), Some(4));
        assert_eq!(end("2024-01-31T12:00:00+02:00 x"), Some(25));
        assert_eq!(end("2024-01-31T12:00:00+02"), Some(19));
        assert_eq!(end("1h30m"), Some(5));
        assert_eq!(end("1h30"), None);
        assert_eq!(end("250ms"), Some(5));
        assert_eq!(end("5msx"), None);
        assert_eq!(end("1.5e-3"), Some(6));
        assert_eq!(end("1.x"), Some(1));
        assert_eq!(end("1e"), None);
    }
}
