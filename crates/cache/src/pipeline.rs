//! Moving a stream between threads in chunks, so that the stages of a push (writing and
//! hashing the NAR, compressing it, hashing and writing the result) run side by side.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender};

/// The bytes one send carries.
const CHUNK: usize = 1 << 20;

/// A writer whose bytes go, in chunks, to the thread holding the receiving end.
#[derive(Debug)]
pub(crate) struct ChunkSender {
    buffer: Vec<u8>,
    sender: SyncSender<Vec<u8>>,
}

impl ChunkSender {
    pub(crate) fn new(sender: SyncSender<Vec<u8>>) -> Self {
        ChunkSender {
            buffer: Vec::with_capacity(CHUNK),
            sender,
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let full = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
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
pub(crate) fn drain(receiver: Receiver<Vec<u8>>, out: &mut impl Write) -> io::Result<()> {
    for chunk in receiver {
        out.write_all(&chunk)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_whole_and_in_order() {
        let data: Vec<u8> = (0..3_000_017u32).map(|i| (i % 251) as u8).collect();
        let (sender, receiver) = std::sync::mpsc::sync_channel(2);
        let expected = data.clone();
        let consumer = std::thread::spawn(move || {
            let mut out = Vec::new();
            drain(receiver, &mut out).expect("drain");
            out
        });
        let mut writer = ChunkSender::new(sender);
        for piece in data.chunks(77_777) {
            writer.write_all(piece).expect("write");
        }
        writer.finish().expect("finish");
        assert_eq!(consumer.join().expect("thread"), expected);
    }

    #[test]
    fn a_stopped_consumer_fails_the_writer() {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        drop(receiver);
        let mut writer = ChunkSender::new(sender);
        let error = writer
            .write_all(&vec![0; 3 * CHUNK])
            .expect_err("nobody reads");
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    }
}
