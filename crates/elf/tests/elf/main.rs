//! The crate's integration tests, one module per concern, in one test binary (each binary
//! of its own would be linked again on every clean build).

mod functional;
mod loads;
mod readelf;
mod rewrite;
