//! The CUDA driver API, loaded at run time from the file the search found: devices,
//! contexts, modules, memory and launches, as far as the checks need them.

use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cudapkgs_caps::Capability;
use serde::Serialize;

use crate::error::GpuError;
use crate::ffi::{Library, functions};

type CuResult = c_int;
type CuDevice = c_int;
type CuContext = *mut c_void;
type CuModule = *mut c_void;
type CuFunction = *mut c_void;
type CuDevicePtr = u64;

const CUDA_SUCCESS: CuResult = 0;
const CUDA_ERROR_STUB_LIBRARY: CuResult = 34;
const CUDA_ERROR_NO_DEVICE: CuResult = 100;
const CUDA_ERROR_NOT_FOUND: CuResult = 500;
const JIT_ERROR_LOG_BUFFER: c_int = 5;
const JIT_ERROR_LOG_BUFFER_SIZE_BYTES: c_int = 6;
const JIT_OPTIMIZATION_LEVEL: c_int = 7;
const ATTRIBUTE_COMPUTE_MODE: c_int = 20;
const ATTRIBUTE_CAPABILITY_MAJOR: c_int = 75;
const ATTRIBUTE_CAPABILITY_MINOR: c_int = 76;

functions!(Api {
    init = "cuInit": fn(c_uint) -> CuResult;
    driver_version = "cuDriverGetVersion": fn(*mut c_int) -> CuResult;
    error_name = "cuGetErrorName": fn(CuResult, *mut *const c_char) -> CuResult;
    device_count = "cuDeviceGetCount": fn(*mut c_int) -> CuResult;
    device_get = "cuDeviceGet": fn(*mut CuDevice, c_int) -> CuResult;
    device_name = "cuDeviceGetName": fn(*mut c_char, c_int, CuDevice) -> CuResult;
    device_attribute = "cuDeviceGetAttribute": fn(*mut c_int, c_int, CuDevice) -> CuResult;
    device_memory = "cuDeviceTotalMem_v2": fn(*mut usize, CuDevice) -> CuResult;
    device_uuid = "cuDeviceGetUuid_v2": fn(*mut [u8; 16], CuDevice) -> CuResult;
    primary_retain = "cuDevicePrimaryCtxRetain": fn(*mut CuContext, CuDevice) -> CuResult;
    primary_release = "cuDevicePrimaryCtxRelease_v2": fn(CuDevice) -> CuResult;
    set_current = "cuCtxSetCurrent": fn(CuContext) -> CuResult;
    synchronize = "cuCtxSynchronize": fn() -> CuResult;
    module_load = "cuModuleLoadData": fn(*mut CuModule, *const c_void) -> CuResult;
    module_load_ex = "cuModuleLoadDataEx": fn(
        *mut CuModule, *const c_void, c_uint, *mut c_int, *mut *mut c_void
    ) -> CuResult;
    module_unload = "cuModuleUnload": fn(CuModule) -> CuResult;
    module_function = "cuModuleGetFunction": fn(*mut CuFunction, CuModule, *const c_char) -> CuResult;
    mem_alloc = "cuMemAlloc_v2": fn(*mut CuDevicePtr, usize) -> CuResult;
    mem_free = "cuMemFree_v2": fn(CuDevicePtr) -> CuResult;
    copy_to_device = "cuMemcpyHtoD_v2": fn(CuDevicePtr, *const c_void, usize) -> CuResult;
    copy_to_host = "cuMemcpyDtoH_v2": fn(*mut c_void, CuDevicePtr, usize) -> CuResult;
    launch = "cuLaunchKernel": fn(
        CuFunction, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint,
        *mut c_void, *mut *mut c_void, *mut *mut c_void
    ) -> CuResult;
});

/// The driver, loaded and initialised.
#[derive(Debug)]
pub struct Driver {
    library: Library,
    /// The driver's own JIT libraries, opened by path from its folder first: libcuda
    /// loads them by name, which in a sandbox without a loader cache finds nothing.
    _companions: Vec<Library>,
    api: Api,
    /// `cuInit` found no device.
    no_device: bool,
}

/// One GPU as the driver describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Device {
    pub ordinal: i32,
    pub name: String,
    pub capability: Capability,
    pub memory_bytes: u64,
    /// `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, as nvidia-smi prints it.
    pub uuid: String,
    /// One process at a time may hold a context (exclusive-process or prohibited
    /// compute mode).
    pub exclusive: bool,
}

/// A CUDA version as the driver reports it (`13000` is 13.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
pub struct DriverCuda {
    pub major: u32,
    pub minor: u32,
}

impl std::fmt::Display for DriverCuda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What a call returned that was not success: the driver's code and its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CudaCode {
    pub code: i32,
    pub name: String,
}

impl std::fmt::Display for CudaCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.code)
    }
}

impl Driver {
    /// Loads the driver from `path` and initialises it. A machine whose driver sees
    /// no GPU gives a driver with no devices.
    pub fn open(path: &Path) -> Result<Self, GpuError> {
        let companions = companions(path);
        let library = Library::open(path)?;
        let api = Api::load(&library)?;
        // SAFETY: the signature is cuda.h's; 0 is the only flag value.
        let code = unsafe { (api.init)(0) };
        let driver = Driver {
            library,
            _companions: companions,
            api,
            no_device: code == CUDA_ERROR_NO_DEVICE,
        };
        match code {
            CUDA_SUCCESS | CUDA_ERROR_NO_DEVICE => Ok(driver),
            CUDA_ERROR_STUB_LIBRARY => Err(GpuError::Stub(path.to_owned())),
            code => Err(driver.error("cuInit", code)),
        }
    }

    /// The file the driver was loaded from.
    pub fn path(&self) -> &Path {
        &self.library.path
    }

    fn code(&self, code: CuResult) -> CudaCode {
        let mut name: *const c_char = std::ptr::null();
        // SAFETY: cuGetErrorName stores a pointer to a static string, or fails.
        let known = unsafe { (self.api.error_name)(code, &raw mut name) } == CUDA_SUCCESS;
        let name = if known && !name.is_null() {
            // SAFETY: a NUL-terminated string the driver owns for its lifetime.
            unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned()
        } else {
            "unknown error".to_owned()
        };
        CudaCode { code, name }
    }

    pub(crate) fn error(&self, call: &'static str, code: CuResult) -> GpuError {
        let CudaCode { code, name } = self.code(code);
        GpuError::Cuda { call, code, name }
    }

    pub(crate) fn check(&self, call: &'static str, code: CuResult) -> Result<(), GpuError> {
        if code == CUDA_SUCCESS {
            Ok(())
        } else {
            Err(self.error(call, code))
        }
    }

    /// The newest CUDA version this driver supports.
    pub fn cuda_version(&self) -> Result<DriverCuda, GpuError> {
        let mut version = 0;
        // SAFETY: cuda.h's signature; writes one int.
        self.check("cuDriverGetVersion", unsafe {
            (self.api.driver_version)(&raw mut version)
        })?;
        let version = u32::try_from(version).unwrap_or(0);
        Ok(DriverCuda {
            major: version / 1000,
            minor: version % 1000 / 10,
        })
    }

    /// Every GPU the driver sees.
    pub fn devices(&self) -> Result<Vec<Device>, GpuError> {
        if self.no_device {
            return Ok(Vec::new());
        }
        let mut count = 0;
        // SAFETY: cuda.h's signature; writes one int.
        self.check("cuDeviceGetCount", unsafe {
            (self.api.device_count)(&raw mut count)
        })?;
        (0..count).map(|ordinal| self.device(ordinal)).collect()
    }

    fn handle(&self, ordinal: i32) -> Result<CuDevice, GpuError> {
        let mut device = 0;
        // SAFETY: cuda.h's signature; writes one handle.
        self.check("cuDeviceGet", unsafe {
            (self.api.device_get)(&raw mut device, ordinal)
        })?;
        Ok(device)
    }

    fn device(&self, ordinal: i32) -> Result<Device, GpuError> {
        let device = self.handle(ordinal)?;
        let mut name = [0 as c_char; 256];
        let mut major = 0;
        let mut minor = 0;
        let mut memory = 0usize;
        let mut uuid = [0u8; 16];
        let mut mode = 0;
        // SAFETY: cuda.h's signatures; each writes into the buffer it is given, the
        // name at most its stated length, NUL-terminated.
        unsafe {
            self.check(
                "cuDeviceGetName",
                (self.api.device_name)(name.as_mut_ptr(), 256, device),
            )?;
            self.check(
                "cuDeviceGetAttribute",
                (self.api.device_attribute)(&raw mut major, ATTRIBUTE_CAPABILITY_MAJOR, device),
            )?;
            self.check(
                "cuDeviceGetAttribute",
                (self.api.device_attribute)(&raw mut minor, ATTRIBUTE_CAPABILITY_MINOR, device),
            )?;
            self.check(
                "cuDeviceTotalMem",
                (self.api.device_memory)(&raw mut memory, device),
            )?;
            self.check(
                "cuDeviceGetUuid",
                (self.api.device_uuid)(&raw mut uuid, device),
            )?;
            self.check(
                "cuDeviceGetAttribute",
                (self.api.device_attribute)(&raw mut mode, ATTRIBUTE_COMPUTE_MODE, device),
            )?;
        }
        let bytes: Vec<u8> = name.iter().map(|&c| c.to_ne_bytes()[0]).collect();
        let name = CStr::from_bytes_until_nul(&bytes).map_or_else(
            |_| String::from_utf8_lossy(&bytes).into_owned(),
            |name| name.to_string_lossy().into_owned(),
        );
        let capability = Capability::baseline(
            u8::try_from(major).unwrap_or(0),
            u8::try_from(minor).unwrap_or(0),
        );
        Ok(Device {
            ordinal,
            name,
            capability,
            memory_bytes: memory as u64,
            uuid: format_uuid(&uuid),
            exclusive: mode != 0,
        })
    }

    /// The ordinal of the device with this UUID in this process's numbering (a parent
    /// with `CUDA_VISIBLE_DEVICES` numbers its devices otherwise).
    pub fn ordinal_of(&self, uuid: &str) -> Result<i32, GpuError> {
        self.devices()?
            .into_iter()
            .find(|device| device.uuid == uuid)
            .map(|device| device.ordinal)
            .ok_or_else(|| GpuError::Wrong(format!("the driver sees no device {uuid}")))
    }

    /// The device's primary context, made current on this thread.
    pub fn context(&self, ordinal: i32) -> Result<Context<'_>, GpuError> {
        let device = self.handle(ordinal)?;
        let mut context: CuContext = std::ptr::null_mut();
        // SAFETY: cuda.h's signatures; the context is released when `Context` drops.
        unsafe {
            self.check(
                "cuDevicePrimaryCtxRetain",
                (self.api.primary_retain)(&raw mut context, device),
            )?;
            let made_current = (self.api.set_current)(context);
            if made_current != CUDA_SUCCESS {
                (self.api.primary_release)(device);
                return Err(self.error("cuCtxSetCurrent", made_current));
            }
        }
        Ok(Context {
            driver: self,
            device,
            ordinal,
        })
    }
}

/// The start of the names of the libraries libcuda loads to compile PTX.
const COMPANIONS: [&str; 3] = [
    "libnvidia-ptxjitcompiler.so",
    "libnvidia-nvvm.so",
    "libnvidia-gpucomp.so",
];

/// The driver's JIT libraries beside `driver`, opened; those that fail are left to
/// libcuda's own search.
fn companions(driver: &Path) -> Vec<Library> {
    let Some(folder) = driver.parent() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| COMPANIONS.iter().any(|start| name.starts_with(start)))
        })
        .collect();
    // One file per library: the soname links sort before the versioned files.
    names.sort();
    names
        .iter()
        .filter_map(|path| Library::open(path).ok())
        .collect()
}

/// The driver reads an image in place: an 8-byte-aligned copy, with a NUL after it,
/// which PTX text needs.
fn aligned_copy(image: &[u8]) -> Vec<u64> {
    let mut aligned = vec![0u64; image.len().div_ceil(8) + 1];
    for (word, chunk) in aligned.iter_mut().zip(image.chunks(8)) {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_ne_bytes(bytes);
    }
    aligned
}

fn format_uuid(bytes: &[u8; 16]) -> String {
    let hex = bytes.iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    });
    format!(
        "GPU-{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A device's primary context, current on the thread that made it.
#[derive(Debug)]
pub struct Context<'d> {
    driver: &'d Driver,
    device: CuDevice,
    ordinal: i32,
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // SAFETY: releases the reference `Driver::context` retained.
        unsafe {
            (self.driver.api.primary_release)(self.device);
        }
    }
}

/// A loaded module.
#[derive(Debug)]
pub struct Module<'c> {
    context: &'c Context<'c>,
    handle: CuModule,
    /// The image, kept while the module lives: the driver's documentation does not
    /// promise a copy, and with lazy loading it may read it later.
    _image: Vec<u64>,
}

impl Drop for Module<'_> {
    fn drop(&mut self) {
        // SAFETY: unloads the module `Context::load` loaded, once.
        unsafe {
            (self.context.driver.api.module_unload)(self.handle);
        }
    }
}

/// A kernel of a loaded module.
#[derive(Debug, Clone, Copy)]
pub struct Function(CuFunction);

/// Device memory, freed when dropped.
#[derive(Debug)]
pub struct DeviceBuffer<'c> {
    context: &'c Context<'c>,
    pub(crate) pointer: CuDevicePtr,
    bytes: usize,
}

impl Drop for DeviceBuffer<'_> {
    fn drop(&mut self) {
        // SAFETY: frees the allocation `Context::alloc` made, once.
        unsafe {
            (self.context.driver.api.mem_free)(self.pointer);
        }
    }
}

impl<'d> Context<'d> {
    pub fn driver(&self) -> &'d Driver {
        self.driver
    }

    /// The device's ordinal.
    pub fn ordinal(&self) -> i32 {
        self.ordinal
    }

    /// The device this context is on.
    pub fn device(&self) -> Result<Device, GpuError> {
        self.driver.device(self.ordinal)
    }

    /// Loads a cubin, PTX or fatbin image, as the CUDA runtime would.
    pub fn load(&self, image: &[u8]) -> Result<Module<'_>, CudaCode> {
        let aligned = aligned_copy(image);
        let mut handle: CuModule = std::ptr::null_mut();
        // SAFETY: cuda.h's signature; the image outlives the call.
        let code =
            unsafe { (self.driver.api.module_load)(&raw mut handle, aligned.as_ptr().cast()) };
        if code == CUDA_SUCCESS {
            Ok(Module {
                context: self,
                handle,
                _image: aligned,
            })
        } else {
            Err(self.driver.code(code))
        }
    }

    /// Loads an image as [`Context::load`] does, compiling any PTX at the lowest
    /// optimisation level (whether an image loads and which kernels it holds does not
    /// depend on it; the compile takes a fraction of the time), and with the
    /// compiler's error log in the error.
    pub fn load_quickly(&self, image: &[u8]) -> Result<Module<'_>, CudaCode> {
        let aligned = aligned_copy(image);
        let mut log = vec![0u8; 4096];
        let mut options = [
            JIT_OPTIMIZATION_LEVEL,
            JIT_ERROR_LOG_BUFFER,
            JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
        ];
        // Option values are passed in the pointers themselves, as cuda.h says.
        let mut values: [*mut c_void; 3] = [
            std::ptr::null_mut(),
            log.as_mut_ptr().cast(),
            std::ptr::without_provenance_mut(log.len()),
        ];
        let mut handle: CuModule = std::ptr::null_mut();
        // SAFETY: cuda.h's signature; three options with their values; the log buffer
        // has the size given; the image outlives the call.
        let code = unsafe {
            (self.driver.api.module_load_ex)(
                &raw mut handle,
                aligned.as_ptr().cast(),
                3,
                options.as_mut_ptr(),
                values.as_mut_ptr(),
            )
        };
        if code == CUDA_SUCCESS {
            return Ok(Module {
                context: self,
                handle,
                _image: aligned,
            });
        }
        let mut error = self.driver.code(code);
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        let text = String::from_utf8_lossy(&log[..end]);
        if !text.trim().is_empty() {
            error.name = format!("{}: {}", error.name, text.trim());
        }
        Err(error)
    }

    /// Waits for the device's work.
    pub fn synchronize(&self) -> Result<(), GpuError> {
        // SAFETY: cuda.h's signature.
        self.driver.check("cuCtxSynchronize", unsafe {
            (self.driver.api.synchronize)()
        })
    }

    /// `bytes` of device memory.
    pub fn alloc(&self, bytes: usize) -> Result<DeviceBuffer<'_>, GpuError> {
        let mut pointer = 0;
        // SAFETY: cuda.h's signature; freed when the buffer drops.
        self.driver.check("cuMemAlloc", unsafe {
            (self.driver.api.mem_alloc)(&raw mut pointer, bytes.max(1))
        })?;
        Ok(DeviceBuffer {
            context: self,
            pointer,
            bytes,
        })
    }

    /// Device memory holding `values`.
    pub fn upload<T: Copy>(&self, values: &[T]) -> Result<DeviceBuffer<'_>, GpuError> {
        let buffer = self.alloc(std::mem::size_of_val(values))?;
        buffer.write(values)?;
        Ok(buffer)
    }

    /// Launches `function` on a 1-D grid with the given arguments (pointers to each
    /// argument's value, as cuLaunchKernel takes them).
    pub fn launch(
        &self,
        function: Function,
        blocks: u32,
        threads: u32,
        arguments: &mut [*mut c_void],
    ) -> Result<(), GpuError> {
        // SAFETY: cuda.h's signature; the arguments match the kernel's parameters,
        // which the caller declared; the launch is on the default stream.
        let code = unsafe {
            (self.driver.api.launch)(
                function.0,
                blocks,
                1,
                1,
                threads,
                1,
                1,
                0,
                std::ptr::null_mut(),
                arguments.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        };
        self.driver.check("cuLaunchKernel", code)
    }
}

impl Module<'_> {
    /// The kernel named `name` (mangled), `Ok(None)` when the module lacks it.
    pub fn function(&self, name: &str) -> Result<Option<Function>, CudaCode> {
        let mut symbol = name.as_bytes().to_vec();
        symbol.push(0);
        let mut function: CuFunction = std::ptr::null_mut();
        // SAFETY: cuda.h's signature; the name is NUL-terminated.
        let code = unsafe {
            (self.context.driver.api.module_function)(
                &raw mut function,
                self.handle,
                symbol.as_ptr().cast(),
            )
        };
        match code {
            CUDA_SUCCESS => Ok(Some(Function(function))),
            CUDA_ERROR_NOT_FOUND => Ok(None),
            code => Err(self.context.driver.code(code)),
        }
    }
}

impl DeviceBuffer<'_> {
    /// The device address, for libraries' arguments.
    pub fn address(&self) -> *mut c_void {
        self.pointer as *mut c_void
    }

    /// Copies `values` into the start of the buffer.
    pub fn write<T: Copy>(&self, values: &[T]) -> Result<(), GpuError> {
        let bytes = std::mem::size_of_val(values);
        if bytes > self.bytes {
            return Err(GpuError::Wrong("write beyond a device buffer".to_owned()));
        }
        // SAFETY: cuda.h's signature; the source has `bytes` bytes, the buffer more.
        let code = unsafe {
            (self.context.driver.api.copy_to_device)(self.pointer, values.as_ptr().cast(), bytes)
        };
        self.context.driver.check("cuMemcpyHtoD", code)
    }

    /// Copies the start of the buffer into `values`.
    pub fn read<T: Copy>(&self, values: &mut [T]) -> Result<(), GpuError> {
        let bytes = std::mem::size_of_val(values);
        if bytes > self.bytes {
            return Err(GpuError::Wrong("read beyond a device buffer".to_owned()));
        }
        // SAFETY: cuda.h's signature; the destination has `bytes` bytes.
        let code = unsafe {
            (self.context.driver.api.copy_to_host)(values.as_mut_ptr().cast(), self.pointer, bytes)
        };
        self.context.driver.check("cuMemcpyDtoH", code)
    }
}

/// Where the driver search and the driver's own answer meet: the library path, the
/// CUDA version it supports and its devices.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DriverReport {
    pub library: PathBuf,
    pub cuda: DriverCuda,
    pub devices: Vec<Device>,
}

impl DriverReport {
    pub fn of(driver: &Driver) -> Result<Self, GpuError> {
        Ok(DriverReport {
            library: driver.path().to_owned(),
            cuda: driver.cuda_version()?,
            devices: driver.devices()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_copied_whole_aligned_and_terminated() {
        let image = b"PTX text of eleven";
        let aligned = aligned_copy(image);
        let bytes: Vec<u8> = aligned.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(&bytes[..image.len()], image);
        assert!(bytes[image.len()..].iter().all(|&b| b == 0));
        assert!(bytes.len() > image.len());
    }

    #[test]
    fn uuids_read_as_nvidia_smi_prints_them() {
        let bytes = [
            0x34, 0x11, 0x53, 0x23, 0x88, 0x53, 0x14, 0xb5, 0xbd, 0xd5, 0xaf, 0xc8, 0x4c, 0x9b,
            0xa6, 0x35,
        ];
        assert_eq!(
            format_uuid(&bytes),
            "GPU-34115323-8853-14b5-bdd5-afc84c9ba635"
        );
    }
}
