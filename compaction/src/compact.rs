//! Flushing memtables to level 0 and leveled compaction.

use std::path::PathBuf;
use std::sync::Arc;

use crypto::vfs::Vfs;
use crypto::KeyManager;
use index::{Memtable, SeqNo, TableCache, TableOptions};

use crate::error::Result;
use crate::version::{FileMeta, Version, VersionEdit};

/// Shape of the tree.
#[derive(Debug, Clone)]
pub struct CompactionOptions {
    /// L0 file count that triggers a compaction into L1.
    pub l0_compaction_trigger: usize,
    /// Target size of L1.
    pub level_base_bytes: u64,
    /// Size ratio between levels.
    pub level_size_multiplier: u64,
    /// Target size of one output table.
    pub target_file_size_bytes: u64,
    /// Number of levels.
    pub num_levels: usize,
    /// How output tables are written.
    pub table: TableOptions,
}

/// What compactions need to read and write tables.
pub struct CompactionContext {
    /// File system.
    pub vfs: Arc<dyn Vfs>,
    /// Store directory.
    pub dir: PathBuf,
    /// Keys for new tables.
    pub keys: Arc<KeyManager>,
    /// Readers of input tables.
    pub tables: Arc<TableCache>,
    /// Tree shape.
    pub options: CompactionOptions,
}

/// A chosen compaction: inputs from `level` and `level + 1`, output into `level + 1`.
#[derive(Debug, Clone)]
pub struct Compaction {
    /// Input level.
    pub level: usize,
    /// Input tables of `level`.
    pub inputs: Vec<Arc<FileMeta>>,
    /// Overlapping input tables of `level + 1`.
    pub next_inputs: Vec<Arc<FileMeta>>,
    /// Whether no level below the output holds data overlapping the inputs
    /// (tombstones can then be dropped).
    pub bottommost: bool,
}

/// Writes `memtable` as a level-0 table numbered `file_number`; `None` if it is empty.
pub fn flush_memtable(ctx: &CompactionContext, memtable: &Memtable, file_number: u64) -> Result<Option<FileMeta>> {
    let _ = (ctx, memtable, file_number);
    todo!()
}

/// The most urgent compaction for `version`, if any level is over its target.
pub fn pick_compaction(version: &Version, options: &CompactionOptions) -> Option<Compaction> {
    let _ = (version, options);
    todo!()
}

/// A compaction of the tables of `level` overlapping [`start`, `end`] (None = unbounded).
pub fn pick_range_compaction(version: &Version, level: usize, start: Option<&[u8]>, end: Option<&[u8]>) -> Option<Compaction> {
    let _ = (version, level, start, end);
    todo!()
}

/// Runs `compaction`: merges the inputs, keeps for every live snapshot (sorted
/// ascending in `snapshots`, plus the latest state) the newest visible version,
/// drops tombstones at the bottom, writes output tables numbered by
/// `new_file_number`, and returns the edit that swaps inputs for outputs.
pub fn run_compaction(
    ctx: &CompactionContext,
    compaction: &Compaction,
    snapshots: &[SeqNo],
    new_file_number: &dyn Fn() -> u64,
) -> Result<VersionEdit> {
    let _ = (ctx, compaction, snapshots, new_file_number);
    todo!()
}
