//! The build-file scanner and the rewrite on arbitrary text in every language: never a
//! panic; findings name lines of the file; a rewrite's edits are disjoint, in order and
//! on character boundaries, and when no place needs a person the result scans clean
//! for the request and a second rewrite changes nothing. PyTorch's allow-list: an added
//! item is undone to the same bytes.
#![no_main]

use cudapkgs_caps::{CudaOptions, HostPlatform, parse_capability_list};
use cudapkgs_targets::{Context, Language, Request, plan, scan_text, torch, unified_diff};
use libfuzzer_sys::fuzz_target;

const LANGUAGES: [Language; 7] = [
    Language::CMake,
    Language::Python,
    Language::Make,
    Language::Meson,
    Language::Bazel,
    Language::Shell,
    Language::Toml,
];

fn request(list: &str) -> Request {
    Request::new(
        CudaOptions {
            cuda: "13.0".parse().expect("cuda"),
            capabilities: Some(parse_capability_list(list).expect("list")),
            forward_compat: true,
            platform: HostPlatform::X86_64,
        }
        .resolve()
        .expect("valid"),
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let language = LANGUAGES[usize::from(selector) % LANGUAGES.len()];
    let lines = text.split('\n').count();
    for finding in scan_text(text, language) {
        assert!(finding.line >= 1 && finding.line <= finding.end_line);
        assert!(finding.end_line <= lines, "{finding:?}");
    }
    let context = Context::default();
    for list in ["9.0", "8.6 9.0a"] {
        let request = request(list);
        let first = plan(text, language, &request, &context);
        let mut end = 0;
        for edit in &first.edits {
            assert!(edit.range.start >= end && edit.range.end >= edit.range.start);
            assert!(text.is_char_boundary(edit.range.start) && text.is_char_boundary(edit.range.end));
            end = edit.range.end;
        }
        let _ = unified_diff("f", text, &first.edits);
        if first.manual.is_empty() {
            assert!(first.remaining.is_empty(), "{:?}\n{}", first.remaining, first.new_text);
            let second = plan(&first.new_text, language, &request, &context);
            assert!(second.edits.is_empty(), "{:?}\n{}", second.edits, first.new_text);
        }
    }
    let path = std::path::Path::new("cpp_extension.py");
    if !text.contains("cudapkgs") && torch::read_allow_list(text, path).is_ok() {
        if let Ok(allowed) = torch::allow(text, &["10.0f".to_owned()], path) {
            if allowed != text {
                let undone = torch::undo(&allowed, path).expect("own marker");
                assert_eq!(undone.as_deref(), Some(text));
            }
        }
    }
});
