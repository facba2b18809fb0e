//! Property tests of the shipped merge operators: for any base and operands,
//! the full merge of all operands equals a full merge in which any run of
//! consecutive operands was first combined by a partial merge (which is what
//! compaction does), and partial merges are associative. Malformed operands
//! are errors, never values.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use proptest::prelude::*;
use synapsed_storage::{MergeOperator, SortedSetUnion, U64AddOperator};

fn as_slices(v: &[Vec<u8>]) -> Vec<&[u8]> {
    v.iter().map(Vec::as_slice).collect()
}

/// Full merge of all operands equals full merge after partially merging
/// `operands[i..j]` into one.
fn check_partial_then_full(op: &dyn MergeOperator, base: Option<&[u8]>, operands: &[Vec<u8>], i: usize, j: usize) -> Result<(), TestCaseError> {
    let all = op.full_merge(b"k", base, &as_slices(operands)).unwrap();
    let (i, j) = (i.min(operands.len()), j.min(operands.len()));
    let (i, j) = (i.min(j), i.max(j));
    if j - i >= 2 {
        let combined = op.partial_merge(b"k", &as_slices(&operands[i..j])).unwrap().unwrap();
        let mut folded: Vec<Vec<u8>> = operands[..i].to_vec();
        folded.push(combined);
        folded.extend_from_slice(&operands[j..]);
        prop_assert_eq!(op.full_merge(b"k", base, &as_slices(&folded)).unwrap(), all.clone());
    }
    // Folding a prefix fully, then the rest over it, is the same too.
    if i >= 1 {
        let prefix = op.full_merge(b"k", base, &as_slices(&operands[..i])).unwrap();
        if i < operands.len() {
            prop_assert_eq!(op.full_merge(b"k", Some(&prefix), &as_slices(&operands[i..])).unwrap(), all);
        } else {
            prop_assert_eq!(prefix, all);
        }
    }
    Ok(())
}

fn set() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::collection::vec(0u8..4, 0..3), 0..5).prop_map(SortedSetUnion::encode)
}

proptest! {
    #[test]
    fn counter_partial_and_full_merges_agree(
        base in prop::option::of(any::<u64>()),
        operands in prop::collection::vec(any::<u64>(), 1..12),
        i in 0usize..12,
        j in 0usize..12,
    ) {
        let operands: Vec<Vec<u8>> = operands.iter().map(|&v| U64AddOperator::encode(v).to_vec()).collect();
        let base = base.map(U64AddOperator::encode);
        check_partial_then_full(&U64AddOperator, base.as_ref().map(|b| &b[..]), &operands, i, j)?;
        let total = operands.iter().fold(base.map_or(0, u64::from_le_bytes), |acc, o| acc.wrapping_add(U64AddOperator::decode(o).unwrap()));
        prop_assert_eq!(U64AddOperator::decode(&U64AddOperator.full_merge(b"k", base.as_ref().map(|b| &b[..]), &as_slices(&operands)).unwrap()).unwrap(), total);
    }

    #[test]
    fn counter_partial_merge_is_associative(a in any::<u64>(), b in any::<u64>(), c in any::<u64>()) {
        let op = U64AddOperator;
        let (a, b, c) = (U64AddOperator::encode(a), U64AddOperator::encode(b), U64AddOperator::encode(c));
        let ab = op.partial_merge(b"k", &[&a, &b]).unwrap().unwrap();
        let bc = op.partial_merge(b"k", &[&b, &c]).unwrap().unwrap();
        prop_assert_eq!(op.partial_merge(b"k", &[&ab, &c]).unwrap(), op.partial_merge(b"k", &[&a, &bc]).unwrap());
    }

    #[test]
    fn counter_refuses_operands_of_other_lengths(bytes in prop::collection::vec(any::<u8>(), 0..20).prop_filter("not 8 bytes", |b| b.len() != 8)) {
        prop_assert!(U64AddOperator.full_merge(b"k", None, &[&bytes]).is_err());
        prop_assert!(U64AddOperator.full_merge(b"k", Some(&bytes), &[&[0u8; 8]]).is_err());
        prop_assert!(U64AddOperator.partial_merge(b"k", &[&[0u8; 8], &bytes]).is_err());
    }

    #[test]
    fn set_partial_and_full_merges_agree(
        base in prop::option::of(set()),
        operands in prop::collection::vec(set(), 1..8),
        i in 0usize..8,
        j in 0usize..8,
    ) {
        check_partial_then_full(&SortedSetUnion, base.as_deref(), &operands, i, j)?;
        let mut expected: std::collections::BTreeSet<Vec<u8>> = std::collections::BTreeSet::new();
        for s in base.iter().chain(&operands) {
            expected.extend(SortedSetUnion::decode(s).unwrap());
        }
        let merged = SortedSetUnion.full_merge(b"k", base.as_deref(), &as_slices(&operands)).unwrap();
        prop_assert_eq!(SortedSetUnion::decode(&merged).unwrap(), expected.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn set_partial_merge_is_associative(a in set(), b in set(), c in set()) {
        let op = SortedSetUnion;
        let ab = op.partial_merge(b"k", &[&a, &b]).unwrap().unwrap();
        let bc = op.partial_merge(b"k", &[&b, &c]).unwrap().unwrap();
        prop_assert_eq!(op.partial_merge(b"k", &[&ab, &c]).unwrap(), op.partial_merge(b"k", &[&a, &bc]).unwrap());
    }

    #[test]
    fn set_encoding_round_trips_and_any_bytes_decode_or_fail(
        elements in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..6), 0..8),
        junk in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let encoded = SortedSetUnion::encode(&elements);
        let mut expected = elements.clone();
        expected.sort();
        expected.dedup();
        prop_assert_eq!(SortedSetUnion::decode(&encoded).unwrap(), expected);
        // Arbitrary bytes: either a canonical set (re-encodes to the same bytes) or an error.
        if let Ok(decoded) = SortedSetUnion::decode(&junk) {
            prop_assert_eq!(SortedSetUnion::encode(&decoded), junk);
        }
    }
}
