//! The local NVIDIA driver and GPUs: where the driver is, what devices it sees, what
//! it does with device code, and smoke tests of CUDA libraries on a real GPU.
//!
//! This is the one crate that calls C: the driver and the libraries under test are
//! loaded at run time from the paths given (never found by name through the process's
//! search path, which could pick a stub), and each call's signature is the one NVIDIA's
//! header declares. The rest of cudapkgs forbids `unsafe`.

#![allow(
    unsafe_code,
    reason = "the driver and CUDA libraries are C libraries loaded at run time"
)]

mod error;
mod ffi;

pub mod check;
pub mod child;
pub mod driver;
pub mod ldcache;
pub mod locate;
pub mod probe;
pub mod smoke;

pub use driver::{Context, Device, Driver, DriverCuda, DriverReport};
pub use error::GpuError;
pub use locate::{DriverSearch, FoundDriver};
