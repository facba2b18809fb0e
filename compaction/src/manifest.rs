//! The manifest files: `CURRENT` (which manifest is live) and the manifest log
//! itself (a wal-format log of encoded version edits, kind `Manifest`).
//!
//! A manifest always begins with a snapshot of the whole state (split over as
//! many records as needed) followed by incremental edits. A new manifest is
//! synced, then the directory is synced, and only then does `CURRENT` switch to
//! it (temp file + sync + rename + dir sync), so `CURRENT` never names a
//! manifest whose snapshot is not durable. See `compaction/FORMAT.md`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crypto::vfs::{write_file_atomic, Vfs};
use crypto::{FileKind, KeyManager};
use index::SeqNo;
use wal::{LogReader, LogWriter};

use crate::edit::{FeedSegment, VersionEdit, WalSegment};
use crate::error::{Error, Result};
use crate::format::{
    CURRENT_LEN, CURRENT_MAGIC, CURRENT_PURPOSE, CURRENT_TAG_OFFSET, LEGACY_CURRENT_CRC_OFFSET, LEGACY_CURRENT_LEN,
    LEGACY_CURRENT_MAGIC, SNAPSHOT_RECORD_BYTES,
};
use crate::keyspace::{KeyspaceMeta, DEFAULT_KEYSPACE_ID};
use crate::manifest_path;
use crate::version::Version;
use crate::CURRENT_FILE;

/// Everything the manifest records.
#[derive(Debug, Clone)]
pub(crate) struct ManifestState {
    pub(crate) version: Version,
    pub(crate) log_number: u64,
    pub(crate) next_file_number: u64,
    pub(crate) last_seqno: SeqNo,
    /// WAL segments at or above `log_number` that the manifest expects.
    pub(crate) wal_segments: BTreeMap<u64, WalSegment>,
    /// WAL segments below `log_number` kept for the change feed.
    pub(crate) feed_segments: BTreeMap<u64, FeedSegment>,
    /// The manifest this one replaced (`None`: a manifest of format 1, which
    /// neither chains nor lists its WAL segments).
    pub(crate) predecessor: Option<(u64, SeqNo)>,
}

impl ManifestState {
    /// Whether the manifest lists its WAL segments (every manifest this format
    /// writes does; one of format 1 does not).
    pub(crate) fn tracks_wal(&self) -> bool {
        self.predecessor.is_some()
    }
}

/// How a `CURRENT` file was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CurrentForm {
    /// Format 2: authenticated under the master key.
    Authenticated,
    /// Format 1 (earlier versions): a crc32 only. Accepted only while it names a
    /// manifest of format 1 too.
    Legacy,
}

/// The name of manifest `number` (as used in errors).
pub(crate) fn manifest_name(number: u64) -> String {
    crypto::names::manifest_file(number)
}

/// The 48 bytes of a `CURRENT` naming manifest `number`, tagged under `keys`.
pub(crate) fn encode_current(keys: &KeyManager, number: u64) -> [u8; CURRENT_LEN] {
    let mut out = [0u8; CURRENT_LEN];
    let (body, tag) = out.split_at_mut(CURRENT_TAG_OFFSET);
    let (magic, num) = body.split_at_mut(CURRENT_MAGIC.len());
    magic.copy_from_slice(&CURRENT_MAGIC);
    num.copy_from_slice(&number.to_le_bytes());
    tag.copy_from_slice(&keys.integrity_tag(CURRENT_PURPOSE, body));
    out
}

#[cfg(any(test, feature = "fuzzing"))]
/// The 20 bytes of a format 1 `CURRENT` (earlier versions) naming manifest
/// `number`: for compatibility tests and fuzzing; nothing writes it.
pub(crate) fn encode_legacy_current(number: u64) -> [u8; LEGACY_CURRENT_LEN] {
    let mut out = [0u8; LEGACY_CURRENT_LEN];
    let (body, crc) = out.split_at_mut(LEGACY_CURRENT_CRC_OFFSET);
    let (magic, num) = body.split_at_mut(LEGACY_CURRENT_MAGIC.len());
    magic.copy_from_slice(&LEGACY_CURRENT_MAGIC);
    num.copy_from_slice(&number.to_le_bytes());
    crc.copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    out
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut n = [0u8; 8];
    if let Some(src) = bytes.get(at..at + 8) {
        n.copy_from_slice(src);
    }
    u64::from_le_bytes(n)
}

/// Parses `CURRENT` (format 2, or format 1 of earlier versions); every failure is
/// a corruption naming `CURRENT`. The caller refuses a format 1 `CURRENT` that
/// names a manifest of this format (an upgraded store's `CURRENT` put back in
/// its old, unauthenticated form).
pub(crate) fn decode_current(bytes: &[u8], keys: &KeyManager) -> Result<(u64, CurrentForm)> {
    let bad = |offset: u64, reason: String| Error::corruption(CURRENT_FILE, offset, reason);
    let magic = bytes.get(..CURRENT_MAGIC.len());
    if magic == Some(&LEGACY_CURRENT_MAGIC[..]) {
        if bytes.len() != LEGACY_CURRENT_LEN {
            return Err(bad(0, format!("{} bytes, expected {LEGACY_CURRENT_LEN} (format 1)", bytes.len())));
        }
        let (body, crc) = bytes.split_at(LEGACY_CURRENT_CRC_OFFSET);
        let mut crc_bytes = [0u8; 4];
        crc_bytes.copy_from_slice(crc);
        let stored = u32::from_le_bytes(crc_bytes);
        let actual = crc32fast::hash(body);
        if stored != actual {
            return Err(bad(
                LEGACY_CURRENT_CRC_OFFSET as u64,
                format!("checksum mismatch: stored {stored:#010x}, computed {actual:#010x}"),
            ));
        }
        return Ok((u64_at(bytes, LEGACY_CURRENT_MAGIC.len()), CurrentForm::Legacy));
    }
    if magic != Some(&CURRENT_MAGIC[..]) {
        return Err(bad(0, "bad magic (not a CURRENT file, or a newer format)".into()));
    }
    if bytes.len() != CURRENT_LEN {
        return Err(bad(0, format!("{} bytes, expected {CURRENT_LEN}", bytes.len())));
    }
    let (body, tag) = bytes.split_at(CURRENT_TAG_OFFSET);
    if !keys.check_integrity_tag(CURRENT_PURPOSE, body, tag) {
        return Err(bad(
            CURRENT_TAG_OFFSET as u64,
            "failed authentication (damaged, written by another store, or not written by the engine)".into(),
        ));
    }
    Ok((u64_at(bytes, CURRENT_MAGIC.len()), CurrentForm::Authenticated))
}

/// Reads `dir/CURRENT` and returns the live manifest number and the form it was
/// written in.
pub(crate) fn read_current(vfs: &dyn Vfs, dir: &Path, keys: &KeyManager) -> Result<(u64, CurrentForm)> {
    let bytes = vfs.read_all(&dir.join(CURRENT_FILE)).map_err(|e| Error::io(CURRENT_FILE, e))?;
    decode_current(&bytes, keys)
}

/// Reads `CURRENT` and replays the manifest it names. A format 1 `CURRENT` is
/// accepted only while it names a manifest of format 1: once the store was
/// upgraded (every manifest this format writes chains to its predecessor), the
/// unauthenticated form is a downgrade and is refused.
pub(crate) fn read_current_and_replay(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    keys: &KeyManager,
    num_levels: usize,
) -> Result<(u64, ManifestState)> {
    // A writer process may roll its manifest while this reads: a later manifest
    // is proof of an earlier `CURRENT` only if `CURRENT` still names the same
    // manifest after the directory was read.
    let mut attempts = 0;
    loop {
        let (number, form) = read_current(vfs.as_ref(), dir, keys)?;
        let state = replay(vfs, dir, keys, number, num_levels)?;
        if form == CurrentForm::Legacy && state.tracks_wal() {
            return Err(Error::corruption(
                CURRENT_FILE,
                0,
                format!(
                    "CURRENT is in the unauthenticated form of earlier versions but names {}, which \
                     this version wrote: the store's CURRENT was replaced",
                    manifest_name(number)
                ),
            ));
        }
        let Some((newer, predecessor)) = later_manifest(vfs, dir, keys, number)? else {
            return Ok((number, state));
        };
        if read_current(vfs.as_ref(), dir, keys)?.0 != number && attempts < CURRENT_RACE_RETRIES {
            attempts += 1;
            continue;
        }
        return Err(Error::corruption(
            CURRENT_FILE,
            0,
            format!(
                "CURRENT names {}, but {} on disk was written after {}, which replaced it: \
                 CURRENT and its manifest are from an earlier state of the store",
                manifest_name(number),
                manifest_name(newer),
                manifest_name(predecessor)
            ),
        ));
    }
}

/// How often [`read_current_and_replay`] starts over when `CURRENT` changed
/// under it (a writer process rolled its manifest).
const CURRENT_RACE_RETRIES: u32 = 20;

/// A manifest on disk numbered above `number` whose predecessor is numbered above
/// `number` too: proof that the chain went on past the manifest `CURRENT` names.
/// (A manifest left by a roll that a crash cut short, before `CURRENT` switched
/// to it, names `number` itself as its predecessor.) Manifests that cannot be
/// read are skipped: such an orphan is never live.
fn later_manifest(vfs: &Arc<dyn Vfs>, dir: &Path, keys: &KeyManager, number: u64) -> Result<Option<(u64, u64)>> {
    let names = vfs.list_dir(dir).map_err(|e| Error::io(".", e))?;
    let later = names.iter().filter_map(|n| crypto::names::manifest_number(n)).filter(|&n| n > number);
    for newer in later {
        let Ok(mut reader) = LogReader::open(vfs, &manifest_path(dir, newer), keys, FileKind::Manifest, newer) else { continue };
        let Ok(Some(record)) = reader.next_record() else { continue };
        let Ok(edit) = VersionEdit::decode(&record) else { continue };
        if let Some((predecessor, _)) = edit.predecessor.filter(|(p, _)| *p > number) {
            return Ok(Some((newer, predecessor)));
        }
    }
    Ok(None)
}

/// Atomically points `CURRENT` at manifest `number` (temp, sync, rename, dir sync).
pub(crate) fn write_current(vfs: &dyn Vfs, dir: &Path, keys: &KeyManager, number: u64) -> Result<()> {
    write_file_atomic(vfs, dir, CURRENT_FILE, &encode_current(keys, number)).map_err(|e| Error::io(CURRENT_FILE, e))
}

/// The edits that rebuild `state` from nothing: counters first, then the tables
/// in records of bounded size.
pub(crate) fn snapshot_edits(state: &ManifestState) -> Vec<VersionEdit> {
    let mut edits = vec![VersionEdit {
        log_number: Some(state.log_number),
        next_file_number: Some(state.next_file_number),
        last_seqno: Some(state.last_seqno),
        predecessor: state.predecessor,
        wal_segments: state.wal_segments.iter().map(|(n, s)| (*n, *s)).collect(),
        feed_segments: state.feed_segments.iter().map(|(n, s)| (*n, *s)).collect(),
        // Only a store that ever created a keyspace records the next id, so the
        // manifest of a store without keyspaces is written as before.
        next_keyspace_id: Some(state.version.next_keyspace_id()).filter(|&id| id > DEFAULT_KEYSPACE_ID + 1),
        ..Default::default()
    }];
    let mut bytes = 0usize;
    for ks in state.version.keyspaces() {
        let approx = 16 + ks.name.len() + ks.options.len();
        let full = bytes.saturating_add(approx) > SNAPSHOT_RECORD_BYTES;
        match edits.last_mut().filter(|e| !full || e.created_keyspaces.is_empty()) {
            Some(e) => {
                e.created_keyspaces.push(KeyspaceMeta::clone(ks));
                bytes = bytes.saturating_add(approx);
            }
            None => {
                edits.push(VersionEdit { created_keyspaces: vec![KeyspaceMeta::clone(ks)], ..Default::default() });
                bytes = approx;
            }
        }
    }
    // Merge operator records after the keyspaces they name, as one record (at
    // most one per keyspace, each under 270 bytes).
    let operators: Vec<(u32, String)> = state.version.merge_operator_names().map(|(id, name)| (id, name.to_owned())).collect();
    if !operators.is_empty() {
        edits.push(VersionEdit { merge_operators: operators, ..Default::default() });
        bytes = 0;
    }
    for (level, meta) in state.version.snapshot_files() {
        let approx = 64 + meta.smallest.user_key.len() + meta.largest.user_key.len();
        let full = bytes.saturating_add(approx) > SNAPSHOT_RECORD_BYTES;
        let last = edits.last_mut().filter(|e| !full || e.added.is_empty());
        match last {
            Some(e) => {
                e.added.push((level, meta));
                bytes = bytes.saturating_add(approx);
            }
            None => {
                edits.push(VersionEdit { added: vec![(level, meta)], ..Default::default() });
                bytes = approx;
            }
        }
    }
    for t in state.version.range_tombstones().tombstones() {
        let approx = 32 + t.start.len() + t.end.len();
        let full = bytes.saturating_add(approx) > SNAPSHOT_RECORD_BYTES;
        match edits.last_mut().filter(|_| !full) {
            Some(e) => {
                e.added_range_tombstones.push(t.clone());
                bytes = bytes.saturating_add(approx);
            }
            None => {
                edits.push(VersionEdit { added_range_tombstones: vec![t.clone()], ..Default::default() });
                bytes = approx;
            }
        }
    }
    edits
}

/// Creates manifest `number` holding a snapshot of `state`, makes it durable
/// (file sync, then directory sync), and returns its writer. `CURRENT` is not
/// touched: the caller switches it once this returns.
pub(crate) fn write_new_manifest(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    keys: &KeyManager,
    number: u64,
    state: &ManifestState,
) -> Result<LogWriter> {
    let path = manifest_path(dir, number);
    let result = (|| {
        let writer = LogWriter::create(vfs, &path, keys, number, FileKind::Manifest)?;
        for edit in snapshot_edits(state) {
            writer.append(&edit.encode())?;
        }
        writer.sync()?;
        vfs.sync_dir(dir).map_err(|e| Error::io(manifest_name(number), e))?;
        Ok(writer)
    })();
    if result.is_err() {
        // Not yet named by CURRENT, so nothing refers to it.
        let _ = vfs.remove_file(&path);
    }
    result
}

/// Replays manifest `number` into the state it describes. A torn final record
/// (a crash during an append, so never acknowledged) is ignored; any other
/// damage is a corruption naming the manifest.
pub(crate) fn replay(vfs: &Arc<dyn Vfs>, dir: &Path, keys: &KeyManager, number: u64, num_levels: usize) -> Result<ManifestState> {
    let name = manifest_name(number);
    let mut reader = LogReader::open(vfs, &manifest_path(dir, number), keys, FileKind::Manifest, number)?;
    let mut version = Version::empty(num_levels);
    let mut log_number = None;
    let mut next_file_number = None;
    let mut last_seqno = None;
    let mut predecessor = None;
    let mut wal_segments = BTreeMap::new();
    let mut feed_segments = BTreeMap::new();
    let mut index = 0usize;
    loop {
        // Errors name the frame's offset in the file; the record itself is ciphertext there.
        let offset = reader.valid_len();
        let Some(record) = reader.next_record()? else { break };
        let edit = VersionEdit::decode(&record)
            .map_err(|e| Error::corruption(&name, offset, format!("edit #{index}, byte {}: {}", e.pos, e.reason)))?;
        version = version.apply(&edit).map_err(|e| match e {
            Error::InvalidEdit(reason) => Error::corruption(&name, offset, format!("edit #{index} does not apply: {reason}")),
            other => other,
        })?;
        log_number = edit.log_number.or(log_number);
        next_file_number = edit.next_file_number.or(next_file_number);
        last_seqno = edit.last_seqno.or(last_seqno);
        if index == 0 {
            predecessor = edit.predecessor;
        } else if edit.predecessor.is_some() {
            return Err(Error::corruption(&name, offset, format!("edit #{index} names a predecessor manifest; only the first may")));
        }
        for (segment, info) in &edit.wal_segments {
            if predecessor.is_none() {
                return Err(Error::corruption(&name, offset, format!("edit #{index} lists a WAL segment in a manifest that does not chain")));
            }
            wal_segments.insert(*segment, *info);
        }
        if predecessor.is_none() && !(edit.feed_segments.is_empty() && edit.feed_released.is_empty()) {
            return Err(Error::corruption(&name, offset, format!("edit #{index} records change-feed segments in a manifest that does not chain")));
        }
        apply_feed_edit(&mut feed_segments, &edit);
        index += 1;
    }
    let end = reader.valid_len();
    let missing = |what: &str| Error::corruption(&name, end, format!("no edit records the {what}"));
    let log_number = log_number.unwrap_or(0);
    Ok(ManifestState {
        version,
        log_number,
        next_file_number: next_file_number.ok_or_else(|| missing("next file number"))?,
        last_seqno: last_seqno.ok_or_else(|| missing("last seqno"))?,
        wal_segments: wal_segments.split_off(&log_number),
        feed_segments,
        predecessor,
    })
}

/// Applies the change-feed fields of `edit` to `segments`: the kept ones
/// first, then the released ones.
pub(crate) fn apply_feed_edit(segments: &mut BTreeMap<u64, FeedSegment>, edit: &VersionEdit) {
    segments.extend(edit.feed_segments.iter().copied());
    for number in &edit.feed_released {
        segments.remove(number);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::edit::tests::meta;

    #[test]
    fn current_round_trip_and_damage() {
        let keys = KeyManager::ephemeral();
        let bytes = encode_current(&keys, 0x0102_0304_0506);
        assert_eq!(&bytes[..8], b"SYNCURR2");
        assert_eq!(decode_current(&bytes, &keys).unwrap(), (0x0102_0304_0506, CurrentForm::Authenticated));
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes;
                bad[i] ^= 1 << bit;
                match decode_current(&bad, &keys) {
                    Err(Error::Corruption { file, .. }) => assert_eq!(file, "CURRENT"),
                    other => panic!("flip of bit {bit} at {i} gave {other:?}"),
                }
            }
        }
        assert!(decode_current(&bytes[..47], &keys).is_err());
        assert!(decode_current(&[bytes.as_slice(), &[0]].concat(), &keys).is_err());
        // Written under another store's keys (or by anyone without the master key).
        assert!(matches!(decode_current(&bytes, &KeyManager::ephemeral()), Err(Error::Corruption { reason, .. }) if reason.contains("authentication")));
    }

    /// The `CURRENT` of earlier versions (crc32 only) still reads, as such.
    #[test]
    fn legacy_current_round_trip_and_damage() {
        let keys = KeyManager::ephemeral();
        let bytes = encode_legacy_current(0x0102_0304_0506);
        assert_eq!(&bytes[..8], b"SYNCURR1");
        assert_eq!(decode_current(&bytes, &keys).unwrap(), (0x0102_0304_0506, CurrentForm::Legacy));
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes;
                bad[i] ^= 1 << bit;
                assert!(matches!(decode_current(&bad, &keys), Err(Error::Corruption { .. })), "flip of bit {bit} at {i}");
            }
        }
        assert!(decode_current(&bytes[..19], &keys).is_err());
    }

    /// A store written by the previous format (a crc-only `CURRENT`, a manifest
    /// with neither predecessor nor WAL segments) opens read-only and read-write;
    /// the read-write open upgrades it, after which the old form of `CURRENT` is
    /// refused as a downgrade.
    #[test]
    fn a_store_of_format_1_opens_and_is_upgraded_and_a_downgrade_is_refused() {
        use crate::VersionSet;
        use crypto::vfs::SimVfs;
        let sim = SimVfs::new();
        let vfs: Arc<dyn Vfs> = sim.clone();
        let dir = Path::new("/old");
        vfs.create_dir_all(dir).unwrap();
        let keys = KeyManager::ephemeral();
        // Exactly what the previous version wrote: counters, then a table.
        let writer = LogWriter::create(&vfs, &manifest_path(dir, 5), &keys, 5, FileKind::Manifest).unwrap();
        let counters = VersionEdit { log_number: Some(6), next_file_number: Some(8), last_seqno: Some(40), ..Default::default() };
        writer.append(&counters.encode()).unwrap();
        writer.append(&VersionEdit { added: vec![(0, meta(7, "a", "c"))], ..Default::default() }.encode()).unwrap();
        writer.sync().unwrap();
        write_file_atomic(vfs.as_ref(), dir, CURRENT_FILE, &encode_legacy_current(5)).unwrap();
        // The segment the old manifest still needs.
        LogWriter::create(&vfs, &dir.join("000006.wal"), &keys, 6, FileKind::Wal).unwrap().sync().unwrap();

        let ro = VersionSet::recover_read_only(&vfs, dir, &keys, 3).unwrap();
        assert_eq!(ro.current().level_files(0).len(), 1);
        assert_eq!(ro.wal_segments(), None, "a manifest of format 1 lists no segment");
        drop(ro);

        let vs = VersionSet::recover(&vfs, dir, &keys, 3).unwrap();
        assert_eq!(vs.current().level_files(0).len(), 1);
        assert_eq!(vs.last_seqno(), 40);
        let segments = vs.wal_segments().unwrap();
        assert_eq!(segments.keys().copied().collect::<Vec<_>>(), vec![6], "the needed segment is adopted");
        let upgraded = vs.manifest_number();
        drop(vs);
        let current = vfs.read_all(&dir.join(CURRENT_FILE)).unwrap();
        assert_eq!(&current[..8], b"SYNCURR2");
        assert_eq!(replay(&vfs, dir, &keys, upgraded, 3).unwrap().predecessor, Some((5, 40)));

        // Put back the old, unauthenticated form naming the upgraded manifest.
        write_file_atomic(vfs.as_ref(), dir, CURRENT_FILE, &encode_legacy_current(upgraded)).unwrap();
        for result in [VersionSet::recover_read_only(&vfs, dir, &keys, 3).map(drop), VersionSet::recover(&vfs, dir, &keys, 3).map(drop)] {
            match result {
                Err(Error::Corruption { file, reason, .. }) => {
                    assert_eq!(file, "CURRENT");
                    assert!(reason.contains("earlier versions"), "{reason}");
                }
                other => panic!("a downgraded CURRENT was accepted: {other:?}"),
            }
        }
    }

    /// `CURRENT` put back to name an earlier manifest (still on disk) while a
    /// later one chains past it is refused; a manifest left by a cut-short roll
    /// (chaining to the live one) is not proof of anything and is accepted.
    #[test]
    fn an_earlier_current_is_refused_when_a_later_manifest_chains_past_it() {
        use crate::VersionSet;
        use crypto::vfs::SimVfs;
        let sim = SimVfs::new();
        let vfs: Arc<dyn Vfs> = sim.clone();
        let dir = Path::new("/chain");
        vfs.create_dir_all(dir).unwrap();
        let keys = KeyManager::ephemeral();
        let vs = VersionSet::create(&vfs, dir, &keys, 3).unwrap();
        vs.set_manifest_roll_bytes(0);
        vs.log_and_apply(VersionEdit::default()).unwrap();
        let early = vfs.read_all(&dir.join(CURRENT_FILE)).unwrap();
        let early_number = vs.manifest_number();
        vs.log_and_apply(VersionEdit::default()).unwrap();
        // One roll past `early` alone chains to it: what a crash before the
        // CURRENT switch leaves. Accepted.
        write_file_atomic(vfs.as_ref(), dir, CURRENT_FILE, &early).unwrap();
        let (n, _) = read_current_and_replay(&vfs, dir, &keys, 3).unwrap();
        assert_eq!(n, early_number);
        // Two rolls past it: the chain went on, CURRENT is from an earlier state.
        let later = VersionSet::recover(&vfs, dir, &keys, 3).unwrap();
        later.set_manifest_roll_bytes(0);
        later.log_and_apply(VersionEdit::default()).unwrap();
        drop(later);
        drop(vs);
        write_file_atomic(vfs.as_ref(), dir, CURRENT_FILE, &early).unwrap();
        match read_current_and_replay(&vfs, dir, &keys, 3) {
            Err(Error::Corruption { file, reason, .. }) => {
                assert_eq!(file, "CURRENT");
                assert!(reason.contains("earlier state"), "{reason}");
            }
            other => panic!("an earlier CURRENT was accepted: {:?}", other.map(|(n, _)| n)),
        }
    }

    #[test]
    fn snapshot_splits_into_bounded_records() {
        let mut edit = VersionEdit::default();
        let big_key = "k".repeat(10_000);
        for n in 0..200u64 {
            let mut m = meta(n + 10, &format!("{big_key}{n:04}"), &format!("{big_key}{n:04}"));
            m.max_seqno = n + 100;
            edit.added.push((0, m));
        }
        let state = ManifestState {
            version: Version::empty(3).apply(&edit).unwrap(),
            log_number: 4,
            next_file_number: 900,
            last_seqno: 77,
            wal_segments: BTreeMap::from([(4, WalSegment { first_seqno: 70, predecessor_synced: true })]),
            feed_segments: BTreeMap::new(),
            predecessor: Some((3, 69)),
        };
        let edits = snapshot_edits(&state);
        assert!(edits.len() > 2, "200 tables of 20 KB keys must not fit one record");
        for e in &edits {
            assert!(e.encode().len() <= SNAPSHOT_RECORD_BYTES + 30_000);
        }
        let mut rebuilt = Version::empty(3);
        for e in &edits {
            rebuilt = rebuilt.apply(e).unwrap();
        }
        assert_eq!(rebuilt.snapshot_files(), state.version.snapshot_files());
        assert_eq!(edits[0].next_file_number, Some(900));
        assert_eq!(edits[0].last_seqno, Some(77));
        assert_eq!(edits[0].log_number, Some(4));
        assert_eq!(edits[0].predecessor, Some((3, 69)));
        assert_eq!(edits[0].wal_segments, vec![(4, WalSegment { first_seqno: 70, predecessor_synced: true })]);
        assert!(edits[1..].iter().all(|e| e.predecessor.is_none() && e.wal_segments.is_empty()));
    }

    #[test]
    fn undecodable_or_inapplicable_edit_names_the_manifest_and_frame() {
        use crypto::vfs::SimVfs;
        let sim = SimVfs::new();
        let vfs: Arc<dyn Vfs> = sim.clone();
        let dir = Path::new("/m");
        vfs.create_dir_all(dir).unwrap();
        let keys = KeyManager::ephemeral();
        let counters = VersionEdit { next_file_number: Some(10), last_seqno: Some(1), ..Default::default() }.encode();
        let mut unknown_tag = VersionEdit::default().encode();
        unknown_tag.insert(1, 0x77);
        let bad_delete = VersionEdit { deleted: vec![(1, 4)], ..Default::default() }.encode();
        for (bad, what) in [(unknown_tag, "unknown field tag"), (bad_delete, "does not apply")] {
            let writer = LogWriter::create(&vfs, &manifest_path(dir, 9), &keys, 9, FileKind::Manifest).unwrap();
            let first_end = writer.append(&counters).unwrap();
            writer.append(&bad).unwrap();
            writer.sync().unwrap();
            match replay(&vfs, dir, &keys, 9, 3) {
                Err(Error::Corruption { file, offset, reason }) => {
                    assert_eq!(file, "MANIFEST-000009");
                    assert_eq!(offset, first_end, "the second frame starts where the first ends");
                    assert!(reason.contains("edit #1") && reason.contains(what), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
        // A manifest without the counters is refused too.
        let writer = LogWriter::create(&vfs, &manifest_path(dir, 9), &keys, 9, FileKind::Manifest).unwrap();
        writer.append(&VersionEdit::default().encode()).unwrap();
        writer.sync().unwrap();
        assert!(matches!(replay(&vfs, dir, &keys, 9, 3), Err(Error::Corruption { reason, .. }) if reason.contains("next file number")));
    }
}
