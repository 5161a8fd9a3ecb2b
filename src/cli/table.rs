//! Text tables measured in display columns (unicode-width): CJK and other wide
//! characters take two columns, combining marks none, so columns align in a
//! terminal. A cell wider than [`MAX_CELL`] is cut with `…`; control characters
//! are escaped so that a value never breaks a row.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Widest cell, in display columns; a wider one is cut with `…`.
pub const MAX_CELL: usize = 40;

/// Display width of `text`.
pub fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// `text` as a table cell: control characters escaped (`\n`), cut with `…`
/// to at most `max` display columns.
pub fn cell_max(text: &str, max: usize) -> String {
    let clean = text.chars().any(char::is_control);
    let text = if clean {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().collect()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        text.to_string()
    };
    if width(&text) <= max {
        return text;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// `text` as a table cell of at most [`MAX_CELL`] columns.
pub fn cell(text: &str) -> String {
    cell_max(text, MAX_CELL)
}

/// Column widths, measured over the rows seen so far (they only grow).
#[derive(Default)]
pub struct Columns {
    widths: Vec<usize>,
}

impl Columns {
    /// Widen the columns to fit `row`.
    pub fn measure(&mut self, row: &[String]) {
        for (c, text) in row.iter().enumerate() {
            let w = width(text);
            match self.widths.get_mut(c) {
                Some(have) => *have = (*have).max(w),
                None => self.widths.push(w),
            }
        }
    }

    /// One row as a line: cells padded to their column, two spaces apart, the
    /// last one not padded.
    pub fn line(&self, row: &[String]) -> String {
        let mut line = String::new();
        for (c, text) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            line.push_str(text);
            if c + 1 < row.len() {
                let pad = self
                    .widths
                    .get(c)
                    .map_or(0, |w| w.saturating_sub(width(text)));
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| cell(c)).collect()
    }

    #[test]
    fn wide_characters_take_two_columns() {
        let rows = [
            row(&["name", "city"]),
            row(&["東京太郎", "x"]),
            row(&["Bob", "y"]),
        ];
        let mut columns = Columns::default();
        rows.iter().for_each(|r| columns.measure(r));
        let lines: Vec<String> = rows.iter().map(|r| columns.line(r)).collect();
        assert_eq!(lines, ["name      city", "東京太郎  x", "Bob       y"]);
    }

    #[test]
    fn wide_cells_are_cut_with_an_ellipsis() {
        assert_eq!(cell_max("abcdefgh", 5), "abcd…");
        assert_eq!(cell_max("abcde", 5), "abcde");
        // a wide character that would cross the limit is left out whole
        assert_eq!(cell_max("東京都庁舎", 6), "東京…");
        assert_eq!(width(&cell_max("東京都庁舎", 6)), 5);
        assert_eq!(cell_max("a\nb\tc", 40), "a\\nb\\tc");
        assert_eq!(width(&cell(&"x".repeat(100))), MAX_CELL);
    }
}
