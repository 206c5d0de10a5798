//! Every setting reaches every command that takes it, as one matrix: for each pair, the
//! value set in a `CUDAPKGS_*` variable and the same value in `cudapkgs.toml` are each
//! read (`-v` names where it came from), and a bad value in the variable is refused
//! naming the variable. A command added without reading a setting its neighbours read
//! fails here. Commands that need the network are made to stop before it (`--offline`
//! and an empty download cache), so no pair waits on anything.

use std::path::Path;

use crate::common::{Run, fixture, run_at_home, s};

/// One setting: how `-v` names it, its variable, a good value and the same in the file,
/// and a value the variable must refuse (`None`: any value is taken as it is).
struct Setting {
    label: &'static str,
    variable: &'static str,
    value: &'static str,
    toml: &'static str,
    invalid: Option<&'static str>,
}

const CUDA: Setting = Setting {
    label: "cuda",
    variable: "CUDAPKGS_CUDA",
    value: "12.9",
    toml: "[cuda]\nversion = \"12.9\"\n",
    invalid: Some("banana"),
};
const GPUS: Setting = Setting {
    label: "capabilities",
    variable: "CUDAPKGS_GPU",
    value: "H100",
    toml: "[cuda]\ngpus = [\"H100\"]\n",
    invalid: Some("No Such GPU"),
};
const CAPABILITIES: Setting = Setting {
    label: "capabilities",
    variable: "CUDAPKGS_CAPABILITIES",
    value: "9.0",
    toml: "[cuda]\ncapabilities = [\"9.0\"]\n",
    invalid: Some("9.9x"),
};
const FORWARD_COMPAT: Setting = Setting {
    label: "forward compatibility",
    variable: "CUDAPKGS_FORWARD_COMPAT",
    value: "0",
    toml: "[cuda]\nforward-compat = false\n",
    invalid: Some("perhaps"),
};
const PLATFORM: Setting = Setting {
    label: "platform",
    variable: "CUDAPKGS_PLATFORM",
    value: "aarch64-server",
    toml: "[cuda]\nplatform = \"aarch64-server\"\n",
    invalid: Some("vax"),
};
const HOST_COMPILER: Setting = Setting {
    label: "host compiler",
    variable: "CUDAPKGS_HOST_COMPILER",
    value: "gcc-13",
    toml: "[cuda]\nhost-compiler = \"gcc-13\"\n",
    invalid: Some("fortran-77"),
};
const STORE_DIR: Setting = Setting {
    label: "store dir",
    variable: "CUDAPKGS_STORE_DIR",
    value: "{work}/store",
    toml: "[store]\ndir = \"{work}/store\"\n",
    invalid: Some("relative/store"),
};
const STATE_DIR: Setting = Setting {
    label: "state dir",
    variable: "CUDAPKGS_STATE_DIR",
    value: "{work}/state",
    toml: "[store]\nstate = \"{work}/state\"\n",
    invalid: None,
};
const INDEX_URL: Setting = Setting {
    label: "index url",
    variable: "CUDAPKGS_INDEX_URL",
    value: "http://127.0.0.1:9/simple/",
    toml: "[index]\nurl = \"http://127.0.0.1:9/simple/\"\n",
    invalid: Some("ftp://example.org/simple/"),
};
const OFFLINE: Setting = Setting {
    label: "offline",
    variable: "CUDAPKGS_OFFLINE",
    value: "1",
    toml: "[index]\noffline = true\n",
    invalid: Some("perhaps"),
};
const SUBSTITUTERS: Setting = Setting {
    label: "substituters",
    variable: "CUDAPKGS_SUBSTITUTERS",
    value: "file://{work}/cache",
    toml: "[cache]\nsubstituters = [\"file://{work}/cache\"]\n",
    invalid: Some("gopher://example.org/"),
};
const TRUSTED_KEYS: Setting = Setting {
    label: "trusted public keys",
    variable: "CUDAPKGS_TRUSTED_PUBLIC_KEYS",
    value: "{work}/k.pub",
    toml: "[cache]\ntrusted-public-keys = [\"{work}/k.pub\"]\n",
    invalid: Some("not-a-key"),
};
const SECRET_KEY: Setting = Setting {
    label: "secret key file",
    variable: "CUDAPKGS_SECRET_KEY_FILE",
    value: "{work}/k.sk",
    toml: "[cache]\nsecret-key-file = \"{work}/k.sk\"\n",
    invalid: None,
};

/// A store path of the store the store settings name (never valid: every store command
/// tells its settings before it looks the path up).
const PATH: &str = "{work}/store/00000000000000000000000000000000-x";

/// A command's arguments, which reach its settings and stop soon after, and the
/// settings it takes.
type Row = (Vec<&'static str>, Vec<&'static Setting>);

fn matrix() -> Vec<Row> {
    let mut rows = cuda_and_network_rows();
    rows.extend(store_rows());
    rows
}

/// The commands that take the CUDA options, the index and the caches.
fn cuda_and_network_rows() -> Vec<Row> {
    let cuda_options = vec![
        &CUDA,
        &GPUS,
        &CAPABILITIES,
        &FORWARD_COMPAT,
        &PLATFORM,
        &HOST_COMPILER,
    ];
    let plan = vec!["build", "--dry-run", "--cache", "{work}/dl", "cuda_cudart"];
    let offline = |args: &[&'static str]| {
        let mut args = args.to_vec();
        args.push("--offline");
        args
    };
    vec![
        (vec!["flags"], cuda_options.clone()),
        (vec!["targets", "scan", "{work}/tree"], cuda_options),
        (
            vec!["inspect", "{library}"],
            vec![&CUDA, &GPUS, &CAPABILITIES],
        ),
        (
            vec!["inspect", "--expect-capabilities", "8.0", "{library}"],
            vec![&FORWARD_COMPAT],
        ),
        (
            vec!["prune", "--dry-run", "{library}"],
            vec![&CUDA, &GPUS, &CAPABILITIES],
        ),
        (
            vec!["check", "{work}/tree"],
            vec![&CUDA, &GPUS, &CAPABILITIES],
        ),
        (
            offline(&plan),
            vec![
                &CUDA,
                &GPUS,
                &CAPABILITIES,
                &INDEX_URL,
                &SUBSTITUTERS,
                &TRUSTED_KEYS,
            ],
        ),
        (plan, vec![&OFFLINE]),
        (
            offline(&["redist", "wheel", "--cache", "{work}/dl", "cuda_cudart"]),
            vec![&CUDA, &INDEX_URL],
        ),
        (
            vec!["redist", "wheel", "--cache", "{work}/dl", "cuda_cudart"],
            vec![&OFFLINE],
        ),
        (
            vec![
                "redist",
                "fetch",
                "--release",
                "13.0.2",
                "--cache",
                "{work}/dl",
            ],
            vec![&CUDA, &OFFLINE],
        ),
        (
            vec![
                "redist",
                "list",
                "--release",
                "13.0.2",
                "--cache",
                "{work}/dl",
            ],
            vec![&OFFLINE],
        ),
        (
            vec!["features", "--release", "13.0.2", "--cache", "{work}/dl"],
            vec![&OFFLINE],
        ),
    ]
}

/// The commands that open a store.
fn store_rows() -> Vec<Row> {
    let store = vec![&STORE_DIR, &STATE_DIR];
    vec![
        (
            vec!["build", "--offline", "--cache", "{work}/dl", "cuda_cudart"],
            store.clone(),
        ),
        (vec!["store", "path", "{work}/hello.txt"], vec![&STORE_DIR]),
        (vec!["store", "add", "{work}/hello.txt"], store.clone()),
        (vec!["store", "verify"], store.clone()),
        (vec!["store", "info", PATH], store.clone()),
        (vec!["store", "root", "list"], store.clone()),
        (vec!["path-info", PATH], store.clone()),
        (vec!["closure", PATH], store.clone()),
        (vec!["why", PATH, PATH], store.clone()),
        (vec!["diff", PATH, PATH], store.clone()),
        (vec!["gc", "--dry-run"], store.clone()),
        (vec!["check", PATH], store.clone()),
        (
            vec!["push", "--to", "file://{work}/cache", PATH],
            vec![&STORE_DIR, &STATE_DIR, &SECRET_KEY],
        ),
        (
            vec![
                "copy",
                "--from",
                "file://{work}/cache",
                "--trusted-public-key",
                "{work}/k.pub",
                PATH,
            ],
            store,
        ),
        (
            vec!["copy", "--from", "file://{work}/cache", PATH],
            vec![&TRUSTED_KEYS],
        ),
    ]
}

/// `text` with the test's folders in place of their names.
fn filled(text: &str, work: &Path) -> String {
    text.replace("{work}", s(work))
        .replace("{library}", s(&fixture("libscale_a.so")))
}

fn run(work: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let args: Vec<String> = args.iter().map(|arg| filled(arg, work)).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_at_home(work, &args, env)
}

#[test]
fn every_setting_reaches_every_command_that_takes_it() {
    let dir = tempfile::tempdir().expect("temp");
    let work = dir.path();
    std::fs::write(work.join("hello.txt"), "hello\n").expect("write");
    std::fs::create_dir(work.join("tree")).expect("mkdir");
    std::fs::copy(fixture("libscale_a.so"), work.join("tree/libscale_a.so")).expect("copy");
    let keygen = run(
        work,
        &["cache", "keygen", "test-1", "{work}/k.sk", "{work}/k.pub"],
        &[],
    );
    assert_eq!(keygen.code, 0, "{}", keygen.stderr);

    let mut missed = Vec::new();
    let mut pairs = 0;
    for (args, settings) in matrix() {
        for setting in settings {
            pairs += 1;
            let command = args.join(" ");
            let mut verbose = vec!["-v"];
            verbose.extend(&args);
            let value = filled(setting.value, work);
            let from_variable = run(work, &verbose, &[(setting.variable, &value)]);
            let told = format!(
                "{}: from environment variable {}",
                setting.label, setting.variable
            );
            if !from_variable.stderr.contains(&told) {
                missed.push(format!(
                    "{command}: {told} not said:\n{}",
                    from_variable.stderr
                ));
            }
            std::fs::write(work.join("cudapkgs.toml"), filled(setting.toml, work))
                .expect("write cudapkgs.toml");
            let from_file = run(work, &verbose, &[]);
            std::fs::remove_file(work.join("cudapkgs.toml")).expect("remove");
            let told = format!("{}: from cudapkgs.toml", setting.label);
            if !from_file.stderr.contains(&told) {
                missed.push(format!("{command}: {told} not said:\n{}", from_file.stderr));
            }
            if let Some(invalid) = setting.invalid {
                let refused = run(work, &args, &[(setting.variable, invalid)]);
                if refused.code != 2 || !refused.stderr.contains(setting.variable) {
                    missed.push(format!(
                        "{command}: {}={invalid} not refused naming it (exit {}):\n{}",
                        setting.variable, refused.code, refused.stderr
                    ));
                }
            }
        }
    }
    assert!(pairs > 60, "the matrix lost its rows: {pairs} pairs");
    assert!(
        missed.is_empty(),
        "{} of {pairs} pairs fail:\n\n{}",
        missed.len(),
        missed.join("\n\n")
    );
}
