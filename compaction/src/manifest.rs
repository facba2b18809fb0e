//! The manifest files: `CURRENT` (which manifest is live) and the manifest log
//! itself (a wal-format log of encoded version edits, kind `Manifest`).
//!
//! A manifest always begins with a snapshot of the whole state (split over as
//! many records as needed) followed by incremental edits. A new manifest is
//! synced, then the directory is synced, and only then does `CURRENT` switch to
//! it (temp file + sync + rename + dir sync), so `CURRENT` never names a
//! manifest whose snapshot is not durable. See `compaction/FORMAT.md`.

use std::path::Path;
use std::sync::Arc;

use crypto::vfs::{write_file_atomic, Vfs};
use crypto::{FileKind, KeyManager};
use index::SeqNo;
use wal::{LogReader, LogWriter};

use crate::edit::VersionEdit;
use crate::error::{Error, Result};
use crate::format::{CURRENT_CRC_OFFSET, CURRENT_LEN, CURRENT_MAGIC, SNAPSHOT_RECORD_BYTES};
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
}

/// The name of manifest `number` (as used in errors).
pub(crate) fn manifest_name(number: u64) -> String {
    format!("MANIFEST-{number:06}")
}

/// The 20 bytes of a `CURRENT` naming manifest `number`.
pub(crate) fn encode_current(number: u64) -> [u8; CURRENT_LEN] {
    let mut out = [0u8; CURRENT_LEN];
    let (body, crc) = out.split_at_mut(CURRENT_CRC_OFFSET);
    let (magic, num) = body.split_at_mut(CURRENT_MAGIC.len());
    magic.copy_from_slice(&CURRENT_MAGIC);
    num.copy_from_slice(&number.to_le_bytes());
    crc.copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    out
}

/// Parses `CURRENT`; every failure is a corruption naming `CURRENT`.
pub(crate) fn decode_current(bytes: &[u8]) -> Result<u64> {
    let bad = |offset: u64, reason: String| Error::corruption(CURRENT_FILE, offset, reason);
    if bytes.len() != CURRENT_LEN {
        return Err(bad(0, format!("{} bytes, expected {CURRENT_LEN}", bytes.len())));
    }
    let (body, crc) = bytes.split_at(CURRENT_CRC_OFFSET);
    let (magic, num) = body.split_at(CURRENT_MAGIC.len());
    if magic != CURRENT_MAGIC {
        return Err(bad(0, "bad magic (not a CURRENT file, or a newer format)".into()));
    }
    let mut crc_bytes = [0u8; 4];
    crc_bytes.copy_from_slice(crc);
    let stored = u32::from_le_bytes(crc_bytes);
    let actual = crc32fast::hash(body);
    if stored != actual {
        return Err(bad(CURRENT_CRC_OFFSET as u64, format!("checksum mismatch: stored {stored:#010x}, computed {actual:#010x}")));
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(num);
    Ok(u64::from_le_bytes(n))
}

/// Reads `dir/CURRENT` and returns the live manifest number.
pub(crate) fn read_current(vfs: &dyn Vfs, dir: &Path) -> Result<u64> {
    let bytes = vfs.read_all(&dir.join(CURRENT_FILE)).map_err(|e| Error::io(CURRENT_FILE, e))?;
    decode_current(&bytes)
}

/// Atomically points `CURRENT` at manifest `number` (temp, sync, rename, dir sync).
pub(crate) fn write_current(vfs: &dyn Vfs, dir: &Path, number: u64) -> Result<()> {
    write_file_atomic(vfs, dir, CURRENT_FILE, &encode_current(number)).map_err(|e| Error::io(CURRENT_FILE, e))
}

/// The edits that rebuild `state` from nothing: counters first, then the tables
/// in records of bounded size.
pub(crate) fn snapshot_edits(state: &ManifestState) -> Vec<VersionEdit> {
    let mut edits = vec![VersionEdit {
        log_number: Some(state.log_number),
        next_file_number: Some(state.next_file_number),
        last_seqno: Some(state.last_seqno),
        ..Default::default()
    }];
    let mut bytes = 0usize;
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
        index += 1;
    }
    let end = reader.valid_len();
    let missing = |what: &str| Error::corruption(&name, end, format!("no edit records the {what}"));
    Ok(ManifestState {
        version,
        log_number: log_number.unwrap_or(0),
        next_file_number: next_file_number.ok_or_else(|| missing("next file number"))?,
        last_seqno: last_seqno.ok_or_else(|| missing("last seqno"))?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::edit::tests::meta;

    #[test]
    fn current_round_trip_and_damage() {
        let bytes = encode_current(0x0102_0304_0506);
        assert_eq!(&bytes[..8], b"SYNCURR1");
        assert_eq!(decode_current(&bytes).unwrap(), 0x0102_0304_0506);
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes;
                bad[i] ^= 1 << bit;
                match decode_current(&bad) {
                    Err(Error::Corruption { file, .. }) => assert_eq!(file, "CURRENT"),
                    other => panic!("flip of bit {bit} at {i} gave {other:?}"),
                }
            }
        }
        assert!(decode_current(&bytes[..19]).is_err());
        assert!(decode_current(&[bytes.as_slice(), &[0]].concat()).is_err());
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
