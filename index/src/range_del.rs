//! Range tombstones: a deletion of every key in `[start, end)` of one keyspace
//! older than the tombstone's seqno, written as one operation whatever the
//! number of keys it covers (RocksDB's and Pebble's range deletions).
//!
//! A set of them is kept fragmented: the boundaries of every tombstone cut the
//! key space into disjoint pieces, and each piece lists the seqnos of the
//! tombstones over it, newest first. A lookup is then one binary search for the
//! piece holding the key and a walk down its seqnos, whatever the overlaps.
//! Building a set costs O(n log n + pieces × overlap); sets are built when a
//! range delete is applied or a version is installed, never per read.

use std::cmp::Ordering;

use crate::key::{cmp_user_keys, SeqNo};

/// A deletion of every key `k` with `start <= k < end` in `keyspace` whose
/// version is older than `seqno`. Its seqno is that of the batch operation
/// that wrote it, unique in the store, so it also names the tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RangeTombstone {
    /// The keyspace whose keys it deletes (0: the default keyspace).
    pub keyspace: u32,
    /// First key deleted (inclusive).
    pub start: Vec<u8>,
    /// First key past the range (exclusive); always greater than `start`.
    pub end: Vec<u8>,
    /// The seqno of the delete: versions with a lower seqno are hidden from
    /// reads at or above it.
    pub seqno: SeqNo,
}

impl RangeTombstone {
    /// Whether `key` of `keyspace` lies in the tombstone's range.
    pub fn contains(&self, keyspace: u32, key: &[u8]) -> bool {
        keyspace == self.keyspace
            && cmp_user_keys(&self.start, key) != Ordering::Greater
            && cmp_user_keys(key, &self.end) == Ordering::Less
    }

    /// Whether the range meets the user keys `[smallest, largest]` (both inclusive).
    pub fn overlaps(&self, smallest: &[u8], largest: &[u8]) -> bool {
        cmp_user_keys(&self.start, largest) != Ordering::Greater && cmp_user_keys(smallest, &self.end) == Ordering::Less
    }
}

/// One piece of the fragmented key space: `[start, end)` of `keyspace`, under
/// the tombstones whose seqnos are listed newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fragment {
    keyspace: u32,
    start: Vec<u8>,
    end: Vec<u8>,
    seqnos: Vec<SeqNo>,
}

/// An immutable, fragmented set of range tombstones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeTombstones {
    /// The tombstones as written, ascending by seqno.
    list: Vec<RangeTombstone>,
    /// Disjoint pieces ordered by (keyspace, start).
    fragments: Vec<Fragment>,
}

impl RangeTombstones {
    /// A set holding `list` (any order; a tombstone listed twice counts once).
    pub fn new(mut list: Vec<RangeTombstone>) -> Self {
        list.sort_by_key(|t| t.seqno);
        list.dedup();
        let fragments = fragment(&list);
        RangeTombstones { list, fragments }
    }

    /// This set with `more` added.
    pub fn with(&self, more: impl IntoIterator<Item = RangeTombstone>) -> Self {
        let mut list = self.list.clone();
        list.extend(more);
        Self::new(list)
    }

    /// This set without the tombstones whose seqno `drop` selects.
    pub fn without(&self, drop: impl Fn(SeqNo) -> bool) -> Self {
        Self::new(self.list.iter().filter(|t| !drop(t.seqno)).cloned().collect())
    }

    /// Whether the set holds no tombstone.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Number of tombstones.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The tombstones, ascending by seqno.
    pub fn tombstones(&self) -> &[RangeTombstone] {
        &self.list
    }

    /// Key bytes the set holds (both bounds of every tombstone), for memory accounting.
    pub fn key_bytes(&self) -> usize {
        self.list.iter().map(|t| t.start.len() + t.end.len()).sum()
    }

    /// The seqnos of the tombstones over `key` of `keyspace`, newest first.
    fn seqnos_over(&self, keyspace: u32, key: &[u8]) -> &[SeqNo] {
        // The first piece that does not start before or at `key`; the one
        // before it is the only candidate.
        let idx = self.fragments.partition_point(|f| {
            f.keyspace < keyspace || (f.keyspace == keyspace && cmp_user_keys(&f.start, key) != Ordering::Greater)
        });
        match idx.checked_sub(1).and_then(|i| self.fragments.get(i)) {
            Some(f) if f.keyspace == keyspace && cmp_user_keys(key, &f.end) == Ordering::Less => &f.seqnos,
            _ => &[],
        }
    }

    /// The seqno of the newest tombstone over `key` of `keyspace` that a read
    /// at `read_seqno` sees (its seqno at or below `read_seqno`).
    pub fn newest_covering(&self, keyspace: u32, key: &[u8], read_seqno: SeqNo) -> Option<SeqNo> {
        self.seqnos_over(keyspace, key).iter().copied().find(|&s| s <= read_seqno)
    }

    /// The seqnos of the tombstones over `key` of `keyspace` that are newer
    /// than `seqno` (those that hide a version at `seqno`), newest first.
    pub fn covering_above(&self, keyspace: u32, key: &[u8], seqno: SeqNo) -> &[SeqNo] {
        let over = self.seqnos_over(keyspace, key);
        over.get(..over.partition_point(|&s| s > seqno)).unwrap_or_default()
    }

    /// The seqno of the oldest tombstone over `key` of `keyspace` that is
    /// newer than `seqno`: the first one that hides a version at `seqno`.
    pub fn oldest_covering_above(&self, keyspace: u32, key: &[u8], seqno: SeqNo) -> Option<SeqNo> {
        self.covering_above(keyspace, key, seqno).last().copied()
    }

    /// Whether a version of `key` at `seqno`, read at `read_seqno`, is hidden
    /// by a tombstone of this set.
    pub fn hides(&self, keyspace: u32, key: &[u8], seqno: SeqNo, read_seqno: SeqNo) -> bool {
        self.newest_covering(keyspace, key, read_seqno).is_some_and(|t| t > seqno)
    }
}

/// Cuts the tombstones of `list` into disjoint pieces, each with the seqnos of
/// the tombstones over it, newest first. Pieces no tombstone covers are left out.
fn fragment(list: &[RangeTombstone]) -> Vec<Fragment> {
    let mut keyspaces: Vec<u32> = list.iter().map(|t| t.keyspace).collect();
    keyspaces.sort_unstable();
    keyspaces.dedup();
    let mut out = Vec::new();
    for ks in keyspaces {
        let mut bounds: Vec<&[u8]> =
            list.iter().filter(|t| t.keyspace == ks).flat_map(|t| [t.start.as_slice(), t.end.as_slice()]).collect();
        bounds.sort_by(|a, b| cmp_user_keys(a, b));
        bounds.dedup();
        // Tombstones by start, so each piece only looks at those begun before it.
        let mut by_start: Vec<&RangeTombstone> = list.iter().filter(|t| t.keyspace == ks).collect();
        by_start.sort_by(|a, b| cmp_user_keys(&a.start, &b.start));
        let mut active: Vec<&RangeTombstone> = Vec::new();
        let mut next = 0;
        for pair in bounds.windows(2) {
            let [lo, hi] = pair else { continue };
            while let Some(t) = by_start.get(next).filter(|t| cmp_user_keys(&t.start, lo) != Ordering::Greater) {
                active.push(t);
                next += 1;
            }
            active.retain(|t| cmp_user_keys(&t.end, lo) == Ordering::Greater);
            if active.is_empty() {
                continue;
            }
            let mut seqnos: Vec<SeqNo> = active.iter().map(|t| t.seqno).collect();
            seqnos.sort_unstable_by(|a, b| b.cmp(a));
            seqnos.dedup();
            out.push(Fragment { keyspace: ks, start: lo.to_vec(), end: hi.to_vec(), seqnos });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn t(start: &str, end: &str, seqno: SeqNo) -> RangeTombstone {
        RangeTombstone { keyspace: 0, start: start.into(), end: end.into(), seqno }
    }

    /// The answer without fragments: every tombstone looked at.
    fn model_newest(list: &[RangeTombstone], ks: u32, key: &[u8], read: SeqNo) -> Option<SeqNo> {
        list.iter().filter(|t| t.contains(ks, key) && t.seqno <= read).map(|t| t.seqno).max()
    }

    #[test]
    fn lookups_respect_bounds_seqnos_and_keyspaces() {
        let mut other = t("a", "z", 50);
        other.keyspace = 3;
        let set = RangeTombstones::new(vec![t("c", "f", 10), t("d", "h", 20), other]);
        assert_eq!(set.newest_covering(0, b"b", 100), None);
        assert_eq!(set.newest_covering(0, b"c", 100), Some(10), "start is inclusive");
        assert_eq!(set.newest_covering(0, b"e", 100), Some(20));
        assert_eq!(set.newest_covering(0, b"e", 15), Some(10), "a read below a tombstone does not see it");
        assert_eq!(set.newest_covering(0, b"e", 9), None);
        assert_eq!(set.newest_covering(0, b"f", 100), Some(20));
        assert_eq!(set.newest_covering(0, b"h", 100), None, "end is exclusive");
        assert_eq!(set.newest_covering(3, b"h", 100), Some(50));
        assert_eq!(set.newest_covering(1, b"e", 100), None);
        assert!(set.hides(0, b"e", 19, 100));
        assert!(!set.hides(0, b"e", 21, 100), "a newer version is not hidden");
        assert!(!set.hides(0, b"e", 5, 9));
        assert_eq!(set.oldest_covering_above(0, b"e", 5), Some(10));
        assert_eq!(set.oldest_covering_above(0, b"e", 10), Some(20));
        assert_eq!(set.oldest_covering_above(0, b"e", 20), None);
        assert_eq!(set.covering_above(0, b"e", 5), &[20, 10]);
        assert_eq!(set.covering_above(0, b"e", 15), &[20]);
        assert_eq!(set.without(|s| s == 20).newest_covering(0, b"g", 100), None);
        assert_eq!(set.with([t("a", "b", 5)]).len(), 4);
    }

    #[test]
    fn fragments_agree_with_a_scan_of_every_tombstone() {
        // A deterministic spread of overlapping, nested and touching ranges.
        let keys: Vec<String> = (0..12u8).map(|i| ((b'a' + i) as char).to_string()).collect();
        let mut list = Vec::new();
        let mut x = 7u64;
        for seqno in 1..40 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let a = (x >> 33) as usize % keys.len();
            let b = (x >> 45) as usize % keys.len();
            let (lo, hi) = (a.min(b), a.max(b));
            if lo == hi {
                continue;
            }
            list.push(t(&keys[lo], &keys[hi], seqno));
        }
        let set = RangeTombstones::new(list.clone());
        for key in keys.iter().chain(["", "a0", "zz"].map(String::from).iter()) {
            for read in 0..42 {
                assert_eq!(set.newest_covering(0, key.as_bytes(), read), model_newest(&list, 0, key.as_bytes(), read), "{key} at {read}");
            }
        }
    }
}
