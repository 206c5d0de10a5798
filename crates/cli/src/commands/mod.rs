//! One module per subcommand: arguments in, library calls, rendering out.

pub mod build;
pub mod cache;
pub mod check;
pub mod diff;
pub mod elf;
pub mod features;
pub mod flags;
pub mod gc;
pub mod gpu_check;
pub mod gpus;
pub mod inspect;
pub mod manual;
pub mod patch;
pub mod prune;
pub mod redist;
pub mod schema;
pub mod store;
pub mod targets;
pub mod upkeep;
