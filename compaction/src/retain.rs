//! Which versions a compaction keeps: the snapshot-aware drop rules.
//!
//! The live snapshots (plus "latest") cut the seqno line into stripes: a version
//! with seqno `s` belongs to the stripe of the smallest snapshot `>= s` (or the
//! latest stripe above every snapshot). Readers of one stripe can only ever see
//! the newest version of a key in it, so within each stripe everything below
//! that newest version is dropped. Two refinements:
//! - merge operands do not hide what lies below them: a stripe whose newest
//!   versions are operands keeps them and the versions down to (and including)
//!   the first full value or tombstone, their base;
//! - at the bottommost level, a tombstone that is the newest version of the
//!   oldest stripe readers can see hides nothing anyone could read, so it goes
//!   too, with everything older (unless a merge operand directly above uses it
//!   as its base).
//!
//! Versioned tombstones (`DeleteWithMeta`) count as tombstones here, like every
//! kind for which `ValueKind::is_tombstone` holds.

use index::{InternalKey, SeqNo, ValueKind, MAX_SEQNO};

/// Decides, entry by entry in compaction order (user key ascending, newest
/// version first), whether to keep it.
pub(crate) struct Retainer {
    snapshots: Vec<SeqNo>,
    bottommost: bool,
    oldest_stripe: SeqNo,
    /// The user key of the previous entry (meaningless before the first).
    user_key: Vec<u8>,
    /// Whether any entry was seen yet.
    started: bool,
    /// Stripe (boundary seqno) of the previous version of this key.
    stripe: Option<SeqNo>,
    /// Whether the current stripe's newest readable state is fully determined.
    resolved: bool,
    /// Whether the previous kept version of this key is a merge operand.
    prev_kept_merge: bool,
    /// Set once a tombstone was dropped at the bottom: every older version goes too.
    drop_rest: bool,
}

impl Retainer {
    /// `snapshots` in any order (duplicates allowed).
    pub(crate) fn new(snapshots: &[SeqNo], bottommost: bool) -> Self {
        let mut snapshots = snapshots.to_vec();
        snapshots.sort_unstable();
        snapshots.dedup();
        let oldest_stripe = snapshots.first().copied().unwrap_or(MAX_SEQNO);
        Retainer {
            snapshots,
            bottommost,
            oldest_stripe,
            user_key: Vec::new(),
            started: false,
            stripe: None,
            resolved: false,
            prev_kept_merge: false,
            drop_rest: false,
        }
    }

    /// The stripe `seqno` belongs to: the smallest snapshot at or above it
    /// (`MAX_SEQNO` above every snapshot).
    pub(crate) fn stripe_of(&self, seqno: SeqNo) -> SeqNo {
        let idx = self.snapshots.partition_point(|&s| s < seqno);
        self.snapshots.get(idx).copied().unwrap_or(MAX_SEQNO)
    }

    /// Whether no live snapshot lies in `[older, newer)`: a reader that sees a
    /// version at `newer` sees nothing at `older` that it hides.
    pub(crate) fn same_stripe(&self, older: SeqNo, newer: SeqNo) -> bool {
        self.stripe_of(older) == self.stripe_of(newer)
    }

    /// Whether to keep the entry with key `key`; entries must come in compaction order.
    pub(crate) fn keep(&mut self, key: &InternalKey) -> bool {
        if !self.started || self.user_key != key.user_key {
            // Copied into a buffer kept across keys: no allocation per key.
            self.started = true;
            self.user_key.clear();
            self.user_key.extend_from_slice(&key.user_key);
            self.stripe = None;
            self.resolved = false;
            self.prev_kept_merge = false;
            self.drop_rest = false;
        }
        if self.drop_rest {
            return false;
        }
        let stripe = self.stripe_of(key.seqno);
        let first_in_stripe = self.stripe != Some(stripe);
        if first_in_stripe {
            self.stripe = Some(stripe);
            self.resolved = false;
        }
        if self.resolved {
            self.prev_kept_merge = false;
            return false;
        }
        if key.kind == ValueKind::Merge {
            self.prev_kept_merge = true;
            return true;
        }
        self.resolved = true;
        let base_of_merge = self.prev_kept_merge;
        self.prev_kept_merge = false;
        if self.bottommost && key.kind.is_tombstone() && stripe == self.oldest_stripe && first_in_stripe && !base_of_merge {
            self.drop_rest = true;
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// One case: entries as (user key, seqno, kind char) in compaction order,
    /// snapshots, bottommost, and the seqnos expected to survive.
    struct Case {
        name: &'static str,
        entries: &'static [(&'static str, SeqNo, char)],
        snapshots: &'static [SeqNo],
        bottommost: bool,
        kept: &'static [SeqNo],
    }

    fn kind(c: char) -> ValueKind {
        match c {
            'P' => ValueKind::Put,
            'D' => ValueKind::Delete,
            'M' => ValueKind::Merge,
            'd' => ValueKind::DeleteWithMeta,
            'p' => ValueKind::PutWithMeta,
            'B' => ValueKind::BlobRef,
            _ => unreachable!(),
        }
    }

    const CASES: &[Case] = &[
        Case { name: "no snapshot keeps the newest only", entries: &[("a", 9, 'P'), ("a", 5, 'P'), ("a", 2, 'P')], snapshots: &[], bottommost: false, kept: &[9] },
        Case { name: "every key keeps its newest", entries: &[("a", 9, 'P'), ("a", 5, 'P'), ("b", 4, 'P'), ("c", 3, 'B'), ("c", 1, 'p')], snapshots: &[], bottommost: false, kept: &[9, 4, 3] },
        Case { name: "a snapshot between versions keeps both", entries: &[("a", 9, 'P'), ("a", 5, 'P'), ("a", 2, 'P')], snapshots: &[6], bottommost: false, kept: &[9, 5] },
        Case { name: "snapshot equal to a seqno sees it", entries: &[("a", 9, 'P'), ("a", 5, 'P'), ("a", 2, 'P')], snapshots: &[5], bottommost: false, kept: &[9, 5] },
        Case { name: "snapshot older than all versions", entries: &[("a", 9, 'P'), ("a", 5, 'P')], snapshots: &[1], bottommost: false, kept: &[9] },
        Case { name: "two snapshots three stripes", entries: &[("a", 9, 'P'), ("a", 7, 'P'), ("a", 5, 'P'), ("a", 3, 'P'), ("a", 1, 'P')], snapshots: &[6, 2, 6], bottommost: false, kept: &[9, 5, 1] },
        Case { name: "tombstone kept above the bottom", entries: &[("a", 9, 'D'), ("a", 5, 'P')], snapshots: &[], bottommost: false, kept: &[9] },
        Case { name: "tombstone dropped at the bottom", entries: &[("a", 9, 'D'), ("a", 5, 'P'), ("b", 3, 'P')], snapshots: &[], bottommost: true, kept: &[3] },
        Case { name: "versioned tombstone dropped at the bottom", entries: &[("a", 9, 'd'), ("a", 5, 'P')], snapshots: &[], bottommost: true, kept: &[] },
        Case { name: "tombstone in a newer stripe kept at the bottom", entries: &[("a", 9, 'D'), ("a", 5, 'P')], snapshots: &[6], bottommost: true, kept: &[9, 5] },
        Case { name: "tombstone in the oldest stripe dropped under a newer put", entries: &[("a", 9, 'P'), ("a", 5, 'D'), ("a", 2, 'P')], snapshots: &[6], bottommost: true, kept: &[9] },
        Case { name: "tombstone in the oldest stripe kept off the bottom", entries: &[("a", 9, 'P'), ("a", 5, 'D'), ("a", 2, 'P')], snapshots: &[6], bottommost: false, kept: &[9, 5] },
        Case { name: "shadowed tombstone dropped", entries: &[("a", 9, 'P'), ("a", 5, 'D'), ("a", 2, 'P')], snapshots: &[], bottommost: false, kept: &[9] },
        Case { name: "merge operands keep their base", entries: &[("a", 10, 'M'), ("a", 8, 'M'), ("a", 5, 'P'), ("a", 3, 'P')], snapshots: &[], bottommost: false, kept: &[10, 8, 5] },
        Case { name: "tombstone base of a merge kept at the bottom", entries: &[("a", 10, 'M'), ("a", 7, 'D'), ("a", 5, 'P')], snapshots: &[], bottommost: true, kept: &[10, 7] },
        Case { name: "operand below a full value is shadowed", entries: &[("a", 10, 'P'), ("a", 8, 'M'), ("a", 5, 'P')], snapshots: &[], bottommost: false, kept: &[10] },
        Case { name: "merge chain crosses a stripe", entries: &[("a", 10, 'M'), ("a", 5, 'M'), ("a", 3, 'P'), ("a", 1, 'P')], snapshots: &[6], bottommost: false, kept: &[10, 5, 3] },
        Case { name: "merge with no base at all", entries: &[("a", 10, 'M'), ("a", 8, 'M')], snapshots: &[], bottommost: true, kept: &[10, 8] },
        Case { name: "each key starts afresh", entries: &[("a", 9, 'D'), ("b", 8, 'P'), ("b", 7, 'P'), ("c", 6, 'M'), ("c", 5, 'P'), ("c", 4, 'P')], snapshots: &[], bottommost: true, kept: &[8, 6, 5] },
    ];

    #[test]
    fn drop_rules_table() {
        for case in CASES {
            let mut r = Retainer::new(case.snapshots, case.bottommost);
            let kept: Vec<SeqNo> = case
                .entries
                .iter()
                .map(|&(k, s, c)| InternalKey::new(k.as_bytes().to_vec(), s, kind(c)))
                .filter(|k| r.keep(k))
                .map(|k| k.seqno)
                .collect();
            assert_eq!(kept, case.kept, "case: {}", case.name);
        }
    }

    /// Newest version visible at `snapshot`, resolving merge operands by
    /// concatenation down to their base.
    fn read(entries: &[(InternalKey, String)], key: &str, snapshot: SeqNo) -> Option<String> {
        let mut operands: Vec<&str> = Vec::new();
        for (k, v) in entries.iter().filter(|(k, _)| k.user_key == key.as_bytes() && k.seqno <= snapshot) {
            match k.kind {
                ValueKind::Merge => operands.push(v),
                kind if kind.is_tombstone() => break,
                _ => {
                    operands.push(v);
                    break;
                }
            }
        }
        if operands.is_empty() {
            return None;
        }
        operands.reverse();
        Some(operands.concat())
    }

    #[test]
    fn random_histories_read_the_same_after_dropping() {
        use rand::{Rng, SeedableRng};
        for seed in 0..300u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut entries = Vec::new();
            let mut seqno = 1;
            for key in ["a", "b", "c"] {
                let n = rng.gen_range(0..8);
                let mut versions = Vec::new();
                for _ in 0..n {
                    let kind = match rng.gen_range(0..6) {
                        0 | 1 => ValueKind::Put,
                        2 => ValueKind::Delete,
                        3 | 4 => ValueKind::Merge,
                        _ => ValueKind::DeleteWithMeta,
                    };
                    versions.push((InternalKey::new(key.as_bytes().to_vec(), seqno, kind), format!("{seqno},")));
                    seqno += 1;
                }
                versions.reverse();
                entries.extend(versions);
            }
            let snapshots: Vec<SeqNo> = (0..rng.gen_range(0..4)).map(|_| rng.gen_range(0..seqno + 1)).collect();
            let bottommost = rng.gen_bool(0.5);
            let mut r = Retainer::new(&snapshots, bottommost);
            let kept: Vec<(InternalKey, String)> = entries.iter().filter(|(k, _)| r.keep(k)).cloned().collect();
            let mut readers = snapshots.clone();
            readers.push(MAX_SEQNO);
            for &s in &readers {
                for key in ["a", "b", "c"] {
                    // Off the bottom, older data may lie below; a dropped version must
                    // never make such data visible, so reads must agree exactly there too.
                    assert_eq!(read(&kept, key, s), read(&entries, key, s), "seed {seed} key {key} snapshot {s}");
                }
            }
            if !bottommost {
                // Off the bottom a tombstone still has work to do: whenever a reader's
                // view of a key is a deletion, some kept version must say so.
                for &s in &readers {
                    for key in ["a", "b", "c"] {
                        let newest_full = entries.iter().find(|(k, _)| k.user_key == key.as_bytes() && k.seqno <= s);
                        if let Some((k, _)) = newest_full.filter(|(k, _)| k.kind.is_tombstone()) {
                            assert!(kept.iter().any(|(kk, _)| kk == k), "seed {seed}: tombstone {k:?} dropped off the bottom");
                        }
                    }
                }
            }
        }
    }
}
