//! The builder through its library API, on NVIDIA's real CUDA runtime wheel: outputs in
//! the store that verify, the same paths from a second build and from a rebuild, and the
//! record that lets a second build skip the work.

use cudapkgs_builder::prepare::Input;
use cudapkgs_builder::realise::{Options, build};
use cudapkgs_report::{Phase, Recorder, Silent};
use cudapkgs_store::store::Store;

fn options(rebuild: bool) -> Options {
    Options {
        driver_dir: "/run/opengl-driver/lib".to_owned(),
        gpus: Vec::new(),
        strict_targets: false,
        jobs: 2,
        gc_roots: false,
        rebuild,
        prune: None,
    }
}

#[test]
fn a_real_wheel_builds_into_outputs_that_verify_and_build_again_to_the_same_paths() {
    let Some(wheel) = cudapkgs_testkit::mirror::wheel("nvidia_cuda_runtime-13.") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp");
    let store_dir = dir.path().join("store");
    let mut store = Store::open(
        store_dir.to_str().expect("utf-8"),
        None,
        &dir.path().join("state"),
    )
    .expect("store");
    let inputs = [Input {
        package: "cuda_cudart".to_owned(),
        version: "13.0.96".to_owned(),
        archive: wheel,
        sha256: None,
        licence: None,
    }];

    let told = Recorder::default();
    let first = build(&mut store, &inputs, &options(false), &told).expect("built");
    assert_eq!(first.len(), 1);
    let built = &first[0];
    assert!(!built.reused);
    // Each phase of the package was told, in order, and ended; adding counted every
    // output it added, `out` included.
    let tasks = told.tasks();
    let phases: Vec<Phase> = tasks.iter().map(|task| task.phase).collect();
    assert_eq!(
        phases,
        [Phase::Unpack, Phase::Split, Phase::Add],
        "{tasks:?}"
    );
    assert!(
        tasks
            .iter()
            .all(|task| task.finished && task.label == "cuda_cudart")
    );
    let files_read = tasks[1].done;
    assert!(files_read >= 2, "the wheel's files were counted: {tasks:?}");
    let outputs = built.outputs.len() as u64;
    assert_eq!((tasks[2].done, tasks[2].total), (outputs, Some(outputs)));
    assert_eq!(
        built.outputs.last().map(|(name, _)| name.as_str()),
        Some("out")
    );
    let lib = built.output("lib").expect("a lib output");
    assert!(
        std::path::Path::new(lib)
            .join("lib/libcudart.so.13")
            .is_file(),
        "{lib}"
    );
    let verifying = Recorder::default();
    let verified = store.verify(false, &verifying).expect("verify");
    let checked = verified.checked as u64;
    let verify_task = &verifying.tasks()[0];
    assert_eq!(
        (verify_task.phase, verify_task.done, verify_task.total),
        (Phase::Verify, checked, Some(checked))
    );
    assert!(verified.problems.is_empty(), "{:?}", verified.problems);
    assert_eq!(verified.checked, built.outputs.len());

    // The record answers a second build of the same inputs; a rebuild makes the same
    // paths from scratch.
    let recalled = Recorder::default();
    let again = build(&mut store, &inputs, &options(false), &recalled).expect("built again");
    assert!(again[0].reused);
    assert_eq!(
        recalled.tasks(),
        [],
        "a recalled build does no work to tell"
    );
    assert_eq!(again[0].outputs, built.outputs);
    let rebuilt = build(&mut store, &inputs, &options(true), &Silent).expect("rebuilt");
    assert!(!rebuilt[0].reused);
    assert_eq!(rebuilt[0].outputs, built.outputs);
}
