//! `Requires-Dist` entries and core metadata files on arbitrary text: parsed or refused,
//! never a panic. An accepted requirement has a normalised name (what the resolver looks
//! up on the index), reads the same with spaces around its tokens, and its marker
//! evaluates in any environment; a refusal names an offset inside the text.
#![no_main]

use cudapkgs_redist::pypi::requires_dist;
use cudapkgs_redist::requirement::{Environment, Requirement};
use libfuzzer_sys::fuzz_target;

fn normalised(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for requirement in requires_dist(text, "fuzz").into_iter().flatten() {
        assert!(normalised(&requirement.name), "{:?}", requirement.name);
    }
    let line = text.lines().next().unwrap_or_default();
    match line.parse::<Requirement>() {
        Ok(requirement) => {
            assert!(normalised(&requirement.name), "{:?}", requirement.name);
            let spaced = format!("  {line}  ");
            assert_eq!(spaced.parse::<Requirement>().as_ref(), Ok(&requirement));
            let mut environment = Environment::linux("linux-x86_64");
            let _ = requirement.applies(&environment);
            environment.extras.push("all".to_owned());
            let _ = requirement.applies(&environment);
            let _ = requirement.applies(&Environment::default());
        }
        Err(error) => assert!(error.at <= line.len(), "{error}"),
    }
});
