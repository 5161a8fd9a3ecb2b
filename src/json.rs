//! Fast JSON records: parse only the fields a program reads.
//!
//! Most of the time of evaluating rules over JSON goes into parsing. A
//! [`SparseRecord`] is filled from one JSON object by a scanner that decodes
//! only the top-level keys in a [`FieldIndex`] (the program's field table),
//! borrows strings from the input where they have no escapes, and skips every
//! other value without building it. Skipped values are still validated: the
//! grammar of numbers, literals, escapes and nesting is checked, so invalid
//! JSON is rejected whichever fields the rule reads. Nested values of kept
//! fields are handed to `serde_json`. The text must already be valid UTF-8
//! (it is a `&str`); the record is reused between objects.

use std::borrow::Cow;
use std::fmt;

use crate::value::{FieldRef, OwnedValue, Record, Value};

/// Deepest nesting of arrays and objects in a record, the record's own object
/// included (empty ones count): serde_json's limit, so that every path that
/// reads a record (this scanner, and serde_json for `--explain`, nested values,
/// test files and sagas) accepts the same records.
pub const MAX_JSON_DEPTH: usize = 127;

/// The top-level field names to keep, by slot (usually [`crate::Program::fields`]).
#[derive(Clone, Debug)]
pub struct FieldIndex {
    names: Vec<String>,
    /// Per slot: the name's length and its first 8 bytes as a number (zero
    /// padded), so a key is matched by two integer comparisons, not a `memcmp`.
    heads: Vec<(usize, u64)>,
}

/// The first 8 bytes of `bytes` (zero padded) as a little-endian number.
fn head_of(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    for (w, b) in word.iter_mut().zip(bytes) {
        *w = *b;
    }
    u64::from_le_bytes(word)
}

impl FieldIndex {
    /// An index over these names; a name's position is its slot.
    pub fn new(names: &[String]) -> FieldIndex {
        FieldIndex {
            names: names.to_vec(),
            heads: names
                .iter()
                .map(|n| (n.len(), head_of(n.as_bytes())))
                .collect(),
        }
    }

    #[inline]
    fn slot(&self, key: &str) -> Option<usize> {
        self.names.iter().position(|n| n == key)
    }

    /// The slot of the key at `b[start..end]` (no escapes in it). The key's
    /// head is read as one 8-byte word from the text when 8 bytes are there
    /// (a key is followed by at least `":` and a value, so they usually are).
    #[inline]
    fn slot_of_key(&self, b: &[u8], start: usize, end: usize) -> Option<usize> {
        let len = end.checked_sub(start)?;
        let Some(word) = b.get(start..start + 8) else {
            return self.slot(std::str::from_utf8(b.get(start..end)?).ok()?);
        };
        let mut head = u64::from_le_bytes(word.try_into().ok()?);
        if len < 8 {
            head &= (1u64 << (8 * len)) - 1;
        }
        self.heads
            .iter()
            .position(|&(n, h)| n == len && h == head)
            .and_then(|i| {
                // a head matched: the rest of a longer name must match too
                if len <= 8 || self.names.get(i)?.as_bytes().get(8..) == b.get(start + 8..end) {
                    Some(i)
                } else {
                    self.slot(std::str::from_utf8(b.get(start..end)?).ok()?)
                }
            })
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no field is kept.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Invalid JSON: what and where (a byte offset into the record's text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl std::error::Error for JsonError {}

/// One JSON object, reduced to the kept fields. Reuse it across objects with
/// [`SparseRecord::parse`].
#[derive(Debug, Default)]
pub struct SparseRecord<'de> {
    values: Vec<Option<Value<'de>>>,
    stack: Vec<u8>,
}

impl<'de> SparseRecord<'de> {
    /// An empty record for an index.
    pub fn new(index: &FieldIndex) -> SparseRecord<'de> {
        SparseRecord {
            values: vec![None; index.len()],
            stack: Vec::new(),
        }
    }

    /// Fill from the JSON object in `text` (the whole text must be one object,
    /// surrounding white space allowed).
    pub fn parse(&mut self, text: &'de str, index: &FieldIndex) -> Result<(), JsonError> {
        // reset in place: the vector keeps its length between records
        if self.values.len() == index.len() {
            for v in &mut self.values {
                *v = None;
            }
        } else {
            self.values.clear();
            self.values.resize(index.len(), None);
        }
        let mut s = Scanner {
            text,
            b: text.as_bytes(),
            pos: 0,
            stack: std::mem::take(&mut self.stack),
        };
        let result = s.object(index, &mut self.values);
        self.stack = std::mem::take(&mut s.stack);
        result
    }

    /// The value in a slot.
    pub fn get(&self, slot: usize) -> Option<&Value<'de>> {
        self.values.get(slot).and_then(Option::as_ref)
    }
}

impl Record for SparseRecord<'_> {
    #[inline]
    fn field(&self, field: FieldRef<'_>) -> Option<Value<'_>> {
        let slot = field.slot? as usize;
        match self.values.get(slot)? {
            Some(Value::Str(Cow::Borrowed(s))) => Some(Value::Str(Cow::Borrowed(s))),
            Some(v) => Some(v.reborrow()),
            None => None,
        }
    }
}

struct Scanner<'de> {
    text: &'de str,
    b: &'de [u8],
    pos: usize,
    stack: Vec<u8>,
}

type Scan<T> = Result<T, JsonError>;

/// Bytes that end the fast part of a string: `"`, `\`, and control characters.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

impl<'de> Scanner<'de> {
    #[cold]
    #[inline(never)]
    fn err<T>(&self, message: &str) -> Scan<T> {
        Err(JsonError {
            offset: self.pos,
            message: message.to_string(),
        })
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.pos) {
            if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    fn expect(&mut self, c: u8, what: &str) -> Scan<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.expected(what)
        }
    }

    #[cold]
    #[inline(never)]
    fn expected<T>(&self, what: &str) -> Scan<T> {
        if self.peek().is_none() {
            self.err(&format!("unexpected end of input, expected {what}"))
        } else {
            self.err(&format!("expected {what}"))
        }
    }

    fn object(&mut self, index: &FieldIndex, out: &mut [Option<Value<'de>>]) -> Scan<()> {
        self.ws();
        if self.peek() != Some(b'{') {
            return self.err("expected a JSON object");
        }
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.ws();
                let slot = match self.plain_key() {
                    Some((start, end)) => index.slot_of_key(self.b, start, end),
                    None => {
                        let (start, end, escaped) = self.string()?;
                        if escaped {
                            let key = self.decode_string(start, end)?;
                            index.slot(&key)
                        } else {
                            index.slot_of_key(self.b, start + 1, end)
                        }
                    }
                };
                self.ws();
                self.expect(b':', "`:`")?;
                self.ws();
                match slot {
                    Some(i) => {
                        let v = self.value()?;
                        if let Some(place) = out.get_mut(i) {
                            *place = Some(v);
                        }
                    }
                    None => self.skip_value()?,
                }
                self.ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    None => return self.err("unexpected end of input, expected `,` or `}`"),
                    _ => return self.err("expected `,` or `}`"),
                }
            }
        }
        self.ws();
        if self.pos < self.b.len() {
            return self.err("trailing characters");
        }
        Ok(())
    }

    fn slice(&self, start: usize, end: usize) -> &'de str {
        self.text.get(start..end).unwrap_or("")
    }

    /// A string starting at the current `"`: returns (opening quote, closing
    /// quote, has escapes) and moves past it. Escapes and control characters
    /// are validated.
    #[inline]
    fn string(&mut self) -> Scan<(usize, usize, bool)> {
        if self.peek() != Some(b'"') {
            return self.err("expected a string");
        }
        let start = self.pos;
        let mut i = self.pos + 1;
        let mut escaped = false;
        loop {
            // strings in records are short: a byte loop with a table beats
            // memchr's setup and word-at-a-time tests here
            while let Some(&c) = self.b.get(i) {
                if SPECIAL[c as usize] {
                    break;
                }
                i += 1;
            }
            match self.b.get(i) {
                None => {
                    self.pos = self.b.len();
                    return self.err("unterminated string");
                }
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok((start, i, escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    i = self.escape(i)?;
                }
                Some(_) => {
                    self.pos = i;
                    return self.err("control character in string");
                }
            }
        }
    }

    /// The usual key, scanned inline: a string without escapes or control
    /// characters at the current position. Moves past it and returns where its
    /// text starts and its closing quote is; `None` (nothing consumed) for anything
    /// else, which [`Scanner::string`] then reads and reports.
    #[inline(always)]
    fn plain_key(&mut self) -> Option<(usize, usize)> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.pos + 1;
        let mut i = start;
        while let Some(&c) = self.b.get(i) {
            if SPECIAL[c as usize] {
                break;
            }
            i += 1;
        }
        if self.b.get(i) != Some(&b'"') {
            return None;
        }
        self.pos = i + 1;
        Some((start, i))
    }

    /// Validate the escape at `i` (a backslash); returns the position after it.
    #[cold]
    fn escape(&mut self, i: usize) -> Scan<usize> {
        match self.b.get(i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
            Some(b'u') => {
                let hex = self.b.get(i + 2..i + 6).unwrap_or(b"");
                if hex.len() != 4 || !hex.iter().all(u8::is_ascii_hexdigit) {
                    self.pos = i;
                    return self.err("invalid unicode escape");
                }
                Ok(i + 6)
            }
            _ => {
                self.pos = i;
                self.err("invalid escape")
            }
        }
    }

    fn decode_string(&self, start: usize, end: usize) -> Scan<String> {
        serde_json::from_str::<String>(self.slice(start, end + 1)).map_err(|e| JsonError {
            offset: start,
            message: e.to_string(),
        })
    }

    /// A number's extent, validated against the JSON grammar. Returns whether it is an integer.
    fn number(&mut self) -> Scan<bool> {
        let start = self.pos;
        let digits = |s: &mut Self| {
            let from = s.pos;
            while s.peek().is_some_and(|c| c.is_ascii_digit()) {
                s.pos += 1;
            }
            s.pos - from
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let mut int_digits = 1;
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => int_digits = digits(self),
            _ => return self.err("invalid number"),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            integer = false;
            if digits(self) == 0 {
                return self.err("invalid number");
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            integer = false;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return self.err("invalid number");
            }
            // only an exponent or hundreds of digits can leave the range of a float:
            // such a number is out of range whether or not its field is kept, as for serde_json
            let text = self.slice(start, self.pos);
            if !text.parse::<f64>().is_ok_and(f64::is_finite) {
                self.pos = start;
                return self.err("number out of range");
            }
        } else if int_digits > 300 {
            let text = self.slice(start, self.pos);
            if !text.parse::<f64>().is_ok_and(f64::is_finite) {
                self.pos = start;
                return self.err("number out of range");
            }
        }
        Ok(integer)
    }

    /// An integer of at most 18 digits (so it fits an `i64`) read in the same
    /// pass that validates it; `None` (nothing consumed) for anything else —
    /// a fraction, an exponent, a leading zero, `-0` (the float -0.0), more
    /// digits — which [`Scanner::number`] then reads and checks.
    #[inline]
    fn small_int(&mut self) -> Option<i64> {
        let negative = self.peek() == Some(b'-');
        let from = self.pos + usize::from(negative);
        let mut i = from;
        let mut n: i64 = 0;
        while let Some(&c) = self.b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            if i - from == 18 {
                return None;
            }
            n = n * 10 + i64::from(d);
            i += 1;
        }
        let digits = i - from;
        if digits == 0
            || (digits > 1 && self.b.get(from) == Some(&b'0'))
            || matches!(self.b.get(i), Some(b'.' | b'e' | b'E'))
            || (negative && n == 0)
        {
            return None;
        }
        self.pos = i;
        Some(if negative { -n } else { n })
    }

    fn literal(&mut self, word: &[u8]) -> Scan<()> {
        if self.b.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.err("invalid literal")
        }
    }

    /// Decode the value of a kept field.
    fn value(&mut self) -> Scan<Value<'de>> {
        let start = self.pos;
        Ok(match self.peek() {
            Some(b'"') => {
                let (s, e, escaped) = self.string()?;
                if escaped {
                    Value::Str(Cow::Owned(self.decode_string(s, e)?))
                } else {
                    Value::Str(Cow::Borrowed(self.slice(s + 1, e)))
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                if let Some(i) = self.small_int() {
                    return Ok(Value::Int(i));
                }
                let integer = self.number()?;
                let text = self.slice(start, self.pos);
                // `-0` is the float -0.0, as serde_json reads it
                let parsed_int = if integer && text != "-0" {
                    text.parse::<i64>().ok()
                } else {
                    None
                };
                match parsed_int {
                    Some(i) => Value::Int(i),
                    None => match text.parse::<f64>() {
                        Ok(x) if x.is_finite() => Value::Float(x),
                        _ => {
                            self.pos = start;
                            return self.err("number out of range");
                        }
                    },
                }
            }
            Some(b't') => {
                self.literal(b"true")?;
                Value::Bool(true)
            }
            Some(b'f') => {
                self.literal(b"false")?;
                Value::Bool(false)
            }
            Some(b'n') => {
                self.literal(b"null")?;
                Value::Null
            }
            Some(b'{' | b'[') => {
                self.skip_value()?;
                let json: serde_json::Value = serde_json::from_str(self.slice(start, self.pos))
                    .map_err(|e| JsonError {
                        offset: start,
                        message: e.to_string(),
                    })?;
                OwnedValue::from_json_owned(json)
            }
            None => return self.err("unexpected end of input, expected a value"),
            _ => return self.err("expected a value"),
        })
    }

    /// Skip one value, validating it, without recursion.
    fn skip_value(&mut self) -> Scan<()> {
        self.stack.clear();
        'value: loop {
            self.ws();
            match self.peek() {
                Some(b'{') => {
                    // this container and the record's own object count
                    if self.stack.len() + 2 > MAX_JSON_DEPTH {
                        return self.err("nesting too deep");
                    }
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        self.stack.push(b'{');
                        self.string()?;
                        self.ws();
                        self.expect(b':', "`:`")?;
                        continue 'value;
                    }
                }
                Some(b'[') => {
                    if self.stack.len() + 2 > MAX_JSON_DEPTH {
                        return self.err("nesting too deep");
                    }
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        self.stack.push(b'[');
                        continue 'value;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                None => return self.err("unexpected end of input, expected a value"),
                _ => return self.err("expected a value"),
            }
            // after a value: close containers or move to the next element
            loop {
                let Some(&top) = self.stack.last() else {
                    return Ok(());
                };
                self.ws();
                match (self.peek(), top) {
                    (Some(b','), b'{') => {
                        self.pos += 1;
                        self.ws();
                        self.string()?;
                        self.ws();
                        self.expect(b':', "`:`")?;
                        continue 'value;
                    }
                    (Some(b','), _) => {
                        self.pos += 1;
                        continue 'value;
                    }
                    (Some(b'}'), b'{') | (Some(b']'), b'[') => {
                        self.pos += 1;
                        self.stack.pop();
                    }
                    (None, _) => return self.err("unexpected end of input"),
                    _ => return self.err("expected `,` or the end of a list or object"),
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn index(names: &[&str]) -> FieldIndex {
        FieldIndex::new(&names.iter().map(ToString::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn keeps_only_indexed_fields_and_borrows_strings() {
        let index = index(&["tier", "total", "n"]);
        let line = r#"{"name":"Bob","tier":"regular","total":150,"extra":{"a":[1,2.5e3,"x\"y"]},"n":-2.5}"#;
        let mut rec = SparseRecord::new(&index);
        rec.parse(line, &index).unwrap();
        assert!(matches!(
            rec.get(0),
            Some(Value::Str(Cow::Borrowed("regular")))
        ));
        assert!(matches!(rec.get(1), Some(Value::Int(150))));
        assert!(matches!(rec.get(2), Some(Value::Float(x)) if *x == -2.5));
    }

    #[test]
    fn escapes_and_nested_values_of_kept_fields() {
        let index = index(&["s", "o", "big"]);
        let mut rec = SparseRecord::new(&index);
        rec.parse(
            r#" {"s":"a\u00e9\n","o":{"k":[1]},"big":18446744073709551615} "#,
            &index,
        )
        .unwrap();
        assert!(matches!(rec.get(0), Some(Value::Str(s)) if s == "aé\n"));
        assert_eq!(rec.get(1).unwrap().to_json(), serde_json::json!({"k": [1]}));
        assert!(matches!(rec.get(2), Some(Value::Float(_))));
    }

    /// Whatever the kept fields, the scanner accepts exactly what serde_json accepts
    /// (for objects), over a table of valid and invalid inputs.
    #[test]
    fn validity_agrees_with_serde_json() {
        let cases = [
            r#"{}"#,
            r#"{"a":1}"#,
            r#"{"a":[1,2,{"b":null}],"c":true}"#,
            r#"{"a":-0.5e-3,"b":"\u0041\t"}"#,
            r#"{"a":[]}"#,
            r#"{"a":{}}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":-}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul,"b":1}"#,
            r#"{"a":"x\q"}"#,
            r#"{"a":"\u12"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":[1,]}"#,
            r#"{"a":[1 2]}"#,
            r#"{"a":{"b"}}"#,
            r#"{"a":{"b":1,}}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":1} x"#,
            r#"{"a":[1}"#,
            r#"{"a":"unterminated}"#,
            r#"[1]"#,
            r#"{"a":1e5,"b":1E+2,"c":-1e-2}"#,
            r#"{"a":1e}"#,
            r#"{"a":[[[[]]]]}"#,
        ];
        for case in cases {
            let want = serde_json::from_str::<serde_json::Value>(case).is_ok_and(|v| v.is_object());
            for kept in [&["zzz"][..], &["a"][..], &["a", "b", "c"][..]] {
                let index = index(kept);
                let got = SparseRecord::new(&index).parse(case, &index).is_ok();
                assert_eq!(got, want, "{case} keeping {kept:?}");
            }
        }
    }

    /// Numbers read in one pass (short integers) and by the full path agree
    /// with serde_json: an `i64` when it is one, else the nearest float; `-0`
    /// is a float; invalid numbers are rejected.
    #[test]
    fn numbers_agree_with_serde_json() {
        let cases = [
            "0",
            "-0",
            "7",
            "-7",
            "10",
            "100",
            "123456789012345678",
            "-123456789012345678",
            "999999999999999999",
            "1234567890123456789",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "-9223372036854775809",
            "18446744073709551616",
            "01",
            "-01",
            "00",
            "-",
            "1.5",
            "-0.0",
            "1e2",
            "1E+2",
            "-1e-2",
            "12.",
            "12e",
            "0x1",
            "1_0",
        ];
        let index = index(&["n"]);
        for case in cases {
            for text in [
                format!("{{\"n\":{case}}}"),
                format!("{{\"n\":{case} ,\"m\":1}}"),
            ] {
                let want = serde_json::from_str::<serde_json::Value>(&text);
                let mut rec = SparseRecord::new(&index);
                let got = rec.parse(&text, &index);
                match want {
                    Err(_) => assert!(got.is_err(), "{text} is invalid"),
                    Ok(v) => {
                        assert!(got.is_ok(), "{text}: {got:?}");
                        let n = &v["n"];
                        match rec.get(0) {
                            Some(Value::Int(i)) => assert_eq!(n.as_i64(), Some(*i), "{text}"),
                            Some(Value::Float(x)) => {
                                assert!(n.is_f64() || n.is_u64(), "{text}");
                                assert_eq!(
                                    n.as_f64().map(f64::to_bits),
                                    Some(x.to_bits()),
                                    "{text}"
                                );
                            }
                            other => unreachable!("{text}: {other:?}"),
                        }
                    }
                }
            }
        }
    }

    /// Keys are matched by length and first word, then the rest: names that
    /// share a head, keys at the very end of the text, empty and long names.
    #[test]
    fn keys_are_matched_exactly() {
        let index = index(&["abcdefgh1", "abcdefgh2", "a", "", "abcdefgh"]);
        let mut rec = SparseRecord::new(&index);
        let text = r#"{"abcdefgh2":2,"abcdefgh":5,"ab":0,"abcdefgh3":0,"":4,"a":3,"abcdefgh1":1}"#;
        rec.parse(text, &index).unwrap();
        let got: Vec<_> = (0..5).map(|i| rec.get(i).map(|v| v.to_json())).collect();
        let want: Vec<_> = [1, 2, 3, 4, 5].map(|n| Some(serde_json::json!(n))).to_vec();
        assert_eq!(got, want);
        for text in [r#"{"a":1}"#, r#"{"":1}"#, r#"{"b":1}"#, r#"{"abcdefgh":1}"#] {
            rec.parse(text, &index).unwrap();
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            for (slot, name) in ["abcdefgh1", "abcdefgh2", "a", "", "abcdefgh"]
                .iter()
                .enumerate()
            {
                assert_eq!(
                    rec.get(slot).map(|v| v.to_json()).as_ref(),
                    v.get(name),
                    "{text} {name}"
                );
            }
        }
    }

    #[test]
    fn deep_nesting_is_bounded_without_recursion() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        let index = index(&["b"]);
        let err = SparseRecord::new(&index).parse(&deep, &index).unwrap_err();
        assert_eq!(err.message, "nesting too deep");
    }
}
