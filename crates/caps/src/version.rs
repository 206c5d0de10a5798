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

    /// The newest release of a major that the tables here know: 10.2, 11.8, 12.9, and
    /// for 13 and later the newest release whose compiler limits are tabulated when it
    /// is of that major, else `major.0`.
    pub fn newest_of_major(major: u8) -> Self {
        const LAST_MINORS: [(u8, u8); 3] = [(10, 2), (11, 8), (12, 9)];
        if let Some(&(_, minor)) = LAST_MINORS.iter().find(|(m, _)| *m == major) {
            return Self::new(major, minor);
        }
        let newest = crate::newest_tabulated_cuda();
        if newest.major == major {
            newest
        } else {
            Self::new(major, 0)
        }
    }

    /// A release as people name it wherever one is meant: a version (`12.9`, `12.9.1`,
    /// `cu129`) as [`FromStr`] reads it, or a major alone (`12`), which stands for that
    /// major's newest release ([`CudaVersion::newest_of_major`]).
    pub fn parse_release(text: &str) -> Result<Self, ParseCudaVersionError> {
        let trimmed = text.trim();
        let major_only = !trimmed.is_empty()
            && trimmed.len() <= 2
            && trimmed.bytes().all(|b| b.is_ascii_digit());
        match trimmed.parse::<u8>() {
            Ok(major) if major_only && major > 0 => Ok(Self::newest_of_major(major)),
            _ => text.parse(),
        }
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
#[error("invalid CUDA version `{input}`: write it like 12.9, 12.9.1, cu129 or 13")]
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
    fn a_major_alone_is_its_newest_release() {
        assert_eq!(
            CudaVersion::parse_release("12"),
            Ok(CudaVersion::new(12, 9))
        );
        assert_eq!(
            CudaVersion::parse_release("11"),
            Ok(CudaVersion::new(11, 8))
        );
        assert_eq!(
            CudaVersion::parse_release(" 13 "),
            Ok(crate::newest_tabulated_cuda())
        );
        assert_eq!(
            CudaVersion::parse_release("12.6.3"),
            Ok(CudaVersion::new(12, 6))
        );
        assert_eq!(
            CudaVersion::parse_release("cu118"),
            Ok(CudaVersion::new(11, 8))
        );
        for bad in ["0", "", "123", "12.", "banana", "-1"] {
            assert!(CudaVersion::parse_release(bad).is_err(), "{bad:?}");
        }
        // A major alone is still no version where an exact one is meant.
        assert!("12".parse::<CudaVersion>().is_err());
    }

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
