//! In-memory frame channels for tests and simulations: a connected pair, and a
//! wrapper that cuts the connection or damages a frame on a schedule.
//!
//! A session runs over a reliable, ordered stream (TLS over TCP), where a
//! dropped, delayed or reordered segment shows up either as a later frame or,
//! once the transport gives up, as a broken connection; the protocol sees no
//! reordering of frames. So the simulation's faults are what a session can
//! meet: the connection cut after any number of frames (in either direction,
//! before or after the frame is delivered), a frame cut short, and a frame
//! with a byte changed.

use std::sync::mpsc::{channel, Receiver, Sender};

use crate::channel::{ChannelError, FrameChannel, MAX_FRAME_BYTES};

/// One end of an in-memory channel.
#[derive(Debug)]
pub struct MemChannel {
    tx: Option<Sender<Vec<u8>>>,
    rx: Receiver<Vec<u8>>,
}

/// Two connected ends.
pub fn mem_pair() -> (MemChannel, MemChannel) {
    let (a_tx, b_rx) = channel();
    let (b_tx, a_rx) = channel();
    (MemChannel { tx: Some(a_tx), rx: a_rx }, MemChannel { tx: Some(b_tx), rx: b_rx })
}

fn broken() -> ChannelError {
    ChannelError::Io(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the connection is closed"))
}

impl MemChannel {
    /// Closes the sending side: the peer's `recv` sees a clean close.
    pub fn close(&mut self) {
        self.tx = None;
    }
}

impl FrameChannel for MemChannel {
    fn send(&mut self, frame: &[u8]) -> Result<(), ChannelError> {
        if frame.len() > MAX_FRAME_BYTES {
            return Err(ChannelError::Oversized { len: frame.len() as u64, max: MAX_FRAME_BYTES });
        }
        self.tx.as_ref().ok_or_else(broken)?.send(frame.to_vec()).map_err(|_| broken())
    }

    fn recv(&mut self) -> Result<Option<Vec<u8>>, ChannelError> {
        Ok(self.rx.recv().ok())
    }
}

/// A fault a [`FaultyChannel`] injects into the frame it sends as number `at`
/// (counting from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The connection breaks before the frame leaves.
    CutBefore,
    /// The frame arrives, then the connection breaks.
    CutAfter,
    /// Only the first `keep` bytes arrive, then the connection breaks.
    Truncate {
        /// Bytes that arrive.
        keep: usize,
    },
    /// The byte at `offset` (modulo the frame's length) arrives XORed with `mask`.
    Flip {
        /// Which byte.
        offset: usize,
        /// What to XOR it with (non-zero).
        mask: u8,
    },
}

/// A channel that injects one fault into one of the frames it sends.
#[derive(Debug)]
pub struct FaultyChannel {
    inner: Option<MemChannel>,
    sent: usize,
    at: usize,
    fault: Fault,
}

impl FaultyChannel {
    /// Wraps `inner`; the frame sent as number `at` meets `fault`.
    pub fn new(inner: MemChannel, at: usize, fault: Fault) -> FaultyChannel {
        FaultyChannel { inner: Some(inner), sent: 0, at, fault }
    }
}

impl FrameChannel for FaultyChannel {
    fn send(&mut self, frame: &[u8]) -> Result<(), ChannelError> {
        let n = self.sent;
        self.sent += 1;
        let inner = self.inner.as_mut().ok_or_else(broken)?;
        if n != self.at {
            return inner.send(frame);
        }
        match self.fault {
            Fault::CutBefore => {
                self.inner = None;
                Err(broken())
            }
            Fault::CutAfter => {
                inner.send(frame)?;
                self.inner = None;
                Ok(())
            }
            Fault::Truncate { keep } => {
                inner.send(frame.get(..keep.min(frame.len())).unwrap_or_default())?;
                self.inner = None;
                Ok(())
            }
            Fault::Flip { offset, mask } => {
                let mut f = frame.to_vec();
                let len = f.len().max(1);
                if let Some(b) = f.get_mut(offset % len) {
                    *b ^= mask.max(1);
                }
                inner.send(&f)
            }
        }
    }

    fn recv(&mut self) -> Result<Option<Vec<u8>>, ChannelError> {
        match self.inner.as_mut() {
            Some(c) => c.recv(),
            None => Err(broken()),
        }
    }
}
