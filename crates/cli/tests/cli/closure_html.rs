//! `cudapkgs closure --html`: the treemap page of a small closure (a library path holding
//! nvcc-built fixtures with device code, and an application path that refers to it),
//! loaded in headless Chromium: no console message, one shape per store path, file and
//! architecture with its label, the totals, markup in file names shown as text, and the
//! same shapes in the page's own markup (for scripts off); the same for a folder's closure
//! (a site-packages with one distribution whose module loads an nvcc-built library),
//! drawn by distribution. Also how the page is written: replaced whole, a folder refused,
//! a missing folder named.

use crate::common;

use std::path::Path;

use common::chromium::{chromium, load};
use common::{fixture, run, s};

/// A file name with markup in it, which the page must show as text.
const ODD_NAME: &str = "x<b>&y.txt";

/// Runs cudapkgs with `args` on the store in `dir`.
fn at(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let store = dir.join("store");
    let state = dir.join("state");
    let mut all = args.to_vec();
    all.extend(["--store-dir", s(&store), "--state-dir", s(&state)]);
    run(&all)
}

/// Adds a library path (two fixtures with device code and a file with markup in its
/// name) and an application path that refers to it; returns the application's path.
fn small_closure(dir: &Path) -> String {
    let lib = dir.join("demo-lib");
    std::fs::create_dir_all(lib.join("lib")).expect("mkdir");
    std::fs::create_dir_all(lib.join("share")).expect("mkdir");
    for name in ["multiarch.so", "libscale_i.so"] {
        std::fs::copy(fixture(name), lib.join("lib").join(name)).expect("copy");
    }
    std::fs::write(lib.join("share").join(ODD_NAME), b"notes").expect("write");
    let (code, lib_path, stderr) = at(dir, &["store", "add", s(&lib)]);
    assert_eq!(code, 0, "{stderr}");
    let app = dir.join("demo-app");
    std::fs::create_dir_all(app.join("bin")).expect("mkdir");
    std::fs::write(app.join("bin/run"), format!("exec {}\n", lib_path.trim())).expect("write");
    let (code, app_path, stderr) = at(dir, &["store", "add", "--scan-references", s(&app)]);
    assert_eq!(code, 0, "{stderr}");
    app_path.trim().to_owned()
}

/// The shapes of one kind in a DOM, as (name, label) pairs.
fn shapes(dom: &str, kind: &str) -> Vec<(String, String)> {
    let marker = format!("class=\"shape\" data-kind=\"{kind}\" data-name=\"");
    let mut found: Vec<(String, String)> = dom
        .split(&marker)
        .skip(1)
        .map(|rest| {
            let name = rest.split('"').next().expect("name").to_owned();
            let label = rest
                .split("<span class=\"label\">")
                .nth(1)
                .and_then(|label| label.split("</span>").next())
                .expect("label")
                .to_owned();
            (name, label)
        })
        .collect();
    found.sort();
    found
}

/// The labels of the shapes of `kind`, in the page's order.
fn shape_labels(dom: &str, kind: &str) -> Vec<String> {
    shapes(dom, kind)
        .into_iter()
        .map(|(_, label)| label)
        .collect()
}

/// The text of the page's totals line.
fn totals(dom: &str) -> &str {
    dom.split("<p id=\"totals\">")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .expect("totals")
}

#[test]
fn the_treemap_page_shows_paths_files_and_architectures_in_a_browser() {
    let Some(browser) = chromium() else { return };
    // The console check below must be able to fail: a page with a script error.
    let dir = tempfile::tempdir().expect("temp");
    let broken = dir.path().join("broken.html");
    std::fs::write(&broken, "<!DOCTYPE html><script>noSuchFunction();</script>").expect("write");
    let (_, console) = load(&browser, &broken);
    assert!(
        console.iter().any(|line| line.contains("noSuchFunction")),
        "chromium no longer logs console errors as `:CONSOLE`: {console:?}"
    );

    let app = small_closure(dir.path());
    let page = dir.path().join("closure.html");
    let (code, stdout, stderr) = at(dir.path(), &["--json", "closure", "--html", s(&page), &app]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(report["html"], s(&page));
    assert_eq!(common::closure_paths(&report).len(), 2);
    let total = report["total_nar_size"].as_u64().expect("total");
    let html = std::fs::read_to_string(&page).expect("the page");
    assert!(!html.contains("://"), "the page names no other resource");

    let (dom, console) = load(&browser, &page);
    assert_eq!(console, Vec::<String>::new(), "console messages");
    let paths = shapes(&dom, "path");
    let mut labels: Vec<&str> = paths.iter().map(|(_, label)| label.as_str()).collect();
    labels.sort_unstable();
    assert_eq!(labels, ["demo-app", "demo-lib"], "{dom}");
    let files: Vec<String> = shape_labels(&dom, "file");
    assert_eq!(
        files,
        [
            "bin/run",
            "lib/libscale_i.so",
            "lib/multiarch.so",
            "share/x&lt;b&gt;&amp;y.txt"
        ],
        "{dom}"
    );
    assert!(!dom.contains("<b>"), "markup in a name became an element");
    let architectures: Vec<String> = shape_labels(&dom, "arch");
    assert_eq!(architectures, ["compute_86", "sm_75", "sm_80", "sm_86"]);
    let totals = totals(&dom);
    assert!(
        totals.contains(&format!(
            "({total} bytes) in 2 store paths and 4 files; device code"
        )),
        "{totals}"
    );
    // The script ran: hover details moved from titles to the hover box's attribute.
    assert!(dom.contains("data-tip=\"sm_80"), "{dom}");
    assert!(!dom.contains(" title=\""), "{dom}");

    // The page's own markup holds every shape, with its details as a title, so it
    // reads the same with scripts off (Chromium dumps no DOM without them).
    for kind in ["path", "file", "arch", "other"] {
        assert_eq!(shapes(&html, kind), shapes(&dom, kind), "{kind}");
    }
    assert!(html.contains("title=\"sm_80"), "{html}");
}

#[test]
fn the_page_is_written_whole_and_a_folder_is_refused() {
    let dir = tempfile::tempdir().expect("temp");
    let app = small_closure(dir.path());
    let page = dir.path().join("closure.html");
    std::fs::write(&page, "an older page").expect("write");
    let (code, stdout, stderr) = at(dir.path(), &["closure", "--html", s(&page), &app]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("total, 2 paths"), "{stdout}");
    assert!(stderr.contains("treemap written to"), "{stderr}");
    let html = std::fs::read_to_string(&page).expect("the page");
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
    let entries = |folder: &Path| std::fs::read_dir(folder).expect("dir").count();
    let before = entries(dir.path());

    let folder = dir.path().join("pages");
    std::fs::create_dir(&folder).expect("mkdir");
    let (code, stdout, _) = at(
        dir.path(),
        &["--json", "closure", "--html", s(&folder), &app],
    );
    assert_eq!(code, 2);
    let error: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    let message = error["error"]["message"].as_str().expect("error");
    assert!(message.contains("a folder"), "{message}");
    assert_eq!(entries(&folder), 0);

    let missing = dir.path().join("no/such/folder/closure.html");
    let (code, _, stderr) = at(dir.path(), &["closure", "--html", s(&missing), &app]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot write the treemap to") && stderr.contains("create its folder"),
        "{stderr}"
    );
    assert_eq!(
        entries(dir.path()),
        before + 1,
        "only the folder made above"
    );
}

#[test]
fn a_page_is_never_written_inside_the_store() {
    let dir = tempfile::tempdir().expect("temp");
    let app = small_closure(dir.path());
    let folder = Path::new(&app).parent().expect("store folder").to_owned();
    for page in [
        Path::new(&app).join("closure.html"),
        folder.join(".cudapkgs-store"),
    ] {
        let before = std::fs::read(&page).ok();
        let (code, _, stderr) = at(dir.path(), &["closure", "--html", s(&page), &app]);
        assert_eq!(code, 2, "{}: {stderr}", page.display());
        assert!(stderr.contains("inside the store folder"), "{stderr}");
        assert_eq!(std::fs::read(&page).ok(), before, "{}", page.display());
    }
}

#[test]
fn the_treemap_of_a_folder_shows_distributions_files_and_architectures_in_a_browser() {
    let Some(browser) = chromium() else { return };
    let Some(gcc) = common::gcc() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let site = dir.path().join("site-packages");
    let package = site.join("demo");
    std::fs::create_dir_all(package.join("lib")).expect("mkdir");
    // An nvcc-built library that needs no CUDA runtime here, and a Python module of the
    // distribution that loads it.
    let lib = package.join("lib/libmultiarch.so");
    common::multiarch_without_runtime(&lib);
    common::compile(
        &gcc,
        &package,
        "ext.c",
        "int ext(void){return 0;}",
        &[
            "-shared",
            "-fPIC",
            "-o",
            "_ext.cpython-311-x86_64-linux-gnu.so",
            "-Wl,--no-as-needed",
            "-Llib",
            "-lmultiarch",
            "-Wl,--allow-shlib-undefined",
            "-Wl,-rpath,$ORIGIN/lib",
        ],
    );
    let dist_info = site.join("demo-1.0.dist-info");
    std::fs::create_dir(&dist_info).expect("mkdir");
    std::fs::write(
        dist_info.join("RECORD"),
        "demo/_ext.cpython-311-x86_64-linux-gnu.so,,\ndemo/lib/libmultiarch.so,,\ndemo-1.0.dist-info/RECORD,,\n",
    )
    .expect("write");

    let page = dir.path().join("closure.html");
    let (code, stdout, stderr) = run(&["--json", "closure", "--html", s(&page), s(&site)]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(report["html"], s(&page));
    let files = report["files"].as_array().expect("files").len();
    let total = report["total_bytes"].as_u64().expect("total");

    let (dom, console) = load(&browser, &page);
    assert_eq!(console, Vec::<String>::new(), "console messages");
    let groups: Vec<String> = shape_labels(&dom, "distribution");
    assert_eq!(groups, ["(no distribution)", "demo"], "{dom}");
    let names: Vec<String> = shape_labels(&dom, "file");
    for ours in [
        "demo/_ext.cpython-311-x86_64-linux-gnu.so",
        "demo/lib/libmultiarch.so",
    ] {
        assert!(names.iter().any(|name| name == ours), "{ours}: {names:?}");
    }
    // The C library and the others it loads are drawn by their own paths.
    assert!(
        names.iter().any(|name| name.ends_with("/libc.so.6")),
        "{names:?}"
    );
    assert_eq!(names.len(), files, "one shape per file of the closure");
    let architectures: Vec<String> = shape_labels(&dom, "arch");
    assert_eq!(architectures, ["compute_86", "sm_75", "sm_86"]);
    let totals = totals(&dom);
    assert!(
        totals.contains(&format!(
            "({total} bytes) in 2 distributions and {files} files; device code"
        )),
        "{totals}"
    );
    let html = std::fs::read_to_string(&page).expect("the page");
    for kind in ["distribution", "file", "arch", "other"] {
        assert_eq!(shapes(&html, kind), shapes(&dom, kind), "{kind}");
    }
}
