//! Replication and export for synapsed-storage.
//!
//! This crate knows nothing of the engine's files: it holds the parts of sync
//! between devices, backup and IPFS export that work on entries, frames, byte
//! streams and directories of already-encrypted files. The engine
//! (`synapsed-storage`) depends on it and supplies the store through the
//! traits defined here, so the command-line tool and applications reach every
//! feature through the one facade crate.
//!
//! A session runs over any [`FrameChannel`] (the device transport's TLS
//! channel, or [`mem::mem_pair`] in one process), and orders writes by
//! hybrid logical clocks:
//!
//! ```
//! use sync::hlc::Clock;
//! use sync::{FrameChannel, Hlc};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (mut a, mut b) = sync::mem::mem_pair();
//! a.send(b"hello")?;
//! assert_eq!(b.recv()?, Some(b"hello".to_vec()));
//!
//! // A clock never goes back, even when the wall clock does.
//! let mut clock = Clock::new(Hlc::default(), 60_000);
//! let first = clock.tick(1_000);
//! let second = clock.tick(900);
//! assert!(second > first);
//! // A peer's clock too far ahead is refused, and leaves this clock alone.
//! assert!(clock.observe(Hlc::new(10_000_000, 0), 1_000).is_err());
//! assert_eq!(clock.last(), second);
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

pub mod backup;
pub mod channel;
pub mod identity;
pub mod pairing;
pub mod transport;
pub mod ipfs;

pub use channel::{ChannelError, FrameChannel, MAX_FRAME_BYTES};
pub use identity::{DeviceId, DeviceIdentity, IdentityError};
pub use pairing::{Pairing, PairingError};
pub use transport::{Listener, TlsChannel, Transport, TransportError, TransportOptions, TrustedPeers};
pub mod crdt;
pub mod fingerprint;
pub mod hlc;
pub mod mem;
pub mod proto;
pub mod session;
pub mod version;

pub use crdt::{CrdtError, CrdtKind, CrdtState};
pub use fingerprint::Fingerprint;
pub use hlc::{ClockSkew, Hlc};
pub use proto::Scope;
pub use session::{initiate, respond, Applied, Rights, SessionError, SessionOptions, StoreError, SyncStats, SyncStore};
pub use version::{Entry, ReplicaId, Version};

#[cfg(test)]
mod session_tests;
