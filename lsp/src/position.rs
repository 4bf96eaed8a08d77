//! LSP positions are UTF-16 code units; Starlark spans are byte offsets and its resolved
//! columns are `char`s (and `starlark_lsp` reads request columns as bytes). Every
//! conversion between them goes through here.

use lsp_types::{Position, Range};

/// The byte offset where line `line` starts, or `None` past the end.
fn line_start(text: &str, line: u32) -> Option<usize> {
    if line == 0 {
        return Some(0);
    }
    text.match_indices('\n')
        .nth(line as usize - 1)
        .map(|(i, _)| i + 1)
}

/// The text of line `line` without its line break.
pub(crate) fn line_text(text: &str, line: u32) -> &str {
    let Some(start) = line_start(text, line) else {
        return "";
    };
    let rest = &text[start..];
    let end = rest.find('\n').unwrap_or(rest.len());
    rest[..end].strip_suffix('\r').unwrap_or(&rest[..end])
}

/// The position of byte offset `offset` (clamped to the text and to a char boundary).
pub(crate) fn position_of(text: &str, offset: usize) -> Position {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let character = before[start..].encode_utf16().count() as u32;
    Position { line, character }
}

/// The byte offset of `pos`; a column past the end of its line is the end of the line.
pub(crate) fn offset_of(text: &str, pos: Position) -> usize {
    let Some(start) = line_start(text, pos.line) else {
        return text.len();
    };
    let line = line_text(text, pos.line);
    let mut units = 0u32;
    for (i, c) in line.char_indices() {
        if units >= pos.character {
            return start + i;
        }
        units += c.len_utf16() as u32;
    }
    start + line.len()
}

/// The range of bytes `begin..end`.
pub(crate) fn range_of(text: &str, begin: usize, end: usize) -> Range {
    Range {
        start: position_of(text, begin),
        end: position_of(text, end),
    }
}

/// A `char` column on `line` as a UTF-16 column.
pub(crate) fn chars_to_utf16(line: &str, chars: u32) -> u32 {
    line.chars()
        .take(chars as usize)
        .map(|c| c.len_utf16() as u32)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u32, character: u32) -> Position {
        Position { line, character }
    }

    #[test]
    fn utf16_columns_count_surrogate_pairs_twice() {
        // `é` is 2 bytes and 1 unit, `🍦` is 4 bytes and 2 units.
        let text = "x = 1\ns = \"é🍦\" + bad\n";
        let bad = text.find("bad").unwrap();
        assert_eq!(position_of(text, bad), pos(1, 12));
        assert_eq!(offset_of(text, pos(1, 12)), bad);
        assert_eq!(offset_of(text, pos(1, 99)), text.len() - 1);
        assert_eq!(offset_of(text, pos(9, 0)), text.len());
        let line = line_text(text, 1);
        assert_eq!(chars_to_utf16(line, 11), 12);
    }

    #[test]
    fn crlf_lines_drop_the_carriage_return() {
        assert_eq!(line_text("a\r\nbc\r\n", 1), "bc");
        assert_eq!(position_of("a\r\nbc", 4), pos(1, 1));
    }
}
