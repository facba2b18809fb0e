//! Sorted data of synapsed-storage: internal keys, the memtable, the SSTable
//! format (prefix-compressed blocks with restart points, block index, bloom filter,
//! properties, footer; every block compressed then encrypted), the block cache of
//! decrypted blocks, and the merging iterators that read across all of them.
//! The SSTable layout is documented in `index/FORMAT.md`.

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
