//! Rewrites checked as the `targets` fuzz target checks them (a rewrite with no place
//! left to a person scans clean for its request, and a second rewrite changes nothing),
//! on inputs it found wrong, minimised by hand, and on their neighbours.

use cudapkgs_caps::{CudaOptions, HostPlatform, parse_capability_list};
use cudapkgs_targets::{Context, Language, Request, plan, scan_text};

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

/// Rewrites `text` for `list`, checks the result as the fuzz target does, and returns it.
fn rewritten(text: &str, language: Language, list: &str) -> String {
    let request = request(list);
    let context = Context::default();
    let first = plan(text, language, &request, &context);
    assert!(first.manual.is_empty(), "{:?}", first.manual);
    assert!(
        first.remaining.is_empty(),
        "{:?}\n{}",
        first.remaining,
        first.new_text
    );
    let second = plan(&first.new_text, language, &request, &context);
    assert!(
        second.edits.is_empty(),
        "{:?}\n{}",
        second.edits,
        first.new_text
    );
    first.new_text
}

#[test]
fn a_quoted_cmake_argument_followed_directly_by_another_stays_apart() {
    // CMake reads `"…"x` as two arguments (with a warning); the flags written in place
    // of the quoted one must not run into the `x`.
    let text = "f(\"arch=compute_75,code=sm_75\"x)\n";
    assert_eq!(
        rewritten(text, Language::CMake, "9.0"),
        "f(-gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_90,code=compute_90 x)\n"
    );
    assert_eq!(
        rewritten(text, Language::CMake, "8.6 9.0a"),
        "f(-gencode=arch=compute_86,code=sm_86 -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=compute_90 x)\n"
    );
    // Arguments already apart are left as they are.
    assert_eq!(
        rewritten(
            "f(\"arch=compute_75,code=sm_75\" x)\n",
            Language::CMake,
            "9.0"
        ),
        "f(-gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_90,code=compute_90 x)\n"
    );
}

#[test]
fn a_gencode_argument_before_its_value_is_rewritten_with_it() {
    // `"-gencode" "arch=…"` are two arguments of one flag: the flags written in their
    // place carry their own `-gencode=`, so the lone `-gencode` must go too (nvcc would
    // read the next flag as its value).
    let text = "list(APPEND F \"-gencode\" \"arch=compute_75,code=sm_75\" \"-gencode\" \"arch=compute_80,code=sm_80\")\n";
    assert_eq!(
        rewritten(text, Language::CMake, "9.0"),
        "list(APPEND F -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_90,code=compute_90 )\n"
    );
}

#[test]
fn a_quote_left_open_at_the_end_of_a_line_is_no_string_to_read() {
    // A lone quote before a line break is a string literal of one byte: reading what
    // it holds between its quotes sliced backwards.
    let python = "\"\nflags = (\"-gencode\", \"arch=compute_80,code=sm_80\")\n";
    assert_eq!(scan_text(python, Language::Python).len(), 1);
    assert!(
        rewritten(python, Language::Python, "9.0")
            .ends_with("flags = (\"-gencode\", \"arch=compute_90,code=[sm_90,compute_90]\")\n")
    );
    let python = "\"\n\"arch=compute_80,code=sm_80\"\n";
    let first = plan(
        python,
        Language::Python,
        &request("9.0"),
        &Context::default(),
    );
    assert_eq!(first.manual.len(), 1, "a value compared or computed with");
    let meson = "nvcc_arch_flags(a, '\n)\n";
    assert!(scan_text(meson, Language::Meson).is_empty());
    // An open string is not an item of a literal list.
    assert!(scan_text("CUDA_ARCHS = [\"8.0\", \"9.0,\n", Language::Python).is_empty());
}
