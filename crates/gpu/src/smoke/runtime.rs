//! The CUDA runtime, NVRTC and nvJitLink.

use std::ffi::{CString, c_char, c_int, c_void};
use std::path::Path;

use super::{agree, int, status};
use crate::driver::Context;
use crate::error::GpuError;
use crate::ffi::{Library, functions};

functions!(Cudart {
    runtime_version = "cudaRuntimeGetVersion": fn(*mut c_int) -> c_int;
    device_count = "cudaGetDeviceCount": fn(*mut c_int) -> c_int;
    set_device = "cudaSetDevice": fn(c_int) -> c_int;
    attribute = "cudaDeviceGetAttribute": fn(*mut c_int, c_int, c_int) -> c_int;
    malloc = "cudaMalloc": fn(*mut *mut c_void, usize) -> c_int;
    free = "cudaFree": fn(*mut c_void) -> c_int;
    memcpy = "cudaMemcpy": fn(*mut c_void, *const c_void, usize, c_int) -> c_int;
});

const COPY_TO_DEVICE: c_int = 1;
const COPY_TO_HOST: c_int = 2;
const ATTRIBUTE_CAPABILITY_MAJOR: c_int = 75;
const ATTRIBUTE_CAPABILITY_MINOR: c_int = 76;

pub(super) fn cudart(context: &Context<'_>, path: &Path) -> Result<String, GpuError> {
    let ordinal = context.ordinal();
    let library = Library::open(path)?;
    let api = Cudart::load(&library)?;
    let check = |call, code| status("cudart", call, code);
    let (mut version, mut count, mut major, mut minor) = (0, 0, 0, 0);
    let sent: Vec<u8> = (0..1usize << 20)
        .map(|i| u8::try_from(i * 7 % 251).unwrap_or(0))
        .collect();
    let mut received = vec![0u8; sent.len()];
    // SAFETY: cuda_runtime_api.h's signatures; the buffers have the sizes passed.
    unsafe {
        check(
            "cudaRuntimeGetVersion",
            (api.runtime_version)(&raw mut version),
        )?;
        check("cudaGetDeviceCount", (api.device_count)(&raw mut count))?;
        check("cudaSetDevice", (api.set_device)(ordinal))?;
        check(
            "cudaDeviceGetAttribute",
            (api.attribute)(&raw mut major, ATTRIBUTE_CAPABILITY_MAJOR, ordinal),
        )?;
        check(
            "cudaDeviceGetAttribute",
            (api.attribute)(&raw mut minor, ATTRIBUTE_CAPABILITY_MINOR, ordinal),
        )?;
        let mut device: *mut c_void = std::ptr::null_mut();
        check("cudaMalloc", (api.malloc)(&raw mut device, sent.len()))?;
        let there = (api.memcpy)(device, sent.as_ptr().cast(), sent.len(), COPY_TO_DEVICE);
        let back = (api.memcpy)(
            received.as_mut_ptr().cast(),
            device,
            sent.len(),
            COPY_TO_HOST,
        );
        (api.free)(device);
        check("cudaMemcpy", there)?;
        check("cudaMemcpy", back)?;
    }
    let expected = context.driver().devices()?;
    let device = context.device()?;
    let seen = (major, minor);
    let want = (
        i32::from(device.capability.major()),
        i32::from(device.capability.minor()),
    );
    if seen != want || usize::try_from(count).ok() != Some(expected.len()) {
        return Err(GpuError::Wrong(format!(
            "the runtime sees {count} devices and capability {}.{}, the driver {} and {}.{}",
            seen.0,
            seen.1,
            expected.len(),
            want.0,
            want.1
        )));
    }
    if received != sent {
        return Err(GpuError::Wrong("1 MiB came back changed".to_owned()));
    }
    Ok(format!(
        "runtime {}.{}: {count} devices, {}.{} as the driver says; 1 MiB copied there and back",
        version / 1000,
        version % 1000 / 10,
        seen.0,
        seen.1
    ))
}

/// `x[i] *= a` for `i < n`.
const SCALE_SOURCE: &str = r#"extern "C" __global__ void scale(float* x, float a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= a;
}
"#;

functions!(Nvrtc {
    create = "nvrtcCreateProgram": fn(
        *mut *mut c_void, *const c_char, *const c_char, c_int, *const *const c_char,
        *const *const c_char
    ) -> c_int;
    compile = "nvrtcCompileProgram": fn(*mut c_void, c_int, *const *const c_char) -> c_int;
    log_size = "nvrtcGetProgramLogSize": fn(*mut c_void, *mut usize) -> c_int;
    log = "nvrtcGetProgramLog": fn(*mut c_void, *mut c_char) -> c_int;
    cubin_size = "nvrtcGetCUBINSize": fn(*mut c_void, *mut usize) -> c_int;
    cubin = "nvrtcGetCUBIN": fn(*mut c_void, *mut c_char) -> c_int;
    destroy = "nvrtcDestroyProgram": fn(*mut *mut c_void) -> c_int;
});

/// `sm_90` for the context's device.
fn device_arch(context: &Context<'_>) -> Result<String, GpuError> {
    let device = context.device()?;
    Ok(format!(
        "sm_{}{}",
        device.capability.major(),
        device.capability.minor()
    ))
}

/// Launches `scale` from a loaded image on 1,000 numbers and checks them.
fn launch_scale(context: &Context<'_>, image: &[u8], factor: f32) -> Result<String, GpuError> {
    let kernel = "scale";
    let module = context
        .load(image)
        .map_err(|code| GpuError::Wrong(format!("the driver cannot load the image: {code}")))?;
    let function = module
        .function(kernel)
        .map_err(|code| GpuError::Wrong(format!("cuModuleGetFunction: {code}")))?
        .ok_or_else(|| GpuError::Wrong(format!("the image has no kernel {kernel}")))?;
    let values: Vec<f32> = (0..1000u16).map(f32::from).collect();
    let buffer = context.upload(&values)?;
    let mut pointer = buffer.pointer;
    let mut a = factor;
    let mut n = int(values.len());
    let mut arguments = [
        (&raw mut pointer).cast::<c_void>(),
        (&raw mut a).cast::<c_void>(),
        (&raw mut n).cast::<c_void>(),
    ];
    context.launch(function, 4, 256, &mut arguments)?;
    context.synchronize()?;
    let mut result = vec![0.0f32; values.len()];
    buffer.read(&mut result)?;
    let want: Vec<f32> = values.iter().map(|v| v * factor).collect();
    agree(
        &format!("the kernel {kernel} on 1,000 numbers"),
        &result,
        &want,
        0.0,
    )
}

pub(super) fn nvrtc(context: &Context<'_>, path: &Path) -> Result<String, GpuError> {
    let library = Library::open(path)?;
    let api = Nvrtc::load(&library)?;
    let arch = device_arch(context)?;
    let source = CString::new(SCALE_SOURCE).unwrap_or_default();
    let name = CString::new("scale.cu").unwrap_or_default();
    let option = CString::new(format!("--gpu-architecture={arch}")).unwrap_or_default();
    let options = [option.as_ptr()];
    let mut program: *mut c_void = std::ptr::null_mut();
    let check = |call, code| status("nvrtc", call, code);
    // SAFETY: nvrtc.h's signatures; the strings are NUL-terminated and outlive the
    // calls; the program is destroyed before returning.
    let cubin = unsafe {
        check(
            "nvrtcCreateProgram",
            (api.create)(
                &raw mut program,
                source.as_ptr(),
                name.as_ptr(),
                0,
                std::ptr::null(),
                std::ptr::null(),
            ),
        )?;
        let compiled = (api.compile)(program, 1, options.as_ptr());
        let result = if compiled == 0 {
            let mut size = 0;
            check(
                "nvrtcGetCUBINSize",
                (api.cubin_size)(program, &raw mut size),
            )?;
            let mut cubin = vec![0u8; size];
            check(
                "nvrtcGetCUBIN",
                (api.cubin)(program, cubin.as_mut_ptr().cast()),
            )?;
            Ok(cubin)
        } else {
            let mut size = 0;
            (api.log_size)(program, &raw mut size);
            let mut log = vec![0u8; size.max(1)];
            (api.log)(program, log.as_mut_ptr().cast());
            Err(GpuError::Wrong(format!(
                "nvrtcCompileProgram for {arch} returned {compiled}: {}",
                String::from_utf8_lossy(&log).trim_end_matches('\0').trim()
            )))
        };
        (api.destroy)(&raw mut program);
        result?
    };
    let launched = launch_scale(context, &cubin, 3.0)?;
    Ok(format!(
        "compiled for {arch} ({} bytes of SASS); {launched}",
        cubin.len()
    ))
}

/// The same `scale` kernel in PTX old enough for every nvJitLink.
const SCALE_PTX: &str = "\
.version 8.0
.target sm_75
.address_size 64

.visible .entry scale(.param .u64 scale_x, .param .f32 scale_a, .param .u32 scale_n)
{
    .reg .pred %p<2>;
    .reg .b32 %r<6>;
    .reg .f32 %f<4>;
    .reg .b64 %rd<5>;

    ld.param.u64 %rd1, [scale_x];
    ld.param.f32 %f3, [scale_a];
    ld.param.u32 %r2, [scale_n];
    mov.u32 %r3, %ctaid.x;
    mov.u32 %r4, %ntid.x;
    mov.u32 %r5, %tid.x;
    mad.lo.s32 %r1, %r3, %r4, %r5;
    setp.ge.s32 %p1, %r1, %r2;
    @%p1 bra DONE;
    cvta.to.global.u64 %rd2, %rd1;
    mul.wide.s32 %rd3, %r1, 4;
    add.s64 %rd4, %rd2, %rd3;
    ld.global.f32 %f1, [%rd4];
    mul.f32 %f2, %f1, %f3;
    st.global.f32 [%rd4], %f2;
DONE:
    ret;
}
";

const NVJITLINK_INPUT_PTX: c_int = 2;

type Create = unsafe extern "C" fn(*mut *mut c_void, u32, *const *const c_char) -> c_int;
type AddData =
    unsafe extern "C" fn(*mut c_void, c_int, *const c_void, usize, *const c_char) -> c_int;
type Complete = unsafe extern "C" fn(*mut c_void) -> c_int;
type GetSize = unsafe extern "C" fn(*mut c_void, *mut usize) -> c_int;
type GetBytes = unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int;
type Destroy = unsafe extern "C" fn(*mut *mut c_void) -> c_int;

/// nvJitLink's functions are exported under versioned names
/// (`__nvJitLinkCreate_13_0`) that its header maps the plain names to; the newest
/// version of the library's major is the one a program built today calls.
fn versioned<F: Copy>(library: &Library, name: &str, major: u32) -> Result<F, GpuError> {
    if let Ok(found) = library.function(name) {
        return Ok(found);
    }
    (0..32)
        .rev()
        .find_map(|minor| library.function(&format!("__{name}_{major}_{minor}")).ok())
        .ok_or_else(|| GpuError::Symbol {
            path: library.path.clone(),
            symbol: format!("{name} (or __{name}_{major}_N)"),
        })
}

pub(super) fn nvjitlink(
    context: &Context<'_>,
    path: &Path,
    major: u32,
) -> Result<String, GpuError> {
    let library = Library::open(path)?;
    let create: Create = versioned(&library, "nvJitLinkCreate", major)?;
    let add_data: AddData = versioned(&library, "nvJitLinkAddData", major)?;
    let complete: Complete = versioned(&library, "nvJitLinkComplete", major)?;
    let cubin_size: GetSize = versioned(&library, "nvJitLinkGetLinkedCubinSize", major)?;
    let cubin_bytes: GetBytes = versioned(&library, "nvJitLinkGetLinkedCubin", major)?;
    let log_size: GetSize = versioned(&library, "nvJitLinkGetErrorLogSize", major)?;
    let log_bytes: GetBytes = versioned(&library, "nvJitLinkGetErrorLog", major)?;
    let destroy: Destroy = versioned(&library, "nvJitLinkDestroy", major)?;
    let arch = device_arch(context)?;
    let option = CString::new(format!("-arch={arch}")).unwrap_or_default();
    let options = [option.as_ptr()];
    let name = CString::new("scale.ptx").unwrap_or_default();
    let check = |call, code| status("nvJitLink", call, code);
    let mut handle: *mut c_void = std::ptr::null_mut();
    // SAFETY: nvJitLink.h's signatures; the handle is destroyed before returning.
    let cubin = unsafe {
        check(
            "nvJitLinkCreate",
            create(&raw mut handle, 1, options.as_ptr()),
        )?;
        let linked = (|| {
            // PTX is text the linker reads up to its NUL, which the size counts.
            let ptx = CString::new(SCALE_PTX).unwrap_or_default();
            let added = add_data(
                handle,
                NVJITLINK_INPUT_PTX,
                ptx.as_ptr().cast(),
                ptx.as_bytes_with_nul().len(),
                name.as_ptr(),
            );
            let done = if added == 0 { complete(handle) } else { added };
            if done != 0 {
                let mut size = 0;
                log_size(handle, &raw mut size);
                let mut log = vec![0u8; size.max(1)];
                log_bytes(handle, log.as_mut_ptr().cast());
                return Err(GpuError::Wrong(format!(
                    "linking PTX for {arch} returned {done}: {}",
                    String::from_utf8_lossy(&log).trim_end_matches('\0').trim()
                )));
            }
            let mut size = 0;
            check(
                "nvJitLinkGetLinkedCubinSize",
                cubin_size(handle, &raw mut size),
            )?;
            let mut cubin = vec![0u8; size];
            check(
                "nvJitLinkGetLinkedCubin",
                cubin_bytes(handle, cubin.as_mut_ptr().cast()),
            )?;
            Ok(cubin)
        })();
        destroy(&raw mut handle);
        linked?
    };
    let launched = launch_scale(context, &cubin, 0.5)?;
    Ok(format!(
        "linked PTX into {} bytes of {arch} SASS; {launched}",
        cubin.len()
    ))
}
