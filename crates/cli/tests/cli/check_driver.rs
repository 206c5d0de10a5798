//! The driver rule of `cudapkgs check`: every file that uses the NVIDIA driver (needs
//! `libcuda.so.1`, or names it for `dlopen`) can find the driver's folder. In a store,
//! its runpath names the folder (NixOS's by default, `--driver-dir` or the policy file's
//! otherwise); in a folder, the loader's search reaches a `libcuda.so.1`, tested inside a
//! container root so that this machine's own folders play no part. The libraries are
//! built here with gcc, the driver a stand-in with the driver's soname.

use crate::common;

use std::path::Path;

use common::{PrivateStore, compile, run, s};

/// Builds, in `folder`, the stand-in `driver/libcuda.so.1` (and its link-time name), and
/// two libraries that use it: `libneeds.so` needs it with `runpath`, `libopens.so` loads
/// it by name with `opens_runpath`.
fn driver_users(gcc: &Path, folder: &Path, runpath: &str, opens_runpath: &str) {
    std::fs::create_dir_all(folder.join("driver")).expect("mkdir");
    std::fs::create_dir_all(folder.join("lib")).expect("mkdir");
    compile(
        gcc,
        folder,
        "driver.c",
        "int cuInit(unsigned flags){return (int)flags;}",
        &[
            "-shared",
            "-fPIC",
            "-Wl,-soname,libcuda.so.1",
            "-o",
            "driver/libcuda.so.1",
        ],
    );
    let _ = std::fs::remove_file(folder.join("driver/libcuda.so"));
    std::os::unix::fs::symlink("libcuda.so.1", folder.join("driver/libcuda.so")).expect("link");
    compile(
        gcc,
        folder,
        "needs.c",
        "int cuInit(unsigned); int start(void){return cuInit(0);}",
        &[
            "-shared",
            "-fPIC",
            "-Wl,--no-as-needed",
            "-o",
            "lib/libneeds.so",
            "-Ldriver",
            "-lcuda",
            &format!("-Wl,-rpath,{runpath}"),
            "-Wl,--enable-new-dtags",
        ],
    );
    compile(
        gcc,
        folder,
        "opens.c",
        "#include <dlfcn.h>\nvoid *open_driver(void){return dlopen(\"libcuda.so.1\", RTLD_NOW);}",
        &[
            "-shared",
            "-fPIC",
            "-o",
            "lib/libopens.so",
            &format!("-Wl,-rpath,{opens_runpath}"),
            "-Wl,--enable-new-dtags",
        ],
    );
}

/// (rule, file name, detail) of each violation, sorted.
fn violations(stdout: &str) -> Vec<(String, String, String)> {
    let report: serde_json::Value = serde_json::from_str(stdout).expect("json");
    let mut found: Vec<(String, String, String)> = report["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| {
            let file = v["file"].as_str().expect("file");
            (
                v["rule"].as_str().expect("rule").to_owned(),
                file.rsplit('/').next().unwrap_or(file).to_owned(),
                v["detail"].as_str().expect("detail").to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

fn driver(file: &str, folder: &str) -> (String, String, String) {
    ("driver".to_owned(), file.to_owned(), folder.to_owned())
}

#[test]
fn a_store_path_that_uses_the_driver_names_its_folder() {
    let Some(gcc) = common::gcc() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let package = dir.path().join("demo");
    driver_users(
        &gcc,
        &package,
        "/opt/driver",
        "$ORIGIN:/run/opengl-driver/lib",
    );
    // The stand-in driver is no part of a package.
    std::fs::remove_dir_all(package.join("driver")).expect("rm");
    let store = PrivateStore::under(dir.path());
    let path = store.add(&package);

    // NixOS's folder by default: the library that needs the driver names another.
    let (code, stdout, stderr) = store.run(&["check", &path]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(
        violations(&stdout),
        [driver("libneeds.so", "/run/opengl-driver/lib")]
    );
    // Named otherwise, the other library is the one that cannot find it.
    let (code, stdout, _) = store.run(&["check", &path, "--driver-dir", "/opt/driver"]);
    assert_eq!(code, 1);
    assert_eq!(violations(&stdout), [driver("libopens.so", "/opt/driver")]);
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "driver-dir = \"/opt/driver\"\n").expect("write");
    let (code, stdout, _) = store.run(&["check", &path, "--policy", s(&policy)]);
    assert_eq!(code, 1);
    assert_eq!(violations(&stdout), [driver("libopens.so", "/opt/driver")]);
    let (code, stdout, _) = store.run(&["check", &path, "--allow", "driver"]);
    assert_eq!(code, 0, "{stdout}");
    let (code, _, stderr) = store.run(&["check", &path, "--driver-dir", "relative/lib"]);
    common::assert_refused(code, &stderr, "not absolute");
}

#[test]
fn a_folder_in_a_container_root_finds_the_driver_only_through_the_roots_own_folders() {
    let Some(gcc) = common::gcc() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("rootfs");
    for folder in [
        "etc/ld.so.conf.d",
        "usr/lib",
        "usr/local/nvidia/lib64",
        "opt/app",
    ] {
        std::fs::create_dir_all(root.join(folder)).expect("mkdir");
    }
    std::fs::write(
        root.join("etc/ld.so.conf"),
        "include /etc/ld.so.conf.d/*.conf\n",
    )
    .expect("write");
    // The libraries need the C library (and it the loader), which the root must have.
    for (from, name) in [
        ("/lib/x86_64-linux-gnu/libc.so.6", "libc.so.6"),
        ("/lib64/ld-linux-x86-64.so.2", "ld-linux-x86-64.so.2"),
    ] {
        std::fs::copy(from, root.join("usr/lib").join(name)).expect("copy the C library");
    }
    let app = root.join("opt/app");
    driver_users(&gcc, &app, "$ORIGIN", "$ORIGIN");
    // A program of the root that loads both: a root's closure starts at its programs.
    std::fs::create_dir(app.join("bin")).expect("mkdir");
    compile(
        &gcc,
        &app,
        "prog.c",
        "int start(void); void *open_driver(void); int main(void){open_driver(); return start();}",
        &[
            "-o",
            "bin/prog",
            "-Llib",
            "-lneeds",
            "-lopens",
            "-Wl,-rpath-link,driver",
            "-Wl,-rpath,$ORIGIN/../lib",
            "-Wl,--enable-new-dtags",
        ],
    );
    // The driver is not installed in the root: only the tree has the stand-in, where no
    // search looks.
    let check = |args: &[&str]| {
        let mut all = vec!["--json", "check"];
        all.extend_from_slice(args);
        run(&all)
    };
    let (code, stdout, stderr) = check(&[s(&root)]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("file system root"), "{stderr}");
    let none = "/run/opengl-driver/lib";
    assert_eq!(
        violations(&stdout),
        [driver("libneeds.so", none), driver("libopens.so", none)]
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert!(
        report["violations"][0]["start"]
            .as_str()
            .is_some_and(|start| start.ends_with("opt/app/bin/prog")),
        "{report}"
    );

    // The driver where the root's ld.so.conf.d says (as container runtimes put it).
    std::fs::write(
        root.join("etc/ld.so.conf.d/nvidia.conf"),
        "/usr/local/nvidia/lib64\n",
    )
    .expect("write");
    std::fs::copy(
        app.join("driver/libcuda.so.1"),
        root.join("usr/local/nvidia/lib64/libcuda.so.1"),
    )
    .expect("copy");
    let (code, stdout, stderr) = check(&[s(&root)]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    // The same folder named, not the whole root: the root is still the root's.
    let (code, stdout, stderr) = check(&[s(&app), "--root-fs", s(&root)]);
    assert_eq!(code, 0, "{stdout}{stderr}");

    // Not listed any more, but linked from a system folder by an absolute link, which
    // leads inside the root (on this machine the link's target does not exist).
    std::fs::remove_file(root.join("etc/ld.so.conf.d/nvidia.conf")).expect("rm");
    std::os::unix::fs::symlink(
        "/usr/local/nvidia/lib64/libcuda.so.1",
        root.join("usr/lib/libcuda.so.1"),
    )
    .expect("link");
    if Path::new("/usr/local/nvidia/lib64/libcuda.so.1").exists() {
        eprintln!("this machine has the link's target itself: the link test proves less");
    }
    let (code, stdout, stderr) = check(&[s(&root)]);
    assert_eq!(code, 0, "{stdout}{stderr}");

    let (code, _, stderr) = check(&[s(&app), "--root-fs", s(&dir.path().join("elsewhere"))]);
    common::assert_refused(code, &stderr, "no such folder");
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    let (code, _, stderr) = check(&[s(&outside), "--root-fs", s(&root)]);
    common::assert_refused(code, &stderr, "not inside the file system root");
}
