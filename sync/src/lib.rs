//! Replication and export for synapsed-storage.
//!
//! This crate knows nothing of the engine's files: it holds the parts of sync
//! between devices, backup and IPFS export that work on entries, frames, byte
//! streams and directories of already-encrypted files. The engine
//! (`synapsed-storage`) depends on it and supplies the store through the
//! traits defined here, so the command-line tool and applications reach every
//! feature through the one facade crate.

pub mod backup;
pub mod channel;
pub mod ipfs;

pub use channel::{ChannelError, FrameChannel, MAX_FRAME_BYTES};
