//! `Db::table_properties`: per table of the current version, where it is,
//! what it holds, and the user properties its collector wrote, so a store
//! built on the engine can skip tables (a time series whose query range misses
//! a table's min/max timestamp need not read it).

use compaction::Version;
use index::{SeqNo, UserProperties};

use crate::db::Db;
use crate::error::Result;
use crate::keyspace::Keyspace;

/// One table of the current version.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableProperties {
    /// The table's file number (its file is `NNNNNN.sst`).
    pub file_number: u64,
    /// Its level (0 is the newest).
    pub level: usize,
    /// Smallest user key in it.
    pub smallest_key: Vec<u8>,
    /// Largest user key in it.
    pub largest_key: Vec<u8>,
    /// Smallest sequence number in it.
    pub min_seqno: SeqNo,
    /// Largest sequence number in it.
    pub max_seqno: SeqNo,
    /// Entries (every version and tombstone counts).
    pub entries: u64,
    /// Size of the file in bytes.
    pub size_bytes: u64,
    /// What the keyspace's collector returned for it; empty when it had none,
    /// or for a table written before user properties existed.
    pub user_properties: UserProperties,
}

impl Db {
    /// Every table of the default keyspace in the current version, level by
    /// level (level 0 newest first, deeper levels in key order), with its
    /// user properties. Opens each table through the table cache (its
    /// properties block is authenticated like every block); a damaged table
    /// is a `Corruption` error naming it.
    pub fn table_properties(&self) -> Result<Vec<TableProperties>> {
        properties_of(self, &self.inner.versions.current())
    }

    /// [`Db::table_properties`] of the tables of `keyspace`;
    /// [`crate::Error::NoSuchKeyspace`] if it is not live.
    pub fn table_properties_in(&self, keyspace: &Keyspace) -> Result<Vec<TableProperties>> {
        let version = self
            .inner
            .versions
            .current()
            .keyspace_levels(keyspace.id())
            .ok_or_else(|| crate::Error::NoSuchKeyspace(keyspace.name().to_owned()))?;
        properties_of(self, &version)
    }
}

/// The tables of `version`'s own levels (one keyspace's) with their properties.
fn properties_of(db: &Db, version: &Version) -> Result<Vec<TableProperties>> {
    let inner = &db.inner;
    let mut out = Vec::new();
    for level in 0..version.num_levels() {
        for meta in version.level_files(level) {
            let table = inner.tables.get(meta.number)?;
            out.push(TableProperties {
                file_number: meta.number,
                level,
                smallest_key: meta.smallest.user_key.clone(),
                largest_key: meta.largest.user_key.clone(),
                min_seqno: meta.min_seqno,
                max_seqno: meta.max_seqno,
                entries: meta.entries,
                size_bytes: meta.size,
                user_properties: table.user_properties().clone(),
            });
        }
    }
    Ok(out)
}
