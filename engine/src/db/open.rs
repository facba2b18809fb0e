//! Creating and opening a store: lock, keys, version set, WAL replay, and the
//! first flush that retires replayed segments.
//!
//! Open never writes before the keys unlock, so a wrong passphrase leaves every
//! file as it was. After replay a read-write open writes what it replayed to a
//! level-0 table and logs an edit naming a fresh WAL segment as the oldest one
//! needed; the replayed segments are then obsolete, so repeated open/close
//! cycles do not pile segments up. A crash anywhere in here leaves either the
//! old state (segments still named by the manifest) or the new one.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::Arc;

use compaction::{CompactionContext, VersionEdit, VersionSet};
use crypto::vfs::{LockError, LockGuard, Vfs};
use crypto::{Credential, FileKind, KeyManager, RecoveryKey, KEYRING_FILE, KEYSLOTS_FILE};
use index::{BlockCache, Memtable, SeqNo, TableCache};
use parking_lot::{Condvar, Mutex, RwLock};
use wal::LogReader;

use crate::db::inner::{
    file_number, max_file_number, sync_dir, wal_name, wal_segment_is_blank, BgState, Inner, Memtables, WriterState,
    LOCK_FILE,
};
use crate::db::read_only_vfs::ReadOnlyVfs;
use crate::db::snapshot::SnapshotRegistry;
use crate::error::{Error, Result};
use crate::format::decode_batch;
use crate::options::Options;

/// What WAL replay recovered.
pub(crate) struct Replayed {
    pub(crate) memtable: Memtable,
    pub(crate) last_seqno: SeqNo,
}

/// Creates a store in `dir` and returns its shared state, ready to run.
pub(crate) fn create(dir: &Path, credential: &Credential, options: Options) -> Result<Arc<Inner>> {
    create_keyed(dir, credential, options, false).map(|(inner, _)| inner)
}

/// Like [`create`]; with `recovery` also makes a recovery key, whose keyslot is
/// written in the same `KEYSLOTS` write, and returns it (it exists nowhere else).
pub(crate) fn create_keyed(
    dir: &Path,
    credential: &Credential,
    options: Options,
    recovery: bool,
) -> Result<(Arc<Inner>, Option<RecoveryKey>)> {
    options.validate()?;
    if options.read_only {
        return Err(Error::InvalidArgument("cannot create a store read-only".into()));
    }
    let vfs = options.vfs.clone();
    if vfs.exists(&dir.join(compaction::CURRENT_FILE)) {
        return Err(Error::AlreadyExists(dir.display().to_string()));
    }
    if let Ok(names) = vfs.list_dir(dir) {
        if !names.iter().all(|n| left_by_interrupted_create(n)) {
            if names.iter().any(|n| n == KEYSLOTS_FILE) {
                // Key files next to data but no CURRENT: a damaged store, not ours to wipe.
                return Err(Error::AlreadyExists(dir.display().to_string()));
            }
            // Files of something else (another database, a user's documents) must
            // never end up mixed with a store's, nor be removed by its cleanup.
            return Err(Error::InvalidArgument(format!(
                "{} is not empty and holds no store; create a store in a new or empty directory",
                dir.display()
            )));
        }
    }
    vfs.create_dir_all(dir).map_err(|source| Error::Io { file: dir.display().to_string(), source })?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        // The new directory's own entry must survive a crash too.
        sync_dir(&*vfs, parent)?;
    }
    let lock = take_lock(&*vfs, dir)?;
    remove_interrupted_create(&*vfs, dir)?;
    let (keys, recovery_key) = if recovery {
        let (keys, key) = KeyManager::create_with_recovery(&vfs, dir, credential, &options.argon2)?;
        (keys, Some(key))
    } else {
        (KeyManager::create(&vfs, dir, credential, &options.argon2)?, None)
    };
    let versions = VersionSet::create(&vfs, dir, &keys, options.num_levels)?;
    sync_dir(&*vfs, dir)?;
    Ok((start(dir, options, vfs, keys, versions, Some(lock), None)?, recovery_key))
}

/// Whether `name` is something a `create` cut short by a crash can leave: the
/// lock, the key files (and their temporaries), the first manifest and a
/// temporary `CURRENT`. Until `CURRENT` is durable the store holds no data.
fn left_by_interrupted_create(name: &str) -> bool {
    let base = name.strip_suffix(".tmp");
    name == LOCK_FILE
        || [KEYSLOTS_FILE, KEYRING_FILE].contains(&base.unwrap_or(name))
        || base == Some(compaction::CURRENT_FILE)
        || name.strip_prefix("MANIFEST-").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `dir` holds what an interrupted `create` leaves and no `CURRENT`.
fn is_interrupted_create(vfs: &dyn Vfs, dir: &Path) -> bool {
    !vfs.exists(&dir.join(compaction::CURRENT_FILE))
        && vfs.list_dir(dir).is_ok_and(|names| names.iter().all(|n| left_by_interrupted_create(n)))
}

/// Removes what an interrupted `create` left (the caller holds the lock and has
/// checked that nothing else is there), so that `create` starts from scratch.
fn remove_interrupted_create(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    let names = vfs.list_dir(dir).map_err(|source| Error::Io { file: ".".into(), source })?;
    if vfs.exists(&dir.join(compaction::CURRENT_FILE)) {
        // Another process finished a create between our check and our lock.
        return Err(Error::AlreadyExists(dir.display().to_string()));
    }
    let mut removed = false;
    for name in names.iter().filter(|n| *n != LOCK_FILE && left_by_interrupted_create(n)) {
        vfs.remove_file(&dir.join(name)).map_err(|source| Error::Io { file: name.clone(), source })?;
        removed = true;
    }
    if removed {
        sync_dir(vfs, dir)?;
    }
    Ok(())
}

/// Opens the store in `dir`: unlock, lock, recover, replay.
pub(crate) fn open(dir: &Path, credential: &Credential, options: Options) -> Result<Arc<Inner>> {
    options.validate()?;
    let real_vfs = options.vfs.clone();
    if !real_vfs.exists(&dir.join(KEYSLOTS_FILE)) || is_interrupted_create(&*real_vfs, dir) {
        // An interrupted `init` left key files but no data: there is no store
        // yet, and `init` starts over.
        return Err(Error::NotFound(dir.display().to_string()));
    }
    // Unlock first: it only reads, so a wrong key changes nothing, not even LOCK.
    let keys = KeyManager::unlock(&real_vfs, dir, credential)?;
    let (vfs, lock) = if options.read_only {
        (ReadOnlyVfs::wrap(real_vfs), None)
    } else {
        let lock = take_lock(&*real_vfs, dir)?;
        (real_vfs, Some(lock))
    };
    let versions = VersionSet::recover(&vfs, dir, &keys, options.num_levels)?;
    let names = vfs.list_dir(dir).map_err(|source| Error::Io { file: ".".into(), source })?;
    if !options.read_only {
        // A segment or table created just before a crash may carry a number the
        // manifest never recorded as handed out; never hand it out again.
        let max_used = max_file_number(&names);
        while versions.new_file_number() <= max_used {}
    }
    let replayed = replay_wal(&vfs, dir, &keys, &versions, &names, !options.read_only)?;
    start(dir, options, vfs, keys, versions, lock, Some(replayed))
}

fn take_lock(vfs: &dyn Vfs, dir: &Path) -> Result<Box<dyn LockGuard>> {
    vfs.lock(&dir.join(LOCK_FILE)).map_err(|e| match e {
        LockError::Held { pid } => Error::Locked { pid },
        LockError::Io(source) => Error::Io { file: LOCK_FILE.into(), source },
    })
}

/// Replays every WAL segment the manifest still needs, in order, into one
/// memtable. A torn tail is cut off (read-write only); damage inside a log is
/// an error that names the file and offset.
pub(crate) fn replay_wal(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    keys: &KeyManager,
    versions: &VersionSet,
    names: &[String],
    truncate: bool,
) -> Result<Replayed> {
    let mut segments: Vec<u64> =
        names.iter().filter_map(|n| file_number(n, "wal")).filter(|&n| n >= versions.log_number()).collect();
    segments.sort_unstable();
    let memtable = Memtable::new(segments.last().copied().unwrap_or(0));
    let mut last_seqno = versions.last_seqno();
    for number in segments {
        let path = wal::segment_path(dir, number);
        let name = wal_name(number);
        if wal_segment_is_blank(&**vfs, dir, number)? {
            // No record: created but cut off by a crash before its header was
            // synced. Nothing to replay; the edit below retires it. (A segment
            // never written to past its header, preallocated zeros and all, reads
            // as a log with no record and a clean end.)
            continue;
        }
        let log = read_wal_segment(vfs, &path, number, keys, !truncate).map_err(|e| with_repair_hint(e.into()))?;
        let mut offset = crypto::FILE_HEADER_LEN as u64;
        for record in &log.records {
            let batch = decode_batch(record, &name, offset).map_err(with_repair_hint)?;
            for (i, op) in batch.ops.iter().enumerate() {
                memtable.insert(&op.key, batch.first_seqno + i as u64, op.kind, &op.value);
            }
            last_seqno = last_seqno.max(batch.last_seqno());
            offset += (wal::FRAME_HEADER_LEN + record.len() + crypto::TAG_LEN) as u64;
        }
        if let (Some(_), true) = (log.torn_tail_at, truncate) {
            vfs.truncate(&path, log.valid_len).map_err(|source| Error::Io { file: name, source })?;
        }
    }
    Ok(Replayed { memtable, last_seqno })
}

/// How often a read-only reader reads a segment again before it believes a
/// corruption, and how long it waits in between.
const LIVE_SEGMENT_RETRIES: u32 = 50;
const LIVE_SEGMENT_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

/// Reads a WAL segment whole. With `writer_may_be_live` (a read-only handle or
/// `verify`, which take no lock), the segment may be one a writer process is
/// working on, which can make a read see a corruption that is not there:
/// - a frame being copied into preallocated space can show its header before its
///   last bytes. Such a segment still ends in zeros (its last byte is preallocated
///   space, or the last byte of that frame, not copied yet);
/// - a segment cut back to its last frame (at a memtable switch or at close)
///   shrinks under a reader that sized it before.
///
/// So a corruption in a segment whose last byte is zero, or whose size changed
/// during the read, is read again (up to 50 times, 2 ms apart) before it is
/// believed. Damage on disk is still reported, after that delay.
pub(crate) fn read_wal_segment(
    vfs: &Arc<dyn Vfs>,
    path: &Path,
    number: u64,
    keys: &KeyManager,
    writer_may_be_live: bool,
) -> wal::Result<wal::RecoveredLog> {
    let mut attempts = 0;
    loop {
        let size_before = vfs.file_size(path).ok();
        match LogReader::read_all(vfs, path, keys, FileKind::Wal, number) {
            Err(wal::Error::Corruption { .. })
                if writer_may_be_live
                    && attempts < LIVE_SEGMENT_RETRIES
                    && (ends_in_zero(vfs, path) || vfs.file_size(path).ok() != size_before) =>
            {
                attempts += 1;
                std::thread::sleep(LIVE_SEGMENT_RETRY_PAUSE);
            }
            other => return other,
        }
    }
}

/// Whether the last byte of the file at `path` is zero (false if it cannot be read).
fn ends_in_zero(vfs: &Arc<dyn Vfs>, path: &Path) -> bool {
    let Ok(file) = vfs.open(path) else { return false };
    let mut last = [1u8];
    file.len().checked_sub(1).is_some_and(|at| file.read_exact_at(&mut last, at).is_ok() && last == [0])
}

/// Adds to a corruption error what the user can do about it.
fn with_repair_hint(e: Error) -> Error {
    match e {
        Error::Corruption { file, offset, reason } => Error::Corruption {
            file,
            offset,
            reason: format!("{reason} (run `synapsed-storage verify`, then `repair`)"),
        },
        other => other,
    }
}

/// Builds the shared state. A read-write start writes the replayed memtable to
/// level 0, starts a new WAL segment and logs both in one edit.
fn start(
    dir: &Path,
    options: Options,
    vfs: Arc<dyn Vfs>,
    keys: Arc<KeyManager>,
    versions: VersionSet,
    lock: Option<Box<dyn LockGuard>>,
    replayed: Option<Replayed>,
) -> Result<Arc<Inner>> {
    let block_cache = (options.block_cache_bytes > 0).then(|| BlockCache::new(options.block_cache_bytes));
    // A read-only handle pins every table of its version (see `open_tables`).
    let capacity = (!options.read_only).then_some(options.max_open_files);
    let tables = TableCache::with_capacity(vfs.clone(), dir.to_path_buf(), keys.clone(), block_cache.clone(), capacity);
    let ctx = CompactionContext {
        vfs: vfs.clone(),
        dir: dir.to_path_buf(),
        keys: keys.clone(),
        tables: tables.clone(),
        options: options.compaction_options(),
    };
    let (replayed_mem, last_seqno) = match replayed {
        Some(r) => (Some(r.memtable), r.last_seqno),
        None => (None, versions.last_seqno()),
    };
    let read_only = options.read_only;
    let inner = Arc::new(Inner {
        dir: dir.to_path_buf(),
        vfs,
        options,
        keys,
        versions: Arc::new(versions),
        tables,
        block_cache,
        ctx,
        writer: Mutex::new(WriterState { wal: None, last_seqno, wal_full: false }),
        mems: RwLock::new(Memtables {
            active: Arc::new(Memtable::new(0)),
            immutables: VecDeque::new(),
        }),
        visible: AtomicU64::new(last_seqno),
        last_logged: AtomicU64::new(last_seqno),
        snapshots: Arc::new(SnapshotRegistry::default()),
        bg: Mutex::new(BgState::default()),
        bg_wake: Condvar::new(),
        bg_done: Condvar::new(),
        work: Mutex::new(()),
        failure: Mutex::new(None),
        failure_logged: AtomicBool::new(false),
        flushes: AtomicU64::new(0),
        ingests: AtomicU64::new(0),
        compactions: AtomicU64::new(0),
        min_overwrite_passes: AtomicU32::new(0),
        lock: Mutex::new(lock),
        closed: AtomicBool::new(false),
    });
    open_tables(&inner)?;
    if read_only {
        if let Some(mem) = replayed_mem {
            inner.mems.write().active = Arc::new(mem);
        }
        return Ok(inner);
    }
    let number = inner.versions.new_file_number();
    let wal = inner.create_wal(number)?;
    let mut edit = VersionEdit { log_number: Some(number), last_seqno: Some(last_seqno), ..VersionEdit::default() };
    if let Some(mem) = replayed_mem.filter(|m| !m.is_empty()) {
        let table = inner.versions.new_file_number();
        if let Some(meta) = compaction::flush_memtable(&inner.ctx, &Arc::new(mem), table)? {
            edit.added.push((0, meta));
        }
    }
    inner.versions.log_and_apply(edit)?;
    inner.writer.lock().wal = Some(Arc::new(wal));
    inner.mems.write().active = Arc::new(Memtable::with_expected_bytes(number, inner.options.memtable_size_bytes));
    inner.delete_obsolete();
    Ok(inner)
}

/// Opens every table of the current version (footer, index, filter), so that a
/// damaged or missing table stops the open with an error pointing to `repair`,
/// and so that a read-only handle keeps every table it may read open: a
/// writer's compaction can then unlink them without breaking its reads. A
/// read-only handle therefore refuses a version with more tables than
/// `max_open_files`; a read-write handle's cache closes the least recently used.
pub(crate) fn open_tables(inner: &Inner) -> Result<()> {
    let version = inner.versions.current();
    let count: usize = (0..version.num_levels()).map(|level| version.level_files(level).len()).sum();
    if inner.options.read_only && count > inner.options.max_open_files {
        return Err(Error::InvalidArgument(format!(
            "the store has {count} tables and a read-only handle keeps every one open, \
             more than max_open_files = {}; open with a larger max_open_files \
             (and a file-descriptor limit to match)",
            inner.options.max_open_files
        )));
    }
    for level in 0..version.num_levels() {
        for file in version.level_files(level) {
            inner.tables.get(file.number).map_err(|e| with_repair_hint(e.into()))?;
        }
    }
    Ok(())
}
