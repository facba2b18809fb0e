//! One adapter per engine; each is compiled only with its `peer-*` feature.

#[cfg(feature = "peer-fjall")]
pub mod fjall;
#[cfg(feature = "peer-lmdb")]
pub mod lmdb;
#[cfg(feature = "peer-redb")]
pub mod redb;
#[cfg(feature = "peer-rocksdb")]
pub mod rocksdb;
#[cfg(feature = "peer-sled")]
pub mod sled;
#[cfg(feature = "peer-sqlite")]
pub mod sqlite;
pub mod synapsed;
