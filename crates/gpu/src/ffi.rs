//! Loading a shared library by path and the C functions it exports.

use std::path::{Path, PathBuf};

use crate::error::GpuError;

/// A library opened by its path, kept open while its functions are used.
#[derive(Debug)]
pub(crate) struct Library {
    pub(crate) path: PathBuf,
    pub(crate) inner: libloading::Library,
}

impl Library {
    /// Opens the file at `path` (never searched for by name).
    pub(crate) fn open(path: &Path) -> Result<Self, GpuError> {
        // SAFETY: loading runs the library's initialisers; the libraries opened here
        // are the driver and CUDA libraries the caller named to be tested.
        let inner = unsafe { libloading::Library::new(path) }.map_err(|error| GpuError::Load {
            path: path.to_owned(),
            message: error.to_string(),
        })?;
        Ok(Library {
            path: path.to_owned(),
            inner,
        })
    }

    /// The function `name`, typed as `F` by the caller's declaration.
    pub(crate) fn function<F: Copy>(&self, name: &str) -> Result<F, GpuError> {
        let mut symbol = name.as_bytes().to_vec();
        symbol.push(0);
        // SAFETY: `F` is the C signature the library's header declares for `name`; the
        // pointer stays valid while `self.inner` is open, which outlives every use.
        unsafe { self.inner.get::<F>(&symbol) }
            .map(|found| *found)
            .map_err(|_| GpuError::Symbol {
                path: self.path.clone(),
                symbol: name.to_owned(),
            })
    }
}

/// A table of a library's functions, each loaded by name when the table is made.
macro_rules! functions {
    ($table:ident { $($field:ident = $symbol:literal: fn($($arg:ty),*) -> $ret:ty;)* }) => {
        #[derive(Debug, Clone, Copy)]
        #[allow(non_snake_case, reason = "the C functions' own names")]
        struct $table {
            $($field: unsafe extern "C" fn($($arg),*) -> $ret,)*
        }

        impl $table {
            fn load(library: &crate::ffi::Library) -> Result<Self, crate::error::GpuError> {
                Ok($table {
                    $($field: library.function($symbol)?,)*
                })
            }
        }
    };
}

pub(crate) use functions;
