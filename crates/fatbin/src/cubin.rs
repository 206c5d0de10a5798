//! Cubin (device ELF) headers and kernel symbols.

use object::read::elf::{ElfFile64, Sym};
use object::{LittleEndian, Object, ObjectSymbol};
use serde::Serialize;

use crate::error::Error;
use crate::read::Bytes;

/// `e_machine` of CUDA device code.
pub const EM_CUDA: u16 = 190;
/// `st_other` bit that marks a kernel entry point.
const STO_CUDA_ENTRY: u8 = 0x10;

/// Relocatable cubins (`-rdc` code, some library code) cannot be loaded as modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CubinType {
    Relocatable,
    Executable,
    Other(u16),
}

/// What a cubin's header and symbol table say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CubinInfo {
    pub elf_type: CubinType,
    /// `EI_OSABI`: 0x33 for the old ABI, 0x41 for the new one.
    pub os_abi: u8,
    /// `EI_ABIVERSION`: 7 (old ABI) or 8 (new).
    pub abi_version: u8,
    pub e_flags: u32,
    /// Kernel names, mangled.
    pub kernels: Vec<String>,
}

impl CubinInfo {
    pub fn is_loadable(&self) -> bool {
        self.elf_type == CubinType::Executable
    }
}

/// Reads a cubin's header and its kernel symbols.
pub fn parse_cubin(data: &[u8]) -> Result<CubinInfo, Error> {
    const WHAT: &str = "cubin";
    let bytes = Bytes::new(data, WHAT);
    let ident = bytes.slice(0, 16)?;
    if &ident[..4] != b"\x7fELF" {
        return Err(Error::malformed(WHAT, 0, "no ELF magic"));
    }
    if ident[4] != 2 || ident[5] != 1 {
        return Err(Error::malformed(WHAT, 4, "not a little-endian 64-bit ELF"));
    }
    let machine = bytes.u16(0x12)?;
    if machine != EM_CUDA {
        return Err(Error::malformed(
            WHAT,
            0x12,
            format!("e_machine is {machine}, not {EM_CUDA} (CUDA)"),
        ));
    }
    let elf_type = match bytes.u16(0x10)? {
        1 => CubinType::Relocatable,
        2 => CubinType::Executable,
        other => CubinType::Other(other),
    };
    let file = ElfFile64::<LittleEndian>::parse(data).map_err(|e| Error::Object {
        what: "cubin",
        problem: e.to_string(),
    })?;
    let kernels = file
        .symbols()
        .filter(|symbol| {
            let raw = symbol.elf_symbol();
            raw.st_type() == object::elf::STT_FUNC && raw.st_other().0 & STO_CUDA_ENTRY != 0
        })
        .filter_map(|symbol| symbol.name().ok().map(str::to_owned))
        .collect();
    Ok(CubinInfo {
        elf_type,
        os_abi: ident[7],
        abi_version: ident[8],
        e_flags: bytes.u32(0x30)?,
        kernels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_cubin() {
        assert!(parse_cubin(b"").is_err());
        assert!(parse_cubin(b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0").is_err());
        let mut host = vec![0u8; 64];
        host[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\0");
        host[0x12] = 62;
        let err = parse_cubin(&host).expect_err("x86-64").to_string();
        assert!(err.contains("e_machine is 62"), "{err}");
    }
}

/// A kernel's C++ name as people read it; a name that is not a mangled C++ name comes
/// back unchanged.
pub fn demangle(name: &str) -> String {
    cpp_demangle::Symbol::new(name)
        .ok()
        .and_then(|symbol| symbol.demangle().ok())
        .unwrap_or_else(|| name.to_owned())
}

#[cfg(test)]
mod demangle_tests {
    use super::demangle;

    #[test]
    fn mangled_names_read_as_cpp_and_others_stay() {
        assert_eq!(demangle("_Z6kernelPfi"), "kernel(float*, int)");
        assert_eq!(demangle("plain_c_kernel"), "plain_c_kernel");
    }
}
