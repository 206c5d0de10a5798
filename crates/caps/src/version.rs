//! CUDA release versions at the `major.minor` granularity that every table here uses.

use std::fmt;
use std::str::FromStr;

/// A CUDA version such as `12.9`. Patch levels are accepted when parsing and dropped:
/// capability support and compiler limits change only with minor releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CudaVersion {
    major: u8,
    minor: u8,
}

impl CudaVersion {
    pub const fn new(major: u8, minor: u8) -> Self {
        Self { major, minor }
    }

    pub fn major(self) -> u8 {
        self.major
    }

    pub fn minor(self) -> u8 {
        self.minor
    }

    /// Nixpkgs' attribute suffix: `12_9` (as in `cudaPackages_12_9`).
    pub fn nix_suffix(self) -> String {
        format!("{}_{}", self.major, self.minor)
    }
}

impl fmt::Display for CudaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

serde_as_text!(CudaVersion);

/// A string that is not a CUDA version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CUDA version `{input}`: write it like 12.9, 12.9.1 or cu129")]
pub struct ParseCudaVersionError {
    input: String,
}

impl FromStr for CudaVersion {
    type Err = ParseCudaVersionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = || ParseCudaVersionError {
            input: input.to_owned(),
        };
        let text = input.trim().to_ascii_lowercase();
        let number = |s: &str| -> Result<u8, ParseCudaVersionError> {
            if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(error());
            }
            s.parse().map_err(|_| error())
        };

        // PyTorch's wheel tags: cu118, cu129, cu130.
        if let Some(digits) = text.strip_prefix("cu").filter(|d| !d.starts_with('d')) {
            if !(digits.len() == 3 || digits.len() == 4) {
                return Err(error());
            }
            let (major, minor) = digits.split_at(digits.len() - 1);
            return Ok(Self::new(number(major)?, number(minor)?));
        }

        let text = text.strip_prefix("cuda").unwrap_or(&text);
        let mut parts = text.split('.');
        let major = number(parts.next().ok_or_else(error)?)?;
        let minor = number(parts.next().ok_or_else(error)?)?;
        match (parts.next(), parts.next()) {
            (None, _) => {}
            (Some(patch), None)
                if !patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => return Err(error()),
        }
        if major == 0 {
            return Err(error());
        }
        Ok(Self::new(major, minor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_spellings() {
        for (text, expected) in [
            ("12.9", CudaVersion::new(12, 9)),
            ("12.9.1", CudaVersion::new(12, 9)),
            ("cuda12.9", CudaVersion::new(12, 9)),
            ("cu129", CudaVersion::new(12, 9)),
            ("cu118", CudaVersion::new(11, 8)),
            ("cu130", CudaVersion::new(13, 0)),
            (" 13.0 ", CudaVersion::new(13, 0)),
        ] {
            assert_eq!(text.parse::<CudaVersion>().expect(text), expected, "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_version() {
        for text in [
            "", "12", "12.", ".9", "12.x", "12.9.1.2", "12.9.", "cu12", "cudnn9.1", "0.9", "123.4",
        ] {
            let err = text.parse::<CudaVersion>().expect_err(text).to_string();
            assert!(err.contains(&format!("`{text}`")), "{err}");
        }
    }

    #[test]
    fn orders_numerically_and_round_trips() {
        let a: CudaVersion = "12.10".parse().expect("parse");
        let b: CudaVersion = "12.9".parse().expect("parse");
        assert!(a > b);
        for major in 10..=13u8 {
            for minor in 0..=9u8 {
                let v = CudaVersion::new(major, minor);
                assert_eq!(v.to_string().parse::<CudaVersion>().expect("parse"), v);
            }
        }
        assert_eq!(CudaVersion::new(12, 9).nix_suffix(), "12_9");
    }
}
