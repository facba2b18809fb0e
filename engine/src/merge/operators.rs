//! The merge operators the stores built on the engine need: a 64-bit counter
//! and a set of byte strings. Both are associative and commutative, so every
//! grouping of their operands folds to the same value (property-tested in
//! `engine/tests/merge_operators.rs`).

use std::collections::BTreeSet;

use super::{MergeError, MergeOperator};

/// Adds unsigned 64-bit integers, encoded as 8 bytes little-endian (the value
/// and every operand). Addition wraps modulo 2^64, as RocksDB's
/// `UInt64AddOperator` does: wrapping addition is associative and
/// commutative, and an operand of `n.wrapping_neg()` subtracts `n`, so one
/// counter can go both ways. A value or operand that is not exactly 8 bytes
/// is a [`MergeError`]; a key with no value counts from 0.
///
/// ```no_run
/// use std::sync::Arc;
/// use synapsed_storage::{Credential, Db, Options, U64AddOperator, DEFAULT_KEYSPACE};
///
/// let options = Options::default().with_merge_operator(DEFAULT_KEYSPACE, Arc::new(U64AddOperator));
/// let db = Db::open(std::path::Path::new("/tmp/example-store"), &Credential::passphrase("pw"), options)?;
/// // Concurrent increments need no read and no transaction.
/// db.merge(b"visits", &U64AddOperator::encode(1))?;
/// if let Some(bytes) = db.get(b"visits")? {
///     let visits = U64AddOperator::decode(&bytes).expect("a counter is 8 bytes");
///     println!("{visits} visits");
/// }
/// # Ok::<(), synapsed_storage::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct U64AddOperator;

impl U64AddOperator {
    /// The name the operator reports.
    pub const NAME: &'static str = "synapsed.u64_add";

    /// The operand (or value) that encodes `n`.
    pub fn encode(n: u64) -> [u8; 8] {
        n.to_le_bytes()
    }

    /// The number an operand or value encodes; anything but 8 bytes is an error.
    pub fn decode(bytes: &[u8]) -> Result<u64, MergeError> {
        let b: [u8; 8] = bytes
            .try_into()
            .map_err(|_| MergeError::new(format!("a u64 counter operand or value is 8 bytes, not {}", bytes.len())))?;
        Ok(u64::from_le_bytes(b))
    }

    fn sum<'a>(start: u64, operands: impl IntoIterator<Item = &'a [u8]>) -> Result<u64, MergeError> {
        operands.into_iter().try_fold(start, |acc, op| Ok(acc.wrapping_add(Self::decode(op)?)))
    }
}

impl MergeOperator for U64AddOperator {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn full_merge(&self, _key: &[u8], base: Option<&[u8]>, operands: &[&[u8]]) -> Result<Vec<u8>, MergeError> {
        let start = base.map(Self::decode).transpose()?.unwrap_or(0);
        Ok(Self::encode(Self::sum(start, operands.iter().copied())?).to_vec())
    }

    fn partial_merge(&self, _key: &[u8], operands: &[&[u8]]) -> Result<Option<Vec<u8>>, MergeError> {
        Ok(Some(Self::encode(Self::sum(0, operands.iter().copied())?).to_vec()))
    }
}

/// The union of sets of byte strings. A set (the value and every operand) is
/// encoded sorted and without duplicates: a u32 little-endian count, then each
/// element as a u32 little-endian length and its bytes, in strictly ascending
/// byte order. [`SortedSetUnion::encode`] makes one from any elements;
/// [`SortedSetUnion::decode`] reads one and refuses anything else (unsorted,
/// duplicated, truncated or trailing bytes) with a [`MergeError`]. A key with
/// no value is the empty set.
#[derive(Debug, Clone, Copy, Default)]
pub struct SortedSetUnion;

impl SortedSetUnion {
    /// The name the operator reports.
    pub const NAME: &'static str = "synapsed.sorted_set_union";

    /// The encoded set of `elements` (sorted and deduplicated here).
    pub fn encode<I, T>(elements: I) -> Vec<u8>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let set: BTreeSet<Vec<u8>> = elements.into_iter().map(|e| e.as_ref().to_vec()).collect();
        Self::encode_sorted(set.iter().map(Vec::as_slice), set.len())
    }

    /// Encodes `count` elements already in strictly ascending order.
    fn encode_sorted<'a>(elements: impl Iterator<Item = &'a [u8]>, count: usize) -> Vec<u8> {
        let mut out = Vec::new();
        // A set of more than u32::MAX elements cannot be built from operands
        // that each hold at most u32::MAX (the union is checked below).
        out.extend_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_le_bytes());
        for e in elements {
            out.extend_from_slice(&u32::try_from(e.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(e);
        }
        out
    }

    /// The elements of an encoded set, in ascending order.
    pub fn decode(bytes: &[u8]) -> Result<Vec<Vec<u8>>, MergeError> {
        Ok(Self::decode_borrowed(bytes)?.into_iter().map(<[u8]>::to_vec).collect())
    }

    fn decode_borrowed(bytes: &[u8]) -> Result<Vec<&[u8]>, MergeError> {
        let bad = |what: &str| MergeError::new(format!("malformed sorted set: {what}"));
        let take_u32 = |rest: &mut &[u8]| -> Result<usize, MergeError> {
            let (head, tail) = rest.split_first_chunk::<4>().ok_or_else(|| bad("ends inside a length"))?;
            *rest = tail;
            Ok(u32::from_le_bytes(*head) as usize)
        };
        let mut rest = bytes;
        let count = take_u32(&mut rest)?;
        // Every element takes at least 4 bytes: bound the allocation by the input.
        if count > rest.len() / 4 {
            return Err(bad("count larger than the bytes that follow"));
        }
        let mut elements: Vec<&[u8]> = Vec::with_capacity(count);
        for _ in 0..count {
            let len = take_u32(&mut rest)?;
            if len > rest.len() {
                return Err(bad("element longer than the bytes that follow"));
            }
            let (element, tail) = rest.split_at(len);
            rest = tail;
            if elements.last().is_some_and(|prev| *prev >= element) {
                return Err(bad("elements not in strictly ascending order"));
            }
            elements.push(element);
        }
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the last element"));
        }
        Ok(elements)
    }

    fn union<'a>(sets: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<u8>, MergeError> {
        let mut union: BTreeSet<&[u8]> = BTreeSet::new();
        for set in sets {
            union.extend(Self::decode_borrowed(set)?);
        }
        if u32::try_from(union.len()).is_err() {
            return Err(MergeError::new("sorted set union of more than u32::MAX elements"));
        }
        Ok(Self::encode_sorted(union.iter().copied(), union.len()))
    }
}

impl MergeOperator for SortedSetUnion {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn full_merge(&self, _key: &[u8], base: Option<&[u8]>, operands: &[&[u8]]) -> Result<Vec<u8>, MergeError> {
        Self::union(base.into_iter().chain(operands.iter().copied()))
    }

    fn partial_merge(&self, _key: &[u8], operands: &[&[u8]]) -> Result<Option<Vec<u8>>, MergeError> {
        Self::union(operands.iter().copied()).map(Some)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn counter_adds_wraps_and_refuses_malformed_operands() {
        let op = U64AddOperator;
        let one = U64AddOperator::encode(1);
        let max = U64AddOperator::encode(u64::MAX);
        assert_eq!(op.full_merge(b"k", None, &[&one, &one]).unwrap(), U64AddOperator::encode(2));
        assert_eq!(op.full_merge(b"k", Some(&max), &[&one]).unwrap(), U64AddOperator::encode(0));
        let minus_one = U64AddOperator::encode(1u64.wrapping_neg());
        assert_eq!(op.full_merge(b"k", Some(&U64AddOperator::encode(5)), &[&minus_one]).unwrap(), U64AddOperator::encode(4));
        assert!(op.full_merge(b"k", None, &[b"1234567"]).is_err());
        assert!(op.full_merge(b"k", Some(b"123456789"), &[&one]).is_err());
        assert!(op.partial_merge(b"k", &[&one, b""]).is_err());
    }

    #[test]
    fn set_encoding_worked_example_and_malformed_sets() {
        let set = SortedSetUnion::encode([&b"b"[..], b"a", b"b"]);
        assert_eq!(set, [2, 0, 0, 0, 1, 0, 0, 0, b'a', 1, 0, 0, 0, b'b']);
        assert_eq!(SortedSetUnion::decode(&set).unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(SortedSetUnion::encode(Vec::<Vec<u8>>::new()), [0, 0, 0, 0]);
        let unsorted = [2, 0, 0, 0, 1, 0, 0, 0, b'b', 1, 0, 0, 0, b'a'];
        let duplicated = [2, 0, 0, 0, 1, 0, 0, 0, b'a', 1, 0, 0, 0, b'a'];
        for bad in [&unsorted[..], &duplicated, &set[..set.len() - 1], &[0, 0, 0], &[255, 255, 255, 255], &[0, 0, 0, 0, 9]] {
            assert!(SortedSetUnion::decode(bad).is_err(), "{bad:?}");
        }
        assert!(SortedSetUnion.full_merge(b"k", Some(&unsorted), &[&set]).is_err());
    }
}
