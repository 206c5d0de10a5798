//! Reading untrusted bytes at positions, every read bounds-checked into an `Error`:
//! little-endian fields of a slice (`Bytes`), and `ReadAt`, a slice in memory or a file
//! read with `pread` (`FileReader`), which the container walk reads through.

use crate::error::Error;

/// Bounds-checked little-endian reads over a byte slice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bytes<'a> {
    data: &'a [u8],
    what: &'static str,
}

impl<'a> Bytes<'a> {
    pub(crate) fn new(data: &'a [u8], what: &'static str) -> Self {
        Self { data, what }
    }

    pub(crate) fn slice(&self, offset: u64, len: u64) -> Result<&'a [u8], Error> {
        let available = (self.data.len() as u64).saturating_sub(offset);
        if offset > self.data.len() as u64 || len > available {
            return Err(Error::Truncated {
                what: self.what,
                offset,
                needed: len,
                available,
            });
        }
        // Both values are within the slice's length, so they fit in usize.
        let start = usize::try_from(offset).expect("bounded by len");
        let end = start + usize::try_from(len).expect("bounded by len");
        Ok(&self.data[start..end])
    }

    pub(crate) fn u16(&self, offset: u64) -> Result<u16, Error> {
        let b = self.slice(offset, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&self, offset: u64) -> Result<u32, Error> {
        let b = self.slice(offset, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&self, offset: u64) -> Result<u64, Error> {
        let b = self.slice(offset, 8)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(b);
        Ok(u64::from_le_bytes(raw))
    }
}

/// Bytes read at a position: a slice in memory, or a file read with `pread` so that
/// walking thousands of headers touches nothing else of the file.
pub trait ReadAt {
    /// Total length.
    fn size(&self) -> u64;
    /// Fills `buf` from `offset`; `what` names the structure for errors.
    fn read_at(&self, offset: u64, buf: &mut [u8], what: &'static str) -> Result<(), Error>;
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8], what: &'static str) -> Result<(), Error> {
        buf.copy_from_slice(Bytes::new(self, what).slice(offset, buf.len() as u64)?);
        Ok(())
    }
}

/// An open file read with `pread`; its size is taken once.
#[derive(Debug, Clone, Copy)]
pub struct FileReader<'f> {
    file: &'f std::fs::File,
    size: u64,
}

impl<'f> FileReader<'f> {
    pub fn new(file: &'f std::fs::File) -> std::io::Result<Self> {
        Ok(Self {
            file,
            size: file.metadata()?.len(),
        })
    }
}

impl ReadAt for FileReader<'_> {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8], what: &'static str) -> Result<(), Error> {
        let available = self.size.saturating_sub(offset);
        if offset > self.size || buf.len() as u64 > available {
            return Err(Error::Truncated {
                what,
                offset,
                needed: buf.len() as u64,
                available,
            });
        }
        std::os::unix::fs::FileExt::read_exact_at(self.file, buf, offset).map_err(|e| {
            Error::Object {
                what,
                problem: format!("read at offset {offset:#x}: {e}"),
            }
        })
    }
}
