//! The shape of the tree over time: the version set and its manifest (an
//! encrypted log of version edits with an atomic `CURRENT` switch), memtable
//! flushes to level 0, leveled compaction, and removal (optionally overwriting
//! first) of files no live version needs. The manifest layout is in
//! `compaction/FORMAT.md`.

#![deny(missing_docs)]

mod compact;
mod edit;
mod error;
mod filter;
mod format;
#[doc(hidden)]
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod gc;
mod hooks;
mod keyspace;
mod level_iter;
mod manifest;
mod merge;
mod pick;
mod retain;
mod split;
mod version;
mod version_set;
mod writer;

pub use compact::{
    flush_memtable, flush_memtable_in, flush_memtable_in_parts, flush_memtable_in_parts_in, run_compaction,
    run_compaction_with, write_sorted_table, write_sorted_table_in, Compaction, CompactionContext, CompactionOptions,
    KeyspaceTables,
};
pub use filter::{CompactionFilter, FilterDecision, FilterEntry, FilterReport};
pub use hooks::{CompactionOutput, TableHooks};
pub use edit::{check_merge_operator_name, FeedSegment, FileMeta, VersionEdit, WalSegment};
pub use error::{Error, ManifestFailure, Result};
pub use keyspace::{check_keyspace_name, KeyspaceMeta, KeyspaceTableOptions, DEFAULT_KEYSPACE_ID, MAX_KEYSPACE_NAME_LEN, MAX_KEYSPACE_OPTIONS_LEN};
pub use merge::{MergeError, MergeOperator};
pub use gc::{delete_obsolete_files, overwrite_and_remove};
pub use pick::{pick_compaction, pick_range_compaction};
pub use split::MAX_SUBCOMPACTIONS;
pub use version::{Version, CURRENT_FILE};
pub use version_set::VersionSet;

/// The path of manifest `number` in `dir`.
pub fn manifest_path(dir: &std::path::Path, number: u64) -> std::path::PathBuf {
    dir.join(crypto::names::manifest_file(number))
}
