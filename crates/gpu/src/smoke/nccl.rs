//! NCCL: an all-reduce over one rank, which copies its input.

use std::ffi::{c_int, c_void};
use std::path::Path;

use super::{agree, numbers, status};
use crate::driver::Context;
use crate::error::GpuError;
use crate::ffi::{Library, functions};

const FLOAT32: c_int = 7;
const SUM: c_int = 0;

functions!(Nccl {
    init_all = "ncclCommInitAll": fn(*mut *mut c_void, c_int, *const c_int) -> c_int;
    destroy = "ncclCommDestroy": fn(*mut c_void) -> c_int;
    all_reduce = "ncclAllReduce": fn(
        *const c_void, *mut c_void, usize, c_int, c_int, *mut c_void, *mut c_void
    ) -> c_int;
    version = "ncclGetVersion": fn(*mut c_int) -> c_int;
});

pub(super) fn all_reduce(context: &Context<'_>, path: &Path) -> Result<String, GpuError> {
    let library = Library::open(path)?;
    let api = Nccl::load(&library)?;
    let values = numbers(4096, 6);
    let send = context.upload(&values)?;
    let receive = context.alloc(values.len() * 4)?;
    let devices = [context.ordinal()];
    let mut comm: *mut c_void = std::ptr::null_mut();
    let mut version = 0;
    let check = |call, code| status("NCCL", call, code);
    // SAFETY: nccl.h's signatures; one communicator for one device, destroyed before
    // returning; the buffers hold `values.len()` floats; the default stream.
    unsafe {
        check("ncclGetVersion", (api.version)(&raw mut version))?;
        check(
            "ncclCommInitAll",
            (api.init_all)(&raw mut comm, 1, devices.as_ptr()),
        )?;
        let reduced = (api.all_reduce)(
            send.address(),
            receive.address(),
            values.len(),
            FLOAT32,
            SUM,
            comm,
            std::ptr::null_mut(),
        );
        let synchronized = context.synchronize();
        (api.destroy)(comm);
        check("ncclAllReduce", reduced)?;
        synchronized?;
    }
    let mut result = vec![0.0f32; values.len()];
    receive.read(&mut result)?;
    let checked = agree(
        "a one-rank all-reduce of 4,096 numbers",
        &result,
        &values,
        0.0,
    )?;
    // NCCL 2.9 and later encode X.Y.Z as X·10000 + Y·100 + Z, older ones as X·1000 +
    // Y·100 + Z.
    let (major, rest) = if version >= 10000 {
        (version / 10000, version % 10000)
    } else {
        (version / 1000, version % 1000)
    };
    Ok(format!(
        "NCCL {major}.{}.{}: {checked}",
        rest / 100,
        rest % 100
    ))
}
