//! Flushing memtables to level 0 and running leveled compactions: merge the
//! inputs, apply the drop rules of [`crate::retain`], write size-bounded output
//! tables into the next level. What to compact is chosen in [`crate::pick`]; a
//! large compaction is cut into parts that run on threads of their own, as
//! [`crate::split`] describes.
//!
//! Every table written here is synced by its builder, and the directory is
//! synced before the function returns, so the edit the caller logs next never
//! refers to a file whose directory entry could vanish in a crash.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crypto::vfs::Vfs;
use crypto::KeyManager;
use index::{
    Direction, Entry, EntryRef, InternalIterator, InternalKey, KeyRange, Memtable, MergingIterator, RangeTombstones, SeqNo,
    TableCache, TableOptions, TableReason, ValueKind,
};

use crate::edit::{FileMeta, VersionEdit};
use crate::error::{Error, Result};
use crate::filter::{EntryFilter, FilterTally};
use crate::hooks::{CompactionOutput, TableHooks};
use crate::keyspace::DEFAULT_KEYSPACE_ID;
use crate::level_iter::LevelIterator;
use crate::merge::MergeFolder;
use crate::retain::Retainer;
use crate::split;
use crate::version::overlaps_range;
use crate::writer::{self, TableWriter};

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
    /// Table options of keyspaces whose tables are built otherwise than
    /// `options.table` says (their create records' options), by keyspace id.
    pub keyspace_tables: KeyspaceTables,
}

/// Table options per keyspace, shared by the flushes and compactions of a store.
pub type KeyspaceTables = Arc<parking_lot::RwLock<std::collections::BTreeMap<u32, TableOptions>>>;

impl CompactionContext {
    /// How the tables of `keyspace` are built: its own options, else the store's.
    pub fn table_options(&self, keyspace: u32) -> TableOptions {
        self.keyspace_tables.read().get(&keyspace).cloned().unwrap_or_else(|| self.options.table.clone())
    }

    /// Records how the tables of the keyspace described by `meta` are built
    /// (its encoded options over the store's); options that do not decode
    /// leave the store's in force.
    pub fn set_keyspace_options(&self, meta: &crate::KeyspaceMeta) {
        if let Ok(options) = crate::KeyspaceTableOptions::decode(&meta.options) {
            if options != crate::KeyspaceTableOptions::default() {
                self.keyspace_tables.write().insert(meta.id, options.apply(&self.options.table));
            }
        }
    }
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
    /// Most parts (threads) the compaction may be cut into; 1 runs it on the
    /// calling thread alone. The pickers choose 1; a caller that wants a large
    /// compaction done sooner raises it. Fewer parts are used when the input
    /// is small (at most one per `target_file_size_bytes` of input), never more
    /// than [`MAX_SUBCOMPACTIONS`](crate::MAX_SUBCOMPACTIONS).
    pub max_subcompactions: usize,
    /// The keyspace whose levels the inputs come from; the outputs stay in it.
    pub keyspace: u32,
}

/// Writes `memtable` as a level-0 table numbered `file_number`; `None` if it is empty.
///
/// Every version is kept (dropping by snapshot is compaction's job; a flush
/// runs no compaction filter). The table is synced and the directory synced
/// before this returns. `hooks.properties` collects its user properties.
pub fn flush_memtable(ctx: &CompactionContext, hooks: &TableHooks, memtable: &Arc<Memtable>, file_number: u64) -> Result<Option<FileMeta>> {
    flush_memtable_in(ctx, DEFAULT_KEYSPACE_ID, hooks, memtable, file_number)
}

/// [`flush_memtable`] for the memtable of `keyspace`: the table is recorded as
/// one of that keyspace's, built with its table options.
pub fn flush_memtable_in(
    ctx: &CompactionContext,
    keyspace: u32,
    hooks: &TableHooks,
    memtable: &Arc<Memtable>,
    file_number: u64,
) -> Result<Option<FileMeta>> {
    if memtable.is_empty() {
        return Ok(None);
    }
    let mut iter = memtable.iter(KeyRange::all(), Direction::Forward);
    let mut writer = TableWriter::new(ctx, keyspace, hooks, TableReason::Flush);
    let number = || file_number;
    while let Some(entry) = iter.next_entry()? {
        writer.add(&entry, None, &number)?;
    }
    Ok(writer::commit(ctx, vec![writer])?.into_iter().next())
}

/// Writes `entries` to table `file_number` as [`flush_memtable`] writes a
/// memtable (synced, directory entry included). The entries must come in table
/// order: user key ascending, then seqno descending. `None` when there are none.
/// `hooks.properties` collects its user properties; no filter runs.
pub fn write_sorted_table<'a>(
    ctx: &CompactionContext,
    hooks: &TableHooks,
    entries: impl Iterator<Item = EntryRef<'a>>,
    file_number: u64,
) -> Result<Option<FileMeta>> {
    write_sorted_table_in(ctx, DEFAULT_KEYSPACE_ID, hooks, entries, file_number)
}

/// [`write_sorted_table`] for a table of `keyspace`.
pub fn write_sorted_table_in<'a>(
    ctx: &CompactionContext,
    keyspace: u32,
    hooks: &TableHooks,
    entries: impl Iterator<Item = EntryRef<'a>>,
    file_number: u64,
) -> Result<Option<FileMeta>> {
    let mut writer = TableWriter::new(ctx, keyspace, hooks, TableReason::Ingest);
    let number = || file_number;
    let mut entry = Entry { key: InternalKey { user_key: Vec::new(), seqno: 0, kind: ValueKind::Put }, value: Vec::new() };
    for e in entries {
        entry.key.user_key.clear();
        entry.key.user_key.extend_from_slice(e.user_key);
        entry.key.seqno = e.seqno;
        entry.key.kind = e.kind;
        entry.value.clear();
        entry.value.extend_from_slice(e.value);
        writer.add(&entry, None, &number)?;
    }
    Ok(writer::commit(ctx, vec![writer])?.into_iter().next())
}

/// Runs `compaction`: merges the inputs, keeps for every live snapshot (sorted
/// ascending in `snapshots`, plus the latest state) the newest visible version,
/// drops tombstones at the bottom, writes output tables numbered by
/// `new_file_number`, and returns the edit that swaps inputs for outputs.
///
/// Outputs are split near `target_file_size_bytes`, never between two versions
/// of one user key. A compaction cut into parts runs part 0 on the calling
/// thread and each other part on a scoped thread; the edit lists every part's
/// outputs, so it replaces the inputs as one step either way. On error (in any
/// part) every output of every part is removed and no edit is returned.
pub fn run_compaction(
    ctx: &CompactionContext,
    compaction: &Compaction,
    snapshots: &[SeqNo],
    new_file_number: &(dyn Fn() -> u64 + Sync),
) -> Result<VersionEdit> {
    let still_under = parking_lot::Mutex::new(HashSet::new());
    run_compaction_under(ctx, compaction, snapshots, &TableHooks::default(), &RangeTombstones::default(), &still_under, new_file_number)
        .map(|out| out.edit)
}

/// [`run_compaction`] with a keyspace's hooks, under the range tombstones of
/// `version` (the store's version the compaction was picked from).
///
/// `hooks.filter` sees the entries the rules of
/// [`CompactionFilter`](crate::CompactionFilter) allow (its report comes back
/// with the edit) and `hooks.properties` collects every output table's user
/// properties. An entry a range tombstone of the compaction's keyspace hides
/// is dropped too when no live snapshot lies between the two (`[entry seqno,
/// tombstone seqno)`), since then no reader can see the one without the
/// other. The edit also drops every tombstone with nothing older left under it
/// ([`Version::retirable_range_tombstones`](crate::Version::retirable_range_tombstones),
/// told which tombstones still hide an entry this compaction kept).
pub fn run_compaction_with(
    ctx: &CompactionContext,
    compaction: &Compaction,
    snapshots: &[SeqNo],
    hooks: &TableHooks,
    version: &crate::Version,
    new_file_number: &(dyn Fn() -> u64 + Sync),
) -> Result<CompactionOutput> {
    let range_tombstones = version.range_tombstones();
    let still_under = parking_lot::Mutex::new(HashSet::new());
    let mut out = run_compaction_under(ctx, compaction, snapshots, hooks, range_tombstones, &still_under, new_file_number)?;
    if !range_tombstones.is_empty() {
        out.edit.dropped_range_tombstones = version.retirable_range_tombstones(&out.edit, &still_under.lock())?;
    }
    Ok(out)
}

/// [`run_compaction_with`] without the retirement of tombstones: adds to
/// `still_under` the seqno of every tombstone that hides an entry kept.
fn run_compaction_under(
    ctx: &CompactionContext,
    compaction: &Compaction,
    snapshots: &[SeqNo],
    hooks: &TableHooks,
    range_tombstones: &RangeTombstones,
    still_under: &parking_lot::Mutex<HashSet<SeqNo>>,
    new_file_number: &(dyn Fn() -> u64 + Sync),
) -> Result<CompactionOutput> {
    let level = compaction.level;
    let output_level = level + 1;
    if output_level >= ctx.options.num_levels.max(2) {
        return Err(Error::InvalidArgument(format!("cannot compact level {level} of {} into a level below", ctx.options.num_levels)));
    }
    let parts = split::plan(ctx, compaction)?;
    // Set by a part that failed, so the others stop early; its error is the one returned.
    let stop = AtomicBool::new(false);
    let tally = FilterTally::default();
    let job = PartJob { ctx, compaction, snapshots, hooks, tally: &tally, range_tombstones, still_under, new_file_number, stop: &stop };
    let results = run_parts(&parts, &stop, |range| run_part(&job, range));
    // Returning early drops every writer, which removes all their tables.
    let writers = results.into_iter().collect::<Result<Vec<_>>>()?;
    let outputs = writer::commit(ctx, writers)?;
    let mut deleted: Vec<(usize, u64)> = compaction.inputs.iter().map(|f| (level, f.number)).collect();
    deleted.extend(compaction.next_inputs.iter().map(|f| (output_level, f.number)));
    let edit = VersionEdit { deleted, added: outputs.into_iter().map(|f| (output_level, f)).collect(), ..Default::default() };
    Ok(CompactionOutput { edit, filter: tally.report() })
}

/// Runs `run` for every range of `parts`: the first on the calling thread, each
/// other on a scoped thread of its own. A part that fails sets `stop`, which
/// the others watch. The results come back in the order of `parts`.
fn run_parts<'a>(
    parts: &[KeyRange],
    stop: &AtomicBool,
    run: impl Fn(&KeyRange) -> Result<TableWriter<'a>> + Sync,
) -> Vec<Result<TableWriter<'a>>> {
    let run = |range: &KeyRange| run(range).inspect_err(|_| stop.store(true, Ordering::Relaxed));
    match parts.split_first() {
        Some((first, [])) => vec![run(first)],
        Some((first, rest)) => std::thread::scope(|scope| {
            let run = &run;
            let spawned: Vec<_> = rest
                .iter()
                .map(|range| (range, std::thread::Builder::new().name("subcompaction".into()).spawn_scoped(scope, move || run(range))))
                .collect();
            let mut results = vec![run(first)];
            for (range, handle) in spawned {
                results.push(match handle {
                    Ok(handle) => handle.join().unwrap_or_else(|panic| {
                        stop.store(true, Ordering::Relaxed);
                        std::panic::resume_unwind(panic)
                    }),
                    // No thread to be had: this part runs here instead.
                    Err(_) => run(range),
                });
            }
            results
        }),
        None => Vec::new(),
    }
}

/// Writes `memtable` as level-0 tables like [`flush_memtable`], but cut at user
/// keys into up to `max_parts` parts written on threads of their own, one table
/// each (numbered by `new_file_number`). The cuts follow the key distribution of
/// the tables in `like` (the store's current tables) within the memtable's key
/// range; a memtable smaller than two eighths of `target_file_size_bytes`, or
/// one whose keys lie where no table does, is written as one table.
///
/// The tables hold disjoint key ranges, so every user key is in at most one of
/// them, as it would be in the one table of a plain flush. All are synced, then
/// the directory; on error none is left.
pub fn flush_memtable_in_parts(
    ctx: &CompactionContext,
    hooks: &TableHooks,
    memtable: &Arc<Memtable>,
    like: &[Arc<FileMeta>],
    max_parts: usize,
    new_file_number: &(dyn Fn() -> u64 + Sync),
) -> Result<Vec<FileMeta>> {
    flush_memtable_in_parts_in(ctx, DEFAULT_KEYSPACE_ID, hooks, memtable, like, max_parts, new_file_number)
}

/// [`flush_memtable_in_parts`] for the memtable of `keyspace`: the tables are
/// recorded as that keyspace's.
pub fn flush_memtable_in_parts_in(
    ctx: &CompactionContext,
    keyspace: u32,
    hooks: &TableHooks,
    memtable: &Arc<Memtable>,
    like: &[Arc<FileMeta>],
    max_parts: usize,
    new_file_number: &(dyn Fn() -> u64 + Sync),
) -> Result<Vec<FileMeta>> {
    if memtable.is_empty() {
        return Ok(Vec::new());
    }
    let parts = split::plan_flush(ctx, memtable, like, max_parts)?;
    let stop = AtomicBool::new(false);
    let results = run_parts(&parts, &stop, |range| {
        let mut iter = memtable.iter(range.clone(), Direction::Forward);
        let mut writer = TableWriter::new(ctx, keyspace, hooks, TableReason::Flush);
        while let Some(entry) = iter.next_entry()? {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            writer.add(&entry, None, new_file_number)?;
        }
        writer.finish_open()?;
        Ok(writer)
    });
    let writers = results.into_iter().collect::<Result<Vec<_>>>()?;
    writer::commit(ctx, writers)
}

/// What every part of one compaction shares.
#[derive(Clone, Copy)]
struct PartJob<'a> {
    ctx: &'a CompactionContext,
    compaction: &'a Compaction,
    snapshots: &'a [SeqNo],
    hooks: &'a TableHooks,
    tally: &'a FilterTally,
    /// The store's range tombstones, and the seqnos of those that still hide
    /// an entry some part kept (for a snapshot).
    range_tombstones: &'a RangeTombstones,
    still_under: &'a parking_lot::Mutex<HashSet<SeqNo>>,
    new_file_number: &'a (dyn Fn() -> u64 + Sync),
    stop: &'a AtomicBool,
}

/// Merges the part of every input of `compaction` that lies in `range` and
/// writes what the drop rules keep. Stops early, with what it wrote so far,
/// once `stop` is set.
fn run_part<'a>(job: &PartJob<'a>, range: &KeyRange) -> Result<TableWriter<'a>> {
    let PartJob { ctx, compaction, snapshots, hooks, tally, range_tombstones, still_under, new_file_number, stop } = *job;
    let in_range = |files: &[Arc<FileMeta>]| -> Vec<Arc<FileMeta>> { files.iter().filter(|f| overlaps_range(f, range)).cloned().collect() };
    let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
    if compaction.level == 0 {
        for f in in_range(&compaction.inputs) {
            children.push(ctx.tables.get(f.number)?.iter(range.clone(), Direction::Forward));
        }
    } else {
        let inputs = in_range(&compaction.inputs);
        if !inputs.is_empty() {
            children.push(Box::new(LevelIterator::new(Arc::clone(&ctx.tables), inputs, range.clone(), Direction::Forward)));
        }
    }
    let next_inputs = in_range(&compaction.next_inputs);
    if !next_inputs.is_empty() {
        children.push(Box::new(LevelIterator::new(Arc::clone(&ctx.tables), next_inputs, range.clone(), Direction::Forward)));
    }
    let mut merged = MergingIterator::new(children, Direction::Forward);
    let mut retainer = Retainer::new(snapshots, compaction.bottommost);
    let mut filter = EntryFilter::new(hooks.filter.as_deref(), snapshots, compaction.level + 1, tally);
    // The operator of the compaction's keyspace comes with its hooks.
    let operator = hooks.merge_operator.as_deref();
    let mut folder = MergeFolder::new(operator, compaction.bottommost);
    let mut writer = TableWriter::new(ctx, compaction.keyspace, hooks, TableReason::Compaction);
    let split_at = Some(ctx.options.target_file_size_bytes.max(1));
    let mut write = |e: &Entry| writer.add(e, split_at, new_file_number);
    while let Some(mut entry) = merged.next_entry()? {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // The filter may turn the entry into a tombstone before the drop rules see it.
        filter.apply(&mut entry);
        // The retainer sees every entry, so its state stays that of the whole
        // history of the key; an entry it keeps may still go under a tombstone.
        let keep = retainer.keep(&entry.key);
        let over: &[SeqNo] = if range_tombstones.is_empty() {
            &[]
        } else {
            range_tombstones.covering_above(compaction.keyspace, &entry.key.user_key, entry.key.seqno)
        };
        let hidden = over.last().is_some_and(|&t| retainer.same_stripe(entry.key.seqno, t));
        if keep && !hidden {
            if !over.is_empty() {
                // Kept for a snapshot below these tombstones: they must stay. It
                // is in a lower snapshot stripe than the tombstone, so no operand
                // newer than the tombstone is folded over it.
                still_under.lock().extend(over.iter().copied());
            }
            folder.add(&entry, retainer.stripe_of(entry.key.seqno), &mut write)?;
        }
    }
    folder.finish(&mut write)?;
    // The last table is finished (and synced) on this part's thread.
    writer.finish_open()?;
    Ok(writer)
}
