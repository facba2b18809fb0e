//! Keyspaces: named, separately stored key spaces of one store (RocksDB's
//! column families). They share the store's WAL, sequence numbers and manifest;
//! each is created and dropped by one manifest edit. See `docs/design.md`,
//! "Keyspaces".

use std::sync::Arc;

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

/// Options of one keyspace, fixed when it is created. This version defines
/// none: every keyspace uses the store's [`crate::Options`]. Per-keyspace
/// settings will be added as fields; `Default` stays the store's behaviour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyspaceOptions {}

impl KeyspaceOptions {
    /// The options as the manifest's create record stores them (empty in this version).
    pub(crate) fn encode(&self) -> Vec<u8> {
        Vec::new()
    }
}
