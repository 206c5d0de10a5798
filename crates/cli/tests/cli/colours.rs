//! Colours only where they are wanted: on a terminal, or when `CLICOLOR_FORCE` asks,
//! never with `NO_COLOR`, never in a pipe by default.

use crate::common::{cudapkgs, fixture};

const ESCAPE: char = '\u{1b}';

/// stdout and stderr of a verdict that fails (`FAIL` on stdout), of a usage error and of
/// a failure with a cause (`caused by:` on stderr).
fn outputs(vars: &[(&str, &str)]) -> Vec<String> {
    let library = fixture("libscale_i.so");
    let library = library.to_str().expect("utf-8");
    let mut texts = Vec::new();
    for args in [
        &["inspect", "--gpu", "9.0", library][..],
        &["flags", "--cuda", "x"],
        &["nar", "hash", "/nonexistent/cudapkgs-colours"],
    ] {
        let (_, stdout, stderr) = cudapkgs()
            .args(args)
            .envs(vars.iter().copied())
            .run()
            .into_parts();
        texts.push(stdout);
        texts.push(stderr);
    }
    texts
}

#[test]
fn colours_follow_clicolor_force_and_no_color() {
    let forced = outputs(&[("CLICOLOR_FORCE", "1")]);
    assert!(forced[0].contains(&format!("{ESCAPE}[")), "{:?}", forced[0]);
    assert!(forced[0].contains("FAIL"), "{:?}", forced[0]);
    assert!(forced[3].starts_with(ESCAPE), "{:?}", forced[3]);
    assert!(
        forced[5].contains(&format!("\n  {ESCAPE}[")) && forced[5].contains("caused by:"),
        "{:?}",
        forced[5]
    );
    for plain in [
        outputs(&[]),
        outputs(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]),
    ] {
        for text in &plain {
            assert!(!text.contains(ESCAPE), "{text:?}");
        }
        assert!(plain[0].contains("FAIL"), "{:?}", plain[0]);
        assert!(plain[3].starts_with("error: "), "{:?}", plain[3]);
        assert!(plain[5].contains("\n  caused by: "), "{:?}", plain[5]);
    }
}
