//! Keyspaces as the manifest records them: named key spaces that share the
//! store's WAL, seqnos and manifest. Keyspace 0 is the default keyspace; it has
//! no create record, so a store written before keyspaces existed reads as a
//! store holding only the default keyspace.

/// Id of the default keyspace, which every store has and which is never
/// created or dropped by an edit.
pub const DEFAULT_KEYSPACE_ID: u32 = 0;

/// Longest keyspace name in bytes (its length is one byte in the manifest).
pub const MAX_KEYSPACE_NAME_LEN: usize = 255;

/// A keyspace as its create record states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyspaceMeta {
    /// Its id: above 0, never reused after a drop.
    pub id: u32,
    /// Its name: 1..=255 bytes of UTF-8, unique among live keyspaces.
    pub name: String,
    /// Its encoded options; empty in this format version (the store's options apply).
    pub options: Vec<u8>,
}

/// Checks that `name` is a valid keyspace name (1..=255 bytes; UTF-8 by type).
pub fn check_keyspace_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a keyspace name must not be empty".into());
    }
    if name.len() > MAX_KEYSPACE_NAME_LEN {
        return Err(format!("keyspace name of {} bytes exceeds {MAX_KEYSPACE_NAME_LEN}", name.len()));
    }
    Ok(())
}
