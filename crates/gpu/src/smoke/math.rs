//! cuFFT, cuRAND and cuSPARSE.

use std::ffi::{c_int, c_void};
use std::path::Path;

use super::{agree, index, int, long, numbers, status};
use crate::driver::Context;
use crate::error::GpuError;
use crate::ffi::{Library, functions};

const C2C: c_int = 0x29;
const FORWARD: c_int = -1;

functions!(Cufft {
    plan = "cufftPlan1d": fn(*mut c_int, c_int, c_int, c_int) -> c_int;
    exec = "cufftExecC2C": fn(c_int, *mut c_void, *mut c_void, c_int) -> c_int;
    destroy = "cufftDestroy": fn(c_int) -> c_int;
});

/// The discrete Fourier transform of interleaved complex numbers, computed directly.
fn dft(input: &[f32]) -> Vec<f32> {
    let n = input.len() / 2;
    #[allow(clippy::cast_precision_loss, reason = "indices below 2^24")]
    let angle = |k: usize, j: usize| -2.0 * std::f64::consts::PI * ((k * j) % n) as f64 / n as f64;
    let mut out = Vec::with_capacity(input.len());
    for k in 0..n {
        let (mut re, mut im) = (0.0f64, 0.0f64);
        for j in 0..n {
            let (sin, cos) = angle(k, j).sin_cos();
            let (a, b) = (f64::from(input[2 * j]), f64::from(input[2 * j + 1]));
            re += a * cos - b * sin;
            im += a * sin + b * cos;
        }
        #[allow(
            clippy::cast_possible_truncation,
            reason = "back to the GPU's precision"
        )]
        out.extend([re as f32, im as f32]);
    }
    out
}

pub(super) fn cufft(context: &Context<'_>, path: &Path) -> Result<String, GpuError> {
    const N: usize = 256;
    let library = Library::open(path)?;
    let api = Cufft::load(&library)?;
    let input = numbers(2 * N, 7);
    let data = context.upload(&input)?;
    let mut plan = 0;
    // SAFETY: cufft.h's signatures; in place on N complex numbers; the plan is
    // destroyed before returning.
    unsafe {
        status(
            "cuFFT",
            "cufftPlan1d",
            (api.plan)(&raw mut plan, int(N), C2C, 1),
        )?;
        let code = (api.exec)(plan, data.address(), data.address(), FORWARD);
        let synchronized = context.synchronize();
        (api.destroy)(plan);
        status("cuFFT", "cufftExecC2C", code)?;
        synchronized?;
    }
    let mut result = vec![0.0f32; 2 * N];
    data.read(&mut result)?;
    agree("a 256-point complex FFT", &result, &dft(&input), 1e-3)
}

const PSEUDO_DEFAULT: c_int = 100;

functions!(Curand {
    create = "curandCreateGenerator": fn(*mut *mut c_void, c_int) -> c_int;
    seed = "curandSetPseudoRandomGeneratorSeed": fn(*mut c_void, u64) -> c_int;
    uniform = "curandGenerateUniform": fn(*mut c_void, *mut c_void, usize) -> c_int;
    destroy = "curandDestroyGenerator": fn(*mut c_void) -> c_int;
});

pub(super) fn curand(context: &Context<'_>, path: &Path) -> Result<String, GpuError> {
    const N: usize = 1 << 16;
    let library = Library::open(path)?;
    let api = Curand::load(&library)?;
    let generate = |seed: u64| -> Result<Vec<f32>, GpuError> {
        let out = context.alloc(N * 4)?;
        let mut generator: *mut c_void = std::ptr::null_mut();
        // SAFETY: curand.h's signatures; the generator is destroyed before returning.
        unsafe {
            status(
                "cuRAND",
                "curandCreateGenerator",
                (api.create)(&raw mut generator, PSEUDO_DEFAULT),
            )?;
            let seeded = (api.seed)(generator, seed);
            let made = if seeded == 0 {
                (api.uniform)(generator, out.address(), N)
            } else {
                seeded
            };
            let synchronized = context.synchronize();
            (api.destroy)(generator);
            status("cuRAND", "curandGenerateUniform", made)?;
            synchronized?;
        }
        let mut values = vec![0.0f32; N];
        out.read(&mut values)?;
        Ok(values)
    };
    let first = generate(1234)?;
    let again = generate(1234)?;
    let other = generate(4321)?;
    #[allow(clippy::cast_precision_loss, reason = "a mean of 65,536 numbers")]
    let mean = first.iter().map(|&v| f64::from(v)).sum::<f64>() / N as f64;
    if !first.iter().all(|v| *v > 0.0 && *v <= 1.0) {
        return Err(GpuError::Wrong("uniform numbers outside (0, 1]".to_owned()));
    }
    if !(0.49..0.51).contains(&mean) {
        return Err(GpuError::Wrong(format!(
            "65,536 uniform numbers average {mean:.4}"
        )));
    }
    if first != again || first == other {
        return Err(GpuError::Wrong(
            "the numbers do not follow the seed".to_owned(),
        ));
    }
    Ok(format!(
        "65,536 uniform numbers in (0, 1] averaging {mean:.4}, the same again for the same seed"
    ))
}

const INDEX_32I: c_int = 2;
const INDEX_BASE_ZERO: c_int = 0;
const OP_N: c_int = 0;
const R_32F: c_int = 0;
const SPMV_DEFAULT: c_int = 0;

functions!(Cusparse {
    create = "cusparseCreate": fn(*mut *mut c_void) -> c_int;
    destroy = "cusparseDestroy": fn(*mut c_void) -> c_int;
    csr = "cusparseCreateCsr": fn(
        *mut *mut c_void, i64, i64, i64, *mut c_void, *mut c_void, *mut c_void, c_int, c_int,
        c_int, c_int
    ) -> c_int;
    matrix_destroy = "cusparseDestroySpMat": fn(*mut c_void) -> c_int;
    vector = "cusparseCreateDnVec": fn(*mut *mut c_void, i64, *mut c_void, c_int) -> c_int;
    vector_destroy = "cusparseDestroyDnVec": fn(*mut c_void) -> c_int;
    buffer_size = "cusparseSpMV_bufferSize": fn(
        *mut c_void, c_int, *const c_void, *mut c_void, *mut c_void, *const c_void,
        *mut c_void, c_int, c_int, *mut usize
    ) -> c_int;
    spmv = "cusparseSpMV": fn(
        *mut c_void, c_int, *const c_void, *mut c_void, *mut c_void, *const c_void,
        *mut c_void, c_int, c_int, *mut c_void
    ) -> c_int;
});

/// A tridiagonal `N×N` matrix in CSR form, and `A·x` computed on the CPU.
struct Tridiagonal {
    rows: Vec<i32>,
    cols: Vec<i32>,
    values: Vec<f32>,
}

impl Tridiagonal {
    fn new(n: usize) -> Self {
        let weights = numbers(3 * n, 8);
        let (mut rows, mut cols, mut values) = (vec![0i32], Vec::new(), Vec::new());
        for row in 0..n {
            for col in row.saturating_sub(1)..(row + 2).min(n) {
                cols.push(int(col));
                values.push(weights[3 * row + col + 1 - row]);
            }
            rows.push(int(cols.len()));
        }
        Tridiagonal { rows, cols, values }
    }

    fn times(&self, x: &[f32]) -> Vec<f32> {
        self.rows
            .windows(2)
            .map(|range| {
                (index(range[0])..index(range[1]))
                    .map(|i| self.values[i] * x[index(self.cols[i])])
                    .sum()
            })
            .collect()
    }
}

/// cuSPARSE's handle and descriptors, destroyed together.
struct SpMv<'a> {
    api: &'a Cusparse,
    handle: *mut c_void,
    matrix: *mut c_void,
    x: *mut c_void,
    y: *mut c_void,
}

impl Drop for SpMv<'_> {
    fn drop(&mut self) {
        // SAFETY: destroys what was made, each once; null ones were never made.
        unsafe {
            for vector in [self.x, self.y].into_iter().filter(|v| !v.is_null()) {
                (self.api.vector_destroy)(vector);
            }
            if !self.matrix.is_null() {
                (self.api.matrix_destroy)(self.matrix);
            }
            if !self.handle.is_null() {
                (self.api.destroy)(self.handle);
            }
        }
    }
}

pub(super) fn cusparse(context: &Context<'_>, path: &Path) -> Result<String, GpuError> {
    const N: usize = 100;
    let library = Library::open(path)?;
    let api = Cusparse::load(&library)?;
    let matrix = Tridiagonal::new(N);
    let x_host = numbers(N, 9);
    let rows = context.upload(&matrix.rows)?;
    let cols = context.upload(&matrix.cols)?;
    let values = context.upload(&matrix.values)?;
    let x = context.upload(&x_host)?;
    let y = context.alloc(N * 4)?;
    let (alpha, beta) = (1.0f32, 0.0f32);
    let check = |call, code| status("cuSPARSE", call, code);
    let mut made = SpMv {
        api: &api,
        handle: std::ptr::null_mut(),
        matrix: std::ptr::null_mut(),
        x: std::ptr::null_mut(),
        y: std::ptr::null_mut(),
    };
    let n = long(N);
    // SAFETY: cusparse.h's signatures; the device buffers hold the CSR arrays and
    // vectors described; the buffer has the size asked for.
    unsafe {
        check("cusparseCreate", (api.create)(&raw mut made.handle))?;
        check(
            "cusparseCreateCsr",
            (api.csr)(
                &raw mut made.matrix,
                n,
                n,
                long(matrix.values.len()),
                rows.address(),
                cols.address(),
                values.address(),
                INDEX_32I,
                INDEX_32I,
                INDEX_BASE_ZERO,
                R_32F,
            ),
        )?;
        check(
            "cusparseCreateDnVec",
            (api.vector)(&raw mut made.x, n, x.address(), R_32F),
        )?;
        check(
            "cusparseCreateDnVec",
            (api.vector)(&raw mut made.y, n, y.address(), R_32F),
        )?;
        let mut size = 0usize;
        check(
            "cusparseSpMV_bufferSize",
            (api.buffer_size)(
                made.handle,
                OP_N,
                (&raw const alpha).cast(),
                made.matrix,
                made.x,
                (&raw const beta).cast(),
                made.y,
                R_32F,
                SPMV_DEFAULT,
                &raw mut size,
            ),
        )?;
        let buffer = context.alloc(size)?;
        check(
            "cusparseSpMV",
            (api.spmv)(
                made.handle,
                OP_N,
                (&raw const alpha).cast(),
                made.matrix,
                made.x,
                (&raw const beta).cast(),
                made.y,
                R_32F,
                SPMV_DEFAULT,
                buffer.address(),
            ),
        )?;
        context.synchronize()?;
    }
    drop(made);
    let mut result = vec![0.0f32; N];
    y.read(&mut result)?;
    agree(
        "SpMV of a 100×100 tridiagonal matrix",
        &result,
        &matrix.times(&x_host),
        1e-5,
    )
}
