//! Renderings more than one command shows: kernel names for people, and a hop of a
//! reference chain.

use serde::Serialize;

/// A C++ name as people read it; other names unchanged.
pub use cudapkgs_fatbin::demangle;

/// A count with its noun in the right number: `1 path`, `3 paths`.
pub fn count<N: Copy + PartialEq + From<u8> + std::fmt::Display>(
    n: N,
    one: &str,
    many: &str,
) -> String {
    format!("{n} {}", if n == N::from(1) { one } else { many })
}

/// One hop of a reference chain (`cudapkgs_store::why::Hop`), for JSON and as `why`
/// prints it; its keys in the order of their names, as they always were.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct HopReport<'a> {
    /// The file of `path` that holds the reference, relative to it (empty: the path
    /// itself).
    file: String,
    next: &'a str,
    /// Where in `file` the reference is.
    offset: u64,
    path: &'a str,
}

impl<'a> HopReport<'a> {
    pub fn of(hop: &'a cudapkgs_store::why::Hop) -> Self {
        HopReport {
            path: &hop.path,
            next: &hop.next,
            file: hop.file.display().to_string(),
            offset: hop.offset,
        }
    }

    /// `  -> NEXT  (FILE, byte N)`, as `why` prints a hop.
    pub fn line(&self) -> String {
        let file = if self.file.is_empty() {
            "the file itself"
        } else {
            &self.file
        };
        format!("  -> {}  ({file}, byte {})", self.next, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangles_cxx_names_only() {
        assert_eq!(demangle("_Z5scalePffi"), "scale(float*, float, int)");
        assert_eq!(demangle("plain_c_kernel"), "plain_c_kernel");
    }
}
