//! The notations of a SHA-256 digest that Nix writes: `sha256:<base-32>` (the
//! database, narinfo files, `nix-store -q --hash`) and SRI, `sha256-<base64>` (the
//! JSON of `nix path-info`, `nix hash path`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::base32;

/// `sha256-<base64>` of a digest.
pub fn sri(digest: &[u8; 32]) -> String {
    format!("sha256-{}", STANDARD.encode(digest))
}

/// A `sha256:<base-32>` hash in SRI notation; `None` for text that is not such a hash.
pub fn sri_of_nix32(hash: &str) -> Option<String> {
    let digest = base32::decode(hash.strip_prefix("sha256:")?, 32)?;
    let digest: [u8; 32] = digest.try_into().ok()?;
    Some(sri(&digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix32_becomes_the_sri_form_nix_path_info_prints() {
        // `nix-store -q --hash` and `nix path-info --json` (Nix 2.8) on the same path.
        assert_eq!(
            sri_of_nix32("sha256:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h").as_deref(),
            Some("sha256-EFUdrtf6Rn0LWIJufrmg8q99aT3jGfLvd1//zaJEufY=")
        );
    }

    #[test]
    fn text_that_is_no_nix32_sha256_has_no_sri_form() {
        for text in [
            "",
            "sha256:",
            "md5:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h",
            "sha256:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8",
            "sha256:exmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h",
        ] {
            assert_eq!(sri_of_nix32(text), None, "{text:?}");
        }
    }
}
