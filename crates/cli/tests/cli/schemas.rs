//! The JSON Schemas under docs/schema/ are what the binary generates from its types, and
//! the documents the commands really print satisfy them, with no key the schema does not
//! name.

use std::path::Path;

use serde_json::Value;

use crate::common::{repo, run};

fn documents() -> Vec<String> {
    let (code, stdout, stderr) = run(&["schema"]);
    assert_eq!(code, 0, "{stderr}");
    stdout.lines().map(str::to_owned).collect()
}

fn schema(name: &str) -> Value {
    let (code, stdout, stderr) = run(&["schema", name]);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("a schema is JSON")
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

/// Every problem of `value` against `schema` (the subset schemars writes: `type`,
/// `properties`, `required`, `items`, `$ref` into `$defs`, `minimum`); a key the schema
/// does not name is a problem too.
fn problems(value: &Value, schema: &Value, root: &Value, at: &str, found: &mut Vec<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.strip_prefix("#/$defs/").expect("a local $ref");
        return problems(value, &root["$defs"][name], root, at, found);
    }
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let fits = allowed.is_empty()
        || allowed.contains(&kind)
        || (kind == "integer" && allowed.contains(&"number"));
    if !fits {
        found.push(format!("{at}: {kind}, not {allowed:?}"));
        return;
    }
    if let (Some(minimum), Some(number)) = (schema["minimum"].as_f64(), value.as_f64()) {
        if number < minimum {
            found.push(format!("{at}: {number} < {minimum}"));
        }
    }
    match value {
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                problems(
                    item,
                    &schema["items"],
                    root,
                    &format!("{at}[{index}]"),
                    found,
                );
            }
        }
        Value::Object(object) => {
            let properties = schema["properties"].as_object();
            for required in schema["required"].as_array().into_iter().flatten() {
                let key = required.as_str().expect("a key");
                if !object.contains_key(key) {
                    found.push(format!("{at}: no `{key}`"));
                }
            }
            for (key, item) in object {
                match properties.and_then(|properties| properties.get(key)) {
                    Some(property) => problems(item, property, root, &format!("{at}.{key}"), found),
                    None => found.push(format!("{at}: `{key}` is not in the schema")),
                }
            }
        }
        _ => {}
    }
}

fn assert_fits(name: &str, document: &str) {
    let schema = schema(name);
    let value: Value = serde_json::from_str(document).expect("one JSON document");
    let mut found = Vec::new();
    problems(&value, &schema, &schema, name, &mut found);
    assert!(found.is_empty(), "{name}: {found:#?}\n{value:#}");
}

#[test]
fn the_checker_finds_what_does_not_fit() {
    let schema = schema("store-verify");
    let mut found = Vec::new();
    let wrong = serde_json::json!({"valid_paths": -1, "problems": [3], "extra": true});
    problems(&wrong, &schema, &schema, "doc", &mut found);
    assert_eq!(found.len(), 3, "{found:?}");
    found.clear();
    problems(&serde_json::json!({}), &schema, &schema, "doc", &mut found);
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn what_the_commands_print_fits_their_schemas() {
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
    let (code, added, stderr) = run(&[
        &["store", "add"][..],
        &store,
        &[tree.to_str().expect("utf-8")],
    ]
    .concat());
    assert_eq!(code, 0, "{stderr}");
    let added = added.trim();
    let wrapper = home.join("wrapper");
    std::fs::write(&wrapper, format!("{added}\n")).expect("write");
    let (code, referrer, stderr) = run(&[
        &["store", "add", "--scan-references"][..],
        &store,
        &[wrapper.to_str().expect("utf-8")],
    ]
    .concat());
    assert_eq!(code, 0, "{stderr}");
    let referrer = referrer.trim();

    let document = |args: &[&str], expected: i32| {
        let (code, stdout, stderr) = run(&[&["--json"][..], args, &store].concat());
        assert_eq!(code, expected, "{args:?}: {stderr}");
        stdout
    };
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
    assert!(Path::new(added).starts_with("/nix/store"));
}
