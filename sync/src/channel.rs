//! The frame channel a sync session runs over.
//!
//! A session exchanges whole frames (byte strings of at most [`MAX_FRAME_BYTES`]).
//! The protocol side only sees this trait, so the same session code runs over the
//! authenticated device transport, over an in-memory pipe in tests, and over a
//! simulated network that drops, cuts, delays and reorders.

/// Largest frame either side sends or accepts (16 MiB): a peer announcing a
/// longer one ends the session with [`ChannelError::Oversized`] before any of it
/// is read.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// Why a channel could not carry a frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The connection failed or was cut (including a peer that went away
    /// mid-frame).
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The peer announced a frame longer than the limit.
    #[error("the peer sent a frame of {len} bytes, more than the {max}-byte limit")]
    Oversized {
        /// Length the peer announced.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// The peer broke the transport's rules (authentication, framing).
    #[error("protocol violation: {0}")]
    Protocol(String),
}

/// A bidirectional channel of frames between two devices. Blocking: the engine
/// side of a session is blocking code; a transport built on an async runtime
/// bridges to it.
pub trait FrameChannel: Send {
    /// Sends one frame (at most [`MAX_FRAME_BYTES`]).
    fn send(&mut self, frame: &[u8]) -> Result<(), ChannelError>;
    /// Receives the next frame; `Ok(None)` when the peer closed the channel
    /// cleanly between frames.
    fn recv(&mut self) -> Result<Option<Vec<u8>>, ChannelError>;
}
