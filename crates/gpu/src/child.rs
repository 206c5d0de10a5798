//! What runs in the child processes `gpu-check` starts: one loads containers for the
//! parent as it asks, one runs a smoke test. A crash of the driver or of a library
//! under test ends the child, never the check.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::driver::Driver;
use crate::error::GpuError;
use crate::ffi::Library;
use crate::probe::{ContainerProbe, ProbeResult, probe};
use crate::smoke::{SmokeOutcome, SmokeTest, foreign_libraries, mapped_libraries};

/// The line a loading child writes once it holds a context, before any answer: a
/// child that ends before it could not start, which is not a container's doing.
pub const READY: &str = "ready";

/// Reads one [`ContainerProbe`] per line from `input`, loads it on the device with
/// this UUID, and writes one [`ProbeResult`] per line to `output`, flushed, until
/// `input` ends; first [`READY`].
pub fn serve_loads(
    driver: &Path,
    uuid: &str,
    input: impl BufRead,
    mut output: impl Write,
) -> Result<(), GpuError> {
    let driver = Driver::open(driver)?;
    let context = driver.context(driver.ordinal_of(uuid)?)?;
    let broken = |error: std::io::Error| GpuError::Wrong(format!("the parent's pipe: {error}"));
    writeln!(output, "{READY}").map_err(broken)?;
    output.flush().map_err(broken)?;
    for line in input.lines() {
        let line = line.map_err(broken)?;
        let request: ContainerProbe = serde_json::from_str(&line)
            .map_err(|error| GpuError::Wrong(format!("a request that is not a probe: {error}")))?;
        let result = probe(&context, &request).unwrap_or_else(|error| ProbeResult {
            load_error: None,
            load_code: None,
            error: Some(error.with_causes()),
            missing: Vec::new(),
            seconds: 0.0,
        });
        let text = serde_json::to_string(&result).unwrap_or_default();
        writeln!(output, "{text}").map_err(broken)?;
        output.flush().map_err(broken)?;
    }
    Ok(())
}

/// Runs `test` on `library` on the device with this UUID, the driver loaded first
/// from its path, then says where every CUDA library the process mapped came from.
pub fn run_smoke(
    driver: &Path,
    uuid: &str,
    test: SmokeTest,
    library: &Path,
    allowed: &[PathBuf],
) -> SmokeOutcome {
    let result = Driver::open(driver).and_then(|opened| {
        let context = opened.context(opened.ordinal_of(uuid)?)?;
        // Held until the maps are read, so the library under test and what it loaded
        // are still mapped when the test's own handle is closed.
        let held = Library::open(library)?;
        let detail = test.run(&context, library);
        drop(context);
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        drop(held);
        Ok((detail, maps))
    });
    let (detail, maps) = match result {
        Ok(done) => done,
        Err(error) => (Err(error), String::new()),
    };
    let mapped = mapped_libraries(&maps);
    let folder = driver.parent().unwrap_or(Path::new("/"));
    let foreign = foreign_libraries(&mapped, allowed, folder);
    let real = |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let tested = real(library);
    let seen = mapped.iter().any(|path| real(path) == tested);
    let passed = detail.is_ok() && foreign.is_empty() && seen;
    let detail = match detail {
        Ok(checked) if !seen => format!(
            "{checked}; but {} is not among the mapped libraries",
            library.display()
        ),
        Ok(checked) if foreign.is_empty() => checked,
        Ok(checked) => {
            format!("{checked}; but CUDA libraries came from outside the paths under test")
        }
        Err(error) => error.with_causes(),
    };
    SmokeOutcome {
        passed,
        detail,
        foreign,
        mapped,
    }
}
