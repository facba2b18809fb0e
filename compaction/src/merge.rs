//! Merge operators (associative, as RocksDB's) and the folding of merge
//! operands during compaction.
//!
//! A merge operand (`ValueKind::Merge`) is a change to a key's value that only
//! has a meaning on top of the versions below it: a reader folds every operand
//! it can see over the newest full value or tombstone beneath them (the base)
//! with the keyspace's [`MergeOperator`]. Compaction folds what no reader can
//! tell apart ([`MergeFolder`]): within one snapshot stripe (see
//! [`crate::retain`]) a run of operands over its base becomes one full value
//! (a full merge), a run whose base lies in an older stripe or below the
//! compaction's inputs becomes one operand where the operator can combine them
//! (a partial merge), and at the bottommost level a run with nothing below it
//! is fully merged over no value. An operator that fails leaves the entries as
//! they were: the reader of that key sees the error, never wrong data.

use std::fmt;

use index::{Entry, InternalKey, SeqNo, ValueKind};

use crate::error::Result;

/// Largest value the SSTable builder accepts (`index::format::MAX_VALUE_BYTES`):
/// a fold that would make a larger value is not done (its inputs, each within
/// the limit, are kept), or the compaction would fail on it every time.
const MAX_FOLDED_VALUE_BYTES: usize = 64 << 20;

/// Why a merge operator could not combine its inputs (a malformed operand or
/// base, an overflow it refuses). A value, never a panic: a read of the key
/// reports it, a compaction keeps the inputs unfolded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeError {
    message: String,
}

impl MergeError {
    /// An error with a message saying what was wrong (no key or value bytes
    /// should go into it: it may be logged).
    pub fn new(message: impl Into<String>) -> Self {
        MergeError { message: message.into() }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MergeError {}

/// An associative merge operator, registered per keyspace by name.
///
/// `full_merge(base, [a, b, c])` must equal `full_merge(base, [a, partial(b, c)])`
/// and `full_merge(base, [partial(a, b), c])` whenever those partial merges
/// succeed: the engine folds operands at any point (reads over the newest base,
/// compaction over whatever runs it holds), and a reader must not be able to
/// tell when it did. Operators must be deterministic and must not panic;
/// malformed input is a [`MergeError`].
pub trait MergeOperator: Send + Sync {
    /// A stable name identifying the operator and its encoding (e.g.
    /// `"synapsed.u64_add"`).
    fn name(&self) -> &str;

    /// Folds `operands` (oldest first, at least one) over `base`: the key's
    /// value below them, `None` when there is none (never written, or deleted).
    fn full_merge(&self, key: &[u8], base: Option<&[u8]>, operands: &[&[u8]]) -> std::result::Result<Vec<u8>, MergeError>;

    /// Combines consecutive `operands` (oldest first, at least two) into one
    /// operand with the same effect, or `Ok(None)` when that is not possible
    /// (the default): they are then kept as they are.
    fn partial_merge(&self, key: &[u8], operands: &[&[u8]]) -> std::result::Result<Option<Vec<u8>>, MergeError> {
        let _ = (key, operands);
        Ok(None)
    }
}

impl fmt::Debug for dyn MergeOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MergeOperator").field("name", &self.name()).finish()
    }
}

/// Whether a version of `kind` can be the base a full merge folds over: a
/// value or a plain tombstone. Other kinds (reserved ones) stop folding.
fn foldable_base(kind: ValueKind) -> bool {
    matches!(kind, ValueKind::Put | ValueKind::Delete)
}

/// Folds runs of merge operands in the stream of entries a compaction keeps.
///
/// Entries come in compaction order (user key ascending, newest first), each
/// with its snapshot stripe; operands are held back until their run ends, and
/// everything is passed on, folded or not, in the same order.
pub(crate) struct MergeFolder<'a> {
    operator: Option<&'a dyn MergeOperator>,
    bottommost: bool,
    /// The run of operands held back, newest first: one user key, one stripe.
    run: Vec<Entry>,
    run_stripe: SeqNo,
}

impl<'a> MergeFolder<'a> {
    /// A folder using `operator` (none: every entry passes unchanged);
    /// `bottommost` as in the compaction (nothing older lies below).
    pub(crate) fn new(operator: Option<&'a dyn MergeOperator>, bottommost: bool) -> Self {
        MergeFolder { operator, bottommost, run: Vec::new(), run_stripe: 0 }
    }

    /// Takes the next kept entry, in `stripe`; hands what is decided to `out`.
    pub(crate) fn add(&mut self, entry: &Entry, stripe: SeqNo, out: &mut dyn FnMut(&Entry) -> Result<()>) -> Result<()> {
        let Some(operator) = self.operator else {
            return out(entry);
        };
        let continues_run = self.run.first().is_some_and(|first| first.key.user_key == entry.key.user_key) && self.run_stripe == stripe;
        if !self.run.is_empty() && !continues_run {
            // The run ended above its base: its base is in an older stripe (same
            // key), or not among the inputs (next key).
            let key_ended = self.run.first().is_some_and(|first| first.key.user_key != entry.key.user_key);
            self.end_run(operator, key_ended, out)?;
        }
        if entry.key.kind == ValueKind::Merge {
            if self.run.is_empty() {
                self.run_stripe = stripe;
            }
            self.run.push(entry.clone());
            return Ok(());
        }
        if !self.run.is_empty() && foldable_base(entry.key.kind) {
            let base = (entry.key.kind == ValueKind::Put).then_some(entry.value.as_slice());
            if let Some(folded) = self.full(operator, base) {
                self.run.clear();
                return out(&folded);
            }
        }
        self.flush_unfolded(out)?;
        out(entry)
    }

    /// Hands on what is still held back; call once after the last entry.
    pub(crate) fn finish(&mut self, out: &mut dyn FnMut(&Entry) -> Result<()>) -> Result<()> {
        match self.operator {
            Some(operator) if !self.run.is_empty() => self.end_run(operator, true, out),
            _ => Ok(()),
        }
    }

    /// Ends a run whose base is not among the entries seen: fully merged over
    /// nothing when the key has no version left below (`key_ended` at the
    /// bottommost level), else partially merged, else passed on as it is.
    fn end_run(&mut self, operator: &dyn MergeOperator, key_ended: bool, out: &mut dyn FnMut(&Entry) -> Result<()>) -> Result<()> {
        if key_ended && self.bottommost {
            if let Some(folded) = self.full(operator, None) {
                self.run.clear();
                return out(&folded);
            }
        } else if self.run.len() >= 2 {
            if let Some(newest) = self.run.first() {
                let operands: Vec<&[u8]> = self.run.iter().rev().map(|e| e.value.as_slice()).collect();
                let merged = operator.partial_merge(&newest.key.user_key, &operands);
                if let Ok(Some(value)) = merged.map(|v| v.filter(|v| v.len() <= MAX_FOLDED_VALUE_BYTES)) {
                    let key = InternalKey::new(newest.key.user_key.clone(), newest.key.seqno, ValueKind::Merge);
                    self.run.clear();
                    return out(&Entry { key, value });
                }
            }
        }
        self.flush_unfolded(out)
    }

    /// The run fully merged over `base`, as a value at the newest operand's
    /// seqno; `None` when the operator fails (the run is then kept).
    fn full(&self, operator: &dyn MergeOperator, base: Option<&[u8]>) -> Option<Entry> {
        let newest = self.run.first()?;
        let operands: Vec<&[u8]> = self.run.iter().rev().map(|e| e.value.as_slice()).collect();
        let value = operator.full_merge(&newest.key.user_key, base, &operands).ok().filter(|v| v.len() <= MAX_FOLDED_VALUE_BYTES)?;
        Some(Entry { key: InternalKey::new(newest.key.user_key.clone(), newest.key.seqno, ValueKind::Put), value })
    }

    fn flush_unfolded(&mut self, out: &mut dyn FnMut(&Entry) -> Result<()>) -> Result<()> {
        for e in self.run.drain(..) {
            out(&e)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// Concatenation with '|' between parts: associative; a base is a prefix.
    struct Concat;
    impl MergeOperator for Concat {
        fn name(&self) -> &str {
            "test.concat"
        }
        fn full_merge(&self, _key: &[u8], base: Option<&[u8]>, operands: &[&[u8]]) -> std::result::Result<Vec<u8>, MergeError> {
            if operands.iter().any(|o| o == b"bad") {
                return Err(MergeError::new("bad operand"));
            }
            let mut parts: Vec<&[u8]> = Vec::new();
            parts.push(base.unwrap_or(b"-"));
            parts.extend_from_slice(operands);
            Ok(parts.join(&b'|'))
        }
        fn partial_merge(&self, _key: &[u8], operands: &[&[u8]]) -> std::result::Result<Option<Vec<u8>>, MergeError> {
            Ok(Some(operands.join(&b'|')))
        }
    }

    fn entry(key: &str, seqno: SeqNo, kind: char, value: &str) -> Entry {
        let kind = match kind {
            'P' => ValueKind::Put,
            'D' => ValueKind::Delete,
            'M' => ValueKind::Merge,
            _ => ValueKind::BlobRef,
        };
        Entry { key: InternalKey::new(key.as_bytes().to_vec(), seqno, kind), value: value.as_bytes().to_vec() }
    }

    fn fold(entries: &[Entry], stripes: &[SeqNo], bottommost: bool) -> Vec<(String, SeqNo, ValueKind, String)> {
        let op = Concat;
        let mut folder = MergeFolder::new(Some(&op), bottommost);
        let mut out = Vec::new();
        let mut push = |e: &Entry| {
            out.push((String::from_utf8(e.key.user_key.clone()).unwrap(), e.key.seqno, e.key.kind, String::from_utf8(e.value.clone()).unwrap()));
            Ok(())
        };
        for (e, &s) in entries.iter().zip(stripes) {
            folder.add(e, s, &mut push).unwrap();
        }
        folder.finish(&mut push).unwrap();
        out
    }

    #[test]
    fn a_run_over_its_base_in_one_stripe_becomes_one_value() {
        let out = fold(&[entry("a", 9, 'M', "3"), entry("a", 8, 'M', "2"), entry("a", 5, 'P', "1")], &[MAX; 3], false);
        assert_eq!(out, vec![("a".into(), 9, ValueKind::Put, "1|2|3".into())]);
        let out = fold(&[entry("a", 9, 'M', "3"), entry("a", 5, 'D', "")], &[MAX; 2], false);
        assert_eq!(out, vec![("a".into(), 9, ValueKind::Put, "-|3".into())]);
    }

    const MAX: SeqNo = index::MAX_SEQNO;

    #[test]
    fn a_snapshot_between_operands_and_base_allows_only_a_partial_merge() {
        let out = fold(&[entry("a", 9, 'M', "3"), entry("a", 8, 'M', "2"), entry("a", 5, 'P', "1")], &[MAX, MAX, 6], false);
        assert_eq!(out, vec![("a".into(), 9, ValueKind::Merge, "2|3".into()), ("a".into(), 5, ValueKind::Put, "1".into())]);
    }

    #[test]
    fn a_run_with_nothing_below_is_fully_merged_only_at_the_bottom() {
        let entries = [entry("a", 9, 'M', "3"), entry("a", 8, 'M', "2"), entry("b", 4, 'M', "x")];
        assert_eq!(
            fold(&entries, &[MAX; 3], true),
            vec![("a".into(), 9, ValueKind::Put, "-|2|3".into()), ("b".into(), 4, ValueKind::Put, "-|x".into())]
        );
        assert_eq!(
            fold(&entries, &[MAX; 3], false),
            vec![("a".into(), 9, ValueKind::Merge, "2|3".into()), ("b".into(), 4, ValueKind::Merge, "x".into())]
        );
    }

    #[test]
    fn a_failing_operator_or_a_reserved_base_leaves_the_entries_unfolded() {
        let out = fold(&[entry("a", 9, 'M', "bad"), entry("a", 5, 'P', "1")], &[MAX; 2], true);
        assert_eq!(out, vec![("a".into(), 9, ValueKind::Merge, "bad".into()), ("a".into(), 5, ValueKind::Put, "1".into())]);
        let out = fold(&[entry("a", 9, 'M', "2"), entry("a", 5, 'B', "ref")], &[MAX; 2], true);
        assert_eq!(out, vec![("a".into(), 9, ValueKind::Merge, "2".into()), ("a".into(), 5, ValueKind::BlobRef, "ref".into())]);
    }

    /// Makes values one byte over what a table takes.
    struct Huge;
    impl MergeOperator for Huge {
        fn name(&self) -> &str {
            "test.huge"
        }
        fn full_merge(&self, _key: &[u8], _base: Option<&[u8]>, _operands: &[&[u8]]) -> std::result::Result<Vec<u8>, MergeError> {
            Ok(vec![0; MAX_FOLDED_VALUE_BYTES + 1])
        }
        fn partial_merge(&self, _key: &[u8], _operands: &[&[u8]]) -> std::result::Result<Option<Vec<u8>>, MergeError> {
            Ok(Some(vec![0; MAX_FOLDED_VALUE_BYTES + 1]))
        }
    }

    #[test]
    fn a_fold_larger_than_a_table_value_is_not_done() {
        for (bottommost, entries) in [
            (true, vec![entry("a", 9, 'M', "2"), entry("a", 5, 'P', "1")]),
            (false, vec![entry("a", 9, 'M', "3"), entry("a", 8, 'M', "2")]),
        ] {
            let mut folder = MergeFolder::new(Some(&Huge), bottommost);
            let mut out = Vec::new();
            let mut push = |e: &Entry| {
                out.push(e.clone());
                Ok(())
            };
            for e in &entries {
                folder.add(e, MAX, &mut push).unwrap();
            }
            folder.finish(&mut push).unwrap();
            assert_eq!(out, entries);
        }
    }

    #[test]
    fn without_an_operator_everything_passes() {
        let entries = [entry("a", 9, 'M', "3"), entry("a", 5, 'P', "1")];
        let mut folder = MergeFolder::new(None, true);
        let mut out = Vec::new();
        for e in &entries {
            folder.add(e, MAX, &mut |e| {
                out.push(e.clone());
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(out, entries);
    }
}
