//! The engine's own byte format: the payload of one WAL record, which carries one
//! committed write batch. The log layer frames, seals and checksums the payload;
//! this module only decides what is inside. Layout and a worked example are in
//! `engine/FORMAT.md` ("Batch record").

use index::{Memtable, RangeTombstone, SeqNo, ValueKind, MAX_SEQNO};

use crate::batch::BatchOp;
use crate::error::{Error, Result};

/// First byte of every batch record.
pub(crate) const BATCH_MAGIC: u8 = 0xB7;
/// Version of the batch record layout whose operations are all in the default
/// keyspace: no keyspace field. Written for every batch that addresses only
/// the default keyspace, so such a record is byte for byte what earlier
/// versions wrote.
pub(crate) const BATCH_VERSION: u8 = 1;
/// Version of the layout in which each operation also carries its keyspace id
/// (a `u32` after the kind), written for a batch that addresses any other keyspace.
pub(crate) const BATCH_VERSION_KEYSPACES: u8 = 2;
/// magic u8 + version u8 + first seqno u64 + op count u32.
pub(crate) const BATCH_HEADER_LEN: usize = 1 + 1 + 8 + 4;
/// kind u8 + key length u32 + value length u32.
pub(crate) const OP_OVERHEAD_LEN: usize = 1 + 4 + 4;
/// Version 2: kind u8 + keyspace u32 + key length u32 + value length u32.
pub(crate) const OP_OVERHEAD_LEN_KEYSPACES: usize = OP_OVERHEAD_LEN + 4;

const _: () = assert!(BATCH_HEADER_LEN == 14);
const _: () = assert!(OP_OVERHEAD_LEN == 9);
// A deleted key carries an empty value, so a tombstone needs no separate layout.
const _: () = assert!(ValueKind::Delete as u8 == 0 && ValueKind::Put as u8 == 1);
/// Op kind of a range delete: key = start (inclusive), value = end (exclusive).
/// Not a value kind: a range tombstone is never an entry of a memtable or table.
pub(crate) const OP_DELETE_RANGE: u8 = 6;
const _: () = assert!(ValueKind::DeleteWithMeta as u8 + 1 == OP_DELETE_RANGE);
// A merge operand is op kind 2, the value kind it is stored under.
const _: () = assert!(ValueKind::Merge as u8 == 2);

/// One operation read back from a batch record: the same fields as a
/// [`BatchOp`] (a version 1 record's operations are in keyspace 0).
pub(crate) type RecordOp = BatchOp;

impl BatchOp {
    /// Applies the operation at `seqno` to `memtable` (recovery, refresh, repair).
    pub(crate) fn apply(&self, memtable: &Memtable, seqno: SeqNo) {
        if self.range_delete {
            memtable.add_range_tombstone(self.range_tombstone(seqno));
        } else {
            memtable.insert(&self.key, seqno, self.kind, &self.value);
        }
    }

    /// The range tombstone of a range delete at `seqno`.
    pub(crate) fn range_tombstone(&self, seqno: SeqNo) -> RangeTombstone {
        RangeTombstone { keyspace: self.keyspace, start: self.key.clone(), end: self.value.clone(), seqno }
    }

    /// The kind byte the record carries for this operation.
    pub(crate) fn kind_byte(&self) -> u8 {
        if self.range_delete {
            OP_DELETE_RANGE
        } else {
            self.kind as u8
        }
    }
}

/// A batch record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchRecord {
    /// Seqno of the first operation; operation `i` has `first_seqno + i`.
    pub(crate) first_seqno: SeqNo,
    pub(crate) ops: Vec<RecordOp>,
}

impl BatchRecord {
    /// Seqno of the last operation (`first_seqno - 1` for an empty record).
    pub(crate) fn last_seqno(&self) -> SeqNo {
        (self.first_seqno + self.ops.len() as u64).saturating_sub(1)
    }
}

/// The record version `ops` are written in: 1 while every operation is in the
/// default keyspace, 2 otherwise.
pub(crate) fn record_version(ops: &[BatchOp]) -> u8 {
    if ops.iter().all(|op| op.keyspace == compaction::DEFAULT_KEYSPACE_ID) {
        BATCH_VERSION
    } else {
        BATCH_VERSION_KEYSPACES
    }
}

/// Bytes per operation besides its key and value, in record `version`.
fn op_overhead(version: u8) -> usize {
    if version == BATCH_VERSION {
        OP_OVERHEAD_LEN
    } else {
        OP_OVERHEAD_LEN_KEYSPACES
    }
}

/// Bytes `encode_batch` produces for `ops`.
pub(crate) fn encoded_len(ops: &[BatchOp]) -> usize {
    let overhead = op_overhead(record_version(ops));
    BATCH_HEADER_LEN + ops.iter().map(|op| overhead + op.key.len() + op.value.len()).sum::<usize>()
}

/// What a record allows for an operation of `kind` (a range delete when
/// `range_delete`): `Err(reason)` for one the record refuses. New kinds are
/// added here; encoding needs nothing else.
fn check_op(kind: ValueKind, range_delete: bool, key: &[u8], value: &[u8]) -> std::result::Result<(), &'static str> {
    if key.is_empty() {
        return Err("empty key in batch record");
    }
    if range_delete {
        if key >= value {
            return Err("a range delete in a batch record does not end after its start");
        }
    } else if kind == ValueKind::Delete && !value.is_empty() {
        return Err("a delete in a batch record carries a value");
    }
    Ok(())
}

#[cfg(any(test, feature = "fuzzing"))]
/// Encodes `ops` as a record whose first operation has `first_seqno`. Callers have
/// checked the limits (count fits u32, each key and value fits u32).
pub(crate) fn encode_batch(first_seqno: SeqNo, ops: &[BatchOp]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(ops));
    encode_batch_into(first_seqno, ops, &mut out);
    out
}

/// Appends the record [`encode_batch`] makes to `out` (`encoded_len(ops)` bytes):
/// version 1 when every operation is in the default keyspace, else version 2.
pub(crate) fn encode_batch_into(first_seqno: SeqNo, ops: &[BatchOp], out: &mut Vec<u8>) {
    let version = record_version(ops);
    out.push(BATCH_MAGIC);
    out.push(version);
    out.extend_from_slice(&first_seqno.to_le_bytes());
    out.extend_from_slice(&(ops.len() as u32).to_le_bytes());
    for op in ops {
        out.push(op.kind_byte());
        if version == BATCH_VERSION_KEYSPACES {
            out.extend_from_slice(&op.keyspace.to_le_bytes());
        }
        out.extend_from_slice(&(op.key.len() as u32).to_le_bytes());
        out.extend_from_slice(&op.key);
        out.extend_from_slice(&(op.value.len() as u32).to_le_bytes());
        out.extend_from_slice(&op.value);
    }
}

/// Reads fixed-width fields off the front of a record, reporting short input as
/// corruption of `file` at the record's `offset`.
struct Cursor<'a> {
    rest: &'a [u8],
    file: &'a str,
    offset: u64,
}

impl<'a> Cursor<'a> {
    fn corrupt(&self, reason: impl Into<String>) -> Error {
        Error::Corruption { file: self.file.to_string(), offset: self.offset, reason: reason.into() }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(self.corrupt(format!("batch record ends inside {what}")));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?.first().copied().unwrap_or_default())
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(b))
    }

    /// A length-prefixed byte string; the length is checked against the bytes left
    /// before anything is allocated.
    fn bytes(&mut self, what: &str) -> Result<Vec<u8>> {
        let len = self.u32(what)? as usize;
        Ok(self.take(len, what)?.to_vec())
    }
}

/// Decodes a batch record read from `file` at `offset` (both only for errors).
pub(crate) fn decode_batch(bytes: &[u8], file: &str, offset: u64) -> Result<BatchRecord> {
    let mut c = Cursor { rest: bytes, file, offset };
    let magic = c.u8("the magic")?;
    if magic != BATCH_MAGIC {
        return Err(c.corrupt(format!("batch record magic {magic:#04x}, expected {BATCH_MAGIC:#04x}")));
    }
    let version = c.u8("the version")?;
    if version != BATCH_VERSION && version != BATCH_VERSION_KEYSPACES {
        return Err(Error::UnsupportedVersion { file: file.to_string(), found: version, supported: BATCH_VERSION_KEYSPACES });
    }
    let first_seqno = c.u64("the first seqno")?;
    let count = c.u32("the op count")?;
    if count == 0 {
        return Err(c.corrupt("batch record holds no operation"));
    }
    let in_range = first_seqno.checked_add(u64::from(count) - 1).is_some_and(|last| last <= MAX_SEQNO);
    if first_seqno == 0 || !in_range {
        return Err(c.corrupt(format!("seqno range {first_seqno}+{count} is outside 1..={MAX_SEQNO}")));
    }
    // Every op takes at least its fixed overhead: bound the allocation by the input.
    if (count as usize).saturating_mul(op_overhead(version)) > c.rest.len() {
        return Err(c.corrupt(format!("op count {count} does not fit in {} bytes", c.rest.len())));
    }
    let mut ops = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let kind_byte = c.u8("an op kind")?;
        let range_delete = kind_byte == OP_DELETE_RANGE;
        let kind = match ValueKind::from_u8(kind_byte) {
            Some(kind) => kind,
            None if range_delete => ValueKind::Delete,
            None => return Err(c.corrupt(format!("unknown op kind {kind_byte}"))),
        };
        let keyspace = if version == BATCH_VERSION { compaction::DEFAULT_KEYSPACE_ID } else { c.u32("a keyspace id")? };
        let key = c.bytes("a key")?;
        let value = c.bytes("a value")?;
        check_op(kind, range_delete, &key, &value).map_err(|reason| c.corrupt(reason))?;
        ops.push(RecordOp { kind, keyspace, key, value, range_delete });
    }
    if !c.rest.is_empty() {
        return Err(c.corrupt(format!("{} trailing bytes after the last op", c.rest.len())));
    }
    Ok(BatchRecord { first_seqno, ops })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn sample() -> Vec<BatchOp> {
        vec![
            BatchOp::put(0, b"k1".to_vec(), b"v1".to_vec()),
            BatchOp::delete(0, b"k2".to_vec()),
            BatchOp::put(0, b"k3".to_vec(), Vec::new()),
        ]
    }

    fn sample_keyspaces() -> Vec<BatchOp> {
        vec![BatchOp::put(3, b"k1".to_vec(), b"v1".to_vec()), BatchOp::delete(0, b"k2".to_vec()), BatchOp::put(u32::MAX, b"k3".to_vec(), Vec::new())]
    }

    #[test]
    fn a_batch_in_other_keyspaces_is_version_2_and_round_trips() {
        let ops = sample_keyspaces();
        let bytes = encode_batch(42, &ops);
        assert_eq!(bytes[1], BATCH_VERSION_KEYSPACES);
        assert_eq!(bytes.len(), encoded_len(&ops));
        let rec = decode_batch(&bytes, "000001.wal", 0).unwrap();
        assert_eq!((rec.first_seqno, rec.ops), (42, ops));
        // Version 1 decodes as keyspace 0, and a default-only batch stays version 1.
        let v1 = encode_batch(42, &sample());
        assert_eq!(v1[1], BATCH_VERSION);
        assert!(decode_batch(&v1, "f", 0).unwrap().ops.iter().all(|op| op.keyspace == 0));
        for cut in 0..bytes.len() {
            assert!(decode_batch(&bytes[..cut], "f", 0).unwrap_err().is_corruption(), "cut at {cut}");
        }
    }

    #[test]
    fn worked_example_of_version_2_matches_format_doc() {
        // The example in engine/FORMAT.md: put_in(keyspace 5, "a", "xy") at seqno 7.
        let bytes = encode_batch(7, &[BatchOp::put(5, b"a".to_vec(), b"xy".to_vec())]);
        let expected: Vec<u8> = vec![
            0xB7, 0x02, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x01, 5, 0, 0, 0, 1, 0, 0, 0, b'a', 2, 0, 0, 0, b'x', b'y',
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn round_trip() {
        let ops = sample();
        let bytes = encode_batch(42, &ops);
        assert_eq!(bytes.len(), encoded_len(&ops));
        let rec = decode_batch(&bytes, "000001.wal", 0).unwrap();
        assert_eq!(rec.first_seqno, 42);
        assert_eq!(rec.last_seqno(), 44);
        let kinds: Vec<_> = rec.ops.iter().map(|o| o.kind).collect();
        assert_eq!(kinds, vec![ValueKind::Put, ValueKind::Delete, ValueKind::Put]);
        assert_eq!(rec.ops[0].value, b"v1");
        assert_eq!(rec.ops[1].key, b"k2");
        assert!(rec.ops[2].value.is_empty());
    }

    #[test]
    fn worked_example_matches_format_doc() {
        // The example in engine/FORMAT.md: put("a", "xy") at seqno 7.
        let bytes = encode_batch(7, &[BatchOp::put(0, b"a".to_vec(), b"xy".to_vec())]);
        let expected: Vec<u8> = vec![
            0xB7, 0x01, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x01, 1, 0, 0, 0, b'a', 2, 0, 0, 0, b'x', b'y',
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn range_delete_round_trips_and_matches_format_doc() {
        // The example in engine/FORMAT.md: delete_range("a", "c") at seqno 9.
        let ops = vec![BatchOp::delete_range(0, b"a".to_vec(), b"c".to_vec())];
        let bytes = encode_batch(9, &ops);
        let expected: Vec<u8> = vec![
            0xB7, 0x01, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x06, 1, 0, 0, 0, b'a', 1, 0, 0, 0, b'c',
        ];
        assert_eq!(bytes, expected);
        assert_eq!(bytes.len(), encoded_len(&ops));
        let rec = decode_batch(&bytes, "f", 0).unwrap();
        assert!(rec.ops[0].range_delete);
        assert_eq!((rec.ops[0].key.as_slice(), rec.ops[0].value.as_slice()), (&b"a"[..], &b"c"[..]));
        let t = rec.ops[0].range_tombstone(9);
        assert_eq!((t.keyspace, t.seqno), (0, 9));
        // An empty or backwards range is damage.
        for end in [&b"a"[..], b"", b"0"] {
            let mut bad = bytes[..20].to_vec();
            bad.extend_from_slice(&(end.len() as u32).to_le_bytes());
            bad.extend_from_slice(end);
            assert!(decode_batch(&bad, "f", 0).unwrap_err().is_corruption(), "end {end:?}");
        }
        let mut unknown = bytes.clone();
        unknown[14] = 7;
        assert!(decode_batch(&unknown, "f", 0).unwrap_err().is_corruption());
    }

    #[test]
    fn merge_worked_example_matches_format_doc() {
        // The example in engine/FORMAT.md: merge("c", 1 as u64 LE) at seqno 9.
        let ops = [BatchOp::merge(0, b"c".to_vec(), 1u64.to_le_bytes().to_vec())];
        let bytes = encode_batch(9, &ops);
        let expected: Vec<u8> = vec![
            0xB7, 0x01, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x02, 1, 0, 0, 0, b'c', 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(bytes, expected);
        assert_eq!(bytes.len(), encoded_len(&ops));
        let rec = decode_batch(&bytes, "000001.wal", 0).unwrap();
        assert_eq!(rec.ops, ops.to_vec());
    }

    #[test]
    fn every_truncation_and_bad_header_is_an_error() {
        let bytes = encode_batch(5, &sample());
        for cut in 0..bytes.len() {
            let err = decode_batch(&bytes[..cut], "000003.wal", 99).unwrap_err();
            match err {
                Error::Corruption { file, offset, .. } => {
                    assert_eq!(file, "000003.wal");
                    assert_eq!(offset, 99);
                }
                other => panic!("cut at {cut}: unexpected {other:?}"),
            }
        }
        let mut bad = bytes.clone();
        bad[0] ^= 1;
        assert!(decode_batch(&bad, "f", 0).unwrap_err().is_corruption());
        let mut newer = bytes.clone();
        newer[1] = 9;
        assert!(matches!(decode_batch(&newer, "f", 0), Err(Error::UnsupportedVersion { found: 9, .. })));
        let mut trailing = bytes;
        trailing.push(0);
        assert!(decode_batch(&trailing, "f", 0).unwrap_err().is_corruption());
    }

    #[test]
    fn huge_count_or_length_does_not_allocate() {
        let mut bytes = vec![BATCH_MAGIC, BATCH_VERSION];
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_batch(&bytes, "f", 0).unwrap_err().is_corruption());
        let mut one = vec![BATCH_MAGIC, BATCH_VERSION];
        one.extend_from_slice(&1u64.to_le_bytes());
        one.extend_from_slice(&1u32.to_le_bytes());
        one.push(1);
        one.extend_from_slice(&u32::MAX.to_le_bytes());
        one.extend_from_slice(&[0u8; 8]);
        assert!(decode_batch(&one, "f", 0).unwrap_err().is_corruption());
    }
}
