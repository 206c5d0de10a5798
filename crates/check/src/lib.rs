//! Policy checks of runtime closures: what a closure should not hold at run time (denied
//! packages, a whole CUDA toolkit, static libraries, headers, stub libraries, runpaths
//! into stub folders, libraries found nowhere, driver users that cannot find the driver,
//! device code for other GPUs than those requested or none for them), each violation
//! with the chain that pulls it in; and what a closure holds (`files`, `treemap`).

pub mod device;
pub mod driver;
mod error;
pub mod files;
mod parallel;
pub mod policy;
mod store_check;
pub mod targets;
mod tree_check;
pub mod treemap;

pub use error::Error;
pub use policy::{Policy, Rule};
pub use store_check::{Report, Violation, check_closure};
pub use tree_check::{FileReport, FileViolation, check_files};
