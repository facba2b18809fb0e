//! Sorted data of synapsed-storage: internal keys, the memtable, the SSTable
//! format (prefix-compressed blocks with restart points, block index, bloom filter,
//! properties, footer; every block compressed then encrypted), the block cache of
//! decrypted blocks, and the merging iterators that read across all of them.
//! The SSTable layout is documented in `index/FORMAT.md`.
//!
//! Writes land in a [`Memtable`]; a flush writes its entries, in internal-key
//! order, through a [`TableBuilder`]; a [`TableReader`] answers point reads at
//! any snapshot:
//!
//! ```
//! use std::sync::Arc;
//! use crypto::{KeyManager, StdVfs, Vfs};
//! use index::{InternalKey, Memtable, TableBuilder, TableOptions, TableReader, ValueKind};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mem = Memtable::new(1);
//! mem.insert(b"apple", 1, ValueKind::Put, b"red");
//! mem.insert(b"apple", 2, ValueKind::Put, b"green");
//! assert_eq!(mem.get(b"apple", 1), Some((1, ValueKind::Put, b"red".to_vec())));
//!
//! let dir = tempfile::tempdir()?;
//! let vfs: Arc<dyn Vfs> = Arc::new(StdVfs::new());
//! let keys = KeyManager::ephemeral();
//! let path = dir.path().join("000005.sst");
//! let mut table = TableBuilder::new(vfs.create(&path)?, &keys, 5, "000005.sst", TableOptions::default())?;
//! // Newest version of a key first.
//! table.add(&InternalKey::new(b"apple".to_vec(), 2, ValueKind::Put), b"green")?;
//! table.add(&InternalKey::new(b"apple".to_vec(), 1, ValueKind::Put), b"red")?;
//! table.finish()?;
//!
//! let reader = TableReader::open(vfs.open(&path)?, &keys, 5, "000005.sst", None)?;
//! assert_eq!(reader.get(b"apple", 1)?, Some((1, ValueKind::Put, b"red".to_vec())));
//! assert_eq!(reader.get(b"apple", 9)?, Some((2, ValueKind::Put, b"green".to_vec())));
//! assert_eq!(reader.get(b"pear", 9)?, None);
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod error;
mod format;
#[doc(hidden)]
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod iter;
mod key;
mod memtable;
mod range_del;
mod table;

pub use error::{Error, Result};
pub use iter::{Direction, InternalIterator, KeyRange, MergingIterator};
pub use key::{cmp_user_keys, compare_encoded, user_key_prefix, Entry, EntryRef, InternalKey, SeqNo, ValueKind, MAX_SEQNO};
pub use memtable::Memtable;
pub use range_del::{RangeTombstone, RangeTombstones};
pub use table::{
    salvage_table, BlockCache, Compression, Salvage, TableBuilder, TableCache, TableInfo, TableOptions, TableReader,
};
pub use format::{MAX_PROPERTY_NAME_BYTES, MAX_USER_PROPERTIES_BYTES};
pub use table::{
    CollectedEntry, HookError, TableContext, TablePropertiesCollector, TablePropertiesCollectorFactory, TableReason,
    UserProperties,
};
