//! `cudapkgs targets` on real source releases from PyPI (pinned and cached by
//! scripts/install-targets-sources.sh), PyTorch 2.11's own extension builder, and
//! `inspect --expect-capabilities` on code nvcc builds here.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{repo, run, s};
use serde_json::Value;

/// The downloaded sources, or `None` (said on stderr) outside CI when they are missing.
fn sources() -> Option<PathBuf> {
    let dir = repo().join(".tools/targets-sources");
    let have = dir.join("sdists").is_dir()
        && dir
            .join("torch-2.11.0/torch/utils/cpp_extension.py")
            .is_file();
    let what = format!("{} (run scripts/install-targets-sources.sh)", dir.display());
    cudapkgs_testkit::require(have, &what).then_some(dir)
}

fn sdist(sources: &Path, name: &str) -> PathBuf {
    sources.join("sdists").join(name)
}

fn json_of(args: &[&str]) -> (i32, Value) {
    let (code, stdout, stderr) = run(args);
    let value = serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("{args:?}: not JSON ({error}): {stdout}\n{stderr}"));
    (code, value)
}

fn findings(report: &Value) -> &Vec<Value> {
    report["findings"].as_array().expect("findings")
}

/// The finding of `file` at `line`.
fn at<'a>(report: &'a Value, file: &str, line: u64) -> &'a Value {
    findings(report)
        .iter()
        .find(|f| f["file"] == file && f["line"] == line)
        .unwrap_or_else(|| panic!("no finding at {file}:{line} in {report:#}"))
}

/// Fails the test unless `finding` is of `kind` and does or does not override the user's
/// choice.
#[track_caller]
fn assert_kind(finding: &Value, kind: &str, overrides_user: bool) {
    assert_eq!(finding["kind"], kind, "{finding:#}");
    assert_eq!(finding["overrides_user"], overrides_user, "{finding:#}");
}

fn reason(finding: &Value) -> &str {
    finding["reason"].as_str().expect("reason")
}

fn architectures(finding: &Value) -> Vec<&str> {
    finding["architectures"]
        .as_array()
        .expect("architectures")
        .iter()
        .map(|a| a.as_str().expect("name"))
        .collect()
}

/// Unpacks an sdist with tar into `into`; returns its top folder.
fn unpack(archive: &Path, into: &Path) -> PathBuf {
    let status = Command::new("tar")
        .args(["-xzf", s(archive), "-C", s(into)])
        .status()
        .expect("tar runs");
    assert!(status.success());
    let mut entries: Vec<PathBuf> = std::fs::read_dir(into)
        .expect("read")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    entries.pop().expect("a top folder")
}

/// Every file's bytes below `root` (for "nothing changed" checks).
fn contents(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("meta");
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                found.insert(path.clone(), std::fs::read(&path).expect("read"));
            }
        }
    }
    found
}

#[test]
fn flash_attn_forces_its_own_targets_at_the_lines_named() {
    let Some(sources) = sources() else { return };
    let archive = sdist(&sources, "flash_attn-2.8.3.tar.gz");
    let (code, report) = json_of(&["targets", "scan", "--json", s(&archive)]);
    assert_eq!(code, 1, "{report:#}");

    // setup.py appends -gencode for 80, 90, 100 and 120 whatever the user asks.
    let gencode = at(&report, "setup.py", 181);
    assert_eq!(gencode["end_line"], 191);
    assert_kind(gencode, "nvcc-gencode", true);
    assert_eq!(
        architectures(gencode),
        ["sm_80", "sm_90", "sm_100", "sm_120"]
    );
    // …gated by its own variable, which is read instead of TORCH_CUDA_ARCH_LIST.
    let own = at(&report, "setup.py", 70);
    assert_eq!(own["kind"], "arch-list");
    assert!(reason(own).contains("FLASH_ATTN_CUDA_ARCHS"));

    // csrc/layer_norm/setup.py: TORCH_CUDA_ARCH_LIST defaults when unset (not forcing)
    // and -gencode 70, 80, 90 (forcing).
    let default = at(&report, "csrc/layer_norm/setup.py", 77);
    assert_kind(default, "torch-arch-list", false);
    assert_eq!(
        architectures(default),
        [
            "sm_60", "sm_61", "sm_62", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"
        ]
    );
    let layer_norm = at(&report, "csrc/layer_norm/setup.py", 107);
    assert_eq!(layer_norm["end_line"], 112);
    assert_eq!(architectures(layer_norm), ["sm_70", "sm_80", "sm_90"]);
    // A comment naming architectures (hopper/setup.py line 69) is not a finding.
    assert!(
        !findings(&report)
            .iter()
            .any(|f| f["file"] == "hopper/setup.py" && f["line"] == 69)
    );
    assert_eq!(
        report["summary"]["forcing"].as_u64(),
        Some(
            findings(&report)
                .iter()
                .filter(|f| f["overrides_user"] == true)
                .count() as u64
        )
    );

    // For people: file, line, kind and the architectures.
    let (code, text, _) = run(&["targets", "scan", s(&archive), "--exclude", "csrc/cutlass"]);
    assert_eq!(code, 1);
    assert!(text.contains("setup.py:181-191"), "{text}");
    assert!(text.contains("nvcc-gencode"), "{text}");
}

#[test]
fn mamba_and_causal_conv1d_append_gencode_lists() {
    let Some(sources) = sources() else { return };
    for (name, first, last) in [
        ("causal_conv1d-1.7.0.tar.gz", 180, 199),
        ("mamba_ssm-2.3.2.post1.tar.gz", 182, 201),
    ] {
        let (code, report) = json_of(&["targets", "scan", "--json", s(&sdist(&sources, name))]);
        assert_eq!(code, 1, "{name}");
        let finding = at(&report, "setup.py", first);
        assert_eq!(finding["end_line"], last, "{name}");
        assert_eq!(
            architectures(finding),
            [
                "sm_75", "sm_80", "sm_87", "sm_90", "sm_100", "sm_103", "sm_110", "sm_120",
                "sm_121"
            ],
            "{name}"
        );
    }
}

#[test]
fn lightgbm_sets_its_own_list_for_target_properties() {
    let Some(sources) = sources() else { return };
    let archive = sdist(&sources, "lightgbm-4.6.0.tar.gz");
    let (code, report) = json_of(&["targets", "scan", "--json", s(&archive)]);
    assert_eq!(code, 1);
    let list = at(&report, "CMakeLists.txt", 226);
    assert_eq!(list["kind"], "arch-list");
    assert_eq!(list["end_line"], 242, "the list(APPEND) lines belong to it");
    assert_eq!(list["overrides_user"], true);
    assert_eq!(architectures(list).len(), 12);
    let reason = reason(list);
    assert!(
        reason.contains("CUDA_ARCHS") && reason.contains("3 targets"),
        "{reason}"
    );
}

#[test]
fn lightgbm_4_7_sets_its_list_in_a_function_called_only_as_a_default() {
    let Some(sources) = sources() else { return };
    let archive = sdist(&sources, "lightgbm-4.7.0.tar.gz");
    let (_, report) = json_of(&["targets", "scan", "--json", s(&archive)]);
    // cmake/Utils.cmake sets CMAKE_CUDA_ARCHITECTURES inside compute_cmake_cuda_archs(),
    // which CMakeLists.txt calls inside if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES).
    let for_cuda_13 = at(&report, "cmake/Utils.cmake", 20);
    assert_kind(for_cuda_13, "cmake-architectures", false);
    assert!(
        reason(for_cuda_13).contains("CMakeLists.txt:180"),
        "{for_cuda_13:#}"
    );
    // Only Eigen's own test list (vendored, not built) still forces anything.
    let (code, report) = json_of(&[
        "targets",
        "scan",
        "--json",
        s(&archive),
        "--exclude",
        "external_libs",
    ]);
    assert_eq!(code, 0, "{report:#}");
}

#[test]
fn llama_cpp_cmake_defaults_give_way_to_the_user_and_its_makefile_does_not() {
    let Some(sources) = sources() else { return };
    let archive = sdist(&sources, "llama_cpp_python-0.3.16.tar.gz");
    let (code, report) = json_of(&["targets", "scan", "--json", s(&archive)]);
    assert_eq!(code, 1, "{report:#}");
    let cmake = "vendor/llama.cpp/ggml/src/ggml-cuda/CMakeLists.txt";
    let default = at(&report, cmake, 29);
    assert_kind(default, "cmake-architectures", false);
    assert!(reason(default).contains("NOT DEFINED CMAKE_CUDA_ARCHITECTURES"));
    // The old Makefile builds for the build machine's GPU: `-arch=native`.
    let makefile = at(&report, "vendor/llama.cpp/Makefile", 650);
    assert_eq!(architectures(makefile), ["native"]);
    assert_eq!(makefile["overrides_user"], true);
    // Its CI script passes its own list on cmake's command line.
    let ci = at(&report, "vendor/llama.cpp/ci/run.sh", 60);
    assert_kind(ci, "cmake-architectures", true);
    let forcing: Vec<&Value> = findings(&report)
        .iter()
        .filter(|f| f["overrides_user"] == true)
        .collect();
    assert_eq!(forcing.len(), 2, "{forcing:#?}");

    // The CMake build that llama-cpp-python runs follows CMAKE_CUDA_ARCHITECTURES.
    let (code, report) = json_of(&[
        "targets",
        "scan",
        "--json",
        s(&archive),
        "--exclude",
        "vendor/llama.cpp/Makefile",
        "--exclude",
        "vendor/llama.cpp/ci",
    ]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["forcing"], 0);
}

#[test]
fn projects_that_follow_the_user_are_clean() {
    let Some(sources) = sources() else { return };
    let (code, report) = json_of(&[
        "targets",
        "scan",
        "--json",
        s(&sdist(&sources, "torch_scatter-2.1.2.tar.gz")),
    ]);
    assert_eq!(code, 0, "{report:#}");
    assert!(findings(&report).is_empty(), "{report:#}");
    assert!(report["summary"]["files_read"].as_u64().expect("count") > 0);

    // vLLM intersects TORCH_CUDA_ARCH_LIST with its CUDA_SUPPORTED_ARCHS: clean, and a
    // request its lists cover stays clean, one they lack is reported.
    let vllm = sdist(&sources, "vllm-0.33.0.tar.gz");
    let (code, report) = json_of(&["targets", "scan", "--json", s(&vllm)]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(at(&report, "CMakeLists.txt", 129)["overrides_user"], false);
    assert_eq!(at(&report, "CMakeLists.txt", 129)["upper_bound"], true);
    let (code, report) = json_of(&[
        "targets",
        "scan",
        "--json",
        "--capabilities",
        "8.6",
        s(&vllm),
    ]);
    assert_eq!(code, 0, "{report:#}");
    assert!(findings(&report).is_empty());
    let (code, report) = json_of(&[
        "targets",
        "scan",
        "--json",
        "--cuda",
        "13.0",
        "--capabilities",
        "12.1",
        s(&vllm),
    ]);
    assert_eq!(code, 1, "{report:#}");
    let lines: Vec<u64> = findings(&report)
        .iter()
        .map(|f| f["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, [129, 134], "the list at 132 has 12.1");
    assert_eq!(
        report["request"]["targets"],
        serde_json::json!(["sm_121", "compute_121"])
    );
}

#[test]
fn rewritten_sources_scan_clean_and_still_parse() {
    let Some(sources) = sources() else { return };
    let work = tempfile::tempdir().expect("temp");
    for (name, excluded) in [
        ("lightgbm-4.6.0.tar.gz", &[][..]),
        ("causal_conv1d-1.7.0.tar.gz", &[][..]),
        ("mamba_ssm-2.3.2.post1.tar.gz", &[][..]),
        (
            "flash_attn-2.8.3.tar.gz",
            &[
                "--exclude",
                "hopper",
                "--exclude",
                "csrc/cutlass",
                "--exclude",
                "csrc/composable_kernel",
            ][..],
        ),
    ] {
        let into = work.path().join(name);
        std::fs::create_dir(&into).expect("mkdir");
        let tree = unpack(&sdist(&sources, name), &into);
        let mut args = vec!["targets", "rewrite", "--capabilities", "9.0", s(&tree)];
        args.extend_from_slice(excluded);
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 0, "{name}: {stdout}{stderr}");
        assert!(stdout.contains("rewrote"), "{stdout}");

        let mut args = vec![
            "targets",
            "scan",
            "--json",
            "--capabilities",
            "9.0",
            s(&tree),
        ];
        args.extend_from_slice(excluded);
        let (code, report) = json_of(&args);
        assert_eq!(code, 0, "{name}: {report:#}");
        // Without a request only defaults remain: every forced place states 9.0.
        let mut args = vec!["targets", "scan", "--json", s(&tree)];
        args.extend_from_slice(excluded);
        let (_, report) = json_of(&args);
        for finding in findings(&report)
            .iter()
            .filter(|f| f["overrides_user"] == true)
        {
            let names = architectures(finding);
            assert!(
                names == ["sm_90", "compute_90"] || names == ["sm_90"],
                "{name}: {finding:#}"
            );
        }
        // The Python files still compile.
        let setup = tree.join("setup.py");
        if setup.is_file() {
            let status = Command::new("python3")
                .args(["-m", "py_compile", s(&setup)])
                .status()
                .expect("python3");
            assert!(status.success(), "{name}: setup.py no longer compiles");
        }
    }
    // What flash-attn's setup.py says now: every slot the same single target, and its
    // own list naming 90, so that whichever slot its conditions keep is the request.
    let setup = std::fs::read_to_string(
        work.path()
            .join("flash_attn-2.8.3.tar.gz/flash_attn-2.8.3/setup.py"),
    )
    .expect("read");
    assert!(setup.contains(r#"os.getenv("FLASH_ATTN_CUDA_ARCHS", "90")"#));
    assert_eq!(
        setup
            .matches(r#"cc_flag.append("arch=compute_90,code=[sm_90,compute_90]")"#)
            .count(),
        4
    );
}

#[test]
fn nothing_is_written_while_a_place_needs_a_person() {
    let Some(sources) = sources() else { return };
    let work = tempfile::tempdir().expect("temp");
    let tree = unpack(&sdist(&sources, "flash_attn-2.8.3.tar.gz"), work.path());
    let before = contents(&tree.join("hopper"));
    let setup_before = std::fs::read(tree.join("setup.py")).expect("read");
    // hopper/setup.py compares flags with `s != 'arch=compute_90a,code=sm_90a'`: that
    // string is not a flag to replace.
    let (code, report) = json_of(&[
        "targets",
        "rewrite",
        "--json",
        "--capabilities",
        "9.0",
        s(&tree),
        "--exclude",
        "csrc",
    ]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["written_to"], Value::Null);
    let manual = report["manual"].as_array().expect("manual");
    assert!(
        manual.iter().all(|m| m["file"] == "hopper/setup.py"),
        "{manual:#?}"
    );
    assert!(manual.iter().any(|m| m["line"] == 151));
    assert_eq!(
        std::fs::read(tree.join("setup.py")).expect("read"),
        setup_before
    );
    assert_eq!(contents(&tree.join("hopper")), before);

    // --partial writes the rest; the manual places are still reported.
    let (code, report) = json_of(&[
        "targets",
        "rewrite",
        "--json",
        "--partial",
        "--capabilities",
        "9.0",
        s(&tree),
        "--exclude",
        "csrc",
    ]);
    assert_eq!(code, 1);
    assert_eq!(report["written_to"], s(&tree));
    assert_ne!(
        std::fs::read(tree.join("setup.py")).expect("read"),
        setup_before
    );
    let (code, report) = json_of(&[
        "targets",
        "scan",
        "--json",
        "--capabilities",
        "9.0",
        s(&tree),
        "--exclude",
        "csrc",
    ]);
    assert_eq!(code, 1);
    assert!(
        findings(&report)
            .iter()
            .all(|f| f["file"] == "hopper/setup.py"),
        "{report:#}"
    );
}

#[test]
fn a_patch_of_an_sdist_applies_with_patch_and_equals_the_rewrite() {
    let Some(sources) = sources() else { return };
    let work = tempfile::tempdir().expect("temp");
    let archive = sdist(&sources, "lightgbm-4.6.0.tar.gz");
    let (code, diff, stderr) = run(&[
        "targets",
        "rewrite",
        "--patch",
        "--capabilities",
        "8.6,9.0",
        s(&archive),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        diff.starts_with("--- a/CMakeLists.txt\n+++ b/CMakeLists.txt\n"),
        "{diff}"
    );
    assert!(
        diff.contains("+    set(CUDA_ARCHS \"86\" \"90\")\n"),
        "{diff}"
    );

    let patched = unpack(&archive, &{
        let dir = work.path().join("patched");
        std::fs::create_dir(&dir).expect("mkdir");
        dir
    });
    let patch_file = work.path().join("targets.patch");
    std::fs::write(&patch_file, &diff).expect("write");
    let status = Command::new("patch")
        .args(["-p1", "--quiet", "-i", s(&patch_file)])
        .current_dir(&patched)
        .status()
        .expect("patch runs");
    assert!(status.success(), "patch -p1 refused the diff");

    // The same rewrite into a copy (--out), the source left alone.
    let source = unpack(&archive, &{
        let dir = work.path().join("source");
        std::fs::create_dir(&dir).expect("mkdir");
        dir
    });
    let before = contents(&source);
    let out = work.path().join("out");
    let (code, stdout, stderr) = run(&[
        "targets",
        "rewrite",
        "--capabilities",
        "8.6,9.0",
        "--out",
        s(&out),
        s(&source),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(contents(&source), before, "--out leaves SRC alone");
    assert_eq!(
        std::fs::read(out.join("CMakeLists.txt")).expect("read"),
        std::fs::read(patched.join("CMakeLists.txt")).expect("read"),
        "the patch and the rewrite agree"
    );
    // An sdist is never changed in place.
    let (code, _, stderr) = run(&["targets", "rewrite", "--capabilities", "9.0", s(&archive)]);
    common::assert_refused(code, &stderr, "--patch");
}

#[test]
fn a_rewrite_needs_a_request_and_keeps_modes() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().expect("temp");
    let script = work.path().join("build.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nexport TORCH_CUDA_ARCH_LIST=\"7.0;8.0\"\nnvcc -gencode arch=compute_70,code=sm_70 k.cu\n",
    )
    .expect("write");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o751)).expect("chmod");
    let (code, _, stderr) = run(&["targets", "rewrite", s(work.path())]);
    common::assert_refused(code, &stderr, "--capabilities");

    let (code, stdout, stderr) = run(&[
        "targets",
        "rewrite",
        "--capabilities",
        "7.5,8.6",
        s(&script),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        std::fs::read_to_string(&script).expect("read"),
        "#!/bin/sh\nexport TORCH_CUDA_ARCH_LIST=\"7.5;8.6+PTX\"\nnvcc -gencode=arch=compute_75,code=sm_75 -gencode=arch=compute_86,code=sm_86 -gencode=arch=compute_86,code=compute_86 k.cu\n"
    );
    let mode = std::fs::metadata(&script)
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o751);
    assert_eq!(
        std::fs::read_dir(work.path()).expect("dir").count(),
        1,
        "no temporary left"
    );
    // --out of a single file writes the copy and leaves the file alone.
    let copy = work.path().join("build-9.0.sh");
    let before = std::fs::read(&script).expect("read");
    let (code, stdout, stderr) = run(&[
        "targets",
        "rewrite",
        "--capabilities",
        "9.0",
        "--out",
        s(&copy),
        s(&script),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(std::fs::read(&script).expect("read"), before);
    assert!(
        std::fs::read_to_string(&copy)
            .expect("read")
            .contains("TORCH_CUDA_ARCH_LIST=\"9.0+PTX\"")
    );
    std::fs::remove_file(&copy).expect("remove");
    let (code, _, stderr) = run(&[
        "targets",
        "rewrite",
        "--capabilities",
        "9.0",
        "--out",
        s(&work.path().join("inside")),
        s(work.path()),
    ]);
    common::assert_refused(code, &stderr, "is inside");
    assert!(!work.path().join("inside").exists());
    // Twice the same rewrite changes nothing.
    let (code, stdout, _) = run(&[
        "targets",
        "rewrite",
        "--capabilities",
        "7.5,8.6",
        s(&script),
    ]);
    assert_eq!(code, 0);
    assert!(stdout.contains("nothing to rewrite"), "{stdout}");
}

/// A virtual environment holding PyTorch 2.11's cpp_extension.py and version.py.
fn venv_with_torch(sources: &Path, at: &Path) -> PathBuf {
    let torch = at.join("lib/python3.12/site-packages/torch");
    std::fs::create_dir_all(torch.join("utils")).expect("mkdir");
    let from = sources.join("torch-2.11.0/torch");
    std::fs::copy(from.join("version.py"), torch.join("version.py")).expect("copy");
    std::fs::copy(
        from.join("utils/cpp_extension.py"),
        torch.join("utils/cpp_extension.py"),
    )
    .expect("copy");
    torch.join("utils/cpp_extension.py")
}

/// PyTorch's own `_get_cuda_arch_flags`, run from the file for one arch list.
fn torch_flags(file: &Path, arch_list: &str) -> Value {
    let output = Command::new("python3")
        .arg(repo().join("scripts/torch-arch-flags.py"))
        .args([s(file), arch_list])
        .output()
        .expect("python3");
    serde_json::from_slice(&output.stdout).expect("JSON")
}

#[test]
fn torch_allow_list_is_extended_and_restored_to_the_byte() {
    use std::os::unix::fs::MetadataExt;
    let Some(sources) = sources() else { return };
    let work = tempfile::tempdir().expect("temp");
    let venv = work.path().join("venv");
    let file = venv_with_torch(&sources, &venv);
    let original = std::fs::read(&file).expect("read");

    let (code, report) = json_of(&[
        "targets",
        "torch",
        "--json",
        "--capabilities",
        "9.0,10.0f,12.0f",
        s(&venv),
    ]);
    assert_eq!(code, 1, "{report:#}");
    let installation = &report["installations"][0];
    assert_eq!(installation["version"], "2.11.0");
    assert_eq!(
        installation["refused"],
        serde_json::json!(["10.0f", "12.0f"])
    );
    assert_eq!(installation["naming"], "major-minor");
    assert!(
        installation["supported"]
            .as_array()
            .expect("list")
            .contains(&Value::from("12.1a"))
    );
    // PyTorch itself says so.
    assert_eq!(
        torch_flags(&file, "9.0;10.0f;12.0f")["error"],
        "Unknown CUDA arch (10.0f) or GPU not supported"
    );

    let inode = std::fs::metadata(&file).expect("meta").ino();
    let (code, report) = json_of(&[
        "targets",
        "torch",
        "--json",
        "--capabilities",
        "9.0,10.0f,12.0f",
        "--allow",
        s(&venv),
    ]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["installations"][0]["action"], "allowed");
    assert_eq!(report["installations"][0]["refused"], serde_json::json!([]));
    assert_ne!(
        std::fs::metadata(&file).expect("meta").ino(),
        inode,
        "replaced by a rename, never written in place"
    );
    let folder = file.parent().expect("folder");
    assert_eq!(
        std::fs::read_dir(folder).expect("dir").count(),
        1,
        "no temporary left"
    );
    // Now PyTorch's extension builder accepts them and names the family targets.
    let flags = torch_flags(&file, "9.0;10.0f;12.0f+PTX");
    assert_eq!(
        flags["flags"],
        serde_json::json!([
            "-gencode=arch=compute_100f,code=sm_100f",
            "-gencode=arch=compute_120f,code=compute_120f",
            "-gencode=arch=compute_120f,code=sm_120f",
            "-gencode=arch=compute_90,code=sm_90"
        ]),
        "{flags:#}"
    );

    let (code, report) = json_of(&["targets", "torch", "--json", "--undo", s(&venv)]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["installations"][0]["action"], "restored");
    assert_eq!(
        std::fs::read(&file).expect("read"),
        original,
        "the same bytes"
    );
    let (code, report) = json_of(&["targets", "torch", "--json", "--undo", s(&venv)]);
    assert_eq!(code, 0);
    assert_eq!(report["installations"][0]["action"], "none");
}

#[test]
fn torch_refuses_what_is_not_pytorch_or_not_a_file() {
    let Some(sources) = sources() else { return };
    let work = tempfile::tempdir().expect("temp");
    let (code, _, stderr) = run(&["targets", "torch", s(work.path())]);
    common::assert_refused(code, &stderr, "no PyTorch");

    // cpp_extension.py as a link to a file elsewhere: never followed, never written.
    let elsewhere = work.path().join("elsewhere.py");
    std::fs::copy(
        sources.join("torch-2.11.0/torch/utils/cpp_extension.py"),
        &elsewhere,
    )
    .expect("copy");
    let utils = work.path().join("torch/utils");
    std::fs::create_dir_all(&utils).expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, utils.join("cpp_extension.py")).expect("link");
    let before = std::fs::read(&elsewhere).expect("read");
    let (code, _, stderr) = run(&[
        "targets",
        "torch",
        "--capabilities",
        "10.0f",
        "--allow",
        s(work.path()),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(std::fs::read(&elsewhere).expect("read"), before);
}

/// nvcc from NVIDIA's wheels (scripts/install-nvidia-tools.sh), or `None` outside CI.
fn nvcc() -> Option<PathBuf> {
    let nvcc = repo().join(".tools/nvidia/nvidia/cu13/bin/nvcc");
    cudapkgs_testkit::require_file(&nvcc, "run scripts/install-nvidia-tools.sh")
}

#[test]
fn expect_capabilities_holds_only_for_exactly_the_requested_targets() {
    let Some(nvcc) = nvcc() else { return };
    let work = tempfile::tempdir().expect("temp");
    let source = work.path().join("k.cu");
    std::fs::write(
        &source,
        "__global__ void k(float* x) { x[threadIdx.x] *= 2; }\n",
    )
    .expect("write");
    let build = |name: &str, flags: &[&str]| {
        let object = work.path().join(name);
        let status = Command::new(&nvcc)
            .arg("-c")
            .args(flags)
            .args([s(&source), "-o", s(&object)])
            .status()
            .expect("nvcc runs");
        assert!(status.success(), "nvcc {flags:?}");
        object
    };
    let exact = build(
        "exact.o",
        &["-gencode=arch=compute_90,code=[sm_90,compute_90]"],
    );
    let sass_only = build("sass.o", &["-gencode=arch=compute_90,code=sm_90"]);
    let more = build(
        "more.o",
        &[
            "-gencode=arch=compute_80,code=sm_80",
            "-gencode=arch=compute_90,code=[sm_90,compute_90]",
        ],
    );

    let (code, stdout, _) = run(&["inspect", "--expect-capabilities", "9.0", s(&exact)]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("ok        "), "{stdout}");
    let (code, stdout, _) = run(&["inspect", "--expect-capabilities", "9.0", s(&sass_only)]);
    assert_eq!(code, 1);
    assert!(stdout.contains("missing PTX compute_90"), "{stdout}");
    let (code, _, _) = run(&[
        "inspect",
        "--expect-capabilities",
        "9.0",
        "--no-forward-compat",
        s(&sass_only),
    ]);
    assert_eq!(code, 0);
    let (code, report) = json_of(&[
        "inspect",
        "--json",
        "--expect-capabilities",
        "9.0",
        s(&more),
    ]);
    assert_eq!(code, 1);
    let check = &report["expectation"];
    assert_eq!(check["pass"], false);
    assert_eq!(
        check["files"][0]["extra_sass"],
        serde_json::json!(["sm_80"])
    );
    assert_eq!(check["files"][0]["missing_sass"], serde_json::json!([]));
    // A folder: every file with device code is checked.
    let (code, report) = json_of(&[
        "inspect",
        "--json",
        "--expect-capabilities",
        "9.0",
        s(work.path()),
    ]);
    assert_eq!(code, 1);
    assert_eq!(report["expectation"]["mismatched"], 2);
    // A named file without device code holds none of the expected SASS.
    let (code, _, _) = run(&["inspect", "--expect-capabilities", "9.0", s(&source)]);
    assert_ne!(code, 0);
}

#[test]
fn sdists_are_read_as_archives_and_bad_input_is_refused() {
    let work = tempfile::tempdir().expect("temp");
    // A zip sdist, and a tar.gz whose member climbs out of it, written by Python.
    let script = r#"
import io, sys, tarfile, zipfile
folder = sys.argv[1]
text = b"flags = ['-gencode', 'arch=compute_80,code=sm_80']\n"
with zipfile.ZipFile(folder + "/pkg-1.0.zip", "w") as z:
    z.writestr("pkg-1.0/setup.py", text)
with tarfile.open(folder + "/evil-1.0.tar.gz", "w:gz") as t:
    info = tarfile.TarInfo("evil-1.0/../../setup.py")
    info.size = len(text)
    t.addfile(info, io.BytesIO(text))
"#;
    let status = Command::new("python3")
        .args(["-c", script, s(work.path())])
        .status()
        .expect("python3");
    assert!(status.success());
    let (code, report) = json_of(&[
        "targets",
        "scan",
        "--json",
        s(&work.path().join("pkg-1.0.zip")),
    ]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        at(&report, "setup.py", 1)["architectures"],
        serde_json::json!(["sm_80"])
    );

    let (code, stdout, stderr) = run(&[
        "targets",
        "scan",
        "--json",
        s(&work.path().join("evil-1.0.tar.gz")),
    ]);
    common::assert_refused(code, &stderr, "leaves the archive");
    let error: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("message")
            .contains("leaves the archive")
    );

    let readme = work.path().join("README.md");
    std::fs::write(&readme, "-gencode arch=compute_80,code=sm_80\n").expect("write");
    let (code, _, stderr) = run(&["targets", "scan", s(&readme)]);
    common::assert_refused(code, &stderr, "not a source tree, an sdist");
    let (code, _, stderr) = run(&["targets", "scan", s(&work.path().join("missing"))]);
    common::assert_refused(code, &stderr, "cannot read");
}
