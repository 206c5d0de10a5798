//! End-to-end tests of `cudapkgs flags` and `cudapkgs gpus`: the real binary, a clean
//! environment, a private HOME and working directory.

use crate::common;

use std::process::Command;

use common::{Run, run_at_home};
use serde_json::Value;

fn run(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    run_at_home(dir.path(), args, &[])
}

fn ok(args: &[&str]) -> String {
    let result = run(args);
    assert_eq!(result.code, 0, "{args:?}\nstderr: {}", result.stderr);
    result.stdout
}

fn refused(args: &[&str]) -> String {
    let result = run(args);
    assert_eq!(
        result.code, 2,
        "{args:?} should exit 2\nstdout: {}",
        result.stdout
    );
    assert!(
        result.stdout.is_empty(),
        "nothing on stdout when refused: {}",
        result.stdout
    );
    result.stderr
}

const X86: &[&str] = &["--platform", "x86_64"];

fn flags(extra: &[&str]) -> Vec<String> {
    let mut args = vec!["flags".to_owned()];
    args.extend(X86.iter().map(|s| (*s).to_owned()));
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

fn ok_flags(extra: &[&str]) -> String {
    let args = flags(extra);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn refused_flags(extra: &[&str]) -> String {
    let args = flags(extra);
    refused(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn every_format_renders_the_reference_example() {
    let base = ["--cuda", "12.9", "--capabilities", "7.5,8.6"];
    let with = |format: &str| ok_flags(&[&base[..], &["--format", format]].concat());
    assert_eq!(
        with("nvcc"),
        "-gencode=arch=compute_75,code=sm_75 -gencode=arch=compute_86,code=sm_86 -gencode=arch=compute_86,code=compute_86\n"
    );
    assert_eq!(with("cmake"), "75-real;86-real;86-virtual\n");
    assert_eq!(with("torch"), "7.5;8.6+PTX\n");
    assert_eq!(with("tensorflow"), "sm_75,compute_86\n");
    assert_eq!(
        with("nix"),
        "# CUDA 12.9 on x86_64-linux: use cudaPackages_12_9\n{\n  cudaSupport = true;\n  cudaCapabilities = [ \"7.5\" \"8.6\" ];\n  cudaForwardCompat = true;\n}\n"
    );
    let env = with("env");
    assert!(
        env.contains("export TF_CUDA_COMPUTE_CAPABILITIES='sm_75,compute_86'\n"),
        "{env}"
    );
    assert!(
        env.contains("export CUDAARCHS='75-real;86-real;86-virtual'\n"),
        "{env}"
    );

    let json: Value = serde_json::from_str(&with("json")).expect("json");
    assert_eq!(json["capabilities"], serde_json::json!(["7.5", "8.6"]));
    assert_eq!(json["cuda"], "12.9");
    assert_eq!(json["ptx"], "8.6");
    assert_eq!(json["forward_compat"], true);
    assert_eq!(json["default_capabilities"], false);
    assert_eq!(json["cmake"], "75-real;86-real;86-virtual");
    assert_eq!(json["nvcc"].as_array().map(Vec::len), Some(3));

    let human = with("human");
    assert!(human.contains("capabilities: 7.5 8.6\n"), "{human}");
    assert!(
        human.contains("TORCH_CUDA_ARCH_LIST=\"7.5;8.6+PTX\""),
        "{human}"
    );
}

#[test]
fn no_forward_compat_drops_the_ptx_everywhere() {
    let json: Value = serde_json::from_str(&ok_flags(&[
        "--capabilities",
        "7.5 8.6",
        "--no-forward-compat",
        "--json",
    ]))
    .expect("json");
    assert_eq!(json["ptx"], Value::Null);
    assert_eq!(json["torch"], "7.5;8.6");
    assert_eq!(json["cmake"], "75-real;86-real");
    assert_eq!(json["tensorflow"], "sm_75,sm_86");
    // The later of the two switches wins.
    let json: Value = serde_json::from_str(&ok_flags(&[
        "--capabilities",
        "8.6",
        "--no-forward-compat",
        "--forward-compat",
        "--json",
    ]))
    .expect("json");
    assert_eq!(json["ptx"], "8.6");
}

#[test]
fn default_sets_for_several_cuda_releases() {
    for (cuda, expected) in [
        (
            "11.8",
            &["6.0", "6.1", "7.0", "7.5", "8.0", "8.6", "8.9", "9.0"][..],
        ),
        (
            "12.0",
            &["6.0", "6.1", "7.0", "7.5", "8.0", "8.6", "8.9", "9.0"][..],
        ),
        ("12.6", &["7.5", "8.0", "8.6", "8.9", "9.0"][..]),
        (
            "12.9",
            &[
                "7.5", "8.0", "8.6", "8.9", "9.0", "10.0", "10.3", "12.0", "12.1",
            ][..],
        ),
        (
            "13.0",
            &[
                "7.5", "8.0", "8.6", "8.9", "9.0", "10.0", "10.3", "12.0", "12.1",
            ][..],
        ),
    ] {
        let json: Value =
            serde_json::from_str(&ok_flags(&["--cuda", cuda, "--format", "json"])).expect("json");
        assert_eq!(
            json["capabilities"],
            serde_json::json!(expected),
            "CUDA {cuda}"
        );
        assert_eq!(json["default_capabilities"], true);
    }
}

#[test]
fn gpu_names_resolve_to_capabilities() {
    let json: Value = serde_json::from_str(&ok_flags(&[
        "--gpu",
        "H100",
        "--gpu",
        "GeForce RTX 4090",
        "--gpu",
        "sm_75",
        "--json",
    ]))
    .expect("json");
    assert_eq!(
        json["capabilities"],
        serde_json::json!(["7.5", "8.9", "9.0"])
    );
    let thor: Value = serde_json::from_str(&ok(&[
        "flags",
        "--platform",
        "aarch64-server",
        "--cuda",
        "13.0",
        "--gpu",
        "Jetson Thor",
        "--json",
    ]))
    .expect("json");
    assert_eq!(thor["capabilities"], serde_json::json!(["11.0"]));
}

#[test]
fn every_refusal_exits_2_naming_the_value_and_the_choices() {
    let stderr = refused_flags(&["--capabilities", "8.6,9.1"]);
    assert!(
        stderr.contains("error: unknown capability 9.1; known capabilities: 3.5, 3.7"),
        "{stderr}"
    );

    let stderr = refused_flags(&["--cuda", "12.9", "--capabilities", "3.7"]);
    assert!(
        stderr
            .contains("capability 3.7 is not supported by CUDA 12.9 (it needs CUDA 10.0 to 11.8)"),
        "{stderr}"
    );

    let stderr = refused_flags(&["--cuda", "12.6", "--capabilities", "8.7"]);
    assert!(
        stderr.contains(
            "Jetson capability 8.7 needs an aarch64 host, but the host platform is x86_64"
        ),
        "{stderr}"
    );
    // The flag that fits is the binary's hint, not part of the library's message.
    assert!(
        stderr.contains("\nhint: use --platform aarch64-jetson or choose from "),
        "{stderr}"
    );
    let stderr = refused(&[
        "flags",
        "--platform",
        "aarch64-server",
        "--cuda",
        "12.6",
        "--capabilities",
        "8.7",
    ]);
    assert!(
        stderr.contains("NVIDIA's Jetson packages, but the host platform is aarch64-server\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\nhint: use --platform aarch64-jetson\n"),
        "{stderr}"
    );

    let stderr = refused(&[
        "flags",
        "--platform",
        "aarch64-jetson",
        "--cuda",
        "12.6",
        "--capabilities",
        "8.7,8.6",
    ]);
    assert!(stderr.contains("cannot share a build with 8.6"), "{stderr}");

    let stderr = refused_flags(&["--capabilities", "sm_9x"]);
    assert!(
        stderr.contains("--capabilities: invalid capability `sm_9x`"),
        "{stderr}"
    );

    let stderr = refused_flags(&["--gpu", "Radeon VII"]);
    assert!(
        stderr.contains("--gpu: unknown GPU `Radeon VII`"),
        "{stderr}"
    );

    let stderr = refused_flags(&["--cuda", "twelve"]);
    assert!(stderr.contains("invalid CUDA version `twelve`"), "{stderr}");

    let stderr = refused(&["flags", "--platform", "ppc64le"]);
    assert!(
        stderr.contains("unknown host platform `ppc64le`"),
        "{stderr}"
    );

    let stderr = refused_flags(&["--capabilities", "8.6", "--gpu", "H100"]);
    assert!(stderr.contains("cannot be used with"), "{stderr}");

    let conflict = run(&["flags", "--json", "--format", "nvcc"]);
    conflict.assert_refused("--json conflicts with --format nvcc");
}

#[test]
fn specific_capabilities_with_forward_compat_warn() {
    let result = run(&[
        "flags",
        "--platform",
        "x86_64",
        "--capabilities",
        "8.0,9.0a",
        "--format",
        "nvcc",
    ]);
    assert_eq!(result.code, 0);
    assert!(
        result
            .stderr
            .starts_with("warning: forward compatibility with 9.0a"),
        "{}",
        result.stderr
    );
    assert!(
        result
            .stdout
            .ends_with("-gencode=arch=compute_90,code=compute_90\n"),
        "{}",
        result.stdout
    );
    let quiet = run(&[
        "flags",
        "-q",
        "--platform",
        "x86_64",
        "--capabilities",
        "8.0,9.0a",
    ]);
    assert_eq!((quiet.code, quiet.stderr.as_str()), (0, ""));
    let json = run(&[
        "flags",
        "--platform",
        "x86_64",
        "--capabilities",
        "9.0a",
        "--json",
    ]);
    assert!(
        json.json()["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("compute_90a"))
    );
}

#[test]
fn host_compiler_check_exits_1_when_nvcc_refuses_it() {
    let result = run(&[
        "flags",
        "--platform",
        "x86_64",
        "--host-compiler",
        "gcc-14",
        "--cuda",
        "12.6",
    ]);
    assert_eq!(result.code, 1, "{}", result.stderr);
    result.assert_stdout_has("host compiler: problem: gcc-14 is refused by nvcc from CUDA 12.6 (it takes gcc 6 to 13); use gcc-13 instead");
    let result = run(&[
        "flags",
        "--platform",
        "x86_64",
        "--host-compiler",
        "gcc-14",
        "--cuda",
        "12.9",
        "--json",
    ]);
    assert_eq!(result.code, 0);
    let verdict = &result.json()["host_compiler"];
    assert_eq!(verdict["accepted"], true);
    assert_eq!(verdict["max_major"], 14);
    let result = run(&[
        "flags",
        "--platform",
        "x86_64",
        "--host-compiler",
        "clang-21",
        "--cuda",
        "13.0",
        "--format",
        "cmake",
    ]);
    assert_eq!(result.code, 1);
    result.assert_stderr_has("problem: clang-21 is refused");
    assert!(!result.stdout.is_empty());
}

#[test]
fn settings_precedence_flag_env_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("cudapkgs.toml"),
        "[cuda]\nversion = \"12.6\"\ncapabilities = [\"8.0\"]\nforward-compat = false\nplatform = \"x86_64\"\n",
    )
    .expect("write config");
    let json = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["flags", "--json"];
        all.extend_from_slice(args);
        let result = run_at_home(dir.path(), &all, env);
        assert_eq!(result.code, 0, "{}", result.stderr);
        result.json()
    };

    let from_file = json(&[], &[]);
    assert_eq!(from_file["cuda"], "12.6");
    assert_eq!(from_file["capabilities"], serde_json::json!(["8.0"]));
    assert_eq!(from_file["forward_compat"], false);

    let env = [
        ("CUDAPKGS_CUDA", "12.8"),
        ("CUDAPKGS_GPU", "RTX 5090"),
        ("CUDAPKGS_FORWARD_COMPAT", "1"),
    ];
    let from_env = json(&[], &env);
    assert_eq!(from_env["cuda"], "12.8");
    assert_eq!(from_env["capabilities"], serde_json::json!(["12.0"]));
    assert_eq!(from_env["forward_compat"], true);

    let from_flags = json(
        &[
            "--cuda",
            "13.0",
            "--capabilities",
            "9.0",
            "--no-forward-compat",
        ],
        &env,
    );
    assert_eq!(from_flags["cuda"], "13.0");
    assert_eq!(from_flags["capabilities"], serde_json::json!(["9.0"]));
    assert_eq!(from_flags["forward_compat"], false);

    let verbose = run_at_home(dir.path(), &["flags", "-v"], &[("CUDAPKGS_CUDA", "12.8")]);
    verbose.assert_stderr_has("cuda: from environment variable CUDAPKGS_CUDA");
    verbose.assert_stderr_has("capabilities: from cudapkgs.toml");

    let bad = run_at_home(
        dir.path(),
        &["flags"],
        &[("CUDAPKGS_FORWARD_COMPAT", "maybe")],
    );
    bad.assert_refused("environment variable CUDAPKGS_FORWARD_COMPAT: expected true or false");
}

#[test]
fn broken_config_files_are_refused_with_file_and_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("cudapkgs.toml"),
        "[cuda]\ncapabilites = [\"8.0\"]\n",
    )
    .expect("write");
    let result = run_at_home(dir.path(), &["flags"], &[]);
    result.assert_refused("invalid configuration file cudapkgs.toml");
    result.assert_stderr_has("capabilites");
    result.assert_stderr_has("hint: ");

    let result = run_at_home(dir.path(), &["flags", "--config", "missing.toml"], &[]);
    result.assert_refused("cannot read configuration file missing.toml");
}

#[test]
fn errors_are_json_on_stdout_with_json() {
    let result = run(&[
        "flags",
        "--platform",
        "x86_64",
        "--capabilities",
        "9.1",
        "--json",
    ]);
    assert_eq!(result.code, 2);
    let message = result.json()["error"]["message"]
        .as_str()
        .map(str::to_owned);
    assert!(message.is_some_and(|m| m.starts_with("unknown capability 9.1")));
}

#[test]
fn env_format_round_trips_through_a_shell() {
    let exports = ok_flags(&[
        "--cuda", "13.0", "--gpu", "L40S", "--gpu", "B200", "--format", "env",
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let script = format!("{exports}\n\"$1\" flags --json");
    let output = Command::new("sh")
        .args(["-c", &script, "sh", env!("CARGO_BIN_EXE_cudapkgs")])
        .current_dir(dir.path())
        .env_clear()
        .env("HOME", dir.path())
        .output()
        .expect("sh runs");
    cudapkgs_testkit::assert_succeeded(&output);
    let json: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["cuda"], "13.0");
    assert_eq!(json["capabilities"], serde_json::json!(["8.9", "10.0"]));
    assert_eq!(json["platform"], "x86_64");
}

#[test]
fn flags_help_shows_examples() {
    let help = ok(&["flags", "--help"]);
    assert!(help.contains("Examples:"), "{help}");
    assert!(
        help.contains("cudapkgs flags --capabilities 7.5,8.6 --format cmake"),
        "{help}"
    );
    assert!(help.contains("CUDAPKGS_CAPABILITIES"), "{help}");
}

#[test]
fn gpus_lists_the_table() {
    let all = ok(&["gpus"]);
    assert!(all.contains("3.5"), "{all}");
    assert!(
        all.lines()
            .any(|l| l.starts_with("9.0 ") && l.contains("Hopper") && l.contains("H100")),
        "{all}"
    );
    let cuda13 = ok(&["gpus", "--cuda", "13.0"]);
    assert!(!cuda13.lines().any(|l| l.starts_with("7.0")), "{cuda13}");
    assert!(cuda13.lines().any(|l| l.starts_with("9.0* ")), "{cuda13}");
    assert!(cuda13.lines().any(|l| l.starts_with("9.0a ")), "{cuda13}");

    let rows: Value =
        serde_json::from_str(&ok(&["gpus", "--cuda", "12.9", "--json"])).expect("json");
    let rows = rows.as_array().expect("array");
    let hopper = rows
        .iter()
        .find(|r| r["capability"] == "9.0")
        .expect("9.0 row");
    assert_eq!(hopper["default"], true);
    assert_eq!(hopper["architecture"], "Hopper");
    let thor = rows
        .iter()
        .find(|r| r["capability"] == "10.1")
        .expect("10.1 row");
    assert_eq!(thor["products"], serde_json::json!(["Jetson Thor"]));
    assert_eq!(thor["jetson"], true);
}

#[test]
fn bad_usage_exits_2_and_version_works() {
    assert_eq!(run(&["flags", "--format", "yaml"]).code, 2);
    assert_eq!(run(&["no-such-command"]).code, 2);
    assert!(ok(&["--version"]).starts_with("cudapkgs "));
}
