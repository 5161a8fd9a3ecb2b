//! The string functions: `split join replace substring index_of trim
//! trim_start trim_end pad_start pad_end` (docs/language.md, "Strings").
//!
//! Positions and lengths count code points, as `len` does, never bytes, so no
//! position can cut a character. A position outside the string, an empty
//! text to replace or a fill that is not one character is an evaluation error
//! that names the values; no function builds a string longer than
//! [`MAX_BUILT_STRING`]. Trimming borrows; the others build a new string or list.

use std::borrow::Cow;

use super::context::EvalError;
use super::functions::Builtin;
use super::limits::MAX_BUILT_STRING;
use super::ops::{shown, value_error};
use crate::value::{OwnedValue, Value};

/// `trim`, `trim_start`, `trim_end`: white space (Unicode) cut, borrowing.
pub(crate) fn trim<'r>(s: &Cow<'r, str>, how: Builtin) -> Cow<'r, str> {
    fn cut(t: &str, how: Builtin) -> &str {
        match how {
            Builtin::TrimStart => t.trim_start(),
            Builtin::TrimEnd => t.trim_end(),
            _ => t.trim(),
        }
    }
    match s {
        Cow::Borrowed(t) => Cow::Borrowed(cut(t, how)),
        Cow::Owned(t) => Cow::Owned(cut(t, how).to_string()),
    }
}

/// A string function on its (present) arguments; `Ok(None)` when they are not
/// of its types (the caller reports that).
pub(crate) fn call<'r>(
    how: Builtin,
    name: &str,
    args: &[Value<'r>],
) -> Result<Option<Value<'r>>, EvalError> {
    let what = || format!("{name}(..)");
    let too_long = |len: usize| -> Result<(), EvalError> {
        if len > MAX_BUILT_STRING {
            let message = format!(
                "the result would be {len} bytes, more than the limit of {MAX_BUILT_STRING}"
            );
            return Err(value_error(&what(), message));
        }
        Ok(())
    };
    Ok(Some(match (how, args) {
        (Builtin::Split, [Value::Str(s), Value::Str(sep)]) => {
            let parts: Vec<OwnedValue> = if sep.is_empty() {
                s.chars()
                    .map(|c| Value::Str(Cow::Owned(c.to_string())))
                    .collect()
            } else {
                s.split(sep.as_ref())
                    .map(|p| Value::Str(Cow::Owned(p.to_string())))
                    .collect()
            };
            Value::OwnedList(parts.into())
        }
        (Builtin::Join, [list, Value::Str(sep)]) => {
            let Some(n) = list.list_len() else {
                return Ok(None);
            };
            let mut out = String::new();
            for i in 0..n {
                let item = list.list_get(i).unwrap_or(Value::Null);
                let Value::Str(part) = &item else {
                    let message = format!("element {i} is {}, not a string", shown(&item));
                    return Err(value_error(&what(), message));
                };
                if i > 0 {
                    out.push_str(sep);
                }
                out.push_str(part);
                too_long(out.len())?;
            }
            Value::Str(Cow::Owned(out))
        }
        (Builtin::Replace, [Value::Str(s), Value::Str(from), Value::Str(to)]) => {
            if from.is_empty() {
                let message = "the text to replace is empty".to_string();
                return Err(value_error(&what(), message));
            }
            let n = s.matches(from.as_ref()).count();
            too_long((s.len() - n * from.len()).saturating_add(n.saturating_mul(to.len())))?;
            Value::Str(Cow::Owned(s.replace(from.as_ref(), to)))
        }
        (Builtin::Substring, [Value::Str(s), Value::Int(start), Value::Int(end)]) => {
            let n = s.chars().count();
            let range = usize::try_from(*start)
                .ok()
                .zip(usize::try_from(*end).ok())
                .filter(|(a, b)| a <= b && *b <= n);
            let Some((a, b)) = range else {
                let message = format!(
                    "{start}..{end} is not a range of the {n} characters of {}",
                    shown(&args[0])
                );
                return Err(value_error(&what(), message));
            };
            let offset = |k: usize| s.char_indices().nth(k).map_or(s.len(), |(i, _)| i);
            let (from, to) = (offset(a), offset(b));
            match s {
                Cow::Borrowed(t) => Value::Str(Cow::Borrowed(t.get(from..to).unwrap_or(""))),
                Cow::Owned(t) => Value::Str(Cow::Owned(t.get(from..to).unwrap_or("").to_string())),
            }
        }
        (Builtin::IndexOf, [Value::Str(s), Value::Str(sub)]) => {
            let at = s.find(sub.as_ref()).map_or(-1, |byte| {
                i64::try_from(s.get(..byte).unwrap_or("").chars().count()).unwrap_or(i64::MAX)
            });
            Value::Int(at)
        }
        (
            Builtin::PadStart | Builtin::PadEnd,
            [Value::Str(s), Value::Int(width), Value::Str(fill)],
        ) => {
            let mut fill_chars = fill.chars();
            let (Some(c), None) = (fill_chars.next(), fill_chars.next()) else {
                let message = format!("the fill {} is not one character", shown(&args[2]));
                return Err(value_error(&what(), message));
            };
            let n = s.chars().count();
            let width = usize::try_from(*width).unwrap_or(0);
            if width <= n {
                return Ok(Some(args[0].clone()));
            }
            too_long(
                s.len()
                    .saturating_add((width - n).saturating_mul(c.len_utf8())),
            )?;
            let pad: String = std::iter::repeat_n(c, width - n).collect();
            Value::Str(Cow::Owned(if how == Builtin::PadStart {
                pad + s
            } else {
                s.to_string() + &pad
            }))
        }
        _ => return Ok(None),
    }))
}
