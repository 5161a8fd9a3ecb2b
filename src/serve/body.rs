//! Request bodies: JSON objects, checked for nesting depth before they are parsed
//! (so a deeply nested body costs one pass over its bytes and no recursion), then
//! parsed with the line and column of the first error.

use serde_json::{Map, Value as Json};

use super::problem::Problem;

/// The deepest nesting of arrays and objects a body may have.
pub const MAX_JSON_DEPTH: usize = 64;

/// The nesting depth of JSON text, counted outside strings; stops counting past
/// `limit` (the text may be invalid JSON: the parser reports that).
fn depth_exceeds(bytes: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// A body as `T` (an empty body is `T::default()`): nesting checked first, then
/// parsed, with the line and column of the first error.
pub fn parse<'a, T: serde::Deserialize<'a> + Default>(bytes: &'a [u8]) -> Result<T, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if depth_exceeds(bytes, MAX_JSON_DEPTH) {
        return Err(Problem::bad_request(format!(
            "the body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep"
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let what = if e.is_data() {
            "invalid body"
        } else {
            "invalid JSON"
        };
        Problem::bad_request(format!(
            "{what} at line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}

/// A body that must be one JSON object (an empty body, or `null`, is `{}`).
pub fn object(bytes: &[u8]) -> Result<Map<String, Json>, Problem> {
    match parse::<Option<Json>>(bytes)? {
        None => Ok(Map::new()),
        Some(Json::Object(map)) => Ok(map),
        Some(_) => Err(Problem::bad_request("the body must be a JSON object")),
    }
}

/// A body's members must be among `known`.
pub fn only(body: &Map<String, Json>, known: &[&str]) -> Result<(), Problem> {
    match body.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => {
            let help = crate::diag::did_you_mean(k, known.iter().copied())
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            Err(Problem::bad_request(format!(
                "unknown member `{k}`{help}; this route takes {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_counted_outside_strings() {
        assert!(!depth_exceeds(br#"{"a": [[1]]}"#, 3));
        assert!(depth_exceeds(br#"{"a": [[[1]]]}"#, 3));
        assert!(!depth_exceeds(br#"{"a": "[[[[[[\"[[["}"#, 1));
    }

    #[test]
    fn bodies_are_objects() {
        assert!(object(b"").unwrap().is_empty());
        assert_eq!(object(b"[1]").unwrap_err().status(), 400);
        assert_eq!(object(b"{\"a\":").unwrap_err().status(), 400);
        assert_eq!(object(b"{\"a\": \"\xff\"}").unwrap_err().status(), 400);
        let deep = "[".repeat(100) + &"]".repeat(100);
        let e = object(format!("{{\"a\": {deep}}}").as_bytes()).unwrap_err();
        assert!(e.body()["detail"].as_str().unwrap().contains("64 levels"));
    }
}
