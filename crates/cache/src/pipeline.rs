//! Moving a stream between threads in chunks, so that the stages of a push (writing and
//! hashing the NAR, compressing it, hashing and writing the result) run side by side.
//! Chunks go back to the sender once written, so a stream of any length reuses a few
//! buffers (fresh ones would cost a page fault per page).

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender};

/// The bytes one send carries.
const CHUNK: usize = 1 << 20;

/// Chunks in flight between two stages.
const DEPTH: usize = 4;

/// A writer whose bytes go, in chunks, to the thread holding the `ChunkReceiver`.
#[derive(Debug)]
pub(crate) struct ChunkSender {
    buffer: Vec<u8>,
    sender: SyncSender<Vec<u8>>,
    returned: Receiver<Vec<u8>>,
}

/// The receiving end: `drain` writes what arrives.
#[derive(Debug)]
pub(crate) struct ChunkReceiver {
    receiver: Receiver<Vec<u8>>,
    give_back: Sender<Vec<u8>>,
}

/// A connected pair.
pub(crate) fn chunk_channel() -> (ChunkSender, ChunkReceiver) {
    let (sender, receiver) = std::sync::mpsc::sync_channel(DEPTH);
    let (give_back, returned) = std::sync::mpsc::channel();
    (
        ChunkSender {
            buffer: Vec::with_capacity(CHUNK),
            sender,
            returned,
        },
        ChunkReceiver {
            receiver,
            give_back,
        },
    )
}

impl ChunkSender {
    fn send(&mut self) -> io::Result<()> {
        let mut next = self
            .returned
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        next.clear();
        let full = std::mem::replace(&mut self.buffer, next);
        self.sender
            .send(full)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the next stage stopped"))
    }

    /// Sends what is buffered; the receiver sees the end once this is dropped.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

impl Write for ChunkSender {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buffer.len();
        let taken = room.min(bytes.len());
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() == CHUNK {
            self.send()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes every chunk received into `out`, until the sender is gone.
pub(crate) fn drain(chunks: ChunkReceiver, out: &mut impl Write) -> io::Result<()> {
    for chunk in chunks.receiver {
        out.write_all(&chunk)?;
        // The sender may be gone already: then the buffer is simply freed.
        let _ = chunks.give_back.send(chunk);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_whole_and_in_order() {
        let data: Vec<u8> = (0..3_000_017u32).map(|i| (i % 251) as u8).collect();
        let (mut writer, receiver) = chunk_channel();
        let expected = data.clone();
        let consumer = std::thread::spawn(move || {
            let mut out = Vec::new();
            drain(receiver, &mut out).expect("drain");
            out
        });
        for piece in data.chunks(77_777) {
            writer.write_all(piece).expect("write");
        }
        writer.finish().expect("finish");
        assert_eq!(consumer.join().expect("thread"), expected);
    }

    #[test]
    fn a_stopped_consumer_fails_the_writer() {
        let (mut writer, receiver) = chunk_channel();
        drop(receiver);
        let error = writer
            .write_all(&vec![0; 3 * CHUNK])
            .expect_err("nobody reads");
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    }
}
