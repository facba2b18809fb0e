//! Creating and opening a store: lock, keys, version set, WAL replay, and the
//! first flush that retires replayed segments.
//!
//! Open never writes before the keys unlock, so a wrong passphrase leaves every
//! file as it was. After replay a read-write open writes what it replayed to a
//! level-0 table and logs an edit naming a fresh WAL segment as the oldest one
//! needed; the replayed segments are then obsolete, so repeated open/close
//! cycles do not pile segments up. A crash anywhere in here leaves either the
//! old state (segments still named by the manifest) or the new one.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::Arc;

use compaction::{CompactionContext, VersionEdit, VersionSet, WalSegment};
use crypto::vfs::{LockError, LockGuard, Vfs};
use crypto::{Credential, FileKind, KeyManager, RecoveryKey, KEYRING_FILE, KEYSLOTS_FILE};
use index::{BlockCache, Memtable, SeqNo, TableCache};
use parking_lot::{Condvar, Mutex, RwLock};
use wal::LogReader;

use crate::db::inner::{
    file_number, max_file_number, retired_if_evicted, sync_dir, wal_name, wal_segment_is_blank, BgState, FailureState,
    Inner, Memtables, Scheduler, WritePipeline, WriterState, LOCK_FILE,
};
use crate::db::read_only_vfs::ReadOnlyVfs;
use crate::db::readers::ReaderRegistration;
use crate::db::snapshot::SnapshotRegistry;
use crate::error::{Error, Result};
use crate::format::decode_batch;
use crate::options::Options;

/// What WAL replay recovered.
pub(crate) struct Replayed {
    /// The default keyspace's operations.
    pub(crate) memtable: Memtable,
    /// Other live keyspaces' operations, by keyspace id (operations of a
    /// keyspace dropped since are skipped).
    pub(crate) memtables_in: std::collections::BTreeMap<u32, Memtable>,
    pub(crate) last_seqno: SeqNo,
}

/// Creates a store in `dir` and returns its shared state, ready to run.
pub(crate) fn create(dir: &Path, credential: &Credential, options: Options) -> Result<Arc<Inner>> {
    create_keyed(dir, credential, options, None).map(|(inner, _)| inner)
}

/// Like [`create`]; with `recovery` also makes a keyslot for that recovery key,
/// written in the same `KEYSLOTS` write, and hands the key back.
pub(crate) fn create_keyed(
    dir: &Path,
    credential: &Credential,
    options: Options,
    recovery: Option<RecoveryKey>,
) -> Result<(Arc<Inner>, Option<RecoveryKey>)> {
    options.validate()?;
    if matches!(credential, Credential::Passphrase(_)) {
        options.check_kdf_floor()?;
    }
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
    let (keys, recovery_key) = match recovery {
        Some(key) => (KeyManager::create_with_recovery_key(&vfs, dir, credential, &options.argon2, &key)?, Some(key)),
        None => (KeyManager::create(&vfs, dir, credential, &options.argon2)?, None),
    };
    let versions = VersionSet::create(&vfs, dir, &keys, options.num_levels)?;
    sync_dir(&*vfs, dir)?;
    Ok((start(dir, options, vfs, keys, versions, (Some(lock), None), None)?, recovery_key))
}

/// Whether `name` is something a `create` cut short by a crash can leave: the
/// lock, the key files (and their temporaries), the first manifest and a
/// temporary `CURRENT`. Until `CURRENT` is durable the store holds no data.
fn left_by_interrupted_create(name: &str) -> bool {
    let base = name.strip_suffix(".tmp");
    name == LOCK_FILE
        || [KEYSLOTS_FILE, KEYRING_FILE].contains(&base.unwrap_or(name))
        || base == Some(compaction::CURRENT_FILE)
        || crypto::names::manifest_number(name).is_some()
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
    let span = tracing::info_span!("open", dir = %dir.display(), read_only = options.read_only);
    let _entered = span.enter();
    options.validate()?;
    let real_vfs = options.vfs.clone();
    if !real_vfs.exists(&dir.join(KEYSLOTS_FILE)) || is_interrupted_create(&*real_vfs, dir) {
        // An interrupted `init` left key files but no data: there is no store
        // yet, and `init` starts over.
        return Err(Error::NotFound(dir.display().to_string()));
    }
    // Unlock first: it only reads, so a wrong key changes nothing, not even LOCK.
    let keys = KeyManager::unlock(&real_vfs, dir, credential)?;
    let (vfs, lock, reader) = if options.read_only {
        // Registered before anything is read, so the writer holds back every
        // obsolete file until this reader says which tables it holds.
        let reader = ReaderRegistration::register(&real_vfs, dir).map(Arc::new);
        (ReadOnlyVfs::wrap(real_vfs), None, reader)
    } else {
        let lock = take_lock(&*real_vfs, dir)?;
        // Key files of the first layout are upgraded, and a key-file change a
        // crash interrupted is finished, before anything else is written.
        keys.upgrade(&real_vfs, dir)?;
        (real_vfs, Some(lock), None)
    };
    // The manifest and the WAL segments are checked against each other before
    // anything is written, so a store refused as holding a file of another state
    // is left exactly as it was (nothing of it made permanent, nothing deleted).
    let recovered = (|| {
        let replayed = probe_and_replay(&vfs, dir, &keys, options.num_levels, !options.read_only)?;
        check_freshness(&options, &keys, replayed.last_seqno)?;
        if options.merge_operators.iter().next().is_some() {
            // Another read of the manifest, only for stores opened with merge
            // operators, so that a wrong one is refused before anything is written.
            let probe = VersionSet::recover_read_only(&vfs, dir, &keys, options.num_levels)?;
            crate::db::merge::check_recorded_operators(&probe.current(), &options)?;
        }
        let versions = VersionSet::recover(&vfs, dir, &keys, options.num_levels)?;
        let names = vfs.list_dir(dir).map_err(|source| Error::Io { file: ".".into(), source })?;
        if !options.read_only {
            // A segment or table created just before a crash may carry a number the
            // manifest never recorded as handed out; never hand it out again.
            let max_used = max_file_number(&names);
            while versions.new_file_number() <= max_used {}
        }
        Ok((versions, replayed))
    })();
    let (versions, replayed) = recovered.map_err(|e| retired_if_evicted(reader.as_deref(), e))?;
    start(dir, options, vfs, keys, versions, (lock, reader), Some(replayed))
}

pub(crate) fn take_lock(vfs: &dyn Vfs, dir: &Path) -> Result<Box<dyn LockGuard>> {
    vfs.lock(&dir.join(LOCK_FILE)).map_err(|e| match e {
        LockError::Held { pid } => Error::Locked { pid },
        LockError::Io(source) => Error::Io { file: LOCK_FILE.into(), source },
    })
}

/// Refuses a store that recovers to an older seqno than the outside counter saw
/// (a rollback of the whole directory, `crate::freshness`).
pub(crate) fn check_freshness(options: &Options, keys: &KeyManager, recovered: SeqNo) -> Result<()> {
    let Some(counter) = &options.freshness_counter else { return Ok(()) };
    let seen = counter
        .highest(&keys.store_id())
        .map_err(|source| Error::Io { file: crate::freshness::COUNTER_NAME.into(), source })?;
    match seen {
        Some(expected) if expected > recovered => Err(Error::RolledBack { found: recovered, expected }),
        _ => Ok(()),
    }
}

/// How often a handle that takes no lock reads the manifest and the WAL again
/// when they disagree (a writer process may have started or retired a segment
/// between the two reads), and how long it waits in between.
const STALE_VIEW_RETRIES: u32 = 20;
const STALE_VIEW_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// Reads `CURRENT` and the manifest without writing anything and replays the
/// WAL segments it lists, checking each against the manifest (see
/// [`replay_wal_checked`]). `truncate` (a read-write open, which holds the lock)
/// cuts torn tails off; without it a writer process may be working, so a
/// disagreement between the manifest and the directory is read again before it
/// is believed.
pub(crate) fn probe_and_replay(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    keys: &Arc<KeyManager>,
    num_levels: usize,
    truncate: bool,
) -> Result<Replayed> {
    let mut attempts = 0;
    loop {
        let probe = VersionSet::recover_read_only(vfs, dir, keys, num_levels)?;
        let names = vfs.list_dir(dir).map_err(|source| Error::Io { file: ".".into(), source })?;
        let checked = tables_present(&probe, &names)
            .and_then(|()| feed_segments_match(vfs, dir, &probe, &names))
            .and_then(|()| replay_wal_checked(vfs, dir, keys, &probe, &names, truncate));
        match checked {
            Ok(replayed) => return Ok(replayed),
            Err(ReplayFailure::Disagrees(_)) if !truncate && attempts < STALE_VIEW_RETRIES => {
                attempts += 1;
                std::thread::sleep(STALE_VIEW_RETRY_PAUSE);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Every table the manifest lists must be on disk. Checked before a read-write
/// open writes anything, so a manifest of an earlier state (one listing tables a
/// later compaction retired) is refused without being made the store's state.
fn tables_present(versions: &VersionSet, names: &[String]) -> std::result::Result<(), ReplayFailure> {
    let on_disk: std::collections::HashSet<u64> = names.iter().filter_map(|n| file_number(n, "sst")).collect();
    let version = versions.current();
    {
        // The tables of every keyspace.
        if let Some((_, file)) = version.all_files().find(|(_, f)| !on_disk.contains(&f.number)) {
            return Err(ReplayFailure::Disagrees(Error::Corruption {
                file: crypto::names::table_file(file.number),
                offset: 0,
                reason: format!(
                    "listed in the manifest ({}) but missing: the table was deleted, or the \
                     manifest is from an earlier state (run `synapsed-storage verify`, then `repair`)",
                    crypto::names::manifest_file(versions.manifest_number())
                ),
            }));
        }
    }
    Ok(())
}

/// Every WAL segment the manifest keeps for the change feed that is on disk
/// must have the length recorded when it was retired (it never changes after):
/// a segment of another length was replaced, or is an older copy put back, and
/// is refused before anything is written. A missing one is not refused here:
/// the change feed reports the changes it held as truncated.
fn feed_segments_match(vfs: &Arc<dyn Vfs>, dir: &Path, versions: &VersionSet, names: &[String]) -> std::result::Result<(), ReplayFailure> {
    for (number, segment) in versions.feed_segments() {
        let name = wal_name(number);
        if !names.contains(&name) {
            continue;
        }
        let size = match vfs.file_size(&wal::segment_path(dir, number)) {
            Ok(size) => size,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(ReplayFailure::Failed(Error::Io { file: name, source })),
        };
        if size != segment.bytes {
            return Err(ReplayFailure::Disagrees(Error::Corruption {
                file: name,
                offset: 0,
                reason: format!(
                    "the manifest keeps this WAL segment for the change feed with {} bytes, but it has {size}: \
                     it was replaced, or an earlier copy was put back (run `synapsed-storage verify`; \
                     `repair` rebuilds from what is on disk and drops the change feed's segments)",
                    segment.bytes
                ),
            }));
        }
    }
    Ok(())
}

/// Why a replay failed.
pub(crate) enum ReplayFailure {
    /// The WAL segments on disk disagree with what the manifest lists: a segment
    /// missing, one the manifest does not name, or a seqno gap or overlap. A
    /// file of another state of the store, or (for a handle without the lock) a
    /// view taken while a writer process moved on.
    Disagrees(Error),
    /// Anything else: damage, I/O.
    Failed(Error),
}

impl From<ReplayFailure> for Error {
    fn from(f: ReplayFailure) -> Error {
        match f {
            ReplayFailure::Disagrees(e) | ReplayFailure::Failed(e) => e,
        }
    }
}

impl From<Error> for ReplayFailure {
    fn from(e: Error) -> ReplayFailure {
        ReplayFailure::Failed(e)
    }
}

/// Replays every WAL segment the manifest still needs, in order, into one
/// memtable. A torn tail is cut off (read-write only); damage inside a log is
/// an error that names the file and offset; a disagreement between the manifest
/// and the WAL is told apart from other failures.
///
/// A manifest of this format lists every segment at or above its log number
/// with the seqno its batches start at (`compaction/FORMAT.md`). Each listed
/// segment must be on disk; a segment on disk that holds a record must be
/// listed (one created just before a crash, before the edit naming it, holds
/// none); batch seqnos rise strictly across the segments in order, each
/// segment's first batch is at or after its listed first seqno, and where the
/// manifest records that a segment's predecessor was synced whole, the
/// predecessor's last batch ends exactly one before it. Anything else is a file
/// of an earlier or later state (a deleted or old segment, an older manifest put
/// back) and is refused naming the segment. A manifest of format 1 lists no
/// segment and gets none of these checks.
pub(crate) fn replay_wal_checked(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    keys: &KeyManager,
    versions: &VersionSet,
    names: &[String],
    truncate: bool,
) -> std::result::Result<Replayed, ReplayFailure> {
    let log_number = versions.log_number();
    let listed = versions.wal_segments();
    let on_disk: std::collections::BTreeSet<u64> =
        names.iter().filter_map(|n| file_number(n, "wal")).filter(|&n| n >= log_number).collect();
    let disagrees = |number: u64, reason: String| {
        ReplayFailure::Disagrees(Error::Corruption {
            file: wal_name(number),
            offset: 0,
            reason: format!("{reason} (run `synapsed-storage verify`; `repair` rebuilds from what is on disk)"),
        })
    };
    if let Some(listed) = &listed {
        if let Some(missing) = listed.keys().find(|n| !on_disk.contains(n)) {
            return Err(disagrees(
                *missing,
                format!(
                    "the manifest lists this WAL segment but it is missing: writes it held are lost \
                     (the segment was deleted, or the manifest is from a later state: {})",
                    crypto::names::manifest_file(versions.manifest_number())
                ),
            ));
        }
    }
    let newest = on_disk.last().copied();
    let memtable = Memtable::new(newest.unwrap_or(0));
    let mut memtables_in: std::collections::BTreeMap<u32, Memtable> = std::collections::BTreeMap::new();
    let version = versions.current();
    let mut last_seqno = versions.last_seqno();
    // The last seqno of the batches replayed so far, and of the listed segment
    // just before the current one (if it held any batch).
    let mut previous_batch: Option<SeqNo> = None;
    let mut previous_segment: Option<(u64, Option<SeqNo>)> = None;
    for number in on_disk {
        let path = wal::segment_path(dir, number);
        let name = wal_name(number);
        if wal_segment_is_blank(&**vfs, dir, number)? {
            // No record: created but cut off by a crash before its header was
            // synced. Nothing to replay; the edit below retires it. (A segment
            // never written to past its header, preallocated zeros and all, reads
            // as a log with no record and a clean end.) A listed one, cut back
            // to its header at a switch, holds no batch: the next segment's
            // seqnos follow no batch of it.
            if listed.as_ref().is_some_and(|l| l.contains_key(&number)) {
                previous_segment = Some((number, None));
            }
            continue;
        }
        let log = match read_wal_segment(vfs, &path, number, keys, !truncate) {
            Ok(log) => log,
            Err(wal::Error::Corruption { offset, .. }) if Some(number) == newest && last_frame_is_cut(vfs, &path, offset) => {
                return Err(ReplayFailure::Failed(Error::TornLastFrame { file: name, offset }));
            }
            Err(e) => return Err(with_repair_hint(e.into()).into()),
        };
        let info = listed.as_ref().map(|l| l.get(&number).copied());
        if let (Some(None), false) = (info, log.records.is_empty()) {
            return Err(disagrees(
                number,
                "this WAL segment holds writes but the manifest does not list it: a segment of another \
                 state of the store (copied in, or the manifest is older than the segment)"
                    .into(),
            ));
        }
        let info = info.flatten();
        let mut offset = crypto::FILE_HEADER_LEN as u64;
        let mut segment_last = None;
        for record in &log.records {
            let batch = decode_batch(record, &name, offset).map_err(with_repair_hint)?;
            if listed.is_some() {
                if let Some(prev) = previous_batch.filter(|&p| batch.first_seqno <= p) {
                    return Err(disagrees(
                        number,
                        format!("batch at offset {offset} starts at seqno {}, not after {prev}, the last before it: an overlap", batch.first_seqno),
                    ));
                }
                if let Some(first) = info.map(|i| i.first_seqno).filter(|&f| batch.first_seqno < f) {
                    return Err(disagrees(
                        number,
                        format!("batch at offset {offset} starts at seqno {}, before {first}, where the manifest says this segment starts", batch.first_seqno),
                    ));
                }
            }
            for (i, op) in batch.ops.iter().enumerate() {
                let seqno = batch.first_seqno + i as u64;
                if op.keyspace == compaction::DEFAULT_KEYSPACE_ID {
                    op.apply(&memtable, seqno);
                } else if version.has_keyspace(op.keyspace) {
                    let m = memtables_in.entry(op.keyspace).or_insert_with(|| Memtable::new(newest.unwrap_or(0)));
                    op.apply(m, seqno);
                }
                // Otherwise the keyspace was dropped after the batch: its data is gone with it.
            }
            last_seqno = last_seqno.max(batch.last_seqno());
            previous_batch = Some(previous_batch.map_or(batch.last_seqno(), |p| p.max(batch.last_seqno())));
            segment_last = Some(batch.last_seqno());
            offset += (wal::FRAME_HEADER_LEN + record.len() + crypto::TAG_LEN) as u64;
        }
        if let (Some(info), Some((prev_number, Some(prev_last)))) = (info, previous_segment) {
            if info.predecessor_synced && info.first_seqno != 0 && prev_last.saturating_add(1) != info.first_seqno {
                return Err(disagrees(
                    prev_number,
                    format!(
                        "this WAL segment ends at seqno {prev_last} but the next one, {}, starts at {}: \
                         writes are missing (the segment was cut short or replaced by an earlier copy)",
                        wal_name(number),
                        info.first_seqno
                    ),
                ));
            }
        }
        if info.is_some() {
            previous_segment = Some((number, segment_last));
        }
        if let (Some(_), true) = (log.torn_tail_at, truncate) {
            vfs.truncate(&path, log.valid_len).map_err(|source| Error::Io { file: name, source })?;
        }
    }
    Ok(Replayed { memtable, memtables_in, last_seqno })
}

/// Whether the frame at `offset` of the segment at `path` is whole but for its
/// last 1 to 15 bytes, zeros after it (see [`frame_cut_in_its_last_bytes`]).
fn last_frame_is_cut(vfs: &Arc<dyn Vfs>, path: &Path, offset: u64) -> bool {
    vfs.read_all(path).is_ok_and(|log| frame_cut_in_its_last_bytes(&log, offset))
}

/// Whether the frame at `offset` of the log `log` is whole but for its last 1 to
/// 15 bytes, which read as zeros like everything after it: the one outcome of a
/// power loss that the WAL's rule reports as corruption (`docs/design.md`
/// section 6, `wal/FORMAT.md`).
pub(crate) fn frame_cut_in_its_last_bytes(log: &[u8], offset: u64) -> bool {
    let Ok(o) = usize::try_from(offset) else { return false };
    let Some(len) = log.get(o..o.saturating_add(4)).and_then(|b| <[u8; 4]>::try_from(b).ok()) else { return false };
    let Some(end) = usize::try_from(u32::from_le_bytes(len)).ok().and_then(|l| o.checked_add(12)?.checked_add(l)) else {
        return false;
    };
    let zeros_from = log.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    end <= log.len() && zeros_from > o + 12 && zeros_from < end && end - zeros_from < 16
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
    (lock, reader): (Option<Box<dyn LockGuard>>, Option<Arc<ReaderRegistration>>),
    replayed: Option<Replayed>,
) -> Result<Arc<Inner>> {
    let vfs = crate::metrics::metered_vfs(vfs, options.metrics);
    let block_cache = (options.block_cache_bytes > 0).then(|| BlockCache::new(options.block_cache_bytes));
    // A read-only handle pins every table of its version (see `open_tables`).
    let capacity = (!options.read_only).then_some(options.max_open_files);
    let tables = TableCache::with_capacity(vfs.clone(), dir.to_path_buf(), keys.clone(), block_cache.clone(), capacity);
    tables.set_mmap_reads(options.mmap_reads);
    let ctx = CompactionContext {
        vfs: vfs.clone(),
        dir: dir.to_path_buf(),
        keys: keys.clone(),
        tables: tables.clone(),
        options: options.compaction_options(),
        keyspace_tables: Default::default(),
    };
    // Each keyspace's tables are built with the options of its create record.
    for meta in versions.current().keyspaces() {
        ctx.set_keyspace_options(meta);
    }
    let (replayed_mem, replayed_in, last_seqno) = match replayed {
        Some(r) => (Some(r.memtable), r.memtables_in, r.last_seqno),
        None => (None, Default::default(), versions.last_seqno()),
    };
    let read_only = options.read_only;
    let metrics_on = options.metrics;
    let inner = Arc::new(Inner {
        dir: dir.to_path_buf(),
        vfs,
        options,
        keys,
        versions: Arc::new(versions),
        tables,
        block_cache,
        ctx,
        pipeline: WritePipeline {
            writer: Mutex::new(WriterState { wal: None, last_seqno, wal_full: false }),
            mems: RwLock::new(Memtables::new(Arc::new(Memtable::new(0)))),
            visible: AtomicU64::new(last_seqno),
            mems_generation: AtomicU64::new(0),
            last_logged: AtomicU64::new(last_seqno),
        },
        snapshots: Arc::new(SnapshotRegistry::default()),
        sched: Scheduler {
            bg: Mutex::new(BgState::default()),
            bg_wake: Condvar::new(),
            bg_done: Condvar::new(),
            work: Mutex::new(()),
            flushes: AtomicU64::new(0),
            ingests: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            min_overwrite_passes: AtomicU32::new(0),
        },
        failure: FailureState { first: Mutex::new(None), logged: AtomicBool::new(false) },
        lock: Mutex::new(lock),
        reader,
        closed: AtomicBool::new(false),
        op_metrics: metrics_on.then(|| Box::new(crate::metrics::OpMetrics::new())),
    });
    open_tables(&inner).map_err(|e| inner.reader_error(e))?;
    if read_only {
        if let Some(mem) = replayed_mem {
            let mut mems = inner.pipeline.mems.write();
            mems.active = Arc::new(mem);
            mems.active_in = replayed_in.into_iter().map(|(id, m)| (id, Arc::new(m))).collect();
        }
        if let Some(reader) = &inner.reader {
            // Every table of the version is open: from now on it reads only those.
            reader.pin(&inner.versions.live_files());
        }
        return Ok(inner);
    }
    let number = inner.versions.new_file_number();
    let wal = inner.create_wal(number)?;
    // Replayed segments are retired by this edit, so the new one has no listed
    // predecessor; it is listed with the seqno its first batch will carry.
    let segment = WalSegment { first_seqno: last_seqno + 1, predecessor_synced: true };
    let mut edit = VersionEdit {
        log_number: Some(number),
        last_seqno: Some(last_seqno),
        wal_segments: vec![(number, segment)],
        ..VersionEdit::default()
    };
    // With a change-feed retention the replayed segments are kept for the feed.
    inner.keep_retired_for_feed(&mut edit);
    // Every keyspace's replayed operations go to level-0 tables in the same
    // edit (an atomic flush, as at a memtable switch).
    // The replayed range tombstones (of every keyspace) leave the WAL with the
    // segments this edit retires, so they join the version in the same edit.
    edit.added_range_tombstones = crate::db::range_del::generation_not_in_version(
        replayed_mem.as_ref(),
        replayed_in.iter().map(|(id, m)| (*id, m)),
        &inner.versions.current(),
    );
    if let Some(mem) = replayed_mem.filter(|m| !m.is_empty()) {
        let table = inner.versions.new_file_number();
        if mem.has_entries() {
            let hooks = inner.table_hooks(compaction::DEFAULT_KEYSPACE_ID);
            if let Some(meta) = compaction::flush_memtable(&inner.ctx, &hooks, &Arc::new(mem), table)? {
                edit.added.push((0, meta));
            }
        }
    }
    for (id, mem) in replayed_in.into_iter().filter(|(_, m)| m.has_entries()) {
        let table = inner.versions.new_file_number();
        let hooks = inner.table_hooks(id);
        if let Some(meta) = compaction::flush_memtable_in(&inner.ctx, id, &hooks, &Arc::new(mem), table)? {
            edit.added.push((0, meta));
        }
    }
    inner.versions.log_and_apply(edit)?;
    inner.pipeline.writer.lock().wal = Some(Arc::new(wal));
    inner.pipeline.mems.write().active = Arc::new(Memtable::with_expected_bytes(number, inner.options.memtable_size_bytes));
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
    let count = version.all_files().count();
    if inner.options.read_only && count > inner.options.max_open_files {
        return Err(Error::InvalidArgument(format!(
            "the store has {count} tables and a read-only handle keeps every one open, \
             more than max_open_files = {}; open with a larger max_open_files \
             (and a file-descriptor limit to match)",
            inner.options.max_open_files
        )));
    }
    for (_, file) in version.all_files() {
        inner.tables.get(file.number).map_err(|e| with_repair_hint(e.into()))?;
    }
    Ok(())
}
