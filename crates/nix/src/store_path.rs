//! Store path names: `<store dir>/<32 characters of Nix base-32>-<name>`.

/// Length of a store path's hash part.
pub const HASH_LEN: usize = 32;

/// Nix's base-32 alphabet (no `e`, `o`, `u`, `t`).
const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// The longest name Nix accepts after the hash part.
const MAX_NAME_LEN: usize = 211;

/// Whether every byte of `text` is in Nix's base-32 alphabet.
pub fn is_nix32(text: &str) -> bool {
    text.bytes().all(|byte| ALPHABET.contains(&byte))
}

/// Whether `text` is a store path hash part.
pub fn is_hash_part(text: &str) -> bool {
    text.len() == HASH_LEN && is_nix32(text)
}

/// Checks a store path's base name (`<hash>-<name>`), saying what is wrong.
pub fn check_base_name(base: &str) -> Result<(), String> {
    let Some((hash, name)) = base.split_at_checked(HASH_LEN) else {
        return Err(format!("{base:?} is too short for a store path name"));
    };
    if !is_nix32(hash) {
        return Err(format!(
            "{base:?} does not start with a hash part of Nix base-32"
        ));
    }
    let Some(name) = name.strip_prefix('-') else {
        return Err(format!("{base:?} has no '-' after its hash part"));
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "{base:?} has a name of {} bytes (1 to {MAX_NAME_LEN} allowed)",
            name.len()
        ));
    }
    if name.starts_with('.') {
        return Err(format!("{base:?} has a name starting with '.'"));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+-._?=".contains(*c)))
    {
        Some(bad) => Err(format!("{base:?} holds {bad:?}, which store names may not")),
        None => Ok(()),
    }
}

/// The base name of `path` if it is a well-formed store path directly in `store_dir`.
pub fn base_name<'a>(store_dir: &str, path: &'a str) -> Result<&'a str, String> {
    let base = path
        .strip_prefix(store_dir)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(|| format!("{path:?} is not in the store folder {store_dir}"))?;
    check_base_name(base)?;
    Ok(base)
}

/// The hash part of a store path or base name that `check_base_name` accepted.
pub fn hash_part_of(base: &str) -> &str {
    let base = base.rsplit('/').next().unwrap_or(base);
    base.get(..HASH_LEN).unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_nix_rules() {
        let hash = "0123456789abcdfghijklmnpqrsvwxyz";
        assert!(check_base_name(&format!("{hash}-hello-2.12")).is_ok());
        assert!(check_base_name(&format!("{hash}-a+b=c?d_e.f")).is_ok());
        for bad in [
            format!("{hash}hello"),
            format!("{hash}-"),
            format!("{hash}-.hidden"),
            format!("{hash}-a/b"),
            format!("{hash}-ü"),
            format!("{}-x", "e".repeat(32)),
            "short".to_owned(),
            format!("{hash}-{}", "x".repeat(212)),
        ] {
            assert!(check_base_name(&bad).is_err(), "{bad}");
        }
        assert_eq!(
            base_name("/nix/store", &format!("/nix/store/{hash}-x")),
            Ok(&*format!("{hash}-x"))
        );
        assert!(base_name("/nix/store", &format!("/nix/store/sub/{hash}-x")).is_err());
        assert!(base_name("/nix/store", &format!("/nix/storex/{hash}-x")).is_err());
        assert_eq!(hash_part_of(&format!("/nix/store/{hash}-x")), hash);
    }
}
