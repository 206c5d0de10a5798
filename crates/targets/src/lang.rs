//! Which build files are read, in which language, and their text with comments blanked
//! out so that an architecture named in a comment is never taken for one the build uses.

use std::ops::Range;
use std::path::Path;

/// The languages whose files can force GPU targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Language {
    CMake,
    Python,
    Make,
    Meson,
    Bazel,
    Shell,
    Toml,
}

impl Language {
    /// The language of a build file, from its name; `None` for files that are not read.
    pub fn of(path: &Path) -> Option<Language> {
        let name = path.file_name()?.to_str()?;
        let lower = name.to_ascii_lowercase();
        let extension = lower.rsplit_once('.').map(|(_, extension)| extension);
        Some(match (lower.as_str(), extension) {
            ("cmakelists.txt", _) | (_, Some("cmake")) => Language::CMake,
            (_, Some("py")) => Language::Python,
            ("makefile" | "gnumakefile", _) | (_, Some("mk" | "mak")) => Language::Make,
            _ if lower.starts_with("makefile.") => Language::Make,
            ("meson.build" | "meson_options.txt" | "meson.options", _) => Language::Meson,
            ("build" | "build.bazel" | "workspace" | "module.bazel" | ".bazelrc", _)
            | (_, Some("bzl" | "bazelrc")) => Language::Bazel,
            (_, Some("sh" | "bash")) => Language::Shell,
            _ if lower.starts_with("dockerfile") || lower.ends_with(".dockerfile") => {
                Language::Shell
            }
            ("pyproject.toml", _) => Language::Toml,
            _ => return None,
        })
    }

    fn quotes(self) -> &'static [u8] {
        match self {
            Language::CMake => b"\"",
            Language::Python | Language::Meson | Language::Bazel | Language::Toml => b"'\"",
            // Make and shell split their lines into words themselves: a flag's quoting
            // does not change what a rewrite may put there.
            Language::Make | Language::Shell => b"",
        }
    }

    fn has_triple_quotes(self) -> bool {
        matches!(self, Language::Python | Language::Bazel | Language::Meson)
    }

    /// `#` starts a comment only at the start of a word (shells read `${#x}` and `a#b`
    /// as words).
    fn comment_needs_word_start(self) -> bool {
        matches!(self, Language::Make | Language::Shell)
    }
}

/// A file's text with comments and docstrings blanked, byte for byte (so offsets in it
/// are offsets in the file), and where its string literals are.
#[derive(Debug, Clone)]
pub(crate) struct Masked {
    pub(crate) text: String,
    /// Ranges of one-line-style string literals, quotes included, in order.
    pub(crate) strings: Vec<Range<usize>>,
}

impl Masked {
    pub(crate) fn new(text: &str, language: Language) -> Masked {
        let bytes = text.as_bytes();
        let mut out = bytes.to_vec();
        let mut strings = Vec::new();
        let quotes = language.quotes();
        let mut i = 0;
        while i < bytes.len() {
            let byte = bytes[i];
            if language.has_triple_quotes()
                && (bytes[i..].starts_with(b"\"\"\"") || bytes[i..].starts_with(b"'''"))
            {
                let end = find(bytes, i + 3, &bytes[i..i + 3]).map_or(bytes.len(), |e| e + 3);
                blank(&mut out, i, end);
                i = end;
            } else if quotes.contains(&byte) {
                let end = string_end(bytes, i, language);
                strings.push(i..end);
                i = end;
            } else if byte == b'#'
                && (!language.comment_needs_word_start()
                    || i == 0
                    || bytes[i - 1].is_ascii_whitespace())
            {
                let end = if language == Language::CMake && bytes[i..].starts_with(b"#[[") {
                    find(bytes, i, b"]]").map_or(bytes.len(), |e| e + 2)
                } else {
                    line_end(bytes, i)
                };
                blank(&mut out, i, end);
                i = end;
            } else {
                i += 1;
            }
        }
        Masked {
            // Only ASCII bytes were written, each over a whole character's bytes (a
            // comment or docstring is blanked entirely), so the text stays UTF-8.
            text: String::from_utf8(out).unwrap_or_else(|_| text.to_owned()),
            strings,
        }
    }

    /// What a string literal of `strings` holds between its quotes; `None` when it is
    /// not closed (a quote left open at the end of a line, or of a CMake file), whose
    /// range may be a single quote.
    pub(crate) fn content(&self, string: &Range<usize>) -> Option<&str> {
        let bytes = self.text.as_bytes();
        let inner = string.start.checked_add(1)?..string.end.checked_sub(1)?;
        let quote = *bytes.get(string.start)?;
        let escapes = bytes
            .get(inner.clone())?
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        let closed = string.len() >= 2 && bytes[string.end - 1] == quote && escapes % 2 == 0;
        // The quotes are ASCII, so the inner bounds are character boundaries.
        closed.then(|| &self.text[inner])
    }

    /// The string literal holding `offset`, quotes included.
    pub(crate) fn string_at(&self, offset: usize) -> Option<Range<usize>> {
        let index = self
            .strings
            .partition_point(|range| range.start <= offset)
            .checked_sub(1)?;
        let range = &self.strings[index];
        (offset > range.start && offset < range.end).then(|| range.clone())
    }
}

/// The end (one past the closing quote) of the string starting at `start`. Strings of
/// one-line languages end at the line's end when unclosed; CMake's may span lines.
fn string_end(bytes: &[u8], start: usize, language: Language) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\n' if language != Language::CMake => return i,
            byte if byte == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|position| from + position)
}

fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |position| from + position)
}

/// Blanks a range, keeping line breaks so that line numbers stay right.
fn blank(out: &mut [u8], start: usize, end: usize) {
    for byte in &mut out[start..end] {
        if *byte != b'\n' {
            *byte = b' ';
        }
    }
}

/// The line (1-based) of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .split(|&b| b == b'\n')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_from_file_names() {
        let of = |name: &str| Language::of(Path::new(name));
        assert_eq!(of("src/CMakeLists.txt"), Some(Language::CMake));
        assert_eq!(of("cmake/Cuda.cmake"), Some(Language::CMake));
        assert_eq!(of("setup.py"), Some(Language::Python));
        assert_eq!(of("Makefile"), Some(Language::Make));
        assert_eq!(of("Makefile.cuda"), Some(Language::Make));
        assert_eq!(of("meson.build"), Some(Language::Meson));
        assert_eq!(of(".bazelrc"), Some(Language::Bazel));
        assert_eq!(of("BUILD.bazel"), Some(Language::Bazel));
        assert_eq!(of("build.sh"), Some(Language::Shell));
        assert_eq!(of("Dockerfile.cuda"), Some(Language::Shell));
        assert_eq!(of("pyproject.toml"), Some(Language::Toml));
        assert_eq!(of("kernel.cu"), None);
        assert_eq!(of("README.md"), None);
    }

    #[test]
    fn comments_and_docstrings_are_blanked_in_place() {
        let text = "a = '-gencode'  # arch=compute_80,code=sm_80\n\"\"\"doc\nsm_90\"\"\"\nb\n";
        let masked = Masked::new(text, Language::Python);
        assert_eq!(masked.text.len(), text.len());
        assert!(!masked.text.contains("sm_80"));
        assert!(!masked.text.contains("sm_90"));
        assert!(masked.text.contains("a = '-gencode'"));
        assert_eq!(masked.text.lines().count(), text.lines().count());
        assert_eq!(masked.string_at(5), Some(4..14));
        assert_eq!(masked.string_at(4), None, "the quote itself is not inside");

        let cmake = "set(X \"a#b\") # sm_80\n#[[ sm_90\n]] set(Y 1)";
        let masked = Masked::new(cmake, Language::CMake);
        assert!(masked.text.contains("\"a#b\""));
        assert!(!masked.text.contains("sm_"));
        assert!(masked.text.ends_with("   set(Y 1)"));

        let shell = "echo ${#x} a#b # sm_80";
        let masked = Masked::new(shell, Language::Shell);
        assert!(masked.text.starts_with("echo ${#x} a#b  "));
        assert!(!masked.text.contains("sm_80"));
    }

    #[test]
    fn only_closed_strings_have_a_content() {
        let text = "a = 'x' + \"\nb = 'y\\'\nc = ''\n";
        let masked = Masked::new(text, Language::Python);
        let contents: Vec<_> = masked.strings.iter().map(|s| masked.content(s)).collect();
        assert_eq!(contents, [Some("x"), None, None, Some("")]);
        let masked = Masked::new("set(X \"a\\\"", Language::CMake);
        assert_eq!(masked.strings.len(), 1);
        assert_eq!(masked.strings[0], 6..10);
        assert_eq!(masked.content(&masked.strings[0]), None);
    }

    #[test]
    fn lines_are_counted_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }
}
