//! End-to-end tests of `cudapkgs inspect` on the committed nvcc-built fixtures.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{self, Run};

fn fixture(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/cuda/out")
        .join(name);
    assert!(path.exists(), "missing fixture {}", path.display());
    path
}

fn run(args: &[&str]) -> Run {
    let home = tempfile::tempdir().expect("temp dir");
    common::cudapkgs().args(args).env("HOME", home.path()).run()
}

fn json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["inspect", "--json"];
    all.extend_from_slice(args);
    let result = run(&all);
    let value = serde_json::from_str(&result.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", result.stdout, result.stderr));
    (result.code, value)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// The `(kind, arch)` of every entry of the first file in a JSON report.
fn entries(report: &Value) -> Vec<(String, String)> {
    report["files"][0]["units"]
        .as_array()
        .expect("units")
        .iter()
        .flat_map(|unit| unit["containers"].as_array().expect("containers").iter())
        .flat_map(|container| container["entries"].as_array().expect("entries").iter())
        .map(|entry| {
            (
                entry["kind"].as_str().expect("kind").to_owned(),
                entry["arch"].as_str().expect("arch").to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, a)| ((*k).to_owned(), (*a).to_owned()))
        .collect()
}

#[test]
fn lists_every_entry_of_one_file() {
    let lib = fixture("multiarch.so");
    let result = run(&["inspect", path_str(&lib)]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    result.assert_stdout_has("5 entries in 2 containers");
    assert!(
        result
            .stdout
            .lines()
            .any(|l| l.contains(".nv_fatbin") && l.contains("compute_86") && l.contains("zstd")),
        "{}",
        result.stdout
    );

    let (code, report) = json(&[path_str(&lib)]);
    assert_eq!(code, 0);
    assert_eq!(
        entries(&report),
        pairs(&[
            ("sass", "sm_75"),
            ("sass", "sm_86"),
            ("sass", "sm_75"),
            ("sass", "sm_86"),
            ("ptx", "compute_86")
        ])
    );
    let ptx = &report["files"][0]["units"][0]["containers"][1]["entries"][2];
    assert_eq!(ptx["compression"], "zstd");
    assert_eq!(ptx["version"], "9.0");
    assert!(
        ptx["compressed_size"]
            .as_u64()
            .is_some_and(|c| c < ptx["uncompressed_size"].as_u64().expect("size"))
    );
    assert_eq!(report["summary"]["files_with_device_code"], 1);
}

#[test]
fn reports_variants_compression_and_kinds() {
    let (_, family) = json(&[path_str(&fixture("family_f.so"))]);
    assert!(entries(&family).contains(&("sass".into(), "sm_100f".into())));
    assert!(entries(&family).contains(&("ptx".into(), "compute_100f".into())));
    let (_, arch) = json(&[path_str(&fixture("arch_a.so"))]);
    assert!(entries(&arch).contains(&("sass".into(), "sm_90a".into())));
    assert!(entries(&arch).contains(&("ptx".into(), "compute_90a".into())));
    let (_, lz4) = json(&[path_str(&fixture("compress_lz4.so"))]);
    let codecs: Vec<Value> = lz4["files"][0]["units"][0]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .flat_map(|c| c["entries"].as_array().expect("entries").clone())
        .map(|e| e["compression"].clone())
        .collect();
    assert!(codecs.iter().all(|c| c == "lz4"), "{codecs:?}");
    let (_, lto) = json(&[path_str(&fixture("lto.o"))]);
    assert_eq!(entries(&lto), pairs(&[("lto-ir", "compute_90")]));
    let (_, debug) = json(&[path_str(&fixture("debug.so"))]);
    let first = &debug["files"][0]["units"][0]["containers"][0]["entries"][0];
    assert_eq!(first["debug"], true);
    assert_eq!(
        first["identifier"].as_str().map(str::trim),
        Some("src/vecops.cu")
    );
}

#[test]
fn archives_list_each_member_and_relocatable_code() {
    let (code, report) = json(&[path_str(&fixture("librdc.a"))]);
    assert_eq!(code, 0);
    let units = report["files"][0]["units"].as_array().expect("units");
    let members: Vec<&str> = units
        .iter()
        .map(|u| u["member"].as_str().expect("member"))
        .collect();
    assert_eq!(members, ["rdc_a.o", "rdc_b.o"]);
    let entry = &units[0]["containers"][0]["entries"][0];
    assert_eq!(entry["section"], "__nv_relfatbin");
    assert_eq!(entry["relocatable"], true);
}

#[test]
fn trees_are_summarised_per_architecture_with_the_heaviest_files() {
    let dir = fixture("multiarch.so").parent().expect("dir").to_owned();
    let result = run(&["inspect", path_str(&dir)]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    result.assert_stdout_has("heaviest files");
    assert!(
        !result.stdout.contains("plain.so"),
        "non-CUDA files stay quiet in trees"
    );
    let (_, report) = json(&[path_str(&dir)]);
    let summary = &report["summary"];
    assert!(summary["files_with_device_code"].as_u64().expect("count") >= 30);
    let by_arch = summary["by_arch"].as_array().expect("by_arch");
    let sum: u64 = by_arch
        .iter()
        .map(|a| a["entries"].as_u64().expect("n"))
        .sum();
    assert_eq!(sum, summary["entries"].as_u64().expect("entries"));
    assert!(
        by_arch
            .iter()
            .any(|a| a["arch"] == "sm_90a" && a["kind"] == "sass")
    );
}

/// The H100 ground truth of the fatbin reference: these one-kernel libraries run on
/// 9.0 (a–h) or fail with "no kernel image is available" (i–k).
#[test]
fn gpu_verdicts_match_the_h100_ground_truth() {
    for (name, runs, image) in [
        ("libscale_a.so", true, "ptx-jit"),
        ("libscale_b.so", true, "exact-sass"),
        ("libscale_c.so", true, "ptx-jit"),
        ("libscale_d.so", true, "ptx-jit"),
        ("libscale_e.so", true, "ptx-jit"),
        ("libscale_f.so", true, "exact-sass"),
        ("libscale_g.so", true, "exact-sass"),
        ("libscale_h.so", true, "ptx-jit"),
        ("libscale_i.so", false, ""),
        ("libscale_j.so", false, ""),
        ("libscale_k.so", false, ""),
    ] {
        let (code, report) = json(&["--gpu", "H100", path_str(&fixture(name))]);
        assert_eq!(code, i32::from(!runs), "{name}");
        let kernels = report["files"][0]["kernels"].as_array().expect("kernels");
        assert_eq!(
            kernels.len(),
            1,
            "{name}: one kernel, the device-link container does not count"
        );
        if runs {
            assert_eq!(kernels[0]["image"], image, "{name}");
        } else {
            assert_eq!(kernels[0]["image"], Value::Null, "{name}");
            assert!(
                !kernels[0]["rejected"]
                    .as_array()
                    .expect("reasons")
                    .is_empty(),
                "{name}"
            );
        }
    }
}

/// Several GPUs are judged in one run, each as it would be alone: one totals entry per
/// capability (sorted, a capability reached by two names judged once) and every
/// kernel's verdict tagged with its GPU. `--capabilities` is the same request.
#[test]
fn several_gpus_are_each_judged_as_alone() {
    let files: Vec<String> = [
        "libscale_a.so",
        "libscale_b.so",
        "libscale_i.so",
        "arch_a.so",
    ]
    .iter()
    .map(|name| path_str(&fixture(name)).to_owned())
    .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let with = |targets: &[&str]| {
        let mut args = targets.to_vec();
        args.extend_from_slice(&files);
        json(&args)
    };
    let (code, both) = with(&["--gpu", "H100", "--gpu", "8.0", "--gpu", "9.0"]);
    let (_, listed) = with(&["--capabilities", "9.0,8.0"]);
    assert_eq!(both, listed);
    let verdicts = both["verdicts"].as_array().expect("verdicts");
    let gpus: Vec<&Value> = verdicts.iter().map(|totals| &totals["gpu"]).collect();
    assert_eq!(gpus, ["8.0", "9.0"], "{}", both["verdicts"]);
    let mut worst = 0;
    for (index, capability) in ["8.0", "9.0"].iter().enumerate() {
        let (alone_code, alone) = with(&["--gpu", capability]);
        worst = worst.max(alone_code);
        assert_eq!(verdicts[index], alone["verdicts"][0], "{capability}");
        for (file, alone_file) in both["files"]
            .as_array()
            .expect("files")
            .iter()
            .zip(alone["files"].as_array().expect("files"))
        {
            let for_this: Vec<&Value> = file["kernels"]
                .as_array()
                .expect("kernels")
                .iter()
                .filter(|kernel| kernel["gpu"] == *capability)
                .collect();
            let alone_kernels: Vec<&Value> = alone_file["kernels"]
                .as_array()
                .expect("kernels")
                .iter()
                .collect();
            assert!(!for_this.is_empty(), "{capability}: {file}");
            assert_eq!(for_this, alone_kernels, "{capability}: {}", file["path"]);
        }
    }
    // The run fails when any GPU has a kernel without an image, as each alone would.
    assert_eq!(code, worst);
}

/// The same libraries loaded on a real H100 (`fixtures/cuda/ground_truth.sh`): with
/// the default driver settings, with PTX JIT disabled (only SASS can serve), and with
/// PTX JIT forced (only PTX can serve). Our verdicts must agree with every column.
#[test]
fn gpu_verdicts_agree_with_the_recorded_h100_runs() {
    let table = std::fs::read_to_string(fixture("../ground-truth-h100.tsv")).expect("ground truth");
    let mut rows = 0;
    for line in table.lines().filter(|l| l.starts_with("libscale_")) {
        let columns: Vec<&str> = line.split('\t').collect();
        let (name, default, sass_only, ptx_only) = (columns[0], columns[1], columns[2], columns[3]);
        let (_, report) = json(&[
            "--gpu",
            "H100",
            "--driver-cuda",
            "13.0",
            path_str(&fixture(name)),
        ]);
        let image = report["files"][0]["kernels"][0]["image"]
            .as_str()
            .map(str::to_owned);
        assert_eq!(
            image.is_some(),
            default == "OK",
            "{name}: {image:?} vs {default}"
        );
        let sass = image.as_deref().is_some_and(|i| i.ends_with("sass"));
        assert_eq!(sass, sass_only == "OK", "{name}: {image:?} vs {sass_only}");
        if ptx_only == "OK" {
            assert!(image.is_some(), "{name}: PTX runs, so some image must");
        }
        rows += 1;
    }
    assert_eq!(rows, 11);
}

#[test]
fn failing_kernels_are_listed_demangled_with_exit_1() {
    let result = run(&[
        "inspect",
        "--gpu",
        "9.0",
        path_str(&fixture("libscale_i.so")),
        path_str(&fixture("libscale_f.so")),
    ]);
    assert_eq!(result.code, 1, "{}", result.stderr);
    result.assert_stdout_has("FAIL");
    result.assert_stdout_has("sm_80: SASS does not run on 9.0");
    result.assert_stdout_has("1 of 2 kernels have no usable image on 9.0");
}

#[test]
fn old_drivers_cannot_jit_new_ptx() {
    let lib = fixture("libscale_d.so");
    let (code, report) = json(&["--gpu", "H100", "--driver-cuda", "12.8", path_str(&lib)]);
    assert_eq!(code, 1);
    let reasons = report["files"][0]["kernels"][0]["rejected"].to_string();
    assert!(
        reasons.contains("PTX ISA 9.0 needs a CUDA 13.0 driver"),
        "{reasons}"
    );
    let (code, _) = json(&["--gpu", "H100", "--driver-cuda", "13.0", path_str(&lib)]);
    assert_eq!(code, 0);
}

#[test]
fn named_files_without_device_code_are_reported() {
    let result = run(&["inspect", path_str(&fixture("plain.so"))]);
    assert_eq!(result.code, 0);
    result.assert_stdout_has("plain.so: no device code");

    let dir = tempfile::tempdir().expect("temp");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").expect("write");
    let result = run(&["inspect", path_str(&text)]);
    result.assert_refused("notes.txt: not an ELF file, ar archive, fatbin, cubin or wheel");

    let result = run(&["inspect", "/nonexistent/lib.so"]);
    result.assert_refused("/nonexistent/lib.so: No such file");
}

#[test]
fn truncated_files_fail_with_the_offset_and_no_panic() {
    let data = std::fs::read(fixture("standalone.fatbin")).expect("read");
    let dir = tempfile::tempdir().expect("temp");
    for cut in [20, 100, data.len() / 2, data.len() - 1] {
        let path = dir.path().join(format!("cut{cut}.fatbin"));
        std::fs::write(&path, &data[..cut]).expect("write");
        let result = run(&["inspect", path_str(&path)]);
        assert_eq!(result.code, 2, "cut at {cut}: {}", result.stdout);
        result.assert_stderr_has("truncated");
        result.assert_stderr_has("offset 0x");
    }
}

#[test]
fn wheels_are_searched_member_by_member() {
    let dir = tempfile::tempdir().expect("temp");
    let wheel = dir
        .path()
        .join("demo-1.0-py3-none-manylinux_2_28_x86_64.whl");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&wheel).expect("create"));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("demo/__init__.py", options).expect("start");
    zip.write_all(b"print('hi')\n").expect("write");
    zip.start_file("demo/lib/libscale_b.so", options)
        .expect("start");
    zip.write_all(&std::fs::read(fixture("libscale_b.so")).expect("read"))
        .expect("write");
    zip.finish().expect("finish");

    let (code, report) = json(&[path_str(&wheel)]);
    assert_eq!(code, 0);
    let path = report["files"][0]["path"].as_str().expect("path");
    assert!(path.ends_with(".whl:demo/lib/libscale_b.so"), "{path}");
    assert_eq!(entries(&report).len(), 6);
}

#[test]
fn extract_writes_decompressed_cubins_and_ptx() {
    let out = tempfile::tempdir().expect("temp");
    let result = run(&[
        "inspect",
        "--out",
        path_str(out.path()),
        path_str(&fixture("multiarch.so")),
    ]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    let mut names: Vec<String> = std::fs::read_dir(out.path())
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "multiarch.1.sm_75.cubin",
            "multiarch.2.sm_86.cubin",
            "multiarch.3.sm_75.cubin",
            "multiarch.4.sm_86.cubin",
            "multiarch.5.compute_86.ptx"
        ]
    );
    let ptx = std::fs::read_to_string(out.path().join("multiarch.5.compute_86.ptx")).expect("ptx");
    assert!(
        ptx.contains(".version 9.0") && ptx.contains(".target sm_86"),
        "{ptx}"
    );
    let cubin = std::fs::read(out.path().join("multiarch.4.sm_86.cubin")).expect("cubin");
    assert!(cubin.starts_with(b"\x7fELF"));
}

/// A wheel holding `members` (name, bytes), deflated.
fn wheel(path: &Path, members: &[(&str, &[u8])]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).expect("create"));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        zip.start_file(*name, options).expect("start");
        zip.write_all(bytes).expect("write");
    }
    zip.finish().expect("finish");
}

/// Every path under `root`, relative, sorted.
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, at: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(at).expect("read_dir") {
            let path = entry.expect("entry").path();
            found.push(
                path.strip_prefix(root)
                    .expect("below")
                    .display()
                    .to_string(),
            );
            if path.symlink_metadata().expect("stat").is_dir() {
                walk(root, &path, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(root, root, &mut found);
    found.sort();
    found
}

#[test]
fn extract_writes_only_inside_its_folder() {
    let dir = tempfile::tempdir().expect("temp");
    let deep = dir.path().join("a/b");
    std::fs::create_dir_all(&deep).expect("mkdir");
    let fatbin = std::fs::read(fixture("standalone.fatbin")).expect("read");
    let whl = deep.join("w.whl");
    // Member names that, taken as paths, lead up and out.
    wheel(&whl, &[("pkg/..", &fatbin), ("../../up.fatbin", &fatbin)]);
    let out = deep.join("out");
    std::fs::create_dir(&out).expect("mkdir");
    // A link planted where an entry will be written must be replaced, not written through.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep").expect("write");
    std::os::unix::fs::symlink(&victim, out.join("pkg.1.sm_80.cubin")).expect("symlink");

    let result = run(&["inspect", "--out", path_str(&out), path_str(&whl)]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    let standalone = fixture("standalone.fatbin").canonicalize().expect("path");
    let several = run(&[
        "inspect",
        "--out",
        path_str(&out),
        path_str(&whl),
        path_str(&standalone),
    ]);
    assert_eq!(several.code, 0, "{}", several.stderr);

    assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep");
    let mut expected = vec!["a", "a/b", "a/b/out", "a/b/w.whl", "victim"]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    let stems = [
        "pkg".to_owned(),
        "up".to_owned(),
        format!(
            "{}_up.fatbin",
            path_str(&whl)
                .trim_start_matches('/')
                .replace(['/', ':'], "_")
        ),
        format!(
            "{}_pkg",
            path_str(&whl)
                .trim_start_matches('/')
                .replace(['/', ':'], "_")
        ),
        path_str(&standalone)
            .trim_start_matches('/')
            .replace('/', "_"),
    ];
    for stem in &stems {
        for name in ["1.sm_80.cubin", "2.sm_90.cubin", "3.compute_90.ptx"] {
            expected.push(format!("a/b/out/{stem}.{name}"));
        }
    }
    expected.sort();
    assert_eq!(tree(dir.path()), expected);
    assert!(
        !out.join("pkg.1.sm_80.cubin")
            .symlink_metadata()
            .expect("stat")
            .file_type()
            .is_symlink()
    );
}

/// Runs cudapkgs, failing the test if it has not finished within 30 seconds.
fn run_in_time(args: &[&str]) -> Run {
    common::cudapkgs()
        .args(args)
        .timeout(std::time::Duration::from_secs(30))
        .run()
}

#[test]
fn named_special_files_are_errors_and_never_waited_on() {
    let dir = tempfile::tempdir().expect("temp");
    let fifo = dir.path().join("pipe");
    cudapkgs_testkit::make_fifo(&fifo);
    for command in [&["inspect"][..], &["prune", "--capabilities", "9.0"][..]] {
        let mut args = command.to_vec();
        args.extend(["/dev/zero", path_str(&fifo)]);
        let result = run_in_time(&args);
        assert_eq!(result.code, 2, "{command:?}: {}", result.stderr);
        for expected in [
            "error: /dev/zero: a character device, not a file or folder".to_owned(),
            format!("error: {}: a FIFO, not a file or folder", fifo.display()),
        ] {
            assert!(
                result.stderr.contains(&expected),
                "{command:?}: {}",
                result.stderr
            );
        }
    }
    let result = run_in_time(&["prune", "--json", "--capabilities", "9.0", path_str(&fifo)]);
    assert_eq!(result.code, 2, "{}", result.stderr);
    let report: Value = serde_json::from_str(&result.stdout).expect("one JSON document");
    assert_eq!(report["unreadable"][0][0], path_str(&fifo));
    // Found in a folder, a FIFO is skipped like any file without device code.
    let result = run_in_time(&["inspect", path_str(dir.path())]);
    assert_eq!(result.code, 0, "{}", result.stderr);
}

#[test]
fn wheels_whose_members_expand_beyond_reason_are_refused() {
    let dir = tempfile::tempdir().expect("temp");
    let whl = dir.path().join("bomb.whl");
    let mut bomb = b"\x7fELF".to_vec();
    bomb.resize(64 << 20, 0);
    wheel(&whl, &[("pkg/lib.so", &bomb)]);
    assert!(std::fs::metadata(&whl).expect("stat").len() < 1 << 20);
    let result = run(&["inspect", path_str(&whl)]);
    result.assert_refused(&format!(
        "error: {}:pkg/lib.so: zip member expands",
        whl.display()
    ));
    result.assert_stderr_has("more than 100 times");
}
