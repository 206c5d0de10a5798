//! cuBLAS, cuBLASLt and cuSOLVER.

use std::ffi::{c_int, c_void};
use std::path::Path;

use super::{agree, int, matmul, numbers, status};
use crate::driver::Context;
use crate::error::GpuError;
use crate::ffi::{Library, functions};

const OP_N: c_int = 0;
const R_32F: c_int = 0;
const COMPUTE_32F: c_int = 68;
const FILL_LOWER: c_int = 0;

functions!(Cublas {
    create = "cublasCreate_v2": fn(*mut *mut c_void) -> c_int;
    destroy = "cublasDestroy_v2": fn(*mut c_void) -> c_int;
    sgemm = "cublasSgemm_v2": fn(
        *mut c_void, c_int, c_int, c_int, c_int, c_int, *const f32, *const c_void, c_int,
        *const c_void, c_int, *const f32, *mut c_void, c_int
    ) -> c_int;
});

/// Column-major inputs for `m×k · k×n`.
struct Product {
    m: usize,
    n: usize,
    k: usize,
    a: Vec<f32>,
    b: Vec<f32>,
}

impl Product {
    fn new(m: usize, n: usize, k: usize) -> Self {
        Product {
            m,
            n,
            k,
            a: numbers(m * k, 1),
            b: numbers(k * n, 2),
        }
    }

    fn expected(&self) -> Vec<f32> {
        matmul(&self.a, &self.b, self.m, self.n, self.k)
    }
}

#[allow(
    clippy::many_single_char_names,
    reason = "BLAS's names for the operands"
)]
pub(super) fn cublas(context: &Context<'_>, path: &Path) -> Result<String, GpuError> {
    let library = Library::open(path)?;
    let api = Cublas::load(&library)?;
    let product = Product::new(64, 48, 32);
    let (m, n, k) = (int(product.m), int(product.n), int(product.k));
    let a = context.upload(&product.a)?;
    let b = context.upload(&product.b)?;
    let c = context.alloc(product.m * product.n * 4)?;
    let (alpha, beta) = (1.0f32, 0.0f32);
    let mut handle: *mut c_void = std::ptr::null_mut();
    // SAFETY: cublas_api.h's signatures; the device buffers hold the sizes given.
    unsafe {
        status("cuBLAS", "cublasCreate", (api.create)(&raw mut handle))?;
        let code = (api.sgemm)(
            handle,
            OP_N,
            OP_N,
            m,
            n,
            k,
            &raw const alpha,
            a.address(),
            m,
            b.address(),
            k,
            &raw const beta,
            c.address(),
            m,
        );
        context.synchronize()?;
        (api.destroy)(handle);
        status("cuBLAS", "cublasSgemm", code)?;
    }
    let mut result = vec![0.0f32; product.m * product.n];
    c.read(&mut result)?;
    agree("SGEMM 64×48×32", &result, &product.expected(), 1e-4)
}

functions!(CublasLt {
    create = "cublasLtCreate": fn(*mut *mut c_void) -> c_int;
    destroy = "cublasLtDestroy": fn(*mut c_void) -> c_int;
    desc_create = "cublasLtMatmulDescCreate": fn(*mut *mut c_void, c_int, c_int) -> c_int;
    desc_destroy = "cublasLtMatmulDescDestroy": fn(*mut c_void) -> c_int;
    layout_create = "cublasLtMatrixLayoutCreate": fn(*mut *mut c_void, c_int, u64, u64, i64) -> c_int;
    layout_destroy = "cublasLtMatrixLayoutDestroy": fn(*mut c_void) -> c_int;
    matmul = "cublasLtMatmul": fn(
        *mut c_void, *mut c_void, *const c_void, *const c_void, *mut c_void, *const c_void,
        *mut c_void, *const c_void, *const c_void, *mut c_void, *mut c_void, *mut c_void,
        *const c_void, *mut c_void, usize, *mut c_void
    ) -> c_int;
});

pub(super) fn cublaslt(context: &Context<'_>, path: &Path) -> Result<String, GpuError> {
    let library = Library::open(path)?;
    let api = CublasLt::load(&library)?;
    let product = Product::new(64, 64, 64);
    let a = context.upload(&product.a)?;
    let b = context.upload(&product.b)?;
    let c = context.alloc(product.m * product.n * 4)?;
    let workspace = context.alloc(1 << 22)?;
    let (alpha, beta) = (1.0f32, 0.0f32);
    let check = |call, code| status("cuBLASLt", call, code);
    let (mut handle, mut desc): (*mut c_void, *mut c_void) =
        (std::ptr::null_mut(), std::ptr::null_mut());
    let mut layouts = [std::ptr::null_mut::<c_void>(); 3];
    let shapes = [
        (product.m, product.k),
        (product.k, product.n),
        (product.m, product.n),
    ];
    // SAFETY: cublasLt.h's signatures; every object made here is destroyed before
    // returning, the device buffers hold the sizes described.
    unsafe {
        check("cublasLtCreate", (api.create)(&raw mut handle))?;
        let computed = (|| {
            check(
                "cublasLtMatmulDescCreate",
                (api.desc_create)(&raw mut desc, COMPUTE_32F, R_32F),
            )?;
            for (layout, (rows, cols)) in layouts.iter_mut().zip(shapes) {
                check(
                    "cublasLtMatrixLayoutCreate",
                    (api.layout_create)(layout, R_32F, rows as u64, cols as u64, super::long(rows)),
                )?;
            }
            check(
                "cublasLtMatmul",
                (api.matmul)(
                    handle,
                    desc,
                    (&raw const alpha).cast(),
                    a.address(),
                    layouts[0],
                    b.address(),
                    layouts[1],
                    (&raw const beta).cast(),
                    c.address(),
                    layouts[2],
                    c.address(),
                    layouts[2],
                    std::ptr::null(),
                    workspace.address(),
                    1 << 22,
                    std::ptr::null_mut(),
                ),
            )?;
            context.synchronize()
        })();
        for layout in layouts.into_iter().filter(|l| !l.is_null()) {
            (api.layout_destroy)(layout);
        }
        if !desc.is_null() {
            (api.desc_destroy)(desc);
        }
        (api.destroy)(handle);
        computed?;
    }
    let mut result = vec![0.0f32; product.m * product.n];
    c.read(&mut result)?;
    agree("matmul 64×64×64", &result, &product.expected(), 1e-3)
}

functions!(Cusolver {
    create = "cusolverDnCreate": fn(*mut *mut c_void) -> c_int;
    destroy = "cusolverDnDestroy": fn(*mut c_void) -> c_int;
    potrf_size = "cusolverDnSpotrf_bufferSize": fn(*mut c_void, c_int, c_int, *mut c_void, c_int, *mut c_int) -> c_int;
    potrf = "cusolverDnSpotrf": fn(*mut c_void, c_int, c_int, *mut c_void, c_int, *mut c_void, c_int, *mut c_void) -> c_int;
});

pub(super) fn cusolver(context: &Context<'_>, path: &Path) -> Result<String, GpuError> {
    const N: usize = 16;
    let library = Library::open(path)?;
    let api = Cusolver::load(&library)?;
    // A = M·Mᵀ + N·I is symmetric positive definite.
    let m = numbers(N * N, 3);
    let mut spd = vec![0.0f32; N * N];
    for col in 0..N {
        for row in 0..N {
            let dot: f32 = (0..N).map(|i| m[row + i * N] * m[col + i * N]).sum();
            #[allow(clippy::cast_precision_loss, reason = "a small integer")]
            let diagonal = if row == col { N as f32 } else { 0.0 };
            spd[row + col * N] = dot + diagonal;
        }
    }
    let matrix = context.upload(&spd)?;
    let info = context.upload(&[0i32])?;
    let n = int(N);
    let mut handle: *mut c_void = std::ptr::null_mut();
    let mut work_size = 0;
    let check = |call, code| status("cuSOLVER", call, code);
    // SAFETY: cusolverDn.h's signatures; the workspace has the size asked for.
    unsafe {
        check("cusolverDnCreate", (api.create)(&raw mut handle))?;
        let factored = (|| {
            check(
                "cusolverDnSpotrf_bufferSize",
                (api.potrf_size)(
                    handle,
                    FILL_LOWER,
                    n,
                    matrix.address(),
                    n,
                    &raw mut work_size,
                ),
            )?;
            let work = context.alloc(usize::try_from(work_size).unwrap_or(0) * 4)?;
            check(
                "cusolverDnSpotrf",
                (api.potrf)(
                    handle,
                    FILL_LOWER,
                    n,
                    matrix.address(),
                    n,
                    work.address(),
                    work_size,
                    info.address(),
                ),
            )?;
            context.synchronize()
        })();
        (api.destroy)(handle);
        factored?;
    }
    let mut result = vec![0.0f32; N * N];
    matrix.read(&mut result)?;
    let mut code = [0i32];
    info.read(&mut code)?;
    if code[0] != 0 {
        return Err(GpuError::Wrong(format!("potrf reports info {}", code[0])));
    }
    // L is the lower triangle; L·Lᵀ must give A back.
    let lower = |row: usize, col: usize| {
        if row >= col {
            result[row + col * N]
        } else {
            0.0
        }
    };
    let mut rebuilt = vec![0.0f32; N * N];
    for col in 0..N {
        for row in 0..N {
            rebuilt[row + col * N] = (0..N).map(|i| lower(row, i) * lower(col, i)).sum();
        }
    }
    agree("Cholesky 16×16, L·Lᵀ", &rebuilt, &spd, 1e-3)
}
