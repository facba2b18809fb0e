//! Keyspaces: named, separately stored key spaces of one store (RocksDB's
//! column families). They share the store's WAL, sequence numbers and manifest;
//! each is created and dropped by one manifest edit. See `docs/design.md`,
//! "Keyspaces".

use std::sync::Arc;

use index::Compression;

/// Name of the default keyspace: id 0, present in every store, never created or
/// dropped. `Db::put`, `Db::get` and the other methods without a keyspace use it.
pub const DEFAULT_KEYSPACE: &str = "default";

/// Names starting with this are internal: the engine's own stores keep their
/// indexes and metadata there, and [`crate::Db::create_keyspace`] refuses them.
pub const INTERNAL_KEYSPACE_PREFIX: &str = "_";

/// A handle to a keyspace: its id and name. Cheap to clone. A handle stays
/// valid as a value after its keyspace is dropped; the store then refuses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Keyspace {
    id: u32,
    name: Arc<str>,
}

impl Keyspace {
    pub(crate) fn new(id: u32, name: &str) -> Keyspace {
        Keyspace { id, name: Arc::from(name) }
    }

    /// The keyspace's id: 0 for the default keyspace; ids are never reused.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The keyspace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is an internal keyspace (its name starts with `_`).
    pub fn is_internal(&self) -> bool {
        self.name.starts_with(INTERNAL_KEYSPACE_PREFIX)
    }
}

/// Options of one keyspace, fixed when it is created and kept in its create
/// record in the manifest: how its tables are built. Each setting left `None`
/// is the store's ([`crate::Options`]); `Default` leaves them all so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyspaceOptions {
    /// Block compression of the keyspace's tables (the store's
    /// `Options::compression` if `None`).
    pub compression: Option<Compression>,
    /// Bloom filter bits per key of the keyspace's tables, 0 for no filter
    /// (the store's `Options::bloom_bits_per_key` if `None`).
    pub bloom_bits_per_key: Option<u32>,
    /// Target size of an uncompressed data block of the keyspace's tables,
    /// 1..=`u32::MAX` bytes (the store's `Options::block_size_bytes` if `None`).
    pub block_size_bytes: Option<usize>,
}

impl KeyspaceOptions {
    /// Sets [`KeyspaceOptions::compression`].
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// Sets [`KeyspaceOptions::bloom_bits_per_key`].
    pub fn with_bloom_bits_per_key(mut self, bits: u32) -> Self {
        self.bloom_bits_per_key = Some(bits);
        self
    }

    /// Sets [`KeyspaceOptions::block_size_bytes`].
    pub fn with_block_size_bytes(mut self, bytes: usize) -> Self {
        self.block_size_bytes = Some(bytes);
        self
    }

    /// The options as the manifest's create record stores them
    /// (`compaction/FORMAT.md`, tag 8): no bytes when every setting is the
    /// store's. [`crate::Error::InvalidArgument`] for a block size outside
    /// 1..=`u32::MAX`.
    pub(crate) fn encode(&self) -> crate::Result<Vec<u8>> {
        let block_size_bytes = match self.block_size_bytes {
            None => None,
            Some(size) => match u32::try_from(size) {
                Ok(size) if size > 0 => Some(size),
                _ => return Err(crate::Error::InvalidArgument(format!("keyspace block_size_bytes {size} is outside 1..=u32::MAX"))),
            },
        };
        let options = compaction::KeyspaceTableOptions { compression: self.compression, bloom_bits_per_key: self.bloom_bits_per_key, block_size_bytes };
        Ok(options.encode())
    }
}
