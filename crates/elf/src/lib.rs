//! The dynamic-linking view of ELF files: class, machine, type, interpreter, SONAME,
//! `DT_NEEDED`, `DT_RPATH` and `DT_RUNPATH` (`dynamic`), and resolution of needed
//! libraries the way the dynamic loader does it, with driver libraries and stub folders
//! told apart (`resolve`); the libraries a file may load at run time, read from its bytes
//! (`loads`); rewriting of runpaths, needed libraries and sonames as a
//! plan of positional writes (`patch`) applied atomically to a file (`write`).

pub mod auto;
mod dynamic;
mod error;
mod layout;
pub mod loads;
pub mod patch;
pub mod resolve;
pub mod write;

pub use dynamic::{Class, DynamicInfo, ElfKind, class_and_machine, machine_name, read_dynamic};
pub use error::Error;
