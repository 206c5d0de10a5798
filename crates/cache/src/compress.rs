//! Compressing NARs for a cache and reading them back.

use std::io::{self, Read, Write};

use cudapkgs_nix::narinfo::Compression;

use crate::Error;

/// How `push` compresses: the format, its level and zstd's worker threads (0: one
/// thread, no workers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub compression: Compression,
    pub level: i32,
    pub threads: u32,
}

impl Settings {
    /// zstd level 3 on every core: what `zstd -T0 -3` does.
    pub fn default_zstd() -> Settings {
        Settings {
            compression: Compression::Zstd,
            level: 3,
            threads: std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(1)),
        }
    }

    /// The default level of a compression (zstd 3, xz 6).
    pub fn default_level(compression: Compression) -> i32 {
        match compression {
            Compression::Xz => 6,
            _ => 3,
        }
    }
}

/// A writer that compresses into `W`; `finish` ends the stream.
pub enum Encoder<W: Write> {
    None(W),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Xz(liblzma::write::XzEncoder<W>),
}

impl<W: Write> std::fmt::Debug for Encoder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoder::None(_) => "Encoder::None",
            Encoder::Zstd(_) => "Encoder::Zstd",
            Encoder::Xz(_) => "Encoder::Xz",
        })
    }
}

impl<W: Write> Encoder<W> {
    pub fn new(settings: Settings, out: W) -> Result<Encoder<W>, Error> {
        let failed = |e: io::Error| Error::Unsupported(format!("cannot start compressing: {e}"));
        Ok(match settings.compression {
            Compression::None => Encoder::None(out),
            Compression::Zstd => {
                let mut encoder =
                    zstd::stream::write::Encoder::new(out, settings.level).map_err(failed)?;
                if settings.threads > 1 {
                    encoder.multithread(settings.threads).map_err(failed)?;
                }
                Encoder::Zstd(encoder)
            }
            Compression::Xz => {
                let level = u32::try_from(settings.level.clamp(0, 9)).unwrap_or(6);
                Encoder::Xz(liblzma::write::XzEncoder::new(out, level))
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "pushing with compression {} is not supported: use zstd, xz or none",
                    other.name()
                )));
            }
        })
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(out) => Ok(out),
            Encoder::Zstd(encoder) => encoder.finish(),
            Encoder::Xz(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(out) => out.write(bytes),
            Encoder::Zstd(encoder) => encoder.write(bytes),
            Encoder::Xz(encoder) => encoder.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(out) => out.flush(),
            Encoder::Zstd(encoder) => encoder.flush(),
            Encoder::Xz(encoder) => encoder.flush(),
        }
    }
}

/// A reader of the NAR inside a file compressed with `compression`.
pub fn decoder<'a>(
    compression: Compression,
    input: impl Read + Send + 'a,
) -> Result<Box<dyn Read + Send + 'a>, Error> {
    Ok(match compression {
        Compression::None => Box::new(input),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(input)
                .map_err(|e| Error::Unsupported(format!("cannot start zstd: {e}")))?,
        ),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(input)),
        other => {
            return Err(Error::Unsupported(format!(
                "NARs compressed with {} cannot be read (zstd, xz and none can)",
                other.name()
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_push_compression_reads_back() {
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 977).to_le_bytes())
            .collect();
        for compression in [Compression::None, Compression::Zstd, Compression::Xz] {
            for threads in [0, 2] {
                let settings = Settings {
                    compression,
                    level: Settings::default_level(compression),
                    threads,
                };
                let mut encoder = Encoder::new(settings, Vec::new()).expect("encoder");
                encoder.write_all(&data).expect("write");
                let packed = encoder.finish().expect("finish");
                if compression != Compression::None {
                    assert!(packed.len() < data.len() / 2, "{compression:?}");
                }
                let mut back = Vec::new();
                decoder(compression, &packed[..])
                    .expect("decoder")
                    .read_to_end(&mut back)
                    .expect("read");
                assert_eq!(back, data, "{compression:?}");
            }
        }
        assert!(
            Encoder::new(
                Settings {
                    compression: Compression::Bzip2,
                    level: 3,
                    threads: 0
                },
                Vec::new()
            )
            .is_err()
        );
        assert!(decoder(Compression::Brotli, &b""[..]).is_err());
    }
}
