//! `--output`: one vocabulary for every command that prints results.
//!
//! `table` is text for people (a table, a tree, a timeline), `json` one JSON
//! document, `jsonl` one JSON object per line (per record, saga, event or test
//! case). Older spellings stay as aliases (`--format human` of `test` is `table`).

use std::io::Write;

use clap::ValueEnum;
use serde::Serialize;

/// `--output`
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Text for people: a table, a tree or a timeline.
    #[default]
    #[value(alias = "human", alias = "text")]
    Table,
    /// One JSON document (an array when there are several results).
    Json,
    /// One JSON object per line (per record, saga, event or case).
    #[value(alias = "ndjson")]
    Jsonl,
}

impl Output {
    /// True for the JSON outputs.
    pub fn is_json(self) -> bool {
        self != Output::Table
    }
}

/// Results written one at a time as JSON: one per line (`jsonl`), or the
/// elements of one array (`json`), so that either can be streamed.
pub struct JsonItems {
    array: bool,
    n: usize,
}

impl JsonItems {
    /// Items for `output` (`json`: an array; otherwise one per line).
    pub fn new(output: Output) -> JsonItems {
        JsonItems {
            array: output == Output::Json,
            n: 0,
        }
    }

    /// Write one item.
    pub fn item(&mut self, out: &mut impl Write, value: &impl Serialize) -> std::io::Result<()> {
        let text = serde_json::to_string(value).map_err(std::io::Error::other)?;
        if self.array {
            let sep = if self.n == 0 { "[\n  " } else { ",\n  " };
            out.write_all(sep.as_bytes())?;
            out.write_all(text.as_bytes())?;
        } else {
            writeln!(out, "{text}")?;
        }
        self.n += 1;
        Ok(())
    }

    /// Close the array (`json`); nothing for JSON lines.
    pub fn end(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        match (self.array, self.n) {
            (false, _) => Ok(()),
            (true, 0) => writeln!(out, "[]"),
            (true, _) => writeln!(out, "\n]"),
        }
    }
}

/// Print a list of results: a pretty array (`json`) or one per line (`jsonl`).
pub fn print_list<T: Serialize>(output: Output, items: &[T]) {
    let mut text = Vec::new();
    let mut json = JsonItems::new(output);
    let written = items
        .iter()
        .try_for_each(|i| json.item(&mut text, i))
        .and_then(|()| json.end(&mut text));
    if written.is_ok() {
        out!("{}", String::from_utf8_lossy(&text));
    }
}

/// Print one result: pretty (`json`) or on one line (`jsonl`).
pub fn print_object(output: Output, value: &impl Serialize) {
    let text = if output == Output::Jsonl {
        serde_json::to_string(value)
    } else {
        serde_json::to_string_pretty(value)
    };
    if let Ok(text) = text {
        outln!("{text}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn items(output: Output, values: &[i32]) -> String {
        let mut out = Vec::new();
        let mut json = JsonItems::new(output);
        for v in values {
            json.item(&mut out, v).unwrap();
        }
        json.end(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_items_are_an_array_or_lines() {
        assert_eq!(items(Output::Json, &[1, 2]), "[\n  1,\n  2\n]\n");
        assert_eq!(items(Output::Json, &[]), "[]\n");
        assert_eq!(items(Output::Jsonl, &[1, 2]), "1\n2\n");
        assert_eq!(items(Output::Jsonl, &[]), "");
    }
}
