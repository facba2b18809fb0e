//! `repair`: rebuild a store's manifest from the tables and logs that survived
//! damage, as LevelDB's `RepairDB` does.
//!
//! Every table the manifest lists (every table in the directory, if the
//! manifest itself is unreadable) is read entry by entry. An intact table gives
//! all its entries; a damaged one gives every data block that still reads whole
//! (`index::salvage_table`: one bad block costs only that block, a bad filter or
//! properties block costs nothing) and is then moved to `lost/`. Every WAL segment the
//! manifest still needs is replayed up to its first damaged record. What was
//! read goes into one new level-0 table, and a new manifest listing only it
//! (with the highest seqno seen, and a log number past every old segment)
//! replaces the old one through the atomic `CURRENT` switch. Until that switch
//! the store is as it was, so a crash during repair loses nothing; afterwards
//! the old tables and segments are obsolete and the next open removes them.
//!
//! The salvaged entries are gathered in memory before they are written, so
//! repair needs memory in proportion to the store's live data.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use compaction::{CompactionContext, FileMeta, KeyspaceMeta, VersionSet};
use crypto::vfs::{LockError, Vfs};
use crypto::{Credential, FileKind, KeyManager, KEYSLOTS_FILE};
use index::{Memtable, SeqNo, TableCache};
use wal::LogReader;

use crate::db::inner::{file_number, max_file_number, sync_dir, wal_name, wal_segment_is_blank, LOCK_FILE};
use crate::error::{Error, Result};
use crate::format::{decode_batch, RecordOp};
use crate::options::Options;

/// Directory (under the store directory) that damaged files are moved to.
pub const LOST_DIR: &str = "lost";

/// One file `repair` could not fully read.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct LostFile {
    /// File name (relative to the store directory).
    pub file: String,
    /// What was wrong with it.
    pub reason: String,
    /// Entries (table) or records (log) read from it anyway.
    pub salvaged: u64,
    /// Entries lost, as far as the file's own properties or the manifest tell;
    /// `None` when nothing says how many it held.
    pub approx_lost_entries: Option<u64>,
    /// For a table whose index could be read: its data blocks, and how many of
    /// them were lost (every other block was salvaged whole). `None` for logs
    /// and for tables whose block boundaries were unreadable.
    pub blocks: Option<BlockCounts>,
    /// Where it was moved (`lost/NAME`), if it was moved.
    pub quarantined_to: Option<String>,
}

/// Data blocks of a damaged table.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
#[non_exhaustive]
pub struct BlockCounts {
    /// Data blocks the table's index lists.
    pub total: u64,
    /// Of those, blocks that could not be read (their entries are lost).
    pub lost: u64,
}

/// What `repair` did and what it could not save.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct RepairReport {
    /// Whether the old manifest could be read (if not, every table in the
    /// directory was used, including leftovers an interrupted compaction may
    /// have left, which can bring back versions that compaction had dropped).
    pub manifest_readable: bool,
    /// Tables read.
    pub tables_scanned: usize,
    /// WAL segments replayed.
    pub logs_replayed: usize,
    /// Entries (versions, tombstones included) in the rebuilt store.
    pub entries_recovered: u64,
    /// Highest seqno found; the rebuilt store continues after it.
    pub last_seqno: u64,
    /// The table the salvaged entries were written to (`None` if there were
    /// none); with keyspaces, the default keyspace's (see `new_tables`).
    pub new_table: Option<String>,
    /// Every table the salvaged entries were written to: one per keyspace
    /// that kept any entry.
    pub new_tables: Vec<String>,
    /// The new manifest.
    pub new_manifest: String,
    /// Damaged or missing files and what was lost with them.
    pub lost: Vec<LostFile>,
}

impl RepairReport {
    /// Whether repair found nothing damaged or missing.
    pub fn nothing_lost(&self) -> bool {
        self.lost.is_empty()
    }
}

pub(crate) fn repair(
    dir: &Path,
    credential: &Credential,
    options: &Options,
) -> Result<RepairReport> {
    options.validate()?;
    if options.read_only {
        return Err(Error::InvalidArgument(
            "repair writes to the store; it cannot run read-only".into(),
        ));
    }
    let vfs = options.vfs.clone();
    if !vfs.exists(&dir.join(KEYSLOTS_FILE)) {
        return Err(Error::NotFound(dir.display().to_string()));
    }
    let keys = KeyManager::unlock(&vfs, dir, credential)?;
    let _lock = vfs.lock(&dir.join(LOCK_FILE)).map_err(|e| match e {
        LockError::Held { pid } => Error::Locked { pid },
        LockError::Io(source) => Error::Io {
            file: LOCK_FILE.into(),
            source,
        },
    })?;
    let names = vfs.list_dir(dir).map_err(|source| Error::Io {
        file: ".".into(),
        source,
    })?;
    let mut report = RepairReport::default();
    // One memtable per keyspace the salvaged entries belong to (0: the default).
    let mut memtables: BTreeMap<u32, Arc<Memtable>> = BTreeMap::new();
    let mut last_seqno: SeqNo = 0;
    let mut quarantine: Vec<String> = Vec::new();

    // The manifest, if readable, says which tables are live and which logs are
    // still needed; leftovers of interrupted work must not come back.
    let listed = VersionSet::recover_read_only(&vfs, dir, &keys, options.num_levels).ok();
    report.manifest_readable = listed.is_some();
    let mut next_number = max_file_number(&names);
    // The keyspaces the manifest records, kept by the rebuilt store. Without a
    // readable manifest nothing says which keyspace a table belongs to: tables
    // then go to the default keyspace, and WAL operations of other keyspaces
    // are left out and reported (docs/design.md, "Keyspaces").
    let keyspaces = listed.as_ref().map(|versions| {
        let version = versions.current();
        (version.keyspaces().map(|k| KeyspaceMeta::clone(k)).collect::<Vec<_>>(), version.next_keyspace_id())
    });
    let (live, min_log): (Option<BTreeMap<u64, FileMeta>>, u64) = match &listed {
        Some(versions) => {
            last_seqno = versions.last_seqno();
            let version = versions.current();
            let mut live = BTreeMap::new();
            // The tables of every keyspace, each with the keyspace it belongs to.
            for (_, f) in version.all_files() {
                live.insert(f.number, FileMeta::clone(f));
            }
            next_number = next_number.max(versions.new_file_number());
            // Range tombstones already moved out of the logs live only in the
            // manifest; they go on hiding what they hid.
            for t in version.range_tombstones().tombstones() {
                memtables.entry(t.keyspace).or_insert_with(|| Arc::new(Memtable::new(0))).add_range_tombstone(t.clone());
            }
            (Some(live), versions.log_number())
        }
        None => (None, 0),
    };

    let mut table_numbers: Vec<u64> = names.iter().filter_map(|n| file_number(n, "sst")).collect();
    table_numbers.sort_unstable();
    let present: HashSet<u64> = table_numbers.iter().copied().collect();
    if let Some(live) = &live {
        table_numbers.retain(|n| live.contains_key(n));
        for (number, meta) in live.iter().filter(|(n, _)| !present.contains(n)) {
            report.lost.push(LostFile {
                file: table_name(*number),
                reason: "listed in the manifest but missing".into(),
                salvaged: 0,
                approx_lost_entries: Some(meta.entries),
                blocks: None,
                quarantined_to: None,
            });
        }
    }
    for number in table_numbers {
        report.tables_scanned += 1;
        let name = table_name(number);
        let listed_entries = live
            .as_ref()
            .and_then(|l| l.get(&number))
            .map(|m| m.entries);
        let keyspace = live.as_ref().and_then(|l| l.get(&number)).map_or(compaction::DEFAULT_KEYSPACE_ID, |m| m.keyspace);
        let memtable = memtables.entry(keyspace).or_insert_with(|| Arc::new(Memtable::new(0)));
        let salvage = salvage_table(&vfs, dir, &keys, number, &name, memtable);
        report.entries_recovered += salvage.entries;
        last_seqno = last_seqno.max(salvage.max_seqno);
        if let Some(reason) = salvage.damage {
            let held = salvage.held.or(listed_entries);
            report.lost.push(LostFile {
                file: name.clone(),
                reason,
                salvaged: salvage.entries,
                approx_lost_entries: held.map(|h| h.saturating_sub(salvage.entries)),
                blocks: (salvage.blocks > 0).then_some(BlockCounts { total: salvage.blocks, lost: salvage.blocks_lost }),
                quarantined_to: Some(format!("{LOST_DIR}/{name}")),
            });
            quarantine.push(name);
        }
    }

    let mut segments: Vec<u64> = names
        .iter()
        .filter_map(|n| file_number(n, "wal"))
        .filter(|&n| n >= min_log)
        .collect();
    segments.sort_unstable();
    for number in segments {
        let name = wal_name(number);
        let path = wal::segment_path(dir, number);
        if wal_segment_is_blank(&*vfs, dir, number)? {
            continue;
        }
        report.logs_replayed += 1;
        let live_keyspaces: Option<Vec<u32>> = keyspaces.as_ref().map(|(k, _)| k.iter().map(|m| m.id).collect());
        let mut unattributed = 0u64;
        let mut insert = |op: &RecordOp, seqno: SeqNo| {
            let keyspace = op.keyspace;
            let known = keyspace == compaction::DEFAULT_KEYSPACE_ID || live_keyspaces.as_ref().is_some_and(|l| l.contains(&keyspace));
            if known {
                op.apply(memtables.entry(keyspace).or_insert_with(|| Arc::new(Memtable::new(0))), seqno);
            } else if live_keyspaces.is_none() {
                unattributed += 1;
            }
            // Otherwise the keyspace was dropped after the write: its data is gone with it.
        };
        let (records, max_seqno, damage) = salvage_log(&vfs, &path, &keys, number, &name, &mut insert);
        report.entries_recovered += records.1 - unattributed;
        last_seqno = last_seqno.max(max_seqno);
        if unattributed > 0 {
            report.lost.push(LostFile {
                file: name.clone(),
                reason: format!(
                    "{unattributed} operations of keyspaces other than the default one left out: \
                     the manifest, which names the keyspaces, could not be read"
                ),
                salvaged: records.0,
                approx_lost_entries: Some(unattributed),
                blocks: None,
                quarantined_to: None,
            });
        }
        if let Some(reason) = damage {
            report.lost.push(LostFile {
                file: name.clone(),
                reason,
                salvaged: records.0,
                approx_lost_entries: None,
                blocks: None,
                quarantined_to: Some(format!("{LOST_DIR}/{name}")),
            });
            quarantine.push(name);
        }
    }

    // New numbers past everything in the directory and the manifest: one
    // table per keyspace, the manifest, and the log number that retires every
    // old segment.
    let mut table_number = next_number;
    let manifest_number = next_number + memtables.len().max(1) as u64 + 1;
    let log_number = manifest_number + 1;
    let block_cache = None;
    let ctx = CompactionContext {
        vfs: vfs.clone(),
        dir: dir.to_path_buf(),
        keys: keys.clone(),
        tables: TableCache::new(vfs.clone(), dir.to_path_buf(), keys.clone(), block_cache),
        options: options.compaction_options(),
        keyspace_tables: Default::default(),
    };
    for meta in keyspaces.iter().flat_map(|(k, _)| k) {
        ctx.set_keyspace_options(meta);
    }
    let mut tables = Vec::new();
    for (keyspace, memtable) in &memtables {
        table_number += 1;
        let name = if *keyspace == compaction::DEFAULT_KEYSPACE_ID {
            Some(crate::keyspace::DEFAULT_KEYSPACE.to_owned())
        } else {
            keyspaces.iter().flat_map(|(k, _)| k).find(|k| k.id == *keyspace).map(|k| k.name.clone())
        };
        let hooks = name.map(|n| options.hooks.for_keyspace(&n)).unwrap_or_default();
        if let Some(meta) = compaction::flush_memtable_in(&ctx, *keyspace, &hooks, memtable, table_number)? {
            // The default keyspace's table, or the first one there is.
            if report.new_table.is_none() || *keyspace == compaction::DEFAULT_KEYSPACE_ID {
                report.new_table = Some(table_name(meta.number));
            }
            tables.push(meta);
        }
    }
    report.new_tables = tables.iter().map(|t| table_name(t.number)).collect();
    let range_tombstones: Vec<index::RangeTombstone> = memtables.values().flat_map(|m| m.range_tombstone_list()).collect();
    let (keyspaces, next_keyspace_id) = keyspaces.unwrap_or_default();
    VersionSet::rebuild_with_keyspaces(
        &vfs,
        dir,
        &keys,
        options.num_levels,
        manifest_number,
        tables,
        range_tombstones,
        last_seqno,
        log_number,
        keyspaces,
        next_keyspace_id,
    )?;
    sync_dir(&*vfs, dir)?;
    report.new_manifest = crypto::names::manifest_file(manifest_number);
    report.last_seqno = last_seqno;

    if !quarantine.is_empty() {
        let lost = dir.join(LOST_DIR);
        vfs.create_dir_all(&lost).map_err(|source| Error::Io {
            file: LOST_DIR.into(),
            source,
        })?;
        for name in &quarantine {
            vfs.rename(&dir.join(name), &lost.join(name))
                .map_err(|source| Error::Io {
                    file: name.clone(),
                    source,
                })?;
        }
        sync_dir(&*vfs, &lost)?;
        sync_dir(&*vfs, dir)?;
    }
    Ok(report)
}

fn table_name(number: u64) -> String {
    crypto::names::table_file(number)
}

/// Takes one salvaged log operation: keyspace, key, seqno, kind, value.
type SalvagedOp<'a> = dyn FnMut(&RecordOp, SeqNo) + 'a;

/// What one table gave up.
struct TableSalvage {
    entries: u64,
    max_seqno: SeqNo,
    /// Entries the table says it holds, if its properties could be read.
    held: Option<u64>,
    /// Data blocks its index lists, and how many of them could not be read.
    blocks: u64,
    blocks_lost: u64,
    /// Why the table is damaged; `None` if every part of it was read.
    damage: Option<String>,
}

/// Reads every intact data block of a table into `memtable`
/// (`index::salvage_table`): one bad block costs only that block, and a bad
/// filter or properties block costs nothing.
fn salvage_table(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    keys: &KeyManager,
    number: u64,
    name: &str,
    memtable: &Memtable,
) -> TableSalvage {
    let path = TableCache::table_path(dir, number);
    let file = match vfs.open(&path) {
        Ok(file) => file,
        Err(source) => {
            return TableSalvage {
                entries: 0,
                max_seqno: 0,
                held: None,
                blocks: 0,
                blocks_lost: 0,
                damage: Some(Error::Io { file: name.to_string(), source }.to_string()),
            }
        }
    };
    let mut max_seqno = 0;
    let salvage = index::salvage_table(file.as_ref(), keys, number, name, &mut |entry| {
        max_seqno = max_seqno.max(entry.key.seqno);
        memtable.insert(&entry.key.user_key, entry.key.seqno, entry.key.kind, &entry.value);
    });
    let (blocks, blocks_lost, held) = (salvage.blocks, salvage.blocks_lost(), salvage.entries_expected);
    let mut problems = salvage.damage.into_iter().map(|e| Error::from(e).to_string());
    let damage = problems.next().map(|first| match problems.count() {
        0 => first,
        1 => format!("{first} (and 1 more damaged part)"),
        more => format!("{first} (and {more} more damaged parts)"),
    });
    TableSalvage { entries: salvage.entries, max_seqno, held, blocks, blocks_lost, damage }
}

/// Replays a segment up to its first damaged record. Returns (records, entries),
/// the highest seqno, and the damage if any (a torn tail is not damage).
fn salvage_log(
    vfs: &Arc<dyn Vfs>,
    path: &Path,
    keys: &KeyManager,
    number: u64,
    name: &str,
    insert: &mut SalvagedOp<'_>,
) -> ((u64, u64), SeqNo, Option<String>) {
    let mut records = 0;
    let mut entries = 0;
    let mut max_seqno = 0;
    let mut reader = match LogReader::open(vfs, path, keys, FileKind::Wal, number) {
        Ok(r) => r,
        Err(e) => return ((0, 0), 0, Some(Error::from(e).to_string())),
    };
    loop {
        let offset = reader.valid_len();
        match reader.next_record() {
            Ok(Some(record)) => match decode_batch(&record, name, offset) {
                Ok(batch) => {
                    for (i, op) in batch.ops.iter().enumerate() {
                        insert(op, batch.first_seqno + i as u64);
                        entries += 1;
                    }
                    records += 1;
                    max_seqno = max_seqno.max(batch.last_seqno());
                }
                Err(e) => return ((records, entries), max_seqno, Some(e.to_string())),
            },
            Ok(None) => return ((records, entries), max_seqno, None),
            Err(e) => {
                return (
                    (records, entries),
                    max_seqno,
                    Some(Error::from(e).to_string()),
                )
            }
        }
    }
}
