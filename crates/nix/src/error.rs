/// What the formats refuse.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A narinfo or nix-cache-info file that does not parse; `line` counts from 1.
    #[error("line {line}: {problem}")]
    Malformed { line: usize, problem: String },
    /// A file that parses but lacks what Nix requires, or holds a value out of range.
    #[error("{0}")]
    Invalid(String),
    /// A signing or public key that is not `name:base64` of the right length.
    #[error("not a Nix {kind} key: {problem}")]
    Key { kind: &'static str, problem: String },
    /// The operating system's random source failed (key generation).
    #[error("no randomness for a new key: the system's random source failed")]
    Random,
}
