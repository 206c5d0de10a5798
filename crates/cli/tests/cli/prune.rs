//! End-to-end tests of `cudapkgs prune` on copies of the nvcc-built fixtures, checked
//! with `cudapkgs inspect`, cuobjdump and readelf.

use crate::common;

use common::{fixture, nvidia_file, run, s};

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn copy(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(fixture(name), &path).expect("copy");
    path
}

/// A copy of the fixture `name` in a temporary folder, and the bytes it holds now.
fn copied(name: &str) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().expect("temp");
    let path = copy(dir.path(), name);
    let bytes = std::fs::read(&path).expect("read");
    (dir, path, bytes)
}

/// `kind arch` of every entry, in order.
fn entries(path: &Path) -> Vec<String> {
    let (_, json, _) = run(&["inspect", "--json", s(path)]);
    let report: Value = serde_json::from_str(&json).expect("json");
    report["files"][0]["units"]
        .as_array()
        .expect("units")
        .iter()
        .flat_map(|u| u["containers"].as_array().expect("containers").clone())
        .flat_map(|c| c["entries"].as_array().expect("entries").clone())
        .map(|e| {
            format!(
                "{} {}",
                e["kind"].as_str().expect("kind"),
                e["arch"].as_str().expect("arch")
            )
        })
        .collect()
}

/// The image kind per kernel that has one for a GPU.
fn verdicts(path: &Path, gpu: &str) -> Vec<String> {
    let (_, json, _) = run(&["inspect", "--json", "--gpu", gpu, s(path)]);
    let report: Value = serde_json::from_str(&json).expect("json");
    report["files"][0]["kernels"]
        .as_array()
        .expect("kernels")
        .iter()
        .filter(|k| !k["image"].is_null())
        .map(|k| format!("{} {}", k["kernel"], k["image"]))
        .collect()
}

#[test]
fn keeps_exactly_what_each_capability_needs() {
    for (capabilities, keep_ptx, expected) in [
        (
            "9.0",
            "auto",
            &["sass sm_75", "sass sm_86", "ptx compute_86"][..],
        ),
        ("8.6", "auto", &["sass sm_86", "sass sm_86"][..]),
        (
            "7.5,8.6",
            "auto",
            &["sass sm_75", "sass sm_86", "sass sm_75", "sass sm_86"][..],
        ),
        (
            "8.6",
            "all",
            &["sass sm_86", "sass sm_86", "ptx compute_86"][..],
        ),
    ] {
        let dir = tempfile::tempdir().expect("temp");
        let lib = copy(dir.path(), "multiarch.so");
        let (code, stdout, stderr) = run(&[
            "prune",
            "--capabilities",
            capabilities,
            "--keep-ptx",
            keep_ptx,
            s(&lib),
        ]);
        assert_eq!(code, 0, "{capabilities}: {stdout}{stderr}");
        assert_eq!(entries(&lib), expected, "{capabilities} {keep_ptx}");
    }
}

#[test]
fn kernels_keep_their_images_and_tools_still_read_the_result() {
    let dir = tempfile::tempdir().expect("temp");
    let names = [
        "libscale_a.so",
        "libscale_b.so",
        "libscale_c.so",
        "libscale_e.so",
        "many_kernels.so",
        "multi_tu.so",
        "family_f.so",
        "app",
    ];
    let before: Vec<Vec<String>> = names.iter().map(|n| verdicts(&fixture(n), "9.0")).collect();
    let paths: Vec<PathBuf> = names.iter().map(|n| copy(dir.path(), n)).collect();
    let family_specific = std::fs::read(fixture("family_f.so")).expect("read");
    let (code, stdout, stderr) = run(&["prune", "--gpu", "H100", s(dir.path())]);
    // family_f.so has code for 10.x and 12.x only: it is refused and left as it is,
    // the others are pruned.
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("7 files pruned, 1 refused"), "{stdout}");
    assert!(
        stderr.contains("family_f.so: refusing to prune"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("family_f.so")).expect("read"),
        family_specific
    );
    for ((path, before), name) in paths.iter().zip(&before).zip(names) {
        assert_eq!(&verdicts(path, "9.0"), before, "{name}");
    }

    let readelf = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("readelf"))
            .find(|p| p.is_file())
    });
    if let Some(readelf) = readelf {
        for path in &paths {
            let output = Command::new(&readelf)
                .args(["-a", "-W"])
                .arg(path)
                .output()
                .expect("readelf");
            assert!(
                String::from_utf8_lossy(&output.stderr).trim().is_empty(),
                "{}",
                path.display()
            );
        }
    }
    let cuobjdump = common::repo().join(".tools/nvidia/nvidia/cu13/bin/cuobjdump");
    if let Some(cuobjdump) =
        cudapkgs_testkit::require_file(&cuobjdump, "run scripts/install-nvidia-tools.sh")
    {
        for path in &paths {
            let output = Command::new(&cuobjdump)
                .args(["-all", "-lelf", "-lptx"])
                .arg(path)
                .output()
                .expect("cuobjdump");
            assert!(output.status.success(), "{}", path.display());
            let listed = String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter(|l| l.starts_with("ELF file") || l.starts_with("PTX file"))
                .count();
            let ours = entries(path)
                .iter()
                .filter(|e| !e.starts_with("lto-ir"))
                .count();
            assert_eq!(listed, ours, "{}", path.display());
        }
    }
}

#[test]
fn pruning_twice_changes_nothing_and_holes_are_reported() {
    let dir = tempfile::tempdir().expect("temp");
    let lib = copy(dir.path(), "many_kernels.so");
    let (code, json, _) = run(&[
        "prune",
        "--json",
        "--compressed-size",
        "--capabilities",
        "9.0",
        s(&lib),
    ]);
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(report["summary"]["files_pruned"], 1);
    let file = &report["files"][0];
    assert!(file["removed_bytes"].as_u64().is_some_and(|b| b > 0));
    assert!(file["zstd_after"].as_u64() < file["zstd_before"].as_u64());
    assert_eq!(
        file["apparent_size"].as_u64(),
        Some(
            std::fs::metadata(fixture("many_kernels.so"))
                .expect("meta")
                .len()
        )
    );

    let once = std::fs::read(&lib).expect("read");
    let (code, json, _) = run(&["prune", "--json", "--capabilities", "9.0", s(&lib)]);
    assert_eq!(code, 0);
    let again: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(again["summary"]["files_pruned"], 0);
    assert_eq!(std::fs::read(&lib).expect("read"), once);
}

#[test]
fn refuses_to_leave_a_kernel_without_its_image() {
    let (dir, lib, before) = copied("libscale_d.so");
    let (code, _, stderr) = run(&[
        "prune",
        "--capabilities",
        "9.0",
        "--keep-ptx",
        "none",
        s(&lib),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("would lose its only image for 9.0"),
        "{stderr}"
    );
    // The way out names the flag, which the binary adds to the library's refusal.
    assert!(
        stderr.contains("keep PTX (--keep-ptx auto) or add the capability"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&lib).expect("read"), before);

    // Dry runs write nothing.
    let other = copy(dir.path(), "multiarch.so");
    let untouched = std::fs::read(&other).expect("read");
    let (code, stdout, _) = run(&["prune", "--dry-run", "--capabilities", "8.6", s(&other)]);
    assert_eq!(code, 0);
    assert!(stdout.contains("would remove"), "{stdout}");
    assert_eq!(std::fs::read(&other).expect("read"), untouched);
}

#[test]
fn hostile_containers_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp");
    let fatbin = copy(dir.path(), "standalone.fatbin");
    let mut data = std::fs::read(&fatbin).expect("read");
    // The first container claims far more entries than the file holds.
    data[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&fatbin, &data).expect("write");
    let (code, _, stderr) = run(&["prune", "--capabilities", "9.0", s(&fatbin)]);
    common::assert_refused(code, &stderr, "truncated");
    assert_eq!(std::fs::read(&fatbin).expect("read"), data);
}

#[test]
fn output_prunes_a_copy_of_a_read_only_tree() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp");
    let store = dir.path().join("abc-pkg");
    std::fs::create_dir_all(store.join("lib")).expect("mkdir");
    let lib = store.join("lib/libmulti.so");
    std::fs::copy(fixture("multiarch.so"), &lib).expect("copy");
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    std::fs::set_permissions(store.join("lib"), std::fs::Permissions::from_mode(0o555))
        .expect("chmod");
    let original = std::fs::read(&lib).expect("read");

    let out = dir.path().join("def-pkg-pruned");
    let prune_into_out = || {
        run(&[
            "prune",
            "--capabilities",
            "8.6",
            "--out",
            s(&out),
            s(&store),
        ])
    };
    let (code, stdout, stderr) = prune_into_out();
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        std::fs::read(&lib).expect("read"),
        original,
        "the source is untouched"
    );
    assert_eq!(
        entries(&out.join("lib/libmulti.so")),
        ["sass sm_86", "sass sm_86"]
    );
    std::fs::set_permissions(store.join("lib"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");

    // A second time the output is there already.
    let (code, _, stderr) = prune_into_out();
    common::assert_refused(code, &stderr, "already exists");
}

#[test]
fn a_capability_nothing_in_the_file_serves_is_refused() {
    for (name, capabilities, message) in [
        (
            "standalone.fatbin",
            "7.5",
            "refusing to prune: nothing in the file runs on 7.5 (its kernels have images for sm_80, sm_90, compute_90)",
        ),
        // sm_75 is another major, sm_86 and compute_86 are newer.
        ("multiarch.so", "8.0", "nothing in the file runs on 8.0"),
        // 9.0 is served, 7.0 is not: one capability served by nothing is enough.
        ("multiarch.so", "9.0,7.0", "nothing in the file runs on 7.0"),
    ] {
        let (_dir, path, before) = copied(name);
        let (code, json, stderr) =
            run(&["prune", "--json", "--capabilities", capabilities, s(&path)]);
        assert_eq!(code, 1, "{name} {capabilities}: {json}{stderr}");
        assert!(stderr.contains(message), "{stderr}");
        let report: Value = serde_json::from_str(&json).expect("json");
        assert_eq!(report["summary"]["files_pruned"], 0);
        assert_eq!(report["refused"][0][0], s(&path));
        assert_eq!(
            std::fs::read(&path).expect("read"),
            before,
            "{name} untouched"
        );
    }
}

#[test]
fn capabilities_no_gpu_has_are_refused() {
    let (_dir, fatbin, before) = copied("standalone.fatbin");
    for (flag, value) in [
        ("--capabilities", "9.9"),
        ("--capabilities", "9.0,99.0"),
        ("--gpu", "9.9"),
    ] {
        let (code, stdout, stderr) = run(&["prune", flag, value, s(&fatbin)]);
        assert_eq!(code, 2, "{flag} {value}: {stdout}{stderr}");
        let unknown = value.rsplit(',').next().expect("one");
        assert!(
            stderr.contains(&format!(
                "{flag}: unknown capability {unknown}; known capabilities: 3.5, 3.7"
            )),
            "{stderr}"
        );
        assert_eq!(std::fs::read(&fatbin).expect("read"), before);
    }
}

#[test]
fn bare_cubins_are_never_rewritten() {
    let (dir, cubin, original) = copied("standalone.cubin");
    let (code, stdout, stderr) = run(&["prune", "--capabilities", "9.0", s(&cubin)]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("0 files pruned"), "{stdout}");
    let (code, _, stderr) = run(&["prune", "--capabilities", "10.0", s(&cubin)]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("nothing in the file runs on 10.0 (its kernels have images for sm_90)"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&cubin).expect("read"), original);

    // The device runtime's relocatable cubins (720 KiB to 1.3 MiB each), as cuobjdump or
    // `inspect --extract` write them out of libcudadevrt.a.
    let Some(devrt) = nvidia_file("nvidia/cu13/lib/libcudadevrt.a") else {
        return;
    };
    let extracted = dir.path().join("devrt");
    let (code, _, stderr) = run(&["inspect", "--out", s(&extracted), s(&devrt)]);
    assert_eq!(code, 0, "{stderr}");
    let mut cubins: Vec<PathBuf> = std::fs::read_dir(&extracted)
        .expect("extracted")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "cubin"))
        .collect();
    cubins.sort();
    assert!(cubins.len() >= 9, "{cubins:?}");
    let before: Vec<Vec<u8>> = cubins
        .iter()
        .map(|c| std::fs::read(c).expect("read"))
        .collect();
    let mut args = vec!["prune", "--json", "--capabilities", "10.0"];
    args.extend(cubins.iter().map(|c| s(c)));
    let (code, json, stderr) = run(&args);
    assert_eq!(code, 0, "{json}{stderr}");
    let report: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(report["summary"]["removed_bytes"], 0, "{json}");
    for (cubin, before) in cubins.iter().zip(&before) {
        assert_eq!(
            &std::fs::read(cubin).expect("read"),
            before,
            "{}",
            cubin.display()
        );
    }
}

/// `standalone.fatbin` followed by a copy of its container whose entries are for 7.5
/// (SASS) and 10.0 (PTX): its kernels have no image for 9.0, the first container's do.
fn with_kernels_for_other_gpus(dir: &Path) -> PathBuf {
    let original = std::fs::read(fixture("standalone.fatbin")).expect("read");
    let mut other = original.clone();
    let end = 0x10 + u64::from_le_bytes(other[8..16].try_into().expect("8 bytes"));
    let mut at = 0x10;
    while at < end {
        let entry = usize::try_from(at).expect("small");
        let kind = u16::from_le_bytes([other[entry], other[entry + 1]]);
        let arch: u32 = if kind == 1 { 100 } else { 75 };
        other[entry + 0x1c..entry + 0x20].copy_from_slice(&arch.to_le_bytes());
        let header = u32::from_le_bytes(other[entry + 4..entry + 8].try_into().expect("4"));
        let payload = u64::from_le_bytes(other[entry + 8..entry + 16].try_into().expect("8"));
        at += u64::from(header) + payload;
    }
    let path = dir.join("mixed.fatbin");
    std::fs::write(&path, [original, other].concat()).expect("write");
    path
}

#[test]
fn kernels_built_only_for_other_gpus_lose_their_code_and_are_counted() {
    let dir = tempfile::tempdir().expect("temp");
    let mixed = with_kernels_for_other_gpus(dir.path());
    assert_eq!(
        entries(&mixed),
        [
            "sass sm_80",
            "sass sm_90",
            "ptx compute_90",
            "sass sm_75",
            "sass sm_75",
            "ptx compute_100"
        ]
    );
    let (code, stdout, _) = run(&["prune", "--dry-run", "--capabilities", "9.0", s(&mixed)]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("2 kernels have images for other GPUs only")
            && stdout.contains("their code would be removed"),
        "{stdout}"
    );
    let (code, json, stderr) = run(&["prune", "--json", "--capabilities", "9.0", s(&mixed)]);
    assert_eq!(code, 0, "{json}{stderr}");
    let report: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(report["summary"]["kernels_without_image"], 2, "{json}");
    assert_eq!(entries(&mixed), ["sass sm_90"]);
    let (code, stdout, _) = run(&["prune", "--capabilities", "9.0", s(&mixed)]);
    assert_eq!(code, 0);
    assert!(stdout.contains("0 files pruned"), "{stdout}");

    // NVIDIA's own libraries carry such kernels: cuBLAS has some for 7.5 only.
    let Some(cublas) = nvidia_file("nvidia/cu13/lib/libcublas.so.13") else {
        return;
    };
    let (code, json, stderr) = run(&["prune", "--json", "--dry-run", "--gpu", "H100", s(&cublas)]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&json).expect("json");
    assert!(
        report["summary"]["kernels_without_image"].as_u64() > Some(0),
        "{json}"
    );
    assert!(
        report["summary"]["removed_bytes"].as_u64() > Some(0),
        "{json}"
    );
}

/// After a prune, `inspect` counts as device code only what is left: the bytes removed
/// are gone from its totals, though the section keeps its size in the file.
#[test]
fn inspect_after_prune_counts_only_the_device_code_left() {
    let dir = tempfile::tempdir().expect("temp");
    let lib = dir.path().join("libscale_a.so");
    std::fs::copy(fixture("libscale_a.so"), &lib).expect("copy");
    let device_code = |path: &Path| -> u64 {
        let (code, stdout, stderr) = run(&["--json", "inspect", s(path)]);
        assert_eq!(code, 0, "{stderr}");
        let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
        report["summary"]["device_code_bytes"]
            .as_u64()
            .expect("bytes")
    };
    let before = device_code(&lib);
    let (code, stdout, stderr) = run(&["--json", "prune", "--capabilities", "8.6", s(&lib)]);
    assert_eq!(code, 0, "{stderr}");
    let pruned: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let removed = pruned["files"][0]["removed_bytes"]
        .as_u64()
        .expect("removed");
    assert!(removed > 0, "{pruned}");
    assert_eq!(device_code(&lib), before - removed);
}
