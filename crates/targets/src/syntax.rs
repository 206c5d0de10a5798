//! The little syntax the detectors need around a match: the brackets a string sits in,
//! the call it is passed to, the block a Python line belongs to, a CMake command's
//! extent.

use crate::lang::Masked;

/// Per string literal (by index in `Masked::strings`), the offset and byte of the
/// innermost bracket it sits in.
pub(crate) fn string_openers(masked: &Masked) -> Vec<Option<(usize, u8)>> {
    let bytes = masked.text.as_bytes();
    let mut openers = Vec::with_capacity(masked.strings.len());
    let mut stack: Vec<(usize, u8)> = Vec::new();
    let mut next_string = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(range) = masked.strings.get(next_string) {
            if range.start == i {
                openers.push(stack.last().copied());
                next_string += 1;
                i = range.end.max(i + 1);
                continue;
            }
        }
        match bytes[i] {
            open @ (b'(' | b'[' | b'{') => stack.push((i, open)),
            b')' | b']' | b'}' => {
                stack.pop();
            }
            _ => {}
        }
        i += 1;
    }
    openers.resize(masked.strings.len(), None);
    openers
}

/// The identifier before `.append(` that ends at `open` (the parenthesis), if any.
pub(crate) fn append_receiver(text: &str, open: usize) -> Option<&str> {
    let before = text[..open].trim_end();
    let before = before.strip_suffix(".append")?;
    let start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .map_or(0, |i| i + 1);
    let receiver = &before[start..];
    (!receiver.is_empty()).then_some(receiver)
}

/// The line (0-based) of the nearest earlier line with less indentation: the `if`,
/// `for`, `def` or other header a Python line runs under; `None` at module level.
pub(crate) fn python_block(text: &str, offset: usize) -> Option<usize> {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let indent = indentation(text[line_start..].lines().next().unwrap_or(""));
    let earlier = text[..line_start].strip_suffix('\n')?;
    let mut index = earlier.matches('\n').count() + 1;
    for line in earlier.rsplit('\n') {
        index -= 1;
        if !line.trim().is_empty() && indentation(line) < indent {
            return Some(index);
        }
    }
    None
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '\t']).len()
}

/// The CMake command around `offset` (outside any quoted argument): the offset of its name and one past its closing
/// parenthesis.
pub(crate) fn cmake_command(text: &str, offset: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    // Backwards to the unmatched `(`, skipping quoted arguments.
    let mut depth = 0usize;
    let mut i = offset;
    let mut in_quotes = false;
    let open = loop {
        if i == 0 {
            return None;
        }
        i -= 1;
        match bytes[i] {
            b'"' if i == 0 || bytes[i - 1] != b'\\' => in_quotes = !in_quotes,
            b')' if !in_quotes => depth += 1,
            b'(' if !in_quotes && depth == 0 => break i,
            b'(' if !in_quotes => depth -= 1,
            _ => {}
        }
    };
    let name_end = text[..open].trim_end().len();
    let name_start = text[..name_end]
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let close = close_paren(bytes, open)?;
    Some((name_start, close + 1))
}

/// The matching `)` of the `(` at `open`, skipping quoted arguments.
pub(crate) fn close_paren(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_quotes = false;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quotes => i += 1,
            b'"' => in_quotes = !in_quotes,
            b'(' if !in_quotes => depth += 1,
            b')' if !in_quotes => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether `text[at..]` starts a word: nothing before it that continues a name or flag.
pub(crate) fn word_starts(text: &str, at: usize) -> bool {
    text[..at]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
}

/// Every offset where `needle` starts in `text`.
pub(crate) fn occurrences<'a>(text: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    text.match_indices(needle).map(|(at, _)| at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Language;

    #[test]
    fn strings_know_their_brackets() {
        let text = "a = ['x', f('y')]\nb.append('z')\n";
        let masked = Masked::new(text, Language::Python);
        let openers = string_openers(&masked);
        assert_eq!(openers[0], Some((4, b'[')));
        assert_eq!(openers[1], Some((11, b'(')));
        assert_eq!(append_receiver(text, 26), Some("b"));
        assert_eq!(append_receiver(text, 11), None);
    }

    #[test]
    fn python_blocks_are_headers_with_less_indentation() {
        let text = "x = 1\nif a:\n    f()\n    g()\nif b:\n    h()\n";
        let at = |needle: &str| text.find(needle).expect("in text");
        assert_eq!(python_block(text, at("f()")), Some(1));
        assert_eq!(python_block(text, at("g()")), Some(1));
        assert_eq!(python_block(text, at("h()")), Some(4));
        assert_eq!(python_block(text, at("x")), None);
    }

    #[test]
    fn cmake_commands_span_their_arguments() {
        let text = "list(APPEND F \"-gencode x\" \"(\" y)\nset(Z 1)";
        let quote = text.find("\"-gencode").expect("argument");
        let (start, end) = cmake_command(text, quote).expect("cmd");
        assert_eq!(&text[start..end], "list(APPEND F \"-gencode x\" \"(\" y)");
    }
}
