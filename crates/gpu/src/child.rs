//! What runs in the child processes `gpu-check` starts: one loads containers for the
//! parent as it asks, one runs a smoke test. A crash of the driver or of a library
//! under test ends the child, never the check.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::driver::Driver;
use crate::error::GpuError;
use crate::probe::{ContainerProbe, ProbeResult, probe};
use crate::smoke::{SmokeOutcome, SmokeTest, foreign_libraries, mapped_libraries};

/// Reads one [`ContainerProbe`] per line from `input`, loads it on device `ordinal`,
/// and writes one [`ProbeResult`] per line to `output`, flushed, until `input` ends.
pub fn serve_loads(
    driver: &Path,
    ordinal: i32,
    input: impl BufRead,
    mut output: impl Write,
) -> Result<(), GpuError> {
    let driver = Driver::open(driver)?;
    let context = driver.context(ordinal)?;
    let broken = |error: std::io::Error| GpuError::Wrong(format!("the parent's pipe: {error}"));
    for line in input.lines() {
        let line = line.map_err(broken)?;
        let request: ContainerProbe = serde_json::from_str(&line)
            .map_err(|error| GpuError::Wrong(format!("a request that is not a probe: {error}")))?;
        let result = probe(&context, &request).unwrap_or_else(|error| ProbeResult {
            load_error: Some(format!("not loaded: {error}")),
            missing: Vec::new(),
            seconds: 0.0,
        });
        let text = serde_json::to_string(&result).unwrap_or_default();
        writeln!(output, "{text}").map_err(broken)?;
        output.flush().map_err(broken)?;
    }
    Ok(())
}

/// Runs `test` on `library` on device `ordinal`, the driver loaded first from its
/// path, then says where every CUDA library the process mapped came from.
pub fn run_smoke(
    driver: &Path,
    ordinal: i32,
    test: SmokeTest,
    library: &Path,
    allowed: &[PathBuf],
) -> SmokeOutcome {
    let result = Driver::open(driver).and_then(|opened| {
        let context = opened.context(ordinal)?;
        let detail = test.run(&context, library);
        drop(context);
        // The driver stays loaded until the maps are read.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        Ok((detail, maps))
    });
    let (detail, maps) = match result {
        Ok(done) => done,
        Err(error) => (Err(error), String::new()),
    };
    let mapped = mapped_libraries(&maps);
    let folder = driver.parent().unwrap_or(Path::new("/"));
    let foreign = foreign_libraries(&mapped, allowed, folder);
    let passed = detail.is_ok() && foreign.is_empty() && !mapped.is_empty();
    let detail = match detail {
        Ok(checked) if foreign.is_empty() => checked,
        Ok(checked) => {
            format!("{checked}; but CUDA libraries came from outside the paths under test")
        }
        Err(error) => error.to_string(),
    };
    SmokeOutcome {
        passed,
        detail,
        foreign,
        mapped,
    }
}
