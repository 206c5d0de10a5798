//! Compute capabilities (`8.6`, `9.0a`, `10.0f`) and the spellings tools use for them
//! (`sm_90a`, `compute_90`, `90a`).

use std::fmt;
use std::str::FromStr;

/// Which feature set of a GPU generation a capability targets.
///
/// The order (baseline, then `a`, then `f`) is the order capabilities sort in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variant {
    /// Baseline features: SASS runs on this and later minors of the same major,
    /// PTX on any later GPU.
    Baseline,
    /// `a`: architecture-specific features; code runs on exactly this capability.
    ArchSpecific,
    /// `f`: family-specific features; code runs within the family (same major,
    /// equal or higher minor).
    FamilySpecific,
}

impl Variant {
    /// The suffix tools append to the number: `""`, `"a"` or `"f"`.
    pub fn suffix(self) -> &'static str {
        match self {
            Variant::Baseline => "",
            Variant::ArchSpecific => "a",
            Variant::FamilySpecific => "f",
        }
    }
}

/// A CUDA compute capability such as `9.0a`.
///
/// Fields are ordered so that the derived ordering is the natural one:
/// `8.6 < 9.0 < 9.0a < 10.0 < 10.0a < 10.0f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capability {
    major: u8,
    minor: u8,
    variant: Variant,
}

impl Capability {
    pub const fn new(major: u8, minor: u8, variant: Variant) -> Self {
        Self {
            major,
            minor,
            variant,
        }
    }

    pub const fn baseline(major: u8, minor: u8) -> Self {
        Self::new(major, minor, Variant::Baseline)
    }

    pub fn major(self) -> u8 {
        self.major
    }

    pub fn minor(self) -> u8 {
        self.minor
    }

    pub fn variant(self) -> Variant {
        self.variant
    }

    /// The same capability without its `a`/`f` suffix.
    pub fn without_variant(self) -> Self {
        Self::baseline(self.major, self.minor)
    }

    /// The number tools use, without suffix: 9.0 → 90, 12.1 → 121.
    pub fn number(self) -> u32 {
        u32::from(self.major) * 10 + u32::from(self.minor)
    }

    /// Digits plus suffix, as in nvcc's and CMake's spellings: `90a`.
    pub fn digits(self) -> String {
        format!("{}{}", self.number(), self.variant.suffix())
    }

    /// The SASS target name: `sm_90a`.
    pub fn sm_name(self) -> String {
        format!("sm_{}", self.digits())
    }

    /// The PTX (virtual architecture) name: `compute_90a`.
    pub fn compute_name(self) -> String {
        format!("compute_{}", self.digits())
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}{}", self.major, self.minor, self.variant.suffix())
    }
}

serde_as_text!(Capability);

/// A string that is not any spelling of a capability.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid capability `{input}`: {reason} (write it like 8.6, 9.0a, 10.0f, sm_90a, compute_90 or 90a)"
)]
pub struct ParseCapabilityError {
    input: String,
    reason: &'static str,
}

impl ParseCapabilityError {
    fn new(input: &str, reason: &'static str) -> Self {
        Self {
            input: input.to_owned(),
            reason,
        }
    }
}

impl FromStr for Capability {
    type Err = ParseCapabilityError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let text = input.trim().to_ascii_lowercase();
        let (text, prefixed) = ["sm_", "compute_", "lto_"]
            .iter()
            .find_map(|prefix| {
                text.strip_prefix(prefix)
                    .map(|rest| (rest.to_owned(), true))
            })
            .unwrap_or((text, false));

        let (number, variant) = match text.strip_suffix('a') {
            Some(rest) => (rest, Variant::ArchSpecific),
            None => match text.strip_suffix('f') {
                Some(rest) => (rest, Variant::FamilySpecific),
                None => (text.as_str(), Variant::Baseline),
            },
        };
        if number.is_empty() {
            return Err(ParseCapabilityError::new(input, "no number"));
        }

        let (major, minor) = if let Some((major, minor)) = number.split_once('.') {
            if prefixed {
                return Err(ParseCapabilityError::new(
                    input,
                    "sm_/compute_ names take digits without a dot",
                ));
            }
            (major, minor)
        } else {
            if number.len() < 2 {
                return Err(ParseCapabilityError::new(
                    input,
                    "a number without a dot needs at least two digits",
                ));
            }
            number.split_at(number.len() - 1)
        };

        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(major) || !all_digits(minor) {
            return Err(ParseCapabilityError::new(input, "expected digits"));
        }
        if major.len() > 2 || minor.len() != 1 {
            return Err(ParseCapabilityError::new(
                input,
                "major has one or two digits, minor exactly one",
            ));
        }
        let major: u8 = major
            .parse()
            .map_err(|_| ParseCapabilityError::new(input, "expected digits"))?;
        let minor: u8 = minor
            .parse()
            .map_err(|_| ParseCapabilityError::new(input, "expected digits"))?;
        if major == 0 {
            return Err(ParseCapabilityError::new(input, "major is at least 1"));
        }
        Ok(Capability::new(major, minor, variant))
    }
}

/// Parses a list written with `;`, `,` or whitespace between items (the separators
/// CMake, TensorFlow and shells use), ignoring PyTorch's `+PTX` marker.
pub fn parse_capability_list(text: &str) -> Result<Vec<Capability>, ParseCapabilityError> {
    text.split([';', ',', ' ', '\t', '\n'])
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let item = item
                .strip_suffix("+PTX")
                .or_else(|| item.strip_suffix("+ptx"))
                .unwrap_or(item);
            item.parse()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(text: &str) -> Capability {
        text.parse().expect(text)
    }

    #[test]
    fn parses_every_spelling_of_the_same_capability() {
        let expected = Capability::new(9, 0, Variant::ArchSpecific);
        for text in [
            "9.0a",
            "sm_90a",
            "compute_90a",
            "90a",
            " SM_90A ",
            "lto_90a",
        ] {
            assert_eq!(cap(text), expected, "{text}");
        }
        assert_eq!(cap("compute_90"), Capability::baseline(9, 0));
        assert_eq!(
            cap("10.0f"),
            Capability::new(10, 0, Variant::FamilySpecific)
        );
        assert_eq!(cap("sm_121"), Capability::baseline(12, 1));
        assert_eq!(cap("75"), Capability::baseline(7, 5));
    }

    #[test]
    fn prints_every_spelling() {
        let c = cap("sm_103f");
        assert_eq!(c.to_string(), "10.3f");
        assert_eq!(c.digits(), "103f");
        assert_eq!(c.sm_name(), "sm_103f");
        assert_eq!(c.compute_name(), "compute_103f");
        assert_eq!(c.number(), 103);
        assert_eq!(c.without_variant(), cap("10.3"));
    }

    #[test]
    fn every_spelling_round_trips() {
        for major in 1..=15u8 {
            for minor in 0..=9u8 {
                for variant in [
                    Variant::Baseline,
                    Variant::ArchSpecific,
                    Variant::FamilySpecific,
                ] {
                    let c = Capability::new(major, minor, variant);
                    for text in [c.to_string(), c.sm_name(), c.compute_name(), c.digits()] {
                        assert_eq!(cap(&text), c, "{text}");
                    }
                }
            }
        }
    }

    #[test]
    fn sorts_baseline_before_specific_and_by_number() {
        let mut list = [
            cap("10.0f"),
            cap("9.0a"),
            cap("10.0"),
            cap("8.6"),
            cap("9.0"),
            cap("10.0a"),
        ];
        list.sort();
        let printed: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(printed, ["8.6", "9.0", "9.0a", "10.0", "10.0a", "10.0f"]);
    }

    #[test]
    fn refuses_malformed_text_with_the_reason() {
        for (text, reason) in [
            ("", "no number"),
            ("a", "no number"),
            ("9", "at least two digits"),
            ("9.x", "expected digits"),
            ("sm_9.0", "without a dot"),
            ("9.10", "minor exactly one"),
            ("123.4", "minor exactly one"),
            ("0.5", "at least 1"),
            ("9.0b", "expected digits"),
            ("9.0af", "expected digits"),
            ("-9.0", "expected digits"),
        ] {
            let err = text.parse::<Capability>().expect_err(text).to_string();
            assert!(err.contains(reason), "{text}: {err}");
            assert!(err.contains(&format!("`{text}`")), "{text}: {err}");
        }
    }

    #[test]
    fn parses_lists_in_every_tools_syntax() {
        let expected = vec![cap("7.5"), cap("8.6"), cap("9.0a")];
        for text in [
            "7.5;8.6;9.0a",
            "7.5, 8.6, 9.0a",
            "sm_75 sm_86 sm_90a",
            "7.5;8.6;9.0a+PTX",
            "75;86;90a",
        ] {
            assert_eq!(parse_capability_list(text).expect(text), expected, "{text}");
        }
        assert!(parse_capability_list("7.5;bogus").is_err());
        assert!(parse_capability_list("").expect("empty").is_empty());
    }

    #[test]
    fn serializes_as_the_dotted_string() {
        let json = serde_json::to_string(&cap("sm_90a")).expect("serialize");
        assert_eq!(json, "\"9.0a\"");
        let back: Capability = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, cap("9.0a"));
        assert!(serde_json::from_str::<Capability>("\"nope\"").is_err());
    }
}
