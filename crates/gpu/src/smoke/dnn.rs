//! cuDNN: a convolution forward through the legacy API, which `libcudnn.so.9` serves
//! by loading its sub-libraries at run time (`libcudnn_cnn`, `libcudnn_ops`, the
//! engines), so the test also proves those are found.

use std::ffi::{c_int, c_void};
use std::path::Path;

use super::{agree, int, numbers, status};
use crate::driver::Context;
use crate::error::GpuError;
use crate::ffi::{Library, functions};

const NCHW: c_int = 0;
const FLOAT: c_int = 0;
const CROSS_CORRELATION: c_int = 1;
const IMPLICIT_GEMM: c_int = 0;
/// Plain FMA arithmetic: a TF32 tensor-core path (allowed by default on newer GPUs)
/// would not meet the CPU's answer to 1e-4.
const FMA_MATH: c_int = 3;

functions!(Cudnn {
    create = "cudnnCreate": fn(*mut *mut c_void) -> c_int;
    destroy = "cudnnDestroy": fn(*mut c_void) -> c_int;
    tensor_create = "cudnnCreateTensorDescriptor": fn(*mut *mut c_void) -> c_int;
    tensor_set = "cudnnSetTensor4dDescriptor": fn(*mut c_void, c_int, c_int, c_int, c_int, c_int, c_int) -> c_int;
    tensor_destroy = "cudnnDestroyTensorDescriptor": fn(*mut c_void) -> c_int;
    filter_create = "cudnnCreateFilterDescriptor": fn(*mut *mut c_void) -> c_int;
    filter_set = "cudnnSetFilter4dDescriptor": fn(*mut c_void, c_int, c_int, c_int, c_int, c_int, c_int) -> c_int;
    filter_destroy = "cudnnDestroyFilterDescriptor": fn(*mut c_void) -> c_int;
    conv_create = "cudnnCreateConvolutionDescriptor": fn(*mut *mut c_void) -> c_int;
    conv_set = "cudnnSetConvolution2dDescriptor": fn(*mut c_void, c_int, c_int, c_int, c_int, c_int, c_int, c_int, c_int) -> c_int;
    conv_destroy = "cudnnDestroyConvolutionDescriptor": fn(*mut c_void) -> c_int;
    conv_math = "cudnnSetConvolutionMathType": fn(*mut c_void, c_int) -> c_int;
    workspace_size = "cudnnGetConvolutionForwardWorkspaceSize": fn(
        *mut c_void, *mut c_void, *mut c_void, *mut c_void, *mut c_void, c_int, *mut usize
    ) -> c_int;
    forward = "cudnnConvolutionForward": fn(
        *mut c_void, *const c_void, *mut c_void, *const c_void, *mut c_void, *const c_void,
        *mut c_void, c_int, *mut c_void, usize, *const c_void, *mut c_void, *mut c_void
    ) -> c_int;
});

/// Input 1×C×H×W, K filters of C×R×R, no padding, stride 1.
const C: usize = 3;
const H: usize = 9;
const W: usize = 8;
const K: usize = 4;
const R: usize = 3;
const OUT_H: usize = H - R + 1;
const OUT_W: usize = W - R + 1;

fn convolve(input: &[f32], filters: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; K * OUT_H * OUT_W];
    for k in 0..K {
        for y in 0..OUT_H {
            for x in 0..OUT_W {
                let mut sum = 0.0;
                for c in 0..C {
                    for dy in 0..R {
                        for dx in 0..R {
                            sum += input[(c * H + y + dy) * W + x + dx]
                                * filters[((k * C + c) * R + dy) * R + dx];
                        }
                    }
                }
                out[(k * OUT_H + y) * OUT_W + x] = sum;
            }
        }
    }
    out
}

/// The handle and descriptors of one convolution, destroyed together.
struct Convolution<'a> {
    api: &'a Cudnn,
    handle: *mut c_void,
    x: *mut c_void,
    y: *mut c_void,
    w: *mut c_void,
    conv: *mut c_void,
}

impl Drop for Convolution<'_> {
    fn drop(&mut self) {
        // SAFETY: destroys what `Convolution::new` made, each once; null ones were
        // never made.
        unsafe {
            for desc in [self.x, self.y].into_iter().filter(|d| !d.is_null()) {
                (self.api.tensor_destroy)(desc);
            }
            if !self.w.is_null() {
                (self.api.filter_destroy)(self.w);
            }
            if !self.conv.is_null() {
                (self.api.conv_destroy)(self.conv);
            }
            if !self.handle.is_null() {
                (self.api.destroy)(self.handle);
            }
        }
    }
}

impl<'a> Convolution<'a> {
    /// The handle and the descriptors of the shapes above.
    fn new(api: &'a Cudnn) -> Result<Self, GpuError> {
        let check = |call, code| status("cuDNN", call, code);
        let mut made = Convolution {
            api,
            handle: std::ptr::null_mut(),
            x: std::ptr::null_mut(),
            y: std::ptr::null_mut(),
            w: std::ptr::null_mut(),
            conv: std::ptr::null_mut(),
        };
        // SAFETY: cudnn_ops.h's and cudnn_cnn.h's signatures; each writes one handle.
        unsafe {
            check("cudnnCreate", (api.create)(&raw mut made.handle))?;
            check(
                "cudnnCreateTensorDescriptor",
                (api.tensor_create)(&raw mut made.x),
            )?;
            check(
                "cudnnCreateTensorDescriptor",
                (api.tensor_create)(&raw mut made.y),
            )?;
            check(
                "cudnnCreateFilterDescriptor",
                (api.filter_create)(&raw mut made.w),
            )?;
            check(
                "cudnnCreateConvolutionDescriptor",
                (api.conv_create)(&raw mut made.conv),
            )?;
            check(
                "cudnnSetTensor4dDescriptor",
                (api.tensor_set)(made.x, NCHW, FLOAT, 1, int(C), int(H), int(W)),
            )?;
            check(
                "cudnnSetTensor4dDescriptor",
                (api.tensor_set)(made.y, NCHW, FLOAT, 1, int(K), int(OUT_H), int(OUT_W)),
            )?;
            check(
                "cudnnSetFilter4dDescriptor",
                (api.filter_set)(made.w, FLOAT, NCHW, int(K), int(C), int(R), int(R)),
            )?;
            check(
                "cudnnSetConvolution2dDescriptor",
                (api.conv_set)(made.conv, 0, 0, 1, 1, 1, 1, CROSS_CORRELATION, FLOAT),
            )?;
            check(
                "cudnnSetConvolutionMathType",
                (api.conv_math)(made.conv, FMA_MATH),
            )?;
        }
        Ok(made)
    }
}

pub(super) fn cudnn(context: &Context<'_>, path: &Path) -> Result<String, GpuError> {
    let library = Library::open(path)?;
    let api = Cudnn::load(&library)?;
    let input = numbers(C * H * W, 4);
    let filters = numbers(K * C * R * R, 5);
    let x = context.upload(&input)?;
    let w = context.upload(&filters)?;
    let y = context.alloc(K * OUT_H * OUT_W * 4)?;
    let (alpha, beta) = (1.0f32, 0.0f32);
    let check = |call, code| status("cuDNN", call, code);
    let made = Convolution::new(&api)?;
    let mut size = 0usize;
    // SAFETY: cudnn_cnn.h's signatures; the device buffers hold the shapes the
    // descriptors describe; the workspace has the size asked for.
    unsafe {
        check(
            "cudnnGetConvolutionForwardWorkspaceSize",
            (api.workspace_size)(
                made.handle,
                made.x,
                made.w,
                made.conv,
                made.y,
                IMPLICIT_GEMM,
                &raw mut size,
            ),
        )?;
        let workspace = context.alloc(size)?;
        check(
            "cudnnConvolutionForward",
            (api.forward)(
                made.handle,
                (&raw const alpha).cast(),
                made.x,
                x.address(),
                made.w,
                w.address(),
                made.conv,
                IMPLICIT_GEMM,
                workspace.address(),
                size,
                (&raw const beta).cast(),
                made.y,
                y.address(),
            ),
        )?;
        context.synchronize()?;
    }
    drop(made);
    let mut result = vec![0.0f32; K * OUT_H * OUT_W];
    y.read(&mut result)?;
    agree(
        "convolution 3×9×8 by 4×3×3×3",
        &result,
        &convolve(&input, &filters),
        1e-4,
    )
}
