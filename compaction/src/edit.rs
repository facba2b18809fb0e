//! Table metadata and version edits, and their encoding inside the manifest.
//!
//! An edit is a version byte followed by tagged fields and an end tag (see
//! `compaction/FORMAT.md`). Tags make the format extensible: a new field gets a
//! new tag, and an old reader refuses it as corruption instead of misreading it.
//! The decoder never trusts a length before checking it against the bytes left.

use index::{InternalKey, RangeTombstone, SeqNo, MAX_SEQNO};

use crate::format::{
    ADDED_FILE_FIXED_LEN, EDIT_FORMAT_VERSION, MAX_ENCODED_KEY_LEN, MAX_LEVELS, MIN_ENCODED_KEY_LEN, TAG_ADDED_FILE,
    TAG_CREATE_KEYSPACE, TAG_DELETED_FILE, TAG_DROP_KEYSPACE, TAG_END, TAG_LAST_SEQNO, TAG_LOG_NUMBER, TAG_MERGE_OPERATOR,
    TAG_ADDED_FILE_IN_KEYSPACE, TAG_NEXT_FILE_NUMBER, TAG_NEXT_KEYSPACE_ID, TAG_PREDECESSOR, TAG_WAL_SEGMENT, WAL_SEGMENT_LEN,
    WAL_SEGMENT_PREDECESSOR_SYNCED, MAX_RANGE_BOUND_LEN, RANGE_TOMBSTONE_FIXED_LEN, TAG_ADD_RANGE_TOMBSTONE,
    TAG_DROP_RANGE_TOMBSTONE,
};
use crate::format::{FEED_SEGMENT_LEN, TAG_FEED_RELEASED, TAG_FEED_SEGMENT};
use crate::keyspace::{check_keyspace_name, KeyspaceMeta, KeyspaceTableOptions, DEFAULT_KEYSPACE_ID};

/// A WAL segment as the manifest records it when the segment is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalSegment {
    /// The seqno its first batch may carry at the earliest (0: not recorded).
    pub first_seqno: SeqNo,
    /// Every earlier segment was synced whole before this one was created, so
    /// the one before it ends exactly at `first_seqno - 1`.
    pub predecessor_synced: bool,
}

/// A WAL segment retired from recovery but kept for the change feed, as the
/// manifest records it when the segment is retired (`compaction/FORMAT.md`, tag 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedSegment {
    /// Every batch of the segment has a seqno at or above this one.
    pub first_seqno: SeqNo,
    /// Every batch of the segment has a seqno below this one: the first seqno
    /// of the segment that followed it.
    pub end_seqno: SeqNo,
    /// The segment's length in bytes when it was retired; it never changes
    /// after, so a file of another length is not this segment.
    pub bytes: u64,
    /// When the segment was retired, in milliseconds since the Unix epoch: no
    /// change in it is younger.
    pub retired_at_ms: u64,
}

/// One SSTable as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// File number (`{number:06}.sst`).
    pub number: u64,
    /// File size in bytes.
    pub size: u64,
    /// Smallest internal key.
    pub smallest: InternalKey,
    /// Largest internal key.
    pub largest: InternalKey,
    /// Entries.
    pub entries: u64,
    /// Smallest seqno.
    pub min_seqno: SeqNo,
    /// Largest seqno.
    pub max_seqno: SeqNo,
    /// Data-key epoch the file's key is wrapped under.
    pub epoch: u32,
    /// The keyspace whose keys the table holds ([`DEFAULT_KEYSPACE_ID`] for the
    /// default keyspace). Recorded with tag 5 for the default keyspace and tag
    /// 11 for any other (`compaction/FORMAT.md`).
    pub keyspace: u32,
}

impl FileMeta {
    /// Whether the table's user-key range contains `user_key`.
    pub fn contains_user_key(&self, user_key: &[u8]) -> bool {
        self.smallest.user_key.as_slice() <= user_key && user_key <= self.largest.user_key.as_slice()
    }
}

/// A change to the version set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// WAL segments numbered below this are no longer needed.
    pub log_number: Option<u64>,
    /// Next file number to hand out.
    pub next_file_number: Option<u64>,
    /// Last seqno whose data is in tables (or in a WAL at or after `log_number`).
    pub last_seqno: Option<SeqNo>,
    /// Tables added, with their level.
    pub added: Vec<(usize, FileMeta)>,
    /// Tables removed: (level, file number).
    pub deleted: Vec<(usize, u64)>,
    /// WAL segments created: (segment number, what is known of it).
    pub wal_segments: Vec<(u64, WalSegment)>,
    /// The manifest this one replaced and its last seqno; in the first record of
    /// every manifest this format writes ((0, 0) for a store's first manifest).
    pub predecessor: Option<(u64, SeqNo)>,
    /// Keyspaces created (tag 8), in order.
    pub created_keyspaces: Vec<KeyspaceMeta>,
    /// Ids of keyspaces dropped (tag 9), applied after the creates.
    pub dropped_keyspaces: Vec<u32>,
    /// The next keyspace id to hand out (tag 10; in snapshots).
    pub next_keyspace_id: Option<u32>,
    /// Range tombstones that join the version (tag 12), applied after the
    /// tables of the edit are added and removed.
    pub added_range_tombstones: Vec<RangeTombstone>,
    /// Seqnos of range tombstones that leave the version (tag 13).
    pub dropped_range_tombstones: Vec<SeqNo>,
    /// WAL segments kept as change-feed segments (tag 16): each must be below
    /// the edit's log number once it is applied.
    pub feed_segments: Vec<(u64, FeedSegment)>,
    /// Change-feed segments no longer kept (tag 17), applied after `feed_segments`.
    pub feed_released: Vec<u64>,
    /// Merge operator names recorded (tag 14): (keyspace id, operator name),
    /// applied after the creates and drops.
    pub merge_operators: Vec<(u32, String)>,
}

impl VersionEdit {
    /// Encodes the edit as it is stored in one manifest record.
    ///
    /// Levels must be below 64 (the version set checks this before encoding).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.added.len() * 96 + self.deleted.len() * 10);
        out.push(EDIT_FORMAT_VERSION);
        if let Some(n) = self.log_number {
            out.push(TAG_LOG_NUMBER);
            out.extend_from_slice(&n.to_le_bytes());
        }
        if let Some(n) = self.next_file_number {
            out.push(TAG_NEXT_FILE_NUMBER);
            out.extend_from_slice(&n.to_le_bytes());
        }
        if let Some(n) = self.last_seqno {
            out.push(TAG_LAST_SEQNO);
            out.extend_from_slice(&n.to_le_bytes());
        }
        if let Some((number, seqno)) = self.predecessor {
            out.push(TAG_PREDECESSOR);
            out.extend_from_slice(&number.to_le_bytes());
            out.extend_from_slice(&seqno.to_le_bytes());
        }
        for &(number, segment) in &self.wal_segments {
            out.push(TAG_WAL_SEGMENT);
            out.extend_from_slice(&number.to_le_bytes());
            out.extend_from_slice(&segment.first_seqno.to_le_bytes());
            out.push(if segment.predecessor_synced { WAL_SEGMENT_PREDECESSOR_SYNCED } else { 0 });
        }
        if let Some(id) = self.next_keyspace_id {
            out.push(TAG_NEXT_KEYSPACE_ID);
            out.extend_from_slice(&id.to_le_bytes());
        }
        for ks in &self.created_keyspaces {
            out.push(TAG_CREATE_KEYSPACE);
            out.extend_from_slice(&ks.id.to_le_bytes());
            // Names are checked to be 1..=255 bytes before an edit is built.
            debug_assert!(check_keyspace_name(&ks.name).is_ok(), "keyspace name checked before encoding");
            out.push(u8::try_from(ks.name.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(ks.name.as_bytes());
            out.extend_from_slice(&u16::try_from(ks.options.len()).unwrap_or(u16::MAX).to_le_bytes());
            out.extend_from_slice(&ks.options);
        }
        for id in &self.dropped_keyspaces {
            out.push(TAG_DROP_KEYSPACE);
            out.extend_from_slice(&id.to_le_bytes());
        }
        for (number, f) in &self.feed_segments {
            out.push(TAG_FEED_SEGMENT);
            for v in [*number, f.first_seqno, f.end_seqno, f.bytes, f.retired_at_ms] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        for number in &self.feed_released {
            out.push(TAG_FEED_RELEASED);
            out.extend_from_slice(&number.to_le_bytes());
        }
        for (id, name) in &self.merge_operators {
            out.push(TAG_MERGE_OPERATOR);
            out.extend_from_slice(&id.to_le_bytes());
            // Names are checked to be 1..=255 bytes before an edit is built.
            debug_assert!(check_merge_operator_name(name).is_ok(), "operator name checked before encoding");
            out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(name.as_bytes());
        }
        for &(level, number) in &self.deleted {
            out.push(TAG_DELETED_FILE);
            out.push(level_byte(level));
            out.extend_from_slice(&number.to_le_bytes());
        }
        for (level, f) in &self.added {
            // A default-keyspace table keeps the tag it always had, so a store
            // without keyspaces writes its manifests byte for byte as before.
            if f.keyspace == DEFAULT_KEYSPACE_ID {
                out.push(TAG_ADDED_FILE);
            } else {
                out.push(TAG_ADDED_FILE_IN_KEYSPACE);
                out.extend_from_slice(&f.keyspace.to_le_bytes());
            }
            out.push(level_byte(*level));
            for v in [f.number, f.size, f.entries, f.min_seqno, f.max_seqno] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&f.epoch.to_le_bytes());
            put_key(&mut out, &f.smallest);
            put_key(&mut out, &f.largest);
        }
        for t in &self.added_range_tombstones {
            out.push(TAG_ADD_RANGE_TOMBSTONE);
            out.extend_from_slice(&t.keyspace.to_le_bytes());
            out.extend_from_slice(&t.seqno.to_le_bytes());
            put_bytes(&mut out, &t.start);
            put_bytes(&mut out, &t.end);
        }
        for seqno in &self.dropped_range_tombstones {
            out.push(TAG_DROP_RANGE_TOMBSTONE);
            out.extend_from_slice(&seqno.to_le_bytes());
        }
        out.push(TAG_END);
        out
    }

    /// Decodes one manifest record. On failure returns the byte position within
    /// the record and what was wrong; the caller names the file.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { bytes, pos: 0 };
        let version = r.u8()?;
        if version != EDIT_FORMAT_VERSION {
            return Err(r.error_at(0, format!("edit format version {version}, this build reads {EDIT_FORMAT_VERSION}")));
        }
        let mut edit = VersionEdit::default();
        loop {
            let tag_pos = r.pos;
            let tag = r.u8()?;
            match tag {
                TAG_END => {
                    if r.pos != bytes.len() {
                        return Err(r.error_at(tag_pos, "bytes after the end tag"));
                    }
                    return Ok(edit);
                }
                TAG_LOG_NUMBER => set_once(&mut edit.log_number, r.u64()?, tag_pos, "log number")?,
                TAG_NEXT_FILE_NUMBER => set_once(&mut edit.next_file_number, r.u64()?, tag_pos, "next file number")?,
                TAG_LAST_SEQNO => set_once(&mut edit.last_seqno, r.u64()?, tag_pos, "last seqno")?,
                TAG_PREDECESSOR => {
                    if edit.predecessor.is_some() {
                        return Err(r.error_at(tag_pos, "predecessor appears twice"));
                    }
                    let number = r.u64()?;
                    let seqno = r.u64()?;
                    edit.predecessor = Some((number, seqno));
                }
                TAG_WAL_SEGMENT => {
                    r.need(WAL_SEGMENT_LEN)?;
                    let number = r.u64()?;
                    let first_seqno = r.u64()?;
                    let flags = r.u8()?;
                    if flags & !WAL_SEGMENT_PREDECESSOR_SYNCED != 0 {
                        return Err(r.error_at(tag_pos, format!("unknown WAL segment flags {flags:#04x}")));
                    }
                    let predecessor_synced = flags & WAL_SEGMENT_PREDECESSOR_SYNCED != 0;
                    edit.wal_segments.push((number, WalSegment { first_seqno, predecessor_synced }));
                }
                TAG_NEXT_KEYSPACE_ID => {
                    if edit.next_keyspace_id.is_some() {
                        return Err(r.error_at(tag_pos, "next keyspace id appears twice"));
                    }
                    edit.next_keyspace_id = Some(r.u32()?);
                }
                TAG_CREATE_KEYSPACE => {
                    let id = r.u32()?;
                    if id == DEFAULT_KEYSPACE_ID {
                        return Err(r.error_at(tag_pos, "creates keyspace 0, the default keyspace"));
                    }
                    let name_len = usize::from(r.u8()?);
                    let name_pos = r.pos;
                    let name = match std::str::from_utf8(r.take(name_len)?) {
                        Ok(name) => name.to_owned(),
                        Err(_) => return Err(r.error_at(name_pos, "keyspace name is not UTF-8")),
                    };
                    check_keyspace_name(&name).map_err(|reason| r.error_at(name_pos, reason))?;
                    let options_pos = r.pos;
                    let options_len = usize::from(u16::from_le_bytes(r.array()?));
                    let options = r.take(options_len)?.to_vec();
                    KeyspaceTableOptions::decode(&options).map_err(|reason| r.error_at(options_pos, reason))?;
                    edit.created_keyspaces.push(KeyspaceMeta { id, name, options });
                }
                TAG_DROP_KEYSPACE => {
                    let id = r.u32()?;
                    if id == DEFAULT_KEYSPACE_ID {
                        return Err(r.error_at(tag_pos, "drops keyspace 0, the default keyspace"));
                    }
                    edit.dropped_keyspaces.push(id);
                }
                TAG_FEED_SEGMENT => {
                    r.need(FEED_SEGMENT_LEN)?;
                    let number = r.u64()?;
                    let first_seqno = r.u64()?;
                    let end_seqno = r.u64()?;
                    let bytes = r.u64()?;
                    let retired_at_ms = r.u64()?;
                    if first_seqno == 0 || end_seqno < first_seqno {
                        return Err(r.error_at(tag_pos, format!("change-feed segment seqnos {first_seqno}..{end_seqno} are not a range")));
                    }
                    edit.feed_segments.push((number, FeedSegment { first_seqno, end_seqno, bytes, retired_at_ms }));
                }
                TAG_FEED_RELEASED => edit.feed_released.push(r.u64()?),
                TAG_MERGE_OPERATOR => {
                    let id = r.u32()?;
                    let name_len = usize::from(r.u8()?);
                    let name_pos = r.pos;
                    let name = match std::str::from_utf8(r.take(name_len)?) {
                        Ok(name) => name.to_owned(),
                        Err(_) => return Err(r.error_at(name_pos, "merge operator name is not UTF-8")),
                    };
                    check_merge_operator_name(&name).map_err(|reason| r.error_at(name_pos, reason))?;
                    edit.merge_operators.push((id, name));
                }
                TAG_DELETED_FILE => {
                    let level = r.level()?;
                    let number = r.u64()?;
                    edit.deleted.push((level, number));
                }
                TAG_ADDED_FILE | TAG_ADDED_FILE_IN_KEYSPACE => {
                    let keyspace = if tag == TAG_ADDED_FILE { DEFAULT_KEYSPACE_ID } else { r.u32()? };
                    if tag == TAG_ADDED_FILE_IN_KEYSPACE && keyspace == DEFAULT_KEYSPACE_ID {
                        return Err(r.error_at(tag_pos, "a table of the default keyspace under tag 11"));
                    }
                    r.need(ADDED_FILE_FIXED_LEN)?;
                    let level = r.level()?;
                    let number = r.u64()?;
                    let size = r.u64()?;
                    let entries = r.u64()?;
                    let min_seqno = r.u64()?;
                    let max_seqno = r.u64()?;
                    let epoch = r.u32()?;
                    let smallest = r.key()?;
                    let largest = r.key()?;
                    if smallest > largest {
                        return Err(r.error_at(tag_pos, "table's smallest key sorts after its largest"));
                    }
                    if min_seqno > max_seqno {
                        return Err(r.error_at(tag_pos, "table's min seqno exceeds its max seqno"));
                    }
                    let meta = FileMeta { number, size, smallest, largest, entries, min_seqno, max_seqno, epoch, keyspace };
                    edit.added.push((level, meta));
                }
                TAG_ADD_RANGE_TOMBSTONE => {
                    r.need(RANGE_TOMBSTONE_FIXED_LEN)?;
                    let keyspace = r.u32()?;
                    let seqno = r.u64()?;
                    let start = r.range_bound()?;
                    let end = r.range_bound()?;
                    if start >= end {
                        return Err(r.error_at(tag_pos, "range tombstone's start is not below its end"));
                    }
                    if seqno == 0 || seqno > MAX_SEQNO {
                        return Err(r.error_at(tag_pos, format!("range tombstone seqno {seqno} is outside 1..={MAX_SEQNO}")));
                    }
                    edit.added_range_tombstones.push(RangeTombstone { keyspace, start, end, seqno });
                }
                TAG_DROP_RANGE_TOMBSTONE => edit.dropped_range_tombstones.push(r.u64()?),
                other => return Err(r.error_at(tag_pos, format!("unknown field tag {other}"))),
            }
        }
    }
}

/// Checks that `name` can be recorded as a merge operator's name (1..=255
/// bytes; UTF-8 by type).
pub fn check_merge_operator_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!("a merge operator name is 1..=255 bytes, not {}", name.len()));
    }
    Ok(())
}

/// Why a record did not decode as an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    /// Byte position within the record.
    pub(crate) pos: usize,
    /// What was wrong.
    pub(crate) reason: String,
}

fn level_byte(level: usize) -> u8 {
    debug_assert!(level < MAX_LEVELS, "level {level} checked by the version set before encoding");
    u8::try_from(level).unwrap_or(u8::MAX)
}

fn put_key(out: &mut Vec<u8>, key: &InternalKey) {
    let encoded = key.encode();
    // Keys come from tables the engine wrote under its key-size limit, far below 4 GiB.
    let len = u32::try_from(encoded.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&encoded);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Range bounds are user keys, under the engine's key-size limit.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

fn set_once(slot: &mut Option<u64>, value: u64, pos: usize, what: &str) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError { pos, reason: format!("{what} appears twice") });
    }
    *slot = Some(value);
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn error_at(&self, pos: usize, reason: impl Into<String>) -> DecodeError {
        DecodeError { pos, reason: reason.into() }
    }

    fn need(&self, n: usize) -> Result<(), DecodeError> {
        let left = self.bytes.len().saturating_sub(self.pos);
        if left < n {
            return Err(self.error_at(self.pos, format!("edit cut short: {n} bytes needed, {left} left")));
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        self.need(n)?;
        let end = self.pos.checked_add(n).ok_or_else(|| self.error_at(self.pos, "length overflow"))?;
        let s = self.bytes.get(self.pos..end).ok_or_else(|| self.error_at(self.pos, "edit cut short"))?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A range tombstone bound: u32 length (1..=[`MAX_RANGE_BOUND_LEN`]), bytes.
    fn range_bound(&mut self) -> Result<Vec<u8>, DecodeError> {
        let pos = self.pos;
        let len = self.u32()? as usize;
        if len == 0 || len > MAX_RANGE_BOUND_LEN {
            return Err(self.error_at(pos, format!("range tombstone bound of {len} bytes")));
        }
        Ok(self.take(len)?.to_vec())
    }

    fn level(&mut self) -> Result<usize, DecodeError> {
        let pos = self.pos;
        let level = usize::from(self.u8()?);
        if level >= MAX_LEVELS {
            return Err(self.error_at(pos, format!("level {level} out of range")));
        }
        Ok(level)
    }

    fn key(&mut self) -> Result<InternalKey, DecodeError> {
        let pos = self.pos;
        let len = usize::try_from(self.u32()?).map_err(|_| self.error_at(pos, "key length overflow"))?;
        if !(MIN_ENCODED_KEY_LEN..=MAX_ENCODED_KEY_LEN).contains(&len) {
            return Err(self.error_at(pos, format!("key length {len} out of range")));
        }
        let bytes = self.take(len)?;
        InternalKey::decode(bytes).ok_or_else(|| self.error_at(pos, "malformed internal key"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use index::ValueKind;

    pub(crate) fn meta(number: u64, lo: &str, hi: &str) -> FileMeta {
        FileMeta {
            number,
            size: 1000 + number,
            smallest: InternalKey::new(lo.as_bytes().to_vec(), 7 + number, ValueKind::Put),
            largest: InternalKey::new(hi.as_bytes().to_vec(), 3 + number, ValueKind::Delete),
            entries: 17,
            min_seqno: 3 + number,
            max_seqno: 9 + number,
            epoch: 2,
            keyspace: DEFAULT_KEYSPACE_ID,
        }
    }

    fn sample() -> VersionEdit {
        VersionEdit {
            log_number: Some(12),
            next_file_number: Some(99),
            last_seqno: Some(123_456),
            added: vec![(0, meta(5, "apple", "pear")), (3, meta(6, "", "zz\u{0}z")), (1, FileMeta { keyspace: 3, ..meta(7, "k", "m") })],
            deleted: vec![(1, 4), (2, 77)],
            wal_segments: vec![(12, WalSegment { first_seqno: 123_400, predecessor_synced: true }), (13, WalSegment { first_seqno: 0, predecessor_synced: false })],
            predecessor: Some((11, 123_399)),
            created_keyspaces: vec![
                KeyspaceMeta { id: 3, name: "user".into(), options: Vec::new() },
                KeyspaceMeta { id: 4, name: "_idx\u{e9}".into(), options: Vec::new() },
            ],
            dropped_keyspaces: vec![2],
            next_keyspace_id: Some(9),
            added_range_tombstones: vec![RangeTombstone { keyspace: 0, start: b"b".to_vec(), end: b"d\0".to_vec(), seqno: 123_401 }],
            dropped_range_tombstones: vec![55, 77],
            feed_segments: vec![(8, FeedSegment { first_seqno: 100, end_seqno: 150, bytes: 4096, retired_at_ms: 1_700_000_000_000 })],
            feed_released: vec![3, 4],
            merge_operators: vec![(0, "synapsed.u64_add".into()), (3, "x".into())],
        }
    }

    #[test]
    fn merge_operator_records_round_trip_and_bad_ones_are_refused() {
        let edit = VersionEdit { merge_operators: vec![(0, "ab".into())], ..Default::default() };
        let bytes = edit.encode();
        // The worked example of compaction/FORMAT.md: version, merge operator of
        // keyspace 0, name length 2, "ab", end.
        assert_eq!(bytes, [1, 14, 0, 0, 0, 0, 2, b'a', b'b', 0]);
        assert_eq!(VersionEdit::decode(&bytes).unwrap(), edit);
        for (bad, what) in [(&[1u8, 14, 0, 0, 0, 0, 0, 0][..], "1..=255"), (&[1, 14, 0, 0, 0, 0, 2, 0xff, 0xfe, 0], "UTF-8")] {
            let err = VersionEdit::decode(bad).unwrap_err();
            assert!(err.reason.contains(what), "{err:?} should say {what}");
        }
    }

    #[test]
    fn feed_segment_records_round_trip_and_bad_ones_are_refused() {
        let edit = VersionEdit {
            feed_segments: vec![(5, FeedSegment { first_seqno: 1, end_seqno: 3, bytes: 9, retired_at_ms: 2 })],
            feed_released: vec![4],
            ..Default::default()
        };
        let bytes = edit.encode();
        // The worked example of compaction/FORMAT.md.
        let mut expected = vec![1, 16];
        for v in [5u64, 1, 3, 9, 2] {
            expected.extend_from_slice(&v.to_le_bytes());
        }
        expected.push(17);
        expected.extend_from_slice(&4u64.to_le_bytes());
        expected.push(0);
        assert_eq!(bytes, expected);
        assert_eq!(VersionEdit::decode(&bytes).unwrap(), edit);
        for (first, end) in [(0u64, 3u64), (5, 4)] {
            let mut bad = vec![1, 16];
            for v in [5u64, first, end, 9, 2] {
                bad.extend_from_slice(&v.to_le_bytes());
            }
            bad.push(0);
            assert!(VersionEdit::decode(&bad).unwrap_err().reason.contains("not a range"), "{first}..{end}");
        }
    }

    #[test]
    fn range_tombstone_records_round_trip_and_bad_ones_are_refused() {
        let edit = VersionEdit {
            added_range_tombstones: vec![RangeTombstone { keyspace: 0, start: b"a".to_vec(), end: b"c".to_vec(), seqno: 5 }],
            dropped_range_tombstones: vec![3],
            ..Default::default()
        };
        let bytes = edit.encode();
        // The worked example of compaction/FORMAT.md: version, add range
        // tombstone (keyspace 0, seqno 5, start "a", end "c"), drop the range
        // tombstone of seqno 3, end.
        let expected: Vec<u8> = vec![
            1, 12, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, b'a', 1, 0, 0, 0, b'c', 13, 3, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(bytes, expected);
        assert_eq!(VersionEdit::decode(&bytes).unwrap(), edit);
        let refused = |bytes: &[u8], what: &str| {
            let err = VersionEdit::decode(bytes).unwrap_err();
            assert!(err.reason.contains(what), "{err:?} should say {what}");
        };
        let with = |start: &[u8], end: &[u8], seqno: u64| {
            let mut b = vec![1, 12, 0, 0, 0, 0];
            b.extend_from_slice(&seqno.to_le_bytes());
            for bound in [start, end] {
                b.extend_from_slice(&(bound.len() as u32).to_le_bytes());
                b.extend_from_slice(bound);
            }
            b.push(0);
            b
        };
        refused(&with(b"c", b"a", 5), "not below");
        refused(&with(b"a", b"a", 5), "not below");
        refused(&with(b"", b"a", 5), "bound of 0 bytes");
        refused(&with(b"a", b"b", 0), "seqno 0");
        refused(&with(b"a", b"b", MAX_SEQNO + 1), "outside");
        let mut huge = vec![1, 12, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        refused(&huge, "bound of");
    }

    #[test]
    fn round_trip() {
        for edit in [sample(), VersionEdit::default(), VersionEdit { last_seqno: Some(0), ..Default::default() }] {
            assert_eq!(VersionEdit::decode(&edit.encode()).unwrap(), edit);
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(VersionEdit::decode(&bytes[..len]).is_err(), "prefix of {len} bytes accepted");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(VersionEdit::decode(&longer).is_err());
    }

    #[test]
    fn unknown_tag_and_version_are_rejected() {
        let mut bytes = VersionEdit::default().encode();
        bytes.insert(1, 0x42);
        let err = VersionEdit::decode(&bytes).unwrap_err();
        assert_eq!(err.pos, 1);
        assert!(err.reason.contains("unknown field tag 66"), "{err:?}");

        let mut bytes = sample().encode();
        bytes[0] = EDIT_FORMAT_VERSION + 1;
        assert!(VersionEdit::decode(&bytes).unwrap_err().reason.contains("format version"));
    }

    #[test]
    fn keyspace_records_round_trip_and_bad_ones_are_refused() {
        let edit = VersionEdit {
            created_keyspaces: vec![KeyspaceMeta { id: 7, name: "ab".into(), options: Vec::new() }],
            next_keyspace_id: Some(8),
            ..Default::default()
        };
        let bytes = edit.encode();
        // The worked example of compaction/FORMAT.md: version, next keyspace id 8,
        // create keyspace 7, name length 2, "ab", options length 0, end.
        assert_eq!(bytes, [1, 10, 8, 0, 0, 0, 8, 7, 0, 0, 0, 2, b'a', b'b', 0, 0, 0]);
        assert_eq!(VersionEdit::decode(&bytes).unwrap(), edit);

        let refused = |bytes: &[u8], what: &str| {
            let err = VersionEdit::decode(bytes).unwrap_err();
            assert!(err.reason.contains(what), "{err:?} should say {what}");
        };
        refused(&[1, 8, 0, 0, 0, 0, 2, b'a', b'b', 0, 0, 0], "default keyspace");
        refused(&[1, 9, 0, 0, 0, 0, 0], "default keyspace");
        refused(&[1, 8, 7, 0, 0, 0, 0, 0, 0, 0], "empty");
        refused(&[1, 8, 7, 0, 0, 0, 2, 0xff, 0xfe, 0, 0, 0], "UTF-8");
        refused(&[1, 8, 7, 0, 0, 0, 2, b'a', b'b', 1, 0, 9, 0], "option tag");
        refused(&[1, 10, 1, 0, 0, 0, 10, 1, 0, 0, 0, 0], "twice");
        let dropped = VersionEdit { dropped_keyspaces: vec![9], next_keyspace_id: Some(12), ..Default::default() };
        assert_eq!(dropped.encode(), [1, 10, 12, 0, 0, 0, 9, 9, 0, 0, 0, 0]);
        assert_eq!(VersionEdit::decode(&dropped.encode()).unwrap(), dropped);
    }

    #[test]
    fn a_table_of_another_keyspace_has_tag_11_and_a_default_one_keeps_tag_5() {
        let default = VersionEdit { added: vec![(2, meta(5, "a", "b"))], ..Default::default() };
        let in_ks = VersionEdit { added: vec![(2, FileMeta { keyspace: 7, ..meta(5, "a", "b") })], ..Default::default() };
        let (d, k) = (default.encode(), in_ks.encode());
        assert_eq!(d[1], TAG_ADDED_FILE);
        // Tag 11, then the keyspace id, then exactly tag 5's fields.
        assert_eq!(k[1], TAG_ADDED_FILE_IN_KEYSPACE);
        assert_eq!(&k[2..6], &7u32.to_le_bytes());
        assert_eq!(&k[6..], &d[2..]);
        assert_eq!(VersionEdit::decode(&k).unwrap(), in_ks);
        // Keyspace 0 under tag 11 is not the canonical form and is refused.
        let mut zero = k.clone();
        zero[2..6].copy_from_slice(&0u32.to_le_bytes());
        assert!(VersionEdit::decode(&zero).unwrap_err().reason.contains("default keyspace"));
    }

    #[test]
    fn duplicate_scalar_field_is_rejected() {
        let mut bytes = vec![EDIT_FORMAT_VERSION];
        for _ in 0..2 {
            bytes.push(TAG_LAST_SEQNO);
            bytes.extend_from_slice(&5u64.to_le_bytes());
        }
        bytes.push(TAG_END);
        assert!(VersionEdit::decode(&bytes).unwrap_err().reason.contains("twice"));
    }

    #[test]
    fn huge_key_length_is_refused_before_allocating() {
        let mut bytes = sample().encode();
        // The first key length follows tag, level and the fixed fields of the first added file.
        let first_added = bytes.iter().position(|&b| b == TAG_ADDED_FILE).unwrap();
        let len_at = first_added + ADDED_FILE_FIXED_LEN + 1;
        bytes[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = VersionEdit::decode(&bytes).unwrap_err();
        assert_eq!(err.pos, len_at);
        assert!(err.reason.contains("out of range"), "{err:?}");
    }

    #[test]
    fn level_out_of_range_is_rejected() {
        let mut bytes = VersionEdit { deleted: vec![(1, 4)], ..Default::default() }.encode();
        bytes[2] = MAX_LEVELS as u8;
        assert!(VersionEdit::decode(&bytes).unwrap_err().reason.contains("level"));
    }

    #[test]
    fn every_flipped_byte_changes_or_fails_the_decode() {
        // The log layer's tag is what catches damage; this shows the decoder itself
        // never turns a damaged edit back into the original one.
        let edit = sample();
        let bytes = edit.encode();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            if let Ok(decoded) = VersionEdit::decode(&bad) {
                assert_ne!(decoded, edit, "flip at {i} went unnoticed");
            }
        }
    }
}
