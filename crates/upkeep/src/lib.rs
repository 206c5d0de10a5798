//! Upkeep of a CUDA package set: the jobs a `[upkeep]` table asks for (package × CUDA
//! release × system × capability set), run as child `cudapkgs` commands with a log each,
//! their results in a SQLite database, the changes since each job's previous result,
//! one deduplicated issue per distinct failure, CI matrices and a dashboard.
//!
//! Nothing here reads the environment or prints: the binary passes in the executable
//! to run, the token for the issue tracker and a reporter for progress.

pub mod config;
mod error;
pub mod issues;
pub mod job;
pub mod matrix;
pub mod regress;
pub mod report;
pub mod results;
pub mod run;
pub mod shard;
pub mod signature;
pub mod steps;

pub use config::SetConfig;
pub use error::Error;
pub use job::Job;
pub use results::{JobResult, Outcome, Results};
