//! An in-process pipe that hands over whole chunks: the writer's buffers become the
//! reader's, with no copy into a small kernel buffer and no system call per 64 KiB.

use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Chunks in flight at most: enough to keep both threads busy, little memory.
const CHUNKS_IN_FLIGHT: usize = 8;

pub(crate) struct ChunkWriter {
    chunks: SyncSender<Vec<u8>>,
    /// Buffers the reader is done with, reused so that memory is not mapped afresh
    /// (and faulted in) for every chunk.
    spare: Receiver<Vec<u8>>,
}

pub(crate) struct ChunkReader {
    chunks: Receiver<Vec<u8>>,
    spare: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    position: usize,
}

/// A connected writer and reader; the reader sees the end once the writer is dropped.
pub(crate) fn chunk_pipe() -> (ChunkWriter, ChunkReader) {
    let (sender, receiver) = sync_channel(CHUNKS_IN_FLIGHT);
    let (spare_sender, spare_receiver) = sync_channel(CHUNKS_IN_FLIGHT + 2);
    let reader = ChunkReader {
        chunks: receiver,
        spare: spare_sender,
        current: Vec::new(),
        position: 0,
    };
    let writer = ChunkWriter {
        chunks: sender,
        spare: spare_receiver,
    };
    (writer, reader)
}

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !buf.is_empty() {
            let mut chunk = self.spare.try_recv().unwrap_or_default();
            chunk.clear();
            chunk.extend_from_slice(buf);
            self.chunks
                .send(chunk)
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader stopped"))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.position == self.current.len() {
            match self.chunks.recv() {
                Ok(chunk) => {
                    let done = std::mem::replace(&mut self.current, chunk);
                    // The writer may be gone or have enough spares; either way is fine.
                    let _ = self.spare.try_send(done);
                    self.position = 0;
                }
                // The writer is gone: the end of the stream.
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.current[self.position..])
    }

    fn consume(&mut self, amount: usize) {
        self.position = (self.position + amount).min(self.current.len());
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_every_byte_in_order_then_ends() {
        let (mut writer, mut reader) = chunk_pipe();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let writing = std::thread::spawn(move || {
            for part in data.chunks(777) {
                writer.write_all(part).expect("write");
            }
        });
        let mut received = Vec::new();
        reader.read_to_end(&mut received).expect("read");
        writing.join().expect("join");
        assert_eq!(received, expected);
    }
}
