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
