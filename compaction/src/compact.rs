//! Flushing memtables to level 0 and running leveled compactions: merge the
//! inputs, apply the drop rules of [`crate::retain`], write size-bounded output
//! tables into the next level. What to compact is chosen in [`crate::pick`].
//!
//! Every table written here is synced by its builder, and the directory is
//! synced before the function returns, so the edit the caller logs next never
//! refers to a file whose directory entry could vanish in a crash.

use std::path::PathBuf;
use std::sync::Arc;

use crypto::vfs::Vfs;
use crypto::KeyManager;
use index::{Direction, Entry, InternalIterator, KeyRange, Memtable, MergingIterator, SeqNo, TableBuilder, TableCache, TableOptions};

use crate::edit::{FileMeta, VersionEdit};
use crate::error::{Error, Result};
use crate::level_iter::LevelIterator;
use crate::retain::Retainer;

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

impl Default for CompactionOptions {
    fn default() -> Self {
        CompactionOptions {
            l0_compaction_trigger: 4,
            level_base_bytes: 64 << 20,
            level_size_multiplier: 10,
            target_file_size_bytes: 8 << 20,
            num_levels: 7,
            table: TableOptions::default(),
        }
    }
}

impl CompactionOptions {
    /// Target size in bytes of `level` (1 and deeper): base × multiplier^(level − 1).
    pub fn level_target_bytes(&self, level: usize) -> u64 {
        let exp = u32::try_from(level.saturating_sub(1)).unwrap_or(u32::MAX);
        self.level_base_bytes.saturating_mul(self.level_size_multiplier.max(1).saturating_pow(exp)).max(1)
    }
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

fn table_name(number: u64) -> String {
    format!("{number:06}.sst")
}

/// Writes tables one after another, remembering every file it created so a
/// failure can remove them all.
struct TableWriter<'a> {
    ctx: &'a CompactionContext,
    open: Option<(u64, u32, TableBuilder)>,
    last_user_key: Option<Vec<u8>>,
    finished: Vec<FileMeta>,
    created: Vec<PathBuf>,
}

impl<'a> TableWriter<'a> {
    fn new(ctx: &'a CompactionContext) -> Self {
        TableWriter { ctx, open: None, last_user_key: None, finished: Vec::new(), created: Vec::new() }
    }

    fn start(&mut self, number: u64) -> Result<()> {
        let name = table_name(number);
        let path = TableCache::table_path(&self.ctx.dir, number);
        // Read before the builder picks its key: if a rotation slips in between,
        // the recorded epoch is the older one, which keeps that epoch alive longer
        // (safe) rather than letting it be destroyed early.
        let epoch = self.ctx.keys.current_epoch();
        let file = self.ctx.vfs.create(&path).map_err(|e| Error::io(&name, e))?;
        self.created.push(path);
        let builder = TableBuilder::new(file, &self.ctx.keys, number, &name, self.ctx.options.table.clone())?;
        self.open = Some((number, epoch, builder));
        Ok(())
    }

    /// Adds `entry`, first closing the open table if it is full and `entry`
    /// starts a new user key (a key's versions never straddle two tables, which
    /// is what keeps tables of one level disjoint in user keys).
    fn add(&mut self, entry: &Entry, split_at_bytes: Option<u64>, new_file_number: &dyn Fn() -> u64) -> Result<()> {
        let new_key = self.last_user_key.as_deref() != Some(entry.key.user_key.as_slice());
        if let (Some(limit), Some((_, _, builder)), true) = (split_at_bytes, self.open.as_ref(), new_key) {
            if builder.estimated_size() >= limit {
                self.finish_open()?;
            }
        }
        if self.open.is_none() {
            self.start(new_file_number())?;
        }
        if let Some((_, _, builder)) = self.open.as_mut() {
            builder.add(&entry.key, &entry.value)?;
        }
        if new_key {
            self.last_user_key = Some(entry.key.user_key.clone());
        }
        Ok(())
    }

    fn finish_open(&mut self) -> Result<()> {
        if let Some((number, epoch, builder)) = self.open.take() {
            let info = builder.finish()?;
            self.finished.push(FileMeta {
                number,
                size: info.file_size,
                smallest: info.smallest,
                largest: info.largest,
                entries: info.entries,
                min_seqno: info.min_seqno,
                max_seqno: info.max_seqno,
                epoch,
            });
        }
        Ok(())
    }

    /// Finishes the open table and syncs the directory so every new entry is durable.
    fn finish(mut self) -> Result<Vec<FileMeta>> {
        let result = self.finish_open().and_then(|()| {
            if !self.created.is_empty() {
                self.ctx.vfs.sync_dir(&self.ctx.dir).map_err(|e| Error::io(".", e))?;
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                self.created.clear();
                Ok(std::mem::take(&mut self.finished))
            }
            Err(e) => Err(e),
        }
    }
}

impl Drop for TableWriter<'_> {
    /// Removes every table created unless `finish` succeeded: nothing refers to them.
    fn drop(&mut self) {
        self.open = None;
        for path in self.created.drain(..) {
            let _ = self.ctx.vfs.remove_file(&path);
        }
    }
}

/// Writes `memtable` as a level-0 table numbered `file_number`; `None` if it is empty.
///
/// Every version is kept (dropping by snapshot is compaction's job). The table is
/// synced and the directory synced before this returns.
pub fn flush_memtable(ctx: &CompactionContext, memtable: &Arc<Memtable>, file_number: u64) -> Result<Option<FileMeta>> {
    if memtable.is_empty() {
        return Ok(None);
    }
    let mut iter = memtable.iter(KeyRange::all(), Direction::Forward);
    let mut writer = TableWriter::new(ctx);
    let number = || file_number;
    while let Some(entry) = iter.next_entry()? {
        writer.add(&entry, None, &number)?;
    }
    Ok(writer.finish()?.into_iter().next())
}

/// Runs `compaction`: merges the inputs, keeps for every live snapshot (sorted
/// ascending in `snapshots`, plus the latest state) the newest visible version,
/// drops tombstones at the bottom, writes output tables numbered by
/// `new_file_number`, and returns the edit that swaps inputs for outputs.
///
/// Outputs are split near `target_file_size_bytes`, never between two versions
/// of one user key. On error every output created so far is removed.
pub fn run_compaction(
    ctx: &CompactionContext,
    compaction: &Compaction,
    snapshots: &[SeqNo],
    new_file_number: &dyn Fn() -> u64,
) -> Result<VersionEdit> {
    let level = compaction.level;
    let output_level = level + 1;
    if output_level >= ctx.options.num_levels.max(2) {
        return Err(Error::InvalidArgument(format!("cannot compact level {level} of {} into a level below", ctx.options.num_levels)));
    }
    let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
    if level == 0 {
        for f in &compaction.inputs {
            children.push(ctx.tables.get(f.number)?.iter(KeyRange::all(), Direction::Forward));
        }
    } else if !compaction.inputs.is_empty() {
        children.push(Box::new(LevelIterator::new(Arc::clone(&ctx.tables), compaction.inputs.clone(), KeyRange::all(), Direction::Forward)));
    }
    if !compaction.next_inputs.is_empty() {
        children.push(Box::new(LevelIterator::new(Arc::clone(&ctx.tables), compaction.next_inputs.clone(), KeyRange::all(), Direction::Forward)));
    }
    let mut merged = MergingIterator::new(children, Direction::Forward);
    let mut retainer = Retainer::new(snapshots, compaction.bottommost);
    let mut writer = TableWriter::new(ctx);
    let split_at = Some(ctx.options.target_file_size_bytes.max(1));
    while let Some(entry) = merged.next_entry()? {
        if retainer.keep(&entry.key) {
            writer.add(&entry, split_at, new_file_number)?;
        }
    }
    let outputs = writer.finish()?;
    let mut deleted: Vec<(usize, u64)> = compaction.inputs.iter().map(|f| (level, f.number)).collect();
    deleted.extend(compaction.next_inputs.iter().map(|f| (output_level, f.number)));
    Ok(VersionEdit { deleted, added: outputs.into_iter().map(|f| (output_level, f)).collect(), ..Default::default() })
}
