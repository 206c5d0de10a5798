//! End-to-end tests of the settings layer: `cudapkgs.toml` and the `CUDAPKGS_*`
//! variables reach `build`, `prune`, `inspect` and the store commands as they reach
//! `flags`, flags win over variables over the file over the defaults, `-v` names each
//! value's origin, and invalid values are refused naming the flag, variable or key.
//! The real binary, real files, a private HOME and working folder, and an environment
//! holding only what each test sets.

use crate::common;

use std::path::Path;

use common::{Server, fixture, repo, s};

use common::{Run, run_at_home};

fn write_config(dir: &Path, text: &str) {
    std::fs::write(dir.join("cudapkgs.toml"), text).expect("write cudapkgs.toml");
}

/// A mirror in NVIDIA's layout with two releases: NVIDIA's record of CUDA 12.9.1, and
/// a 13.0.2 whose cudart is 13.0.96. A dry run never downloads an archive.
fn two_release_mirror(root: &Path) {
    let cuda = root.join("cuda/redist");
    std::fs::create_dir_all(&cuda).expect("mkdir");
    let text =
        std::fs::read_to_string(repo().join("crates/redist/tests/data/redistrib_cuda_12.9.1.json"))
            .expect("manifest");
    std::fs::write(cuda.join("redistrib_12.9.1.json"), &text).expect("write");
    let mut newer: serde_json::Value = serde_json::from_str(&text).expect("json");
    newer["release_label"] = serde_json::json!("13.0.2");
    newer["cuda_cudart"]["version"] = serde_json::json!("13.0.96");
    std::fs::write(cuda.join("redistrib_13.0.2.json"), newer.to_string()).expect("write");
}

/// The version of the plan's cuda_cudart line.
fn planned_cudart(stdout: &str) -> Option<&str> {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("cuda_cudart "))
        .and_then(|rest| rest.split_whitespace().next())
}

/// `cudapkgs -v build --dry-run --no-deps … cuda_cudart` from the mirror at `url`.
fn plan(work: &Path, url: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let cache = work.join("cache");
    let mut args = common::dry_run_args(url, &cache);
    args.push("--no-deps");
    args.extend_from_slice(extra);
    args.push("cuda_cudart");
    run_at_home(work, &args, env)
}

/// The two-release mirror under `work`, served.
fn serve_mirror(work: &Path) -> Server {
    two_release_mirror(&work.join("mirror"));
    Server::serve_dir(&work.join("mirror"))
}

#[test]
fn the_release_reaches_build_from_flag_variable_and_file() {
    let dir = tempfile::tempdir().expect("temp");
    let work = dir.path();
    let server = serve_mirror(work);
    let url = server.url();
    let plan = |extra: &[&str], env: &[(&str, &str)]| plan(work, &url, extra, env);

    // Nothing set: build's default release, CUDA 13.
    let run = plan(&[], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        planned_cudart(&run.stdout),
        Some("13.0.96"),
        "{}",
        run.stdout
    );
    run.assert_stderr_has("cuda: from default");

    // The file's [cuda] version.
    write_config(work, "[cuda]\nversion = \"12.9\"\ngpus = [\"H100\"]\n");
    let run = plan(&[], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        planned_cudart(&run.stdout),
        Some("12.9.79"),
        "{}",
        run.stdout
    );
    run.assert_stderr_has("cuda: from cudapkgs.toml");
    run.assert_stderr_has("capabilities: from cudapkgs.toml");

    // The variable beats the file, a major alone standing for its newest release.
    let run = plan(&[], &[("CUDAPKGS_CUDA", "13")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        planned_cudart(&run.stdout),
        Some("13.0.96"),
        "{}",
        run.stdout
    );
    run.assert_stderr_has("cuda: from environment variable CUDAPKGS_CUDA");

    // The flag beats both.
    let run = plan(&["--cuda", "12.9.1"], &[("CUDAPKGS_CUDA", "13")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        planned_cudart(&run.stdout),
        Some("12.9.79"),
        "{}",
        run.stdout
    );
    run.assert_stderr_has("cuda: from --cuda");
}

#[test]
fn invalid_releases_are_refused_naming_their_origin() {
    let dir = tempfile::tempdir().expect("temp");
    let work = dir.path();
    let server = serve_mirror(work);
    let url = server.url();
    let plan = |extra: &[&str], env: &[(&str, &str)]| plan(work, &url, extra, env);
    let run = plan(&[], &[("CUDAPKGS_CUDA", "banana")]);
    run.assert_refused("environment variable CUDAPKGS_CUDA: invalid CUDA release `banana`");
    let run = plan(&[], &[("CUDAPKGS_GPU", "banana")]);
    run.assert_refused("environment variable CUDAPKGS_GPU: unknown GPU `banana`");
    // The file may name a major, as --cuda does: build takes the newest such release
    // of the index, and flags the newest such release it knows.
    write_config(work, "[cuda]\nversion = \"13\"\n");
    let run = plan(&[], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        planned_cudart(&run.stdout),
        Some("13.0.96"),
        "{}",
        run.stdout
    );
    let run = run_at_home(work, &["flags", "--format", "json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let flags: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(flags["cuda"], "13.0", "{}", run.stdout);
    let run = run_at_home(
        work,
        &["flags", "--format", "json"],
        &[("CUDAPKGS_CUDA", "12")],
    );
    let flags: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(flags["cuda"], "12.9", "{}", run.stdout);
    let run = run_at_home(work, &["gpus", "--cuda", "11", "--format", "json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // CUDA 11's newest release, 11.8, is the first to know Hopper and knows no Blackwell.
    let listed: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let capabilities: Vec<&str> = listed
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["capability"].as_str().expect("capability"))
        .collect();
    assert!(capabilities.contains(&"9.0"), "{capabilities:?}");
    assert!(!capabilities.contains(&"10.0"), "{capabilities:?}");
    assert_eq!(run_at_home(work, &["flags", "--cuda", "12.6"], &[]).code, 0);

    write_config(work, "[cuda]\nversion = \"banana\"\n");
    let run = plan(&[], &[]);
    run.assert_refused("cudapkgs.toml");
    run.assert_stderr_has("version");
    // A flag that is invalid is a usage error naming the flag.
    let run = plan(&["--cuda", "banana"], &[]);
    run.assert_refused("--cuda");
}

/// The `keeping …` summary of `prune --dry-run`.
fn keeping(stdout: &str) -> Option<&str> {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("keeping "))
        .and_then(|rest| rest.split_whitespace().next())
}

#[test]
fn targets_reach_prune_from_flag_variable_and_file() {
    let dir = tempfile::tempdir().expect("temp");
    let work = dir.path();
    std::fs::copy(fixture("arch_a.so"), work.join("arch_a.so")).expect("copy fixture");
    let prune = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["-v", "prune", "--dry-run"];
        args.extend_from_slice(extra);
        args.push("arch_a.so");
        run_at_home(work, &args, env)
    };

    // Nothing set: nothing to keep, and the hint names every way to say it.
    let run = prune(&[], &[]);
    run.assert_refused("no capabilities to keep");
    run.assert_stderr_has("[cuda] gpus");

    write_config(work, "[cuda]\nversion = \"12.9\"\ngpus = [\"H100\"]\n");
    let run = prune(&[], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(keeping(&run.stdout), Some("9.0"), "{}", run.stdout);
    run.assert_stderr_has("capabilities: from cudapkgs.toml");

    let run = prune(&[], &[("CUDAPKGS_CAPABILITIES", "8.6")]);
    assert_eq!(keeping(&run.stdout), Some("8.6"), "{}", run.stdout);
    run.assert_stderr_has("capabilities: from environment variable CUDAPKGS_CAPABILITIES");
    let run = prune(&["--gpu", "RTX 4090"], &[("CUDAPKGS_CAPABILITIES", "8.6")]);
    assert_eq!(keeping(&run.stdout), Some("8.9"), "{}", run.stdout);
    run.assert_stderr_has("capabilities: from --gpu");

    // GPU names resolve with the release in effect: Jetson Thor is 10.1 before CUDA 13
    // and 11.0 since.
    let thor = [("CUDAPKGS_GPU", "Jetson Thor")];
    assert_eq!(keeping(&prune(&[], &thor).stdout), Some("10.1"));
    let thor_13 = [("CUDAPKGS_GPU", "Jetson Thor"), ("CUDAPKGS_CUDA", "13.0")];
    assert_eq!(keeping(&prune(&[], &thor_13).stdout), Some("11.0"));
    write_config(
        work,
        "[cuda]\nversion = \"13.0\"\ngpus = [\"Jetson Thor\"]\n",
    );
    assert_eq!(keeping(&prune(&[], &[]).stdout), Some("11.0"));
    assert_eq!(
        keeping(&prune(&["--driver-cuda", "12.9"], &[]).stdout),
        Some("10.1")
    );

    // Invalid values name their variable or key.
    let run = prune(&[], &[("CUDAPKGS_CAPABILITIES", "9.9z")]);
    run.assert_refused("environment variable CUDAPKGS_CAPABILITIES");
    let run = prune(&[], &[("CUDAPKGS_CUDA", "banana")]);
    run.assert_refused("environment variable CUDAPKGS_CUDA");
    write_config(work, "[cuda]\ngpus = [\"banana\"]\n");
    let run = prune(&[], &[]);
    run.assert_refused("cudapkgs.toml [cuda] gpus: unknown GPU `banana`");
}

#[test]
fn what_flags_exports_is_read_by_prune_and_build() {
    let dir = tempfile::tempdir().expect("temp");
    let work = dir.path();
    std::fs::copy(fixture("arch_a.so"), work.join("arch_a.so")).expect("copy fixture");
    let exported = run_at_home(work, &["flags", "--gpu", "H100", "--format", "env"], &[]);
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let vars: Vec<(String, String)> = exported
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("export CUDAPKGS_"))
        .filter_map(|rest| rest.split_once('='))
        .map(|(name, value)| {
            (
                format!("CUDAPKGS_{name}"),
                value.trim_matches('\'').to_owned(),
            )
        })
        .collect();
    let env: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert!(env.contains(&("CUDAPKGS_CAPABILITIES", "9.0")), "{env:?}");
    let run = run_at_home(work, &["-v", "prune", "--dry-run", "arch_a.so"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(keeping(&run.stdout), Some("9.0"), "{}", run.stdout);

    let server = serve_mirror(work);
    let run = plan(work, &server.url(), &[], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        planned_cudart(&run.stdout),
        Some("12.9.79"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_configured_gpu_reaches_inspect() {
    let dir = tempfile::tempdir().expect("temp");
    let work = dir.path();
    std::fs::copy(fixture("arch_a.so"), work.join("arch_a.so")).expect("copy fixture");
    let inspect = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["-v", "inspect"];
        args.extend_from_slice(extra);
        args.push("arch_a.so");
        run_at_home(work, &args, env)
    };
    let run = inspect(&[], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stdout.contains("kernels have no usable image"),
        "{}",
        run.stdout
    );

    write_config(work, "[cuda]\ngpus = [\"H100\"]\n");
    let run = inspect(&[], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_stdout_has("0 of 2 kernels have no usable image on 9.0");
    run.assert_stderr_has("capabilities: from cudapkgs.toml");

    let run = inspect(&[], &[("CUDAPKGS_GPU", "RTX 4090")]);
    run.assert_stdout_has("2 of 2 kernels have no usable image on 8.9");
    let run = inspect(&["--gpu", "9.0"], &[("CUDAPKGS_GPU", "RTX 4090")]);
    run.assert_stdout_has("kernels have no usable image on 9.0");
    run.assert_stderr_has("capabilities: from --gpu");

    let run = inspect(&[], &[("CUDAPKGS_GPU", "banana")]);
    run.assert_refused("environment variable CUDAPKGS_GPU");
}

#[test]
fn forward_compatibility_reaches_inspects_expectation() {
    let dir = tempfile::tempdir().expect("temp");
    let work = dir.path();
    std::fs::copy(fixture("arch_a.so"), work.join("arch_a.so")).expect("copy fixture");
    let expect = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["-v", "inspect", "--expect-capabilities", "9.0a"];
        args.extend_from_slice(extra);
        args.push("arch_a.so");
        run_at_home(work, &args, env)
    };
    let with_ptx = "expected: SASS sm_90a, PTX compute_90";
    let without_ptx = "expected: SASS sm_90a, no PTX";
    assert!(expect(&[], &[]).stdout.contains(with_ptx));
    let off = [("CUDAPKGS_FORWARD_COMPAT", "false")];
    let run = expect(&[], &off);
    run.assert_stdout_has(without_ptx);
    run.assert_stderr_has(
        "forward compatibility: from environment variable CUDAPKGS_FORWARD_COMPAT",
    );
    write_config(work, "[cuda]\nforward-compat = false\n");
    assert!(expect(&[], &[]).stdout.contains(without_ptx));
    let on = [("CUDAPKGS_FORWARD_COMPAT", "on")];
    assert!(expect(&[], &on).stdout.contains(with_ptx));
    assert!(
        expect(&["--no-forward-compat"], &on)
            .stdout
            .contains(without_ptx)
    );
    let run = expect(&[], &[("CUDAPKGS_FORWARD_COMPAT", "maybe")]);
    run.assert_refused("environment variable CUDAPKGS_FORWARD_COMPAT: expected true or false");
}

#[test]
fn the_store_table_reaches_every_store_command() {
    let dir = tempfile::tempdir().expect("temp");
    let work = dir.path();
    std::fs::write(work.join("hello.txt"), "hello\n").expect("write");

    // `store path` and `store add` agree on the default store, the user's.
    let path = run_at_home(work, &["store", "path", "hello.txt"], &[]);
    assert_eq!(path.code, 0, "{}", path.stderr);
    let default_store = format!("{}/.local/share/cudapkgs/store/", s(work));
    assert!(path.stdout.starts_with(&default_store), "{}", path.stdout);

    // [store] names the folders; root and state are taken beside the file.
    write_config(
        work,
        "[store]\ndir = \"/nix/store\"\nroot = \"r\"\nstate = \"state\"\n",
    );
    let path = run_at_home(work, &["-v", "store", "path", "hello.txt"], &[]);
    assert_eq!(path.code, 0, "{}", path.stderr);
    assert!(path.stdout.starts_with("/nix/store/"), "{}", path.stdout);
    path.assert_stderr_has("store dir: from cudapkgs.toml");
    let added = run_at_home(work, &["-v", "store", "add", "hello.txt"], &[]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert_eq!(added.stdout, path.stdout);
    for origin in [
        "store dir: from cudapkgs.toml",
        "store root: from cudapkgs.toml",
        "state dir: from cudapkgs.toml",
    ] {
        added.assert_stderr_has(origin);
    }
    let name = added.stdout.trim().trim_start_matches("/nix/store/");
    assert!(work.join("r/nix/store").join(name).is_file());
    assert!(work.join("state").is_dir());
    let info = run_at_home(work, &["path-info", added.stdout.trim()], &[]);
    assert_eq!(info.code, 0, "{}", info.stderr);

    // Variables beat the file, flags beat variables.
    let env = [("CUDAPKGS_STORE_DIR", "/opt/store")];
    let path = run_at_home(work, &["-v", "store", "path", "hello.txt"], &env);
    assert!(path.stdout.starts_with("/opt/store/"), "{}", path.stdout);
    path.assert_stderr_has("store dir: from environment variable CUDAPKGS_STORE_DIR");
    let args = ["-v", "store", "path", "--store-dir", "/srv/s", "hello.txt"];
    let path = run_at_home(work, &args, &env);
    assert!(path.stdout.starts_with("/srv/s/"), "{}", path.stdout);
    path.assert_stderr_has("store dir: from --store-dir");

    // An unknown key of the table is refused, naming the file and the key.
    write_config(work, "[store]\nfolder = \"/nix/store\"\n");
    let run = run_at_home(work, &["store", "path", "hello.txt"], &[]);
    run.assert_refused("cudapkgs.toml");
    run.assert_stderr_has("folder");
}

#[test]
fn the_cache_table_reaches_push_and_copy() {
    let dir = tempfile::tempdir().expect("temp");
    let work = dir.path();
    let keygen = run_at_home(work, &["cache", "keygen", "test-1", "k.sk", "k.pub"], &[]);
    assert_eq!(keygen.code, 0, "{}", keygen.stderr);
    std::fs::write(work.join("hello.txt"), "hello\n").expect("write");
    let added = run_at_home(work, &["store", "add", "hello.txt"], &[]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    let path = added.stdout.trim();

    // Key files named by the file are taken beside it, whatever the working folder.
    write_config(
        work,
        "[cache]\nsecret-key-file = \"k.sk\"\ntrusted-public-keys = [\"k.pub\"]\n",
    );
    let cache = format!("file://{}", s(&work.join("bc")));
    let pushed = run_at_home(work, &["-v", "push", "--to", &cache, path], &[]);
    assert_eq!(pushed.code, 0, "{}", pushed.stderr);
    assert!(
        pushed
            .stderr
            .contains("secret key file: from cudapkgs.toml")
            && !pushed.stderr.contains("without --secret-key-file"),
        "{}",
        pushed.stderr
    );
    let hash = path
        .rsplit('/')
        .next()
        .expect("a name")
        .split('-')
        .next()
        .expect("a hash");
    let narinfo =
        std::fs::read_to_string(work.join("bc").join(format!("{hash}.narinfo"))).expect("narinfo");
    assert!(narinfo.contains("\nSig: test-1:"), "{narinfo}");

    let other = work.join("other");
    let args = ["-v", "copy", "--from", &cache, "--root", s(&other), path];
    let copied = run_at_home(work, &args, &[]);
    assert_eq!(copied.code, 0, "{}", copied.stderr);
    copied.assert_stderr_has("trusted public keys: from cudapkgs.toml");
    let unsigned = run_at_home(
        work,
        &["-v", "push", "--to", &cache, path],
        &[("CUDAPKGS_SECRET_KEY_FILE", "missing.sk")],
    );
    assert_eq!(
        unsigned.code, 2,
        "the variable wins, and names a missing file"
    );
    unsigned.assert_stderr_has("missing.sk");
}

#[test]
fn the_index_table_reaches_build_and_redist_wheel() {
    let dir = tempfile::tempdir().expect("temp");
    let work = dir.path();
    // Port 9 (discard) is closed on the loopback: the failure names where it went.
    write_config(work, "[index]\nurl = \"http://127.0.0.1:9/simple\"\n");
    let cache = work.join("cache");
    let args = [
        "-v",
        "build",
        "--dry-run",
        "--cache",
        s(&cache),
        "cuda_cudart",
    ];
    let build = run_at_home(work, &args, &[]);
    build.assert_refused("index url: from cudapkgs.toml");
    build.assert_stderr_has("127.0.0.1:9");
    let args = ["-v", "redist", "wheel", "--cache", s(&cache), "cuda_cudart"];
    let wheel = run_at_home(work, &args, &[]);
    wheel.assert_refused("127.0.0.1:9");

    // Offline from the file: nothing is fetched, and the miss says so.
    write_config(
        work,
        "[index]\nurl = \"http://127.0.0.1:9/simple\"\noffline = true\n",
    );
    let args = [
        "-v",
        "build",
        "--dry-run",
        "--cache",
        s(&cache),
        "cuda_cudart",
    ];
    let offline = run_at_home(work, &args, &[]);
    offline.assert_refused("offline: from cudapkgs.toml");
    offline.assert_stderr_has("not in the download cache");
    let env = [("CUDAPKGS_OFFLINE", "maybe")];
    let refused = run_at_home(work, &args, &env);
    refused.assert_refused("CUDAPKGS_OFFLINE");
}
