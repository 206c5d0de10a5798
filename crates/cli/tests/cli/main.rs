//! The binary's end-to-end tests, one module per command or concern.
//!
//! They form one test binary: each separate one would link the whole dependency tree again,
//! which costs minutes and gigabytes on every clean build.

mod common;

mod build;
mod build_offline;
mod build_prune;
mod build_records;
mod build_roots;
mod cache;
mod cache_records;
mod cache_s3;
mod check;
mod check_driver;
mod check_targets;
mod closure_html;
mod closure_trees;
mod colours;
mod elf;
mod exit_paths;
mod flags;
mod gc;
mod gpu_check;
mod hostile_archives;
mod inspect;
mod json_errors;
mod layout;
mod manual;
mod nix_store;
mod patch;

mod prune;
mod redist;
mod resolve;
mod runtime_loads;
mod schemas;
mod settings;
mod settings_matrix;
mod snapshots;
mod store;
mod store_identity;
mod targets;
mod terminal;
mod upkeep;
mod verdict_real;
