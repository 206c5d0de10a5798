//! The JSON Schemas under docs/schema/ are what the binary generates from its types, and
//! the documents the commands really print satisfy them, with no key the schema does not
//! name.

use std::path::Path;

use serde_json::Value;

use crate::common::schema::{assert_fits, problems_of, schema};
use crate::common::{fixture, multiarch_without_runtime, repo, run, s};

fn documents() -> Vec<String> {
    let (code, stdout, stderr) = run(&["schema"]);
    assert_eq!(code, 0, "{stderr}");
    stdout.lines().map(str::to_owned).collect()
}

#[test]
fn docs_schema_holds_the_schemas_the_binary_writes() {
    let folder = repo().join("docs/schema");
    let mut committed: Vec<String> = std::fs::read_dir(&folder)
        .expect("docs/schema")
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    committed.sort();
    let mut expected: Vec<String> = documents()
        .iter()
        .map(|name| format!("{name}.json"))
        .collect();
    expected.sort();
    assert_eq!(
        committed, expected,
        "docs/schema/ lists other documents than `cudapkgs schema`"
    );
    for name in documents() {
        let (_, written, _) = run(&["schema", &name]);
        let file = std::fs::read_to_string(folder.join(format!("{name}.json"))).expect("read");
        assert_eq!(
            file, written,
            "docs/schema/{name}.json differs: write it again with `cargo run -q -- schema {name} > docs/schema/{name}.json`"
        );
    }
    let (code, _, stderr) = run(&["schema", "no-such-document"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("path-info"), "{stderr}");
}

/// A schema with every keyword the checker knows, written here so that each can be
/// shown to fail.
fn every_keyword() -> Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "count": {"type": "integer", "minimum": 0, "maximum": 9},
            "colour": {"enum": ["red", "blue"]},
            "pair": {
                "type": "array",
                "prefixItems": [{"type": "string"}, {"type": "integer"}],
                "minItems": 2,
                "maxItems": 2
            },
            "sizes": {"type": "object", "additionalProperties": {"type": "integer"}},
            "maybe": {"anyOf": [{"$ref": "#/$defs/Leaf"}, {"type": "null"}]},
            "shape": {"oneOf": [
                {"type": "object", "properties": {"kind": {"const": "dot"}}, "required": ["kind"]},
                {"type": "object", "properties": {"kind": {"type": "string"}, "sides": {"type": "integer"}},
                 "required": ["kind"]}
            ]}
        },
        "required": ["count"],
        "$defs": {"Leaf": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}
    })
}

#[test]
fn the_checker_finds_what_does_not_fit() {
    let schema = schema("store-verify");
    let wrong = serde_json::json!({"valid_paths": -1, "problems": [3], "extra": true});
    assert_eq!(problems_of(&wrong, &schema).len(), 3, "{wrong}");
    assert_eq!(problems_of(&serde_json::json!({}), &schema).len(), 2);

    let schema = every_keyword();
    let right = serde_json::json!({
        "count": 3,
        "colour": "red",
        "pair": ["a", 1],
        "sizes": {"x": 1},
        "maybe": {"name": "leaf"},
        "shape": {"kind": "square", "sides": 4}
    });
    assert_eq!(problems_of(&right, &schema), Vec::<String>::new());
    let with = |key: &str, value: Value| {
        let mut changed = right.clone();
        changed[key] = value;
        problems_of(&changed, &schema)
    };
    // Each keyword, broken alone, is one problem.
    for (key, value) in [
        ("count", serde_json::json!(10)),
        ("count", serde_json::json!(-1)),
        ("colour", serde_json::json!("green")),
        ("pair", serde_json::json!([1, 1])),
        ("pair", serde_json::json!(["a"])),
        ("pair", serde_json::json!(["a", 1, 2])),
        ("sizes", serde_json::json!({"x": "one"})),
        ("maybe", serde_json::json!({"name": 1})),
        ("maybe", serde_json::json!(3)),
        // Fits no choice (an unknown key), then both choices at once.
        ("shape", serde_json::json!({"kind": "dot", "colour": "red"})),
        ("shape", serde_json::json!({"kind": "dot"})),
    ] {
        let found = with(key, value.clone());
        assert_eq!(found.len(), 1, "{key}: {value}: {found:?}");
    }
    assert_eq!(with("maybe", Value::Null), Vec::<String>::new());
    let mut unknown = right.clone();
    unknown["surplus"] = serde_json::json!(1);
    assert_eq!(problems_of(&unknown, &schema).len(), 1);
}

#[test]
fn what_the_store_commands_print_fits_their_schemas() {
    let dir = tempfile::tempdir().expect("temp");
    let home = dir.path();
    let store = [
        "--store-dir",
        "/nix/store",
        "--root",
        home.to_str().expect("utf-8"),
    ];
    let tree = home.join("tree");
    std::fs::create_dir_all(&tree).expect("mkdir");
    std::fs::write(tree.join("a"), "a file\n").expect("write");
    let document = |args: &[&str], expected: i32| {
        let (code, stdout, stderr) = run(&[&["--json"][..], args, &store].concat());
        assert_eq!(code, expected, "{args:?}: {stderr}");
        stdout
    };
    let tree_arg = tree.to_str().expect("utf-8");
    let added = document(&["store", "add", "--name", "tree-1.0", tree_arg], 0);
    assert_fits("store-add", &added);
    let added: Value = serde_json::from_str(&added).expect("json");
    let added = added["path"].as_str().expect("path").to_owned();
    let wrapper = home.join("wrapper");
    std::fs::write(&wrapper, format!("{added}\n")).expect("write");
    let (code, referrer, stderr) = run(&[
        &["store", "add", "--scan-references", "--name", "wrapper-2.0"][..],
        &store,
        &[wrapper.to_str().expect("utf-8")],
    ]
    .concat());
    assert_eq!(code, 0, "{stderr}");
    let referrer = referrer.trim();

    assert_fits(
        "path-info",
        &document(&["path-info", "-S", "-r", referrer], 0),
    );
    assert_fits("closure", &document(&["closure", referrer], 0));
    assert_fits("store-verify", &document(&["store", "verify"], 0));
    assert_fits(
        "error",
        &document(
            &[
                "path-info",
                "/nix/store/00000000000000000000000000000000-none",
            ],
            2,
        ),
    );
    assert!(Path::new(&added).starts_with("/nix/store"));

    // A chain, and none (exit 1).
    assert_fits("why", &document(&["why", referrer, &added], 0));
    assert_fits("why", &document(&["why", &added, referrer], 1));
    assert_fits("diff", &document(&["diff", &added, referrer], 0));
    let checked = run(&[&["--json", "check", referrer][..], &store].concat());
    assert!(checked.0 == 0 || checked.0 == 1, "{}", checked.2);
    assert_fits("check", &checked.1);
    assert_fits(
        "store-root-add",
        &document(&["store", "root", "add", "kept", referrer], 0),
    );
    assert_fits("store-root-list", &document(&["store", "root", "list"], 0));
    assert_fits("gc", &document(&["gc", "--dry-run"], 0));
    assert_fits(
        "store-root-remove",
        &document(&["store", "root", "remove", "kept"], 0),
    );
    let removed = document(&["gc"], 0);
    assert_fits("gc", &removed);
    let removed: Value = serde_json::from_str(&removed).expect("json");
    assert_eq!(
        removed["removed"].as_array().map(Vec::len),
        Some(2),
        "{removed}"
    );
}

#[test]
fn what_the_nar_commands_print_fits_their_schemas() {
    let dir = tempfile::tempdir().expect("temp");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).expect("mkdir");
    std::fs::write(tree.join("a"), "a file\n").expect("write");
    let tree_arg = tree.to_str().expect("utf-8");
    let (code, hashes, stderr) = run(&["--json", "nar", "hash", tree_arg]);
    assert_eq!(code, 0, "{stderr}");
    assert_fits("nar-hash", &hashes);
    let (code, path, stderr) = run(&[
        "--json",
        "store",
        "path",
        "--store-dir",
        "/nix/store",
        tree_arg,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_fits("store-path", &path);

    let nar = crate::common::cudapkgs()
        .args(["nar", "dump", tree_arg])
        .command()
        .output()
        .expect("nar dump");
    assert!(nar.status.success(), "{nar:?}");
    let restored = dir.path().join("restored");
    let run = crate::common::cudapkgs()
        .args([
            "--json",
            "nar",
            "restore",
            restored.to_str().expect("utf-8"),
        ])
        .stdin(nar.stdout)
        .run();
    let (code, stdout, stderr) = run.into_parts();
    assert_eq!(code, 0, "{stderr}");
    assert_fits("nar-restore", &stdout);
    assert_eq!(
        std::fs::read(restored.join("a")).expect("restored"),
        b"a file\n"
    );
}

/// `cudapkgs --json ARGS`, which must exit `expected`; its stdout.
#[track_caller]
fn printed(args: &[&str], expected: i32) -> String {
    let (code, stdout, stderr) = run(&[&["--json"][..], args].concat());
    assert_eq!(code, expected, "{args:?}: {stderr}");
    stdout
}

#[test]
fn what_the_file_commands_print_fits_their_schemas() {
    let dir = tempfile::tempdir().expect("temp");
    let folder = dir.path().join("tree");
    std::fs::create_dir_all(&folder).expect("mkdir");
    let library = folder.join("libmultiarch.so");
    multiarch_without_runtime(&library);
    let library = s(&library);
    let multiarch = fixture("multiarch.so");

    let inspected = printed(
        &[
            "inspect",
            "--capabilities",
            "9.0,8.0",
            "--expect-capabilities",
            "9.0",
            s(&multiarch),
        ],
        1,
    );
    assert_fits("inspect", &inspected);
    let inspected: Value = serde_json::from_str(&inspected).expect("json");
    assert!(inspected["expectation"].is_object(), "{inspected:#}");
    assert_fits("inspect", &printed(&["inspect", s(&fixture("app"))], 0));
    assert_fits(
        "prune",
        &printed(&["prune", "--dry-run", "--capabilities", "9.0", library], 0),
    );
    assert_fits("elf", &printed(&["elf", "--resolve", library], 0));
    let copy = dir.path().join("libcopy.so");
    std::fs::copy(&multiarch, &copy).expect("copy");
    assert_fits(
        "patch",
        &printed(&["patch", "--set-runpath", "$ORIGIN", s(&copy)], 0),
    );
    let closure = printed(&["closure", s(&folder)], 0);
    assert_fits("closure-files", &closure);
    let closure: Value = serde_json::from_str(&closure).expect("json");
    assert!(!closure["files"].as_array().expect("files").is_empty());
    assert_fits("why-files", &printed(&["why", library, "libm.so.6"], 0));
    assert_fits(
        "why-files",
        &printed(&["why", library, "libnot-there.so"], 1),
    );
    // The fixture as nvcc built it needs the CUDA runtime, which is not there.
    std::fs::copy(&multiarch, folder.join("libneeds-cudart.so")).expect("copy");
    let checked = printed(&["check", s(&folder)], 1);
    assert_fits("check-files", &checked);
    let checked: Value = serde_json::from_str(&checked).expect("json");
    assert!(
        !checked["violations"]
            .as_array()
            .expect("violations")
            .is_empty()
    );
}

#[test]
fn what_the_option_commands_print_fits_their_schemas() {
    assert_fits(
        "flags",
        &printed(&["flags", "--cuda", "12.8", "--capabilities", "8.6,9.0"], 0),
    );
    assert_fits(
        "flags",
        &printed(&["flags", "--cuda", "12.8", "--host-compiler", "gcc-13"], 0),
    );
    assert_fits("gpus", &printed(&["gpus"], 0));
    assert_fits("gpus", &printed(&["gpus", "--cuda", "12.8"], 0));

    let work = tempfile::tempdir().expect("temp");
    let script = work.path().join("build.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nexport TORCH_CUDA_ARCH_LIST=\"7.0;8.0\"\nnvcc -gencode arch=compute_70,code=sm_70 k.cu\n",
    )
    .expect("write");
    let scanned = run(&[
        "--json",
        "targets",
        "scan",
        "--capabilities",
        "7.5",
        s(&script),
    ]);
    assert!(scanned.0 == 0 || scanned.0 == 1, "{}", scanned.2);
    assert_fits("targets-scan", &scanned.1);
    let scanned: Value = serde_json::from_str(&scanned.1).expect("json");
    assert!(!scanned["findings"].as_array().expect("findings").is_empty());
    assert_fits(
        "targets-rewrite",
        &printed(
            &[
                "targets",
                "rewrite",
                "--capabilities",
                "7.5,8.6",
                s(&script),
            ],
            0,
        ),
    );
}

#[test]
fn what_the_cache_commands_print_fits_their_schemas() {
    let dir = tempfile::tempdir().expect("temp");
    let (secret, public) = (dir.path().join("k.sk"), dir.path().join("k.pk"));
    let keys = printed(&["cache", "keygen", "test-1", s(&secret), s(&public)], 0);
    assert_fits("cache-keygen", &keys);
    let keys: Value = serde_json::from_str(&keys).expect("json");
    assert_eq!(
        keys["public_key"].as_str().map(str::to_owned),
        std::fs::read_to_string(&public).ok()
    );

    // `serve` prints its document once it listens, then serves until stopped.
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).expect("mkdir");
    let mut server = crate::common::cudapkgs()
        .command()
        .args(["--json", "serve", "--listen", "127.0.0.1:0", "--cache"])
        .arg(format!("file://{}", cache.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("cudapkgs serve");
    // The document ends at its closing brace, alone on a line.
    let mut document = String::new();
    let lines = std::io::BufRead::lines(std::io::BufReader::new(
        server.stdout.take().expect("stdout"),
    ));
    for line in lines.map_while(Result::ok) {
        document.push_str(&line);
        document.push('\n');
        if line == "}" {
            break;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    assert_fits("serve", &document);
    let listening: Value = serde_json::from_str(&document).expect("json");
    assert!(
        listening["url"]
            .as_str()
            .is_some_and(|url| url.starts_with("http://127.0.0.1:")),
        "{listening}"
    );
}

#[test]
fn the_version_document_fits_its_schema() {
    let (code, stdout, stderr) = run(&["--version", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_fits("version", &stdout);
}

#[test]
fn what_targets_torch_prints_fits_its_schema() {
    // PyTorch's own files, as scripts/install-targets-sources.sh downloads them.
    let from = repo().join(".tools/targets-sources/torch-2.11.0/torch");
    let have = from.join("utils/cpp_extension.py").is_file();
    if !cudapkgs_testkit::require(
        have,
        "PyTorch 2.11's sources (run scripts/install-targets-sources.sh)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp");
    let torch = dir.path().join("venv/lib/python3.12/site-packages/torch");
    std::fs::create_dir_all(torch.join("utils")).expect("mkdir");
    for file in ["version.py", "utils/cpp_extension.py"] {
        std::fs::copy(from.join(file), torch.join(file)).expect("copy");
    }
    let venv = dir.path().join("venv");
    let (code, stdout, stderr) = run(&[
        "--json",
        "targets",
        "torch",
        "--capabilities",
        "9.0,12.0f",
        s(&venv),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert_fits("targets-torch", &stdout);
    let report: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        report["installations"][0]["version"], "2.11.0",
        "{report:#}"
    );
}
