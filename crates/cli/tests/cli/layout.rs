//! The layout ARCHITECTURE.md describes, checked against the code: the crate graph of the
//! `Cargo.toml` files is the one its "Crate graph" table draws and breaks none of the
//! layering rules, and no command module of the binary imports another.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Crate name → the workspace crates it depends on (any kind of dependency, but the
/// testkit as a dev-dependency).
type Graph = BTreeMap<String, BTreeSet<String>>;

const BINARY: &str = "cudapkgs";

/// What the tests share: allowed as a dev-dependency of any crate, and as nothing else.
const TESTKIT: &str = "cudapkgs-testkit";

/// Crates that depend on no other crate of the workspace.
const LEAVES: [&str; 4] = [
    "cudapkgs-caps",
    "cudapkgs-nix",
    "cudapkgs-report",
    "cudapkgs-tree",
];

/// `cudapkgs-store`, the SQLite store, and the crates it may depend on: Nix's formats
/// without a database, and the progress its verification tells.
const STORE: (&str, [&str; 2]) = ("cudapkgs-store", ["cudapkgs-nix", "cudapkgs-report"]);

/// What `cudapkgs-redist`, NVIDIA's formats and downloads, must never depend on: the
/// crates above it, and the readers of ELF files and device code (what a package's files
/// hold is the builder's to read).
const NOT_UNDER_REDIST: [&str; 7] = [
    "cudapkgs-builder",
    "cudapkgs-cache",
    "cudapkgs-check",
    "cudapkgs-elf",
    "cudapkgs-fatbin",
    "cudapkgs-gpu",
    "cudapkgs-upkeep",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/cli is two folders below the workspace")
        .to_path_buf()
}

/// The workspace crates `manifest` (a `Cargo.toml`'s text) depends on, and its name.
fn edges_of(manifest: &str) -> (String, BTreeSet<String>) {
    let table: toml::Table = manifest.parse().expect("a Cargo.toml parses");
    let name = table["package"]["name"]
        .as_str()
        .expect("a package name")
        .to_owned();
    let mut edges = BTreeSet::new();
    for (kind, dependencies) in dependency_tables(&table) {
        for (key, value) in dependencies {
            let package = value
                .get("package")
                .and_then(toml::Value::as_str)
                .unwrap_or(key);
            if package == TESTKIT && kind == "dev-dependencies" {
                continue;
            }
            if package == BINARY || package.starts_with("cudapkgs-") {
                edges.insert(package.to_owned());
            }
        }
    }
    (name, edges)
}

/// Every dependency table of a manifest, with its kind: the plain ones and each target's.
fn dependency_tables(table: &toml::Table) -> Vec<(&'static str, &toml::Table)> {
    const KINDS: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];
    let targets = table
        .get("target")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flat_map(|targets| targets.values().filter_map(toml::Value::as_table));
    std::iter::once(table)
        .chain(targets)
        .flat_map(|owner| {
            KINDS.into_iter().filter_map(move |kind| {
                owner
                    .get(kind)
                    .and_then(toml::Value::as_table)
                    .map(|t| (kind, t))
            })
        })
        .collect()
}

/// The dependencies of a manifest that do not take their version and source from the
/// workspace's `[workspace.dependencies]` (`name.workspace = true`), as `kind: name`.
fn own_versions(manifest: &str) -> Vec<String> {
    let table: toml::Table = manifest.parse().expect("a Cargo.toml parses");
    let mut found = Vec::new();
    for (kind, dependencies) in dependency_tables(&table) {
        for (name, value) in dependencies {
            let inherited = value
                .get("workspace")
                .and_then(toml::Value::as_bool)
                .unwrap_or(false);
            if !inherited {
                found.push(format!("{kind}: {name}"));
            }
        }
    }
    found
}

/// The graph of every `crates/*/Cargo.toml`.
fn cargo_graph() -> Graph {
    let mut graph = Graph::new();
    let crates = workspace().join("crates");
    for entry in std::fs::read_dir(&crates).expect("crates/ is readable") {
        let manifest = entry.expect("an entry").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let (name, edges) = edges_of(&text);
        graph.insert(name, edges);
    }
    graph
}

/// The graph ARCHITECTURE.md's "Crate graph" table draws: rows of `` | `crate` | `a`,
/// `b` | `` ("nothing" for none).
fn documented_graph(architecture: &str) -> Graph {
    let section = architecture
        .split("\n### Crate graph\n")
        .nth(1)
        .expect("ARCHITECTURE.md has a `### Crate graph` section");
    let mut graph = Graph::new();
    for line in section.lines().skip_while(|line| !line.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [name, depends_on] = cells[..] else {
            panic!("a row of two cells: {line}");
        };
        let Some(name) = name.strip_prefix('`').and_then(|n| n.strip_suffix('`')) else {
            continue; // the header and its rule
        };
        let edges = depends_on
            .split(',')
            .map(str::trim)
            .filter(|cell| *cell != "nothing")
            .map(|cell| cell.trim_matches('`').to_owned())
            .collect();
        graph.insert(name.to_owned(), edges);
    }
    graph
}

/// Every edge that breaks a layering rule of ARCHITECTURE.md, as `from -> to: rule`.
fn layering_violations(graph: &Graph) -> Vec<String> {
    let mut violations = Vec::new();
    for (from, edges) in graph {
        for to in edges {
            let rule = if to == BINARY {
                Some("nothing depends on the binary")
            } else if to == TESTKIT {
                Some("the testkit is a dev-dependency only")
            } else if from == TESTKIT {
                Some("the testkit depends on no other crate of the workspace")
            } else if LEAVES.contains(&from.as_str()) {
                Some("caps, nix, report and tree depend on no other crate of the workspace")
            } else if from == STORE.0 && !STORE.1.contains(&to.as_str()) {
                Some("store depends on no crate of the workspace but nix and report")
            } else if from == "cudapkgs-redist" && NOT_UNDER_REDIST.contains(&to.as_str()) {
                Some("redist depends on none of builder, cache, check, elf, fatbin, gpu and upkeep")
            } else {
                None
            };
            if let Some(rule) = rule {
                violations.push(format!("{from} -> {to}: {rule}"));
            }
        }
    }
    violations.extend(cycles(graph));
    violations
}

/// A violation per crate that reaches itself through its dependencies.
fn cycles(graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = graph[start].iter().collect();
        while let Some(next) = todo.pop() {
            if next == start {
                found.push(format!("{start} depends on itself through others"));
                break;
            }
            if seen.insert(next) {
                todo.extend(graph.get(next).into_iter().flatten());
            }
        }
    }
    found
}

#[test]
fn the_crate_graph_is_the_one_architecture_md_draws() {
    let architecture = std::fs::read_to_string(workspace().join("ARCHITECTURE.md"))
        .expect("ARCHITECTURE.md is readable");
    let documented = documented_graph(&architecture);
    let actual = cargo_graph();
    let mut differences = Vec::new();
    for name in actual
        .keys()
        .chain(documented.keys())
        .collect::<BTreeSet<_>>()
    {
        let (real, drawn) = (actual.get(name), documented.get(name));
        match (real, drawn) {
            (Some(_), None) => differences.push(format!("{name} is not in the table")),
            (None, Some(_)) => differences.push(format!("{name} is in the table, not in crates/")),
            (Some(real), Some(drawn)) => {
                for to in real.difference(drawn) {
                    differences.push(format!("{name} -> {to} is in Cargo.toml, not in the table"));
                }
                for to in drawn.difference(real) {
                    differences.push(format!("{name} -> {to} is in the table, not in Cargo.toml"));
                }
            }
            (None, None) => unreachable!(),
        }
    }
    assert!(
        differences.is_empty(),
        "ARCHITECTURE.md's crate graph and the Cargo.toml files differ:\n{}",
        differences.join("\n")
    );
}

#[test]
fn no_crate_breaks_the_layering() {
    let graph = cargo_graph();
    assert!(graph.contains_key(BINARY) && graph.len() > 10, "{graph:?}");
    let violations = layering_violations(&graph);
    assert!(
        violations.is_empty(),
        "edges ARCHITECTURE.md forbids:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_layering_check_sees_forbidden_edges() {
    let mut graph = cargo_graph();
    assert!(layering_violations(&graph).is_empty());
    for (from, to) in [
        ("cudapkgs-store", "cudapkgs-elf"),
        ("cudapkgs-nix", "cudapkgs-store"),
        ("cudapkgs-caps", "cudapkgs-tree"),
        ("cudapkgs-redist", "cudapkgs-builder"),
        ("cudapkgs-redist", "cudapkgs-elf"),
        ("cudapkgs-redist", "cudapkgs-fatbin"),
        ("cudapkgs-upkeep", BINARY),
        ("cudapkgs-elf", "cudapkgs-check"),
        ("cudapkgs-redist", TESTKIT),
        (TESTKIT, "cudapkgs-tree"),
    ] {
        graph.get_mut(from).expect("a crate").insert(to.to_owned());
        let violations = layering_violations(&graph);
        assert!(
            violations.iter().any(|v| v.starts_with(from)),
            "{from} -> {to} passed: {violations:?}"
        );
        graph.get_mut(from).expect("a crate").remove(to);
    }
}

#[test]
fn dependencies_are_read_from_every_table() {
    let manifest = r#"
[package]
name = "cudapkgs-elf"

[dependencies]
cudapkgs-tree.workspace = true
serde = "1"

[dev-dependencies]
cudapkgs-store = { workspace = true }

[target.'cfg(unix)'.dependencies]
renamed = { package = "cudapkgs-caps", path = "../caps" }
"#;
    let (name, edges) = edges_of(manifest);
    assert_eq!(name, "cudapkgs-elf");
    assert_eq!(
        edges.into_iter().collect::<Vec<_>>(),
        ["cudapkgs-caps", "cudapkgs-store", "cudapkgs-tree"]
    );
}

#[test]
fn the_testkit_is_a_dev_dependency_only() {
    let as_dev = r#"
[package]
name = "cudapkgs-redist"

[dev-dependencies]
cudapkgs-testkit.workspace = true
"#;
    assert!(edges_of(as_dev).1.is_empty());
    for kind in [
        "dependencies",
        "build-dependencies",
        "target.'cfg(unix)'.dependencies",
    ] {
        let manifest = format!(
            "[package]\nname = \"cudapkgs-redist\"\n\n[{kind}]\ncudapkgs-testkit.workspace = true\n"
        );
        let (name, edges) = edges_of(&manifest);
        let graph = Graph::from([(name, edges), (TESTKIT.to_owned(), BTreeSet::new())]);
        assert_eq!(
            layering_violations(&graph),
            ["cudapkgs-redist -> cudapkgs-testkit: the testkit is a dev-dependency only"],
            "{kind}"
        );
    }
    // No crate has it as a normal or build dependency, and the binary's tests use it.
    let graph = cargo_graph();
    assert!(graph.contains_key(TESTKIT), "{graph:?}");
    assert!(
        graph.values().all(|edges| !edges.contains(TESTKIT)),
        "{graph:?}"
    );
    let manifest = std::fs::read_to_string(workspace().join("crates/cli/Cargo.toml"))
        .expect("the binary's Cargo.toml");
    let table: toml::Table = manifest.parse().expect("parses");
    assert!(table["dev-dependencies"].get(TESTKIT).is_some());
}

/// The Rust files below `folder`, recursively.
fn rust_files(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).expect("a readable folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The command modules: each file and folder of `commands/` but `mod.rs`.
fn command_names(commands: &Path) -> BTreeSet<String> {
    std::fs::read_dir(commands)
        .expect("commands/ is readable")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.is_dir() || path.file_name().is_some_and(|n| n != "mod.rs"))
        .map(|path| {
            path.file_stem()
                .and_then(|stem| stem.to_str())
                .expect("a plain name")
                .to_owned()
        })
        .collect()
}

/// The modules `source` names right after `super::` (`super::a::b`, `super::{a, b::c}`),
/// comments left out.
fn super_imports(source: &str) -> Vec<String> {
    let code: String = source
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut names = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("super::") {
        rest = &rest[at + "super::".len()..];
        let group = if let Some(inner) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = inner
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(inner.len(), |(i, _)| i);
            top_level_items(&inner[..end])
        } else {
            vec![rest.to_owned()]
        };
        for item in group {
            let name: String = item
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.push(name);
            }
        }
    }
    names
}

/// The items of a `use` group, split at its top-level commas.
fn top_level_items(group: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut depth = 0;
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(String::new());
                continue;
            }
            _ => {}
        }
        items.last_mut().expect("one item at least").push(c);
    }
    items
}

/// Every import of one command module by another in `files` (path and source, below
/// `commands/`), and every path through `crate::commands`.
fn command_imports(files: &[(PathBuf, String)], commands: &BTreeSet<String>) -> Vec<String> {
    let mut found = Vec::new();
    for (path, source) in files {
        let own = path
            .components()
            .next()
            .and_then(|first| Path::new(first.as_os_str()).file_stem())
            .and_then(|stem| stem.to_str())
            .unwrap_or_default();
        for name in super_imports(source) {
            if name != own && commands.contains(&name) {
                found.push(format!("{}: super::{name}", path.display()));
            }
        }
        if source.contains("crate::commands") {
            found.push(format!("{}: crate::commands", path.display()));
        }
    }
    found
}

#[test]
fn no_command_module_imports_another() {
    let commands = workspace().join("crates/cli/src/commands");
    let names = command_names(&commands);
    assert!(
        names.contains("build") && names.contains("store"),
        "{names:?}"
    );
    let files: Vec<(PathBuf, String)> = rust_files(&commands)
        .into_iter()
        .map(|path| {
            let source = std::fs::read_to_string(&path).expect("a readable file");
            let relative = path.strip_prefix(&commands).expect("below").to_path_buf();
            (relative, source)
        })
        .collect();
    let found = command_imports(&files, &names);
    assert!(
        found.is_empty(),
        "command modules import each other (shared code belongs in context.rs, progress.rs, \
         render.rs or a library):\n{}",
        found.join("\n")
    );
}

#[test]
fn plumbing_modules_import_no_command() {
    let source = workspace().join("crates/cli/src");
    for path in rust_files(&source) {
        let relative = path.strip_prefix(&source).expect("below");
        if relative.starts_with("commands")
            || ["main.rs", "cli.rs"].contains(&relative.to_str().unwrap_or_default())
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a readable file");
        assert!(
            !text.contains("crate::commands") && !text.contains("commands::"),
            "{} uses a command module",
            relative.display()
        );
    }
}

#[test]
fn the_import_check_sees_imports_between_commands() {
    let names: BTreeSet<String> = ["build", "redist", "store", "upkeep"]
        .map(str::to_owned)
        .into();
    let check = |path: &str, source: &str| {
        command_imports(&[(PathBuf::from(path), source.to_owned())], &names)
    };
    assert_eq!(
        check("build.rs", "use super::redist::{ProgressLine, failure};"),
        ["build.rs: super::redist"]
    );
    assert_eq!(
        check("build.rs", "use super::{redist::fetcher, store};"),
        ["build.rs: super::redist", "build.rs: super::store"]
    );
    assert_eq!(
        check("redist/wheel.rs", "let s = super::super::store::open();"),
        ["redist/wheel.rs: super::store"]
    );
    assert_eq!(
        check("store/mod.rs", "x => crate::commands::gc::root(c),"),
        ["store/mod.rs: crate::commands"]
    );
    assert!(check("upkeep/run.rs", "use super::{failure, set_of};").is_empty());
    assert!(check("redist/mod.rs", "mod wheel; use super::redist::x;").is_empty());
    assert!(check("store/mod.rs", "// super::build::run is not called here").is_empty());
    assert!(check("build.rs", "mod tests { use super::*; }").is_empty());
}

/// The crates from outside the workspace the binary may depend on: the command line,
/// the settings file, colours, progress bars and the width of a terminal, and the schemas
/// of its JSON documents.
/// Formats, compression and names belong to the libraries.
const BINARY_OUTSIDE_DEPENDENCIES: [&str; 11] = [
    "anstream",
    "anstyle",
    "clap",
    "clap_complete",
    "clap_mangen",
    "indicatif",
    "schemars",
    "serde",
    "serde_json",
    "terminal_size",
    "toml",
];

/// The `[dependencies]` of a manifest that are not crates of the workspace.
fn outside_dependencies(manifest: &str) -> BTreeSet<String> {
    let table: toml::Table = manifest.parse().expect("a Cargo.toml parses");
    table
        .get("dependencies")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flatten()
        .map(|(key, value)| {
            value
                .get("package")
                .and_then(toml::Value::as_str)
                .unwrap_or(key)
                .to_owned()
        })
        .filter(|package| !package.starts_with("cudapkgs-"))
        .collect()
}

#[test]
fn the_binary_depends_on_no_format_crate() {
    let manifest = std::fs::read_to_string(workspace().join("crates/cli/Cargo.toml"))
        .expect("the binary's Cargo.toml is readable");
    let outside = outside_dependencies(&manifest);
    assert!(outside.contains("clap"), "{outside:?}");
    let extra: Vec<&String> = outside
        .iter()
        .filter(|package| !BINARY_OUTSIDE_DEPENDENCIES.contains(&package.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "the binary depends on {extra:?} directly: the code that needs them belongs in a library"
    );
    let with_zstd = manifest.replacen("[dependencies]\n", "[dependencies]\nzstd = \"0.14\"\n", 1);
    assert!(outside_dependencies(&with_zstd).contains("zstd"));
}

#[test]
fn every_dependency_takes_its_version_from_the_workspace() {
    let crates = workspace().join("crates");
    let mut own = Vec::new();
    let mut manifests = 0;
    for entry in std::fs::read_dir(&crates).expect("crates/ is readable") {
        let manifest = entry.expect("an entry").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        manifests += 1;
        own.extend(
            own_versions(&text)
                .into_iter()
                .map(|d| format!("{}: {d}", manifest.display())),
        );
    }
    assert!(manifests > 10, "{manifests} manifests");
    assert!(
        own.is_empty(),
        "dependencies with a version of their own (give them one in the root \
         [workspace.dependencies] and write `name.workspace = true`):\n{}",
        own.join("\n")
    );
}

#[test]
fn the_version_check_sees_versions_of_a_members_own() {
    let manifest = r#"
[package]
name = "cudapkgs-elf"

[dependencies]
cudapkgs-tree.workspace = true
object = { workspace = true, features = ["elf"] }
memchr = "2"

[dev-dependencies]
tempfile = { version = "3" }

[target.'cfg(unix)'.build-dependencies]
cc = { path = "../cc" }
"#;
    assert_eq!(
        own_versions(manifest),
        [
            "dependencies: memchr",
            "dev-dependencies: tempfile",
            "build-dependencies: cc"
        ]
    );
}
