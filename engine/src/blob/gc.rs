//! Garbage collection of the blob store: mark and sweep from the committed
//! blobs' metadata records, then blob files.
//!
//! 1. Mark: under the registry lock, copy the in-flight blob ids and take a
//!    snapshot. Every chunk record of a committed or in-flight blob marks its
//!    hash live; the chunk records of any other id (a deleted, replaced or
//!    unfinished blob) are deleted.
//! 2. Sweep: location records of unmarked hashes are deleted, in batches
//!    written under the registry lock, skipping hashes writers pinned.
//! 3. Relocate: a blob file (not being written) whose live frames fill less
//!    than half of it, or that is sealed under an old data-key epoch, has its
//!    live frames re-sealed into a new file; their location records move.
//! 4. Remove: under the registry lock, list the directory, copy the files
//!    being written and take a snapshot; a blob file that is none of those and
//!    holds no live location is removed (overwritten first when secure delete
//!    is on), unless a reader is open: it is then left for the next GC.
//!
//! Every step is idempotent and each batch it writes is atomic, so a crash
//! anywhere leaves garbage at most, which the next GC removes. See the rules in
//! `blob/state.rs`.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use crypto::{KeyManager, FILE_HEADER_LEN};

use crate::batch::WriteBatch;
use crate::blob::file::{BlobFileReader, BlobFileWriter};
use crate::blob::format::{
    blob_file, blob_number, location_key, parse_chunk_ref_key, parse_location_key, BlobMeta, ChunkHash, ChunkRef, Location,
    CHUNK_HEADER_LEN, CHUNK_REF_PREFIX, LOCATION_PREFIX, META_PREFIX, UPLOAD_PREFIX,
};
use crate::blob::{BlobStats, BlobStore};
use crate::db::Snapshot;
use crate::error::{Error, Result};

/// Deletes per batch.
const GC_BATCH_OPS: usize = 4096;

/// What one [`BlobStore::gc`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlobGcReport {
    /// Chunk records of deleted, replaced or unfinished blobs removed.
    pub chunk_refs_removed: u64,
    /// Chunks no blob references any more, removed from the chunk index.
    pub chunks_removed: u64,
    /// Live chunks moved out of mostly dead or old-epoch files.
    pub chunks_relocated: u64,
    /// Blob files removed.
    pub files_removed: u64,
    /// Bytes of the files removed.
    pub bytes_removed: u64,
    /// Files that could be removed but were left because a reader was open.
    pub files_deferred: u64,
}

/// Clears the GC flag and the protected pins when the GC ends, however.
struct Running<'a>(&'a crate::blob::BlobState);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut registry = self.0.lock();
        registry.gc_running = false;
        registry.protected.clear();
    }
}

pub(crate) fn run(store: &BlobStore<'_>) -> Result<BlobGcReport> {
    run_with(store, 0, &HashSet::new())
}

/// [`run`], overwriting removed files at least `min_passes` times and
/// relocating the live frames of the files in `force` whatever their share of
/// live bytes (a secure deletion: their dead frames must go too).
pub(crate) fn run_with(store: &BlobStore<'_>, min_passes: u32, force: &HashSet<u64>) -> Result<BlobGcReport> {
    let db = store.db();
    if db.is_read_only() {
        return Err(Error::ReadOnly("blob gc".into()));
    }
    let keyspace = store.keyspace()?.clone();
    let state = store.state();
    let _one_at_a_time = state.gc.lock();
    let mut report = BlobGcReport::default();

    // 1. Mark.
    let (inflight, snapshot) = {
        let mut registry = state.lock();
        registry.gc_running = true;
        registry.close_idle_files();
        (registry.inflight.clone(), db.snapshot())
    };
    let _running = Running(state);
    let mut live_ids = HashSet::new();
    for item in prefix_at(store, META_PREFIX, &snapshot)? {
        let (_, v) = item?;
        live_ids.insert(BlobMeta::decode(&v)?.id);
    }
    // Unfinished resumable uploads keep their chunks.
    for item in prefix_at(store, UPLOAD_PREFIX, &snapshot)? {
        let (_, v) = item?;
        live_ids.insert(super::format::decode_upload(&v)?);
    }
    let mut live: HashSet<ChunkHash> = HashSet::new();
    let mut batch = WriteBatch::new();
    for item in prefix_at(store, CHUNK_REF_PREFIX, &snapshot)? {
        let (k, v) = item?;
        let (id, _) = parse_chunk_ref_key(&k)?;
        if live_ids.contains(&id) || inflight.contains(&id) {
            live.insert(ChunkRef::decode(&v)?.hash);
        } else {
            batch.delete_in(&keyspace, &k);
            report.chunk_refs_removed += 1;
            if batch.len() >= GC_BATCH_OPS {
                db.write(std::mem::take(&mut batch))?;
            }
        }
    }
    if !batch.is_empty() {
        db.write(std::mem::take(&mut batch))?;
    }

    // 2. Sweep the chunk index.
    let mut dead: Vec<ChunkHash> = Vec::new();
    let sweep = |dead: &mut Vec<ChunkHash>, report: &mut BlobGcReport| -> Result<()> {
        let registry = state.lock();
        let mut batch = WriteBatch::new();
        for hash in dead.drain(..) {
            if !registry.is_pinned(&hash) {
                batch.delete_in(&keyspace, location_key(&hash));
                report.chunks_removed += 1;
            }
        }
        if !batch.is_empty() {
            db.write(batch)?;
        }
        Ok(())
    };
    for item in prefix_at(store, LOCATION_PREFIX, &snapshot)? {
        let (k, _) = item?;
        let hash = parse_location_key(&k)?;
        if !live.contains(&hash) {
            dead.push(hash);
            if dead.len() >= GC_BATCH_OPS {
                sweep(&mut dead, &mut report)?;
            }
        }
    }
    sweep(&mut dead, &mut report)?;
    drop(live);
    drop(snapshot);

    // 3. Relocate.
    let keys = db.key_manager();
    let (names, active, snapshot) = files_and_snapshot(store)?;
    let live_by_file = live_bytes_by_file(store, &snapshot)?;
    for name in &names {
        let Some(number) = blob_number(name) else { continue };
        if active.contains(&number) {
            continue;
        }
        let Some(&live_bytes) = live_by_file.get(&number) else { continue };
        let size = db.store_vfs().file_size(&db.store_dir().join(name)).unwrap_or(0);
        let mostly_dead = live_bytes.saturating_mul(2) < size.saturating_sub(FILE_HEADER_LEN as u64);
        if mostly_dead || force.contains(&number) || file_epoch(store, name)? != Some(keys.current_epoch()) {
            report.chunks_relocated += relocate(store, number, &snapshot)?;
        }
    }
    drop(snapshot);

    // 4. Remove files that hold nothing live.
    let (names, active, snapshot) = files_and_snapshot(store)?;
    let live_by_file = live_bytes_by_file(store, &snapshot)?;
    drop(snapshot);
    let passes = db.secure_delete_passes().max(min_passes);
    let mut removed_any = false;
    for name in &names {
        let Some(number) = blob_number(name) else { continue };
        if active.contains(&number) || live_by_file.contains_key(&number) {
            continue;
        }
        let registry = state.lock();
        if registry.readers > 0 {
            report.files_deferred += 1;
            continue;
        }
        let path = db.store_dir().join(name);
        let size = db.store_vfs().file_size(&path).unwrap_or(0);
        if passes > 0 {
            compaction::overwrite_and_remove(&**db.store_vfs(), &path, passes)?;
        } else {
            db.store_vfs().remove_file(&path).map_err(|e| Error::from_io(name.clone(), e))?;
        }
        drop(registry);
        removed_any = true;
        report.files_removed += 1;
        report.bytes_removed += size;
    }
    if removed_any {
        db.store_vfs().sync_dir(db.store_dir()).map_err(|e| Error::from_io(".".into(), e))?;
    }
    Ok(report)
}

/// The blob files in the directory, those being written, and a snapshot, all
/// taken together under the registry lock (see step 4 above).
fn files_and_snapshot(store: &BlobStore<'_>) -> Result<(Vec<String>, HashSet<u64>, Snapshot)> {
    let db = store.db();
    let registry = store.state().lock();
    let names = db.store_vfs().list_dir(db.store_dir()).map_err(|e| Error::from_io(".".into(), e))?;
    let names = names.into_iter().filter(|n| blob_number(n).is_some()).collect();
    Ok((names, registry.active_files.clone(), db.snapshot()))
}

/// Bytes of live frames per blob file, from the location records at `snapshot`.
fn live_bytes_by_file(store: &BlobStore<'_>, snapshot: &Snapshot) -> Result<HashMap<u64, u64>> {
    let mut out: HashMap<u64, u64> = HashMap::new();
    for item in prefix_at(store, LOCATION_PREFIX, snapshot)? {
        let (_, v) = item?;
        let loc = Location::decode(&v)?;
        *out.entry(loc.file).or_insert(0) += loc.frame_bytes();
    }
    Ok(out)
}

/// The data-key epoch blob file `name` is sealed under (`None`: gone).
fn file_epoch(store: &BlobStore<'_>, name: &str) -> Result<Option<u32>> {
    let db = store.db();
    let file = match db.store_vfs().open(&db.store_dir().join(name)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::from_io(name.into(), e)),
    };
    let mut header = [0u8; FILE_HEADER_LEN];
    file.read_exact_at(&mut header, 0).map_err(|e| Error::from_io(name.into(), e))?;
    let epoch = KeyManager::epoch_of(&header, name)?;
    Ok(Some(epoch))
}

/// Moves the live frames of blob file `number` (per `snapshot`) into a new
/// blob file sealed under the current epoch; returns how many moved.
fn relocate(store: &BlobStore<'_>, number: u64, snapshot: &Snapshot) -> Result<u64> {
    let db = store.db();
    let keyspace = store.keyspace()?.clone();
    let mut moving: Vec<(ChunkHash, Location)> = Vec::new();
    for item in prefix_at(store, LOCATION_PREFIX, snapshot)? {
        let (k, v) = item?;
        let loc = Location::decode(&v)?;
        if loc.file == number {
            moving.push((parse_location_key(&k)?, loc));
        }
    }
    if moving.is_empty() {
        return Ok(0);
    }
    let source = BlobFileReader::open(&**db.store_vfs(), db.store_dir(), db.key_manager(), number)?;
    let target = db.new_file_number();
    store.state().lock().active_files.insert(target);
    let result = (|| {
        let mut out = BlobFileWriter::create(&**db.store_vfs(), db.store_dir(), db.key_manager(), target)?;
        let mut sealed = Vec::new();
        let mut moved = Vec::with_capacity(moving.len());
        for (hash, old) in &moving {
            let frame = source.read_frame(old.offset, Some(old.sealed_len), &mut sealed)?;
            if frame.hash != *hash {
                return Err(Error::Corruption { file: blob_file(number), offset: old.offset, reason: "blob chunk frame holds another chunk".into() });
            }
            let payload = sealed.get(CHUNK_HEADER_LEN..).unwrap_or_default();
            let new = out.append(hash, frame.plain_len, frame.codec, payload)?;
            moved.push((*hash, *old, new));
        }
        out.sync()?;
        // Only records still pointing at the old place move (a writer may have
        // written the chunk anew meanwhile).
        let _registry = store.state().lock();
        let mut batch = WriteBatch::new();
        let mut count = 0;
        for (hash, old, new) in moved {
            let now = db.get_in(&keyspace, &location_key(&hash))?;
            if now.as_deref() == Some(&old.encode()[..]) {
                batch.put_in(&keyspace, location_key(&hash), new.encode());
                count += 1;
            }
        }
        if !batch.is_empty() {
            db.write(batch)?;
        }
        Ok(count)
    })();
    store.state().lock().active_files.remove(&target);
    result
}

/// The chunk hashes of blob `id`, in order.
pub(crate) fn chunk_refs(store: &BlobStore<'_>, id: u64) -> Result<impl Iterator<Item = Result<ChunkHash>>> {
    let lo = crate::blob::format::chunk_ref_key(id, 0);
    let hi = crate::blob::format::chunk_ref_key(id, u64::MAX);
    let it = store.range(Bound::Included(&lo[..]), Bound::Included(&hi[..]), false, None)?;
    Ok(it.map(|item| item.and_then(|(_, v)| Ok(ChunkRef::decode(&v)?.hash))))
}

/// Live pairs of the blob keyspace under the one-byte `prefix` at `snapshot`.
fn prefix_at(store: &BlobStore<'_>, prefix: u8, snapshot: &Snapshot) -> Result<crate::DbIterator> {
    let lo = [prefix];
    let hi = [prefix + 1];
    store.range(Bound::Included(&lo[..]), Bound::Excluded(&hi[..]), false, Some(snapshot))
}

/// See [`BlobStore::verify`].
pub(crate) fn verify(store: &BlobStore<'_>) -> Result<Vec<(String, String)>> {
    let db = store.db();
    let mut problems = Vec::new();
    if store.keyspace().is_err() {
        return Ok(problems);
    }
    let snapshot = db.snapshot();
    let hasher = blake3::Hasher::new_keyed(&db.key_manager().integrity_key(crate::blob::format::DEDUP_KEY_PURPOSE));
    let mut decompressor = zstd::bulk::Decompressor::new().map_err(|e| Error::Internal(format!("zstd: {e}")))?;
    let mut files: HashMap<u64, Option<BlobFileReader>> = HashMap::new();
    let mut stored: HashSet<ChunkHash> = HashSet::new();
    let (mut sealed, mut plain) = (Vec::new(), Vec::new());
    for item in prefix_at(store, LOCATION_PREFIX, &snapshot)? {
        let (k, v) = item?;
        let hash = parse_location_key(&k)?;
        let loc = Location::decode(&v)?;
        let name = blob_file(loc.file);
        let file = files.entry(loc.file).or_insert_with(|| {
            match BlobFileReader::open(&**db.store_vfs(), db.store_dir(), db.key_manager(), loc.file) {
                Ok(f) => Some(f),
                Err(e) => {
                    problems.push((name.clone(), e.to_string()));
                    None
                }
            }
        });
        let Some(file) = file.as_ref() else { continue };
        let checked = file.read_frame(loc.offset, Some(loc.sealed_len), &mut sealed).and_then(|frame| {
            if frame.hash != hash || frame.plain_len != loc.plain_len {
                return Err(Error::Corruption { file: name.clone(), offset: loc.offset, reason: "blob chunk frame holds another chunk".into() });
            }
            crate::blob::file::decode_payload(&name, loc.offset, &frame, &sealed, &hasher, &mut decompressor, &mut plain)
        });
        match checked {
            Ok(()) => {
                stored.insert(hash);
            }
            Err(e) => problems.push((name, e.to_string())),
        }
    }
    for item in prefix_at(store, META_PREFIX, &snapshot)? {
        let (k, v) = item?;
        let shown = format!("blob {}", String::from_utf8_lossy(k.get(1..).unwrap_or_default()));
        let meta = BlobMeta::decode(&v)?;
        let lo = crate::blob::format::chunk_ref_key(meta.id, 0);
        let hi = crate::blob::format::chunk_ref_key(meta.id, u64::MAX);
        let (mut end, mut count) = (0u64, 0u64);
        for item in store.range(Bound::Included(&lo[..]), Bound::Included(&hi[..]), false, Some(&snapshot))? {
            let (k, v) = item?;
            let (_, start) = parse_chunk_ref_key(&k)?;
            let chunk = ChunkRef::decode(&v)?;
            if start != end {
                problems.push((shown.clone(), format!("chunk at offset {start}, expected one at {end}")));
            }
            if !stored.contains(&chunk.hash) {
                problems.push((shown.clone(), format!("chunk at offset {start} is not stored intact")));
            }
            end = start + u64::from(chunk.len);
            count += 1;
        }
        if end != meta.len || count != meta.chunks {
            problems.push((shown, format!("chunks cover {end} bytes in {count} chunks, the blob is {} bytes in {}", meta.len, meta.chunks)));
        }
    }
    Ok(problems)
}

pub(crate) fn stats(store: &BlobStore<'_>) -> Result<BlobStats> {
    let db = store.db();
    let mut stats = BlobStats::default();
    if store.keyspace().is_err() {
        return Ok(stats);
    }
    let snapshot = db.snapshot();
    for item in prefix_at(store, META_PREFIX, &snapshot)? {
        let (_, v) = item?;
        stats.blobs += 1;
        stats.logical_bytes += BlobMeta::decode(&v)?.len;
    }
    for item in prefix_at(store, LOCATION_PREFIX, &snapshot)? {
        let (_, v) = item?;
        stats.chunks += 1;
        stats.stored_bytes += Location::decode(&v)?.frame_bytes();
    }
    let names = db.store_vfs().list_dir(db.store_dir()).map_err(|e| Error::from_io(".".into(), e))?;
    for name in names.iter().filter(|n| blob_number(n).is_some()) {
        stats.files += 1;
        stats.file_bytes += db.store_vfs().file_size(&db.store_dir().join(name)).unwrap_or(0);
    }
    Ok(stats)
}
