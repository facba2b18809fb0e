//! The memtable: a concurrent skiplist of internal keys. Any number of threads
//! insert at once (the engine inserts one batch's entries on several threads,
//! `Options::memtable_insert_threads`; the counters are atomics) while any number
//! of readers read.
//!
//! Iterators own an `Arc<Memtable>` together with a skiplist range cursor that
//! borrows it (a self-referential pair, kept safe by `self_cell`), so each step is
//! one move along the bottom list, and the node the cursor stands on lends out
//! its key and value: a short range read costs one seek and copies nothing.
//!
//! Keys of up to [`INLINE_KEY_BYTES`] bytes are stored inside the skiplist node
//! ([`MemKey`]), so comparing against a node touches one cache line instead of
//! following a second pointer to the key's heap buffer; a lookup walks dozens of
//! nodes, and that second miss per node was most of its cost.

use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_skiplist::SkipMap;

use crate::error::Result;
use crate::iter::{Direction, InternalIterator, KeyRange};
use crate::key::{cmp_user_keys, EntryRef, SeqNo, ValueKind, MAX_SEQNO};
use crate::range_del::{RangeTombstone, RangeTombstones};

/// Per-entry bookkeeping charged on top of key and value bytes (skiplist node with
/// its tower, the key's and value's heap headers).
const ENTRY_OVERHEAD_BYTES: usize = 96;
/// The kind that sorts first among versions with one seqno (kinds sort descending).
const FIRST_KIND: ValueKind = ValueKind::DeleteWithMeta;
/// The kind that sorts last.
const LAST_KIND: ValueKind = ValueKind::Delete;

/// Keys up to this length live inside the skiplist node.
const INLINE_KEY_BYTES: usize = 30;

/// A user key's bytes: inline when short, boxed otherwise.
#[derive(Clone)]
enum KeyBytes {
    Inline { len: u8, buf: [u8; INLINE_KEY_BYTES] },
    Heap(Box<[u8]>),
}

impl KeyBytes {
    fn new(key: &[u8]) -> Self {
        match u8::try_from(key.len()) {
            Ok(len) if key.len() <= INLINE_KEY_BYTES => {
                let mut buf = [0u8; INLINE_KEY_BYTES];
                if let Some(dst) = buf.get_mut(..key.len()) {
                    dst.copy_from_slice(key);
                }
                KeyBytes::Inline { len, buf }
            }
            _ => KeyBytes::Heap(key.into()),
        }
    }

    #[inline]
    fn as_slice(&self) -> &[u8] {
        match self {
            KeyBytes::Inline { len, buf } => {
                // Invariant: `len <= INLINE_KEY_BYTES`; only `new` makes an inline key.
                debug_assert!(usize::from(*len) <= buf.len());
                buf.get(..usize::from(*len)).unwrap_or_default()
            }
            KeyBytes::Heap(b) => b,
        }
    }
}

/// The memtable's internal key: user key bytes and the trailer `seqno << 8 |
/// kind`, ordered as [`InternalKey`] is (user key ascending, trailer descending).
#[derive(Clone)]
struct MemKey {
    bytes: KeyBytes,
    trailer: u64,
}

impl MemKey {
    fn new(user_key: &[u8], seqno: SeqNo, kind: ValueKind) -> Self {
        MemKey { bytes: KeyBytes::new(user_key), trailer: (seqno << 8) | kind as u64 }
    }

    fn user_key(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    fn seqno(&self) -> SeqNo {
        self.trailer >> 8
    }

    fn kind(&self) -> ValueKind {
        // Only `MemKey::new` builds trailers, from a valid kind.
        ValueKind::from_u8((self.trailer & 0xff) as u8).unwrap_or(ValueKind::Delete)
    }

}

impl PartialEq for MemKey {
    fn eq(&self, other: &Self) -> bool {
        self.trailer == other.trailer && self.user_key() == other.user_key()
    }
}

impl Eq for MemKey {}

impl Ord for MemKey {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        cmp_user_keys(self.user_key(), other.user_key()).then_with(|| other.trailer.cmp(&self.trailer))
    }
}

impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Bits of the key filter per expected entry, and probes per key.
const FILTER_BITS_PER_ENTRY: usize = 10;
const FILTER_PROBES: u32 = 4;
/// Bounds of the key filter's size in bits (8 KiB .. 16 MiB).
const MIN_FILTER_BITS: usize = 1 << 16;
const MAX_FILTER_BITS: usize = 1 << 27;
/// Bytes one entry is assumed to take when sizing the filter from a byte budget.
const FILTER_BYTES_PER_ENTRY: usize = 64;

/// A bloom filter over the user keys inserted, so a lookup of a key the
/// memtable does not hold (most lookups, once data has been flushed) skips the
/// skiplist search. Bits are only ever set, with atomic ORs; an insert sets its
/// bits before the entry is linked, and readers only look for entries published
/// after that (the engine's visible seqno, or its writer mutex), so a key that
/// is there always passes. Past its sizing the filter fills up and lets more
/// absent keys through to the search; it never answers wrongly.
struct KeyFilter {
    words: Box<[AtomicU64]>,
    bit_mask: u64,
}

impl KeyFilter {
    fn new(bits: usize) -> Self {
        let bits = bits.clamp(MIN_FILTER_BITS, MAX_FILTER_BITS).next_power_of_two();
        KeyFilter { words: (0..bits / 64).map(|_| AtomicU64::new(0)).collect(), bit_mask: bits as u64 - 1 }
    }

    fn probes(&self, user_key: &[u8]) -> impl Iterator<Item = (usize, u64)> + '_ {
        let (h, step) = crate::table::bloom::split(crate::table::bloom::hash64(user_key));
        (0..u64::from(FILTER_PROBES)).map(move |i| {
            let bit = h.wrapping_add(i.wrapping_mul(step)) & self.bit_mask;
            ((bit >> 6) as usize, 1u64 << (bit & 63))
        })
    }

    /// Sets the key's bits, skipping the locked read-modify-write for bits
    /// already set (safe with concurrent inserts all the same).
    fn add(&self, user_key: &[u8]) {
        for (word, bit) in self.probes(user_key) {
            if let Some(w) = self.words.get(word) {
                if w.load(Ordering::Relaxed) & bit == 0 {
                    w.fetch_or(bit, Ordering::Release);
                }
            }
        }
    }

    fn may_contain(&self, user_key: &[u8]) -> bool {
        self.probes(user_key).all(|(word, bit)| self.words.get(word).is_none_or(|w| w.load(Ordering::Acquire) & bit != 0))
    }
}

/// An in-memory sorted table of recent writes.
pub struct Memtable {
    id: u64,
    map: SkipMap<MemKey, Vec<u8>>,
    filter: KeyFilter,
    bytes: AtomicUsize,
    /// Range tombstones applied to this memtable, as a few fragmented sets
    /// (see [`Memtable::add_range_tombstones`]); replaced whole on each add,
    /// reads clone the `Arc`.
    range_tombstones: parking_lot::RwLock<Arc<Vec<Arc<RangeTombstones>>>>,
    /// Set (after the set above is stored) once a range tombstone was added, so
    /// reads of a memtable without any take no lock. A reader only looks for
    /// tombstones at or below a published seqno, and a tombstone is added before
    /// its batch is published.
    has_range_tombstones: AtomicBool,
}

impl std::fmt::Debug for Memtable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memtable").field("id", &self.id).field("len", &self.len()).finish_non_exhaustive()
    }
}

impl Memtable {
    /// An empty memtable. `id` is the number of the WAL segment that backs it.
    pub fn new(id: u64) -> Self {
        Self::with_expected_bytes(id, 0)
    }

    /// An empty memtable whose key filter is sized for about `bytes` of entries
    /// (the engine's memtable budget).
    pub fn with_expected_bytes(id: u64, bytes: usize) -> Self {
        let bits = (bytes / FILTER_BYTES_PER_ENTRY).saturating_mul(FILTER_BITS_PER_ENTRY);
        Memtable {
            id,
            map: SkipMap::new(),
            filter: KeyFilter::new(bits),
            bytes: AtomicUsize::new(0),
            range_tombstones: parking_lot::RwLock::default(),
            has_range_tombstones: AtomicBool::new(false),
        }
    }

    /// The WAL segment number that backs this memtable.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Inserts one version.
    pub fn insert(&self, user_key: &[u8], seqno: SeqNo, kind: ValueKind, value: &[u8]) {
        debug_assert!(seqno <= MAX_SEQNO, "seqno {seqno} above MAX_SEQNO");
        self.bytes.fetch_add(user_key.len() + 8 + value.len() + ENTRY_OVERHEAD_BYTES, Ordering::Relaxed);
        self.filter.add(user_key);
        self.map.insert(MemKey::new(user_key, seqno, kind), value.to_vec());
    }

    /// Adds a range tombstone (one `delete_range` of a batch): never a write
    /// per key covered.
    pub fn add_range_tombstone(&self, tombstone: RangeTombstone) {
        self.add_range_tombstones([tombstone]);
    }

    /// Adds range tombstones (those of one batch at once). The memtable keeps
    /// them as fragmented sets of sizes falling by more than half from the
    /// oldest to the newest (the logarithmic method): the new ones form a set,
    /// merged with the newest sets while those are at most twice its size. A
    /// tombstone is therefore rebuilt into a set O(log n) times, a memtable of n
    /// of them holds O(log n) sets, and a lookup costs one binary search per set
    /// (measured need: one set rebuilt per add made 10,000 range deletes in one
    /// memtable cost O(n² log n)).
    pub fn add_range_tombstones(&self, tombstones: impl IntoIterator<Item = RangeTombstone>) {
        let added: Vec<RangeTombstone> = tombstones.into_iter().collect();
        if added.is_empty() {
            return;
        }
        let bytes: usize = added.iter().map(|t| t.start.len() + t.end.len() + 12 + ENTRY_OVERHEAD_BYTES).sum();
        debug_assert!(added.iter().all(|t| t.seqno <= MAX_SEQNO), "seqno above MAX_SEQNO");
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let mut slot = self.range_tombstones.write();
        let mut sets: Vec<Arc<RangeTombstones>> = slot.as_ref().clone();
        let mut merged = RangeTombstones::new(added);
        while let Some(newest) = sets.last().filter(|s| s.len() <= 2 * merged.len()) {
            merged = newest.with(merged.tombstones().iter().cloned());
            sets.pop();
        }
        sets.push(Arc::new(merged));
        *slot = Arc::new(sets);
        drop(slot);
        self.has_range_tombstones.store(true, Ordering::Release);
    }

    /// The range tombstones of this memtable, as the sets it keeps them in;
    /// `None` when it holds none.
    pub fn range_tombstones(&self) -> Option<Arc<Vec<Arc<RangeTombstones>>>> {
        if !self.has_range_tombstones.load(Ordering::Acquire) {
            return None;
        }
        Some(Arc::clone(&self.range_tombstones.read()))
    }

    /// Every range tombstone of this memtable, ascending by seqno.
    pub fn range_tombstone_list(&self) -> Vec<RangeTombstone> {
        let mut list: Vec<RangeTombstone> =
            self.range_tombstones().iter().flat_map(|sets| sets.iter()).flat_map(|s| s.tombstones().iter().cloned()).collect();
        list.sort_by_key(|t| t.seqno);
        list
    }

    /// The newest version of `user_key` with seqno <= `snapshot`, with its seqno.
    pub fn get(&self, user_key: &[u8], snapshot: SeqNo) -> Option<(SeqNo, ValueKind, Vec<u8>)> {
        if !self.filter.may_contain(user_key) {
            return None;
        }
        let seek = MemKey::new(user_key, snapshot.min(MAX_SEQNO), FIRST_KIND);
        let e = self.map.lower_bound(Bound::Included(&seek))?;
        let k = e.key();
        (k.user_key() == user_key).then(|| (k.seqno(), k.kind(), e.value().clone()))
    }

    /// Approximate memory used by the entries, in bytes.
    pub fn approximate_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the memtable holds an entry (a put or a delete; range
    /// tombstones aside): whether a flush of it writes a table.
    pub fn has_entries(&self) -> bool {
        !self.map.is_empty()
    }

    /// Whether the memtable holds no entry and no range tombstone.
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && !self.has_range_tombstones.load(Ordering::Acquire)
    }

    /// An iterator over every version in `range` (no seqno filtering), in `direction`.
    /// It sees entries inserted after its creation only if they sort after its position.
    pub fn iter(self: &Arc<Self>, range: KeyRange, direction: Direction) -> Box<dyn InternalIterator> {
        // Internal-key bounds equivalent to the user-key range.
        let lower = match range.start {
            Bound::Included(s) => Bound::Included(MemKey::new(&s, MAX_SEQNO, FIRST_KIND)),
            Bound::Excluded(s) => Bound::Excluded(MemKey::new(&s, 0, LAST_KIND)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let upper = match range.end {
            Bound::Included(e) => Bound::Included(MemKey::new(&e, 0, LAST_KIND)),
            Bound::Excluded(e) => Bound::Excluded(MemKey::new(&e, MAX_SEQNO, FIRST_KIND)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let cursor = MemtableCursor::new(self.clone(), |mem| MemtableWalk { range: mem.map.range((lower, upper)), current: None });
        Box::new(MemtableIter { cursor, direction, done: false })
    }
}

/// A cursor over part of a memtable's skiplist; the range owns its bounds.
type MemtableRange<'a> = crossbeam_skiplist::map::Range<'a, MemKey, (Bound<MemKey>, Bound<MemKey>), MemKey, Vec<u8>>;

/// A walk along the skiplist: the range cursor and the node it stands on (held,
/// so its key and value can be lent out until the next step).
struct MemtableWalk<'a> {
    range: MemtableRange<'a>,
    current: Option<crossbeam_skiplist::map::Entry<'a, MemKey, Vec<u8>>>,
}

self_cell::self_cell!(
    /// A memtable and a walk borrowing it, moved around together.
    struct MemtableCursor {
        owner: Arc<Memtable>,
        #[covariant]
        dependent: MemtableWalk,
    }
);

/// An iterator over a memtable, walking the skiplist in place.
struct MemtableIter {
    cursor: MemtableCursor,
    direction: Direction,
    /// Set at the end, so an entry inserted past it later is not returned after
    /// the iterator has already reported its end.
    done: bool,
}

impl InternalIterator for MemtableIter {
    fn advance(&mut self) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let direction = self.direction;
        let more = self.cursor.with_dependent_mut(|_, walk| {
            walk.current = match direction {
                Direction::Forward => walk.range.next(),
                Direction::Reverse => walk.range.next_back(),
            };
            walk.current.is_some()
        });
        self.done = !more;
        Ok(more)
    }

    fn current(&self) -> Option<EntryRef<'_>> {
        let e = self.cursor.borrow_dependent().current.as_ref()?;
        let k = e.key();
        Some(EntryRef { user_key: k.user_key(), seqno: k.seqno(), kind: k.kind(), value: e.value() })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::key::{Entry, InternalKey};
    use std::collections::BTreeMap;

    fn collect(mut it: Box<dyn InternalIterator>) -> Vec<Entry> {
        let mut out = Vec::new();
        while let Some(e) = it.next_entry().unwrap() {
            out.push(e);
        }
        out
    }

    /// Model: user key -> seqno -> (kind, value).
    type Model = BTreeMap<Vec<u8>, BTreeMap<SeqNo, (ValueKind, Vec<u8>)>>;

    fn model_get(m: &Model, k: &[u8], snap: SeqNo) -> Option<(SeqNo, ValueKind, Vec<u8>)> {
        let (s, (kind, v)) = m.get(k)?.range(..=snap).next_back()?;
        Some((*s, *kind, v.clone()))
    }

    fn filled() -> (Arc<Memtable>, Model) {
        let mt = Arc::new(Memtable::new(3));
        let mut model = Model::new();
        let mut seq = 1;
        // Interleaved writes over 200 keys, several versions each, some tombstones.
        for round in 0..5u64 {
            for i in (0..200u64).filter(|i| (i + round) % 3 != 0) {
                let key = format!("k{i:04}").into_bytes();
                let kind = if (i + round) % 7 == 0 { ValueKind::Delete } else { ValueKind::Put };
                let value = if kind == ValueKind::Delete { Vec::new() } else { format!("v{i}-{round}").into_bytes() };
                mt.insert(&key, seq, kind, &value);
                model.entry(key).or_default().insert(seq, (kind, value));
                seq += 1;
            }
        }
        (mt, model)
    }

    #[test]
    fn get_at_many_snapshots_matches_model() {
        let (mt, model) = filled();
        assert_eq!(mt.id(), 3);
        assert_eq!(mt.len(), model.values().map(|v| v.len()).sum::<usize>());
        assert!(mt.approximate_bytes() > mt.len() * ENTRY_OVERHEAD_BYTES);
        let max = mt.len() as u64 + 1;
        for snap in [0, 1, 2, 50, 199, 200, 333, 500, max, MAX_SEQNO, u64::MAX] {
            for i in 0..205u64 {
                let key = format!("k{i:04}").into_bytes();
                assert_eq!(mt.get(&key, snap), model_get(&model, &key, snap), "key {i} snapshot {snap}");
            }
        }
    }

    /// The key filter never hides a key, however far past its sizing the
    /// memtable grows, and still turns most absent keys away at its sizing.
    #[test]
    fn key_filter_never_hides_a_key() {
        let mt = Memtable::new(1);
        let n = 300_000u64;
        for i in 0..n {
            mt.insert(format!("present{i}").as_bytes(), i + 1, ValueKind::Put, b"v");
        }
        for i in 0..n {
            assert!(mt.get(format!("present{i}").as_bytes(), MAX_SEQNO).is_some(), "key {i}");
        }
        for i in 0..1000u64 {
            assert_eq!(mt.get(format!("absent{i}").as_bytes(), MAX_SEQNO), None);
        }
        let sized = Memtable::with_expected_bytes(2, 640_000);
        for i in 0..10_000u64 {
            sized.insert(format!("present{i}").as_bytes(), i + 1, ValueKind::Put, b"v");
        }
        let passed = (0..10_000u64).filter(|i| sized.filter.may_contain(format!("absent{i}").as_bytes())).count();
        assert!(passed < 300, "{passed} of 10000 absent keys passed a filter at its sizing");
    }

    #[test]
    fn iterators_match_model_in_both_directions_and_ranges() {
        let (mt, model) = filled();
        let flat: Vec<(Vec<u8>, SeqNo)> = model
            .iter()
            .flat_map(|(k, vs)| vs.keys().rev().map(move |s| (k.clone(), *s)))
            .collect();
        let k = |i: u32| format!("k{i:04}").into_bytes();
        let ranges = [
            KeyRange::all(),
            KeyRange { start: Bound::Included(k(10)), end: Bound::Excluded(k(20)) },
            KeyRange { start: Bound::Excluded(k(10)), end: Bound::Included(k(20)) },
            KeyRange { start: Bound::Included(k(150)), end: Bound::Unbounded },
            KeyRange { start: Bound::Unbounded, end: Bound::Included(k(0)) },
            KeyRange { start: Bound::Included(k(300)), end: Bound::Unbounded },
        ];
        for range in ranges {
            let want: Vec<_> = flat.iter().filter(|(uk, _)| range.contains(uk)).cloned().collect();
            let fwd: Vec<_> = collect(mt.iter(range.clone(), Direction::Forward)).into_iter().map(|e| (e.key.user_key, e.key.seqno)).collect();
            assert_eq!(fwd, want, "{range:?}");
            let mut rev: Vec<_> = collect(mt.iter(range.clone(), Direction::Reverse)).into_iter().map(|e| (e.key.user_key, e.key.seqno)).collect();
            rev.reverse();
            assert_eq!(rev, want, "{range:?} reverse");
        }
        // Values and kinds come through too.
        for e in collect(mt.iter(KeyRange::all(), Direction::Forward)) {
            let (kind, v) = &model[&e.key.user_key][&e.key.seqno];
            assert_eq!((&e.key.kind, &e.value), (kind, v));
        }
    }

    #[test]
    fn iterators_stay_ended_after_their_end() {
        for direction in [Direction::Forward, Direction::Reverse] {
            let mt = Arc::new(Memtable::new(1));
            mt.insert(b"b", 1, ValueKind::Put, b"1");
            let mut it = mt.iter(KeyRange::all(), direction);
            assert_eq!(it.next_entry().unwrap().unwrap().key.user_key, b"b");
            assert!(it.next_entry().unwrap().is_none());
            // A key past the end in this direction, inserted after the end was reported.
            let late: &[u8] = if direction == Direction::Forward { b"c" } else { b"a" };
            mt.insert(late, 2, ValueKind::Put, b"2");
            assert!(it.next_entry().unwrap().is_none(), "{direction:?}");
        }
    }

    #[test]
    fn concurrent_readers_with_one_writer() {
        let mt = Arc::new(Memtable::new(1));
        let writes = 20_000u64;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Like the engine's visible seqno: published after the insert completes.
        let published = Arc::new(std::sync::atomic::AtomicU64::new(0));
        // Each write sets key (seq % 100) to the value "seq"; a reader at snapshot s
        // must see, for every key, exactly the last write <= s to it.
        let readers: Vec<_> = (0..3)
            .map(|r| {
                let mt = mt.clone();
                let stop = stop.clone();
                let published = published.clone();
                std::thread::spawn(move || {
                    let mut checks = 0u64;
                    while !stop.load(Ordering::Relaxed) || checks == 0 {
                        let snap = published.load(Ordering::Acquire);
                        for key in 0..100u64 {
                            let got = mt.get(format!("key{key:03}").as_bytes(), snap);
                            let expect = (1..=snap).rev().find(|s| s % 100 == key);
                            assert_eq!(got.map(|g| g.0), expect, "reader {r} snapshot {snap} key {key}");
                            if let (Some(g), Some(s)) = (mt.get(format!("key{key:03}").as_bytes(), snap), expect) {
                                assert_eq!(g.2, s.to_string().into_bytes());
                            }
                        }
                        // A forward scan is sorted and every entry it returns is complete.
                        let mut it = mt.iter(KeyRange::all(), Direction::Forward);
                        let mut prev: Option<InternalKey> = None;
                        while let Some(e) = it.next_entry().unwrap() {
                            assert_eq!(e.value, e.key.seqno.to_string().into_bytes());
                            if let Some(p) = &prev {
                                assert!(p < &e.key);
                            }
                            prev = Some(e.key);
                        }
                        checks += 1;
                    }
                    checks
                })
            })
            .collect();
        for seq in 1..=writes {
            mt.insert(format!("key{:03}", seq % 100).as_bytes(), seq, ValueKind::Put, seq.to_string().as_bytes());
            published.store(seq, Ordering::Release);
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        assert_eq!(mt.len() as u64, writes);
    }

    #[test]
    fn range_tombstones_stay_in_few_sets_and_all_are_found() {
        use crate::range_del::RangeTombstone;
        let mem = Memtable::new(1);
        assert!(mem.is_empty() && mem.range_tombstones().is_none());
        let t = |i: u64| RangeTombstone { keyspace: 0, start: format!("k{i:05}").into_bytes(), end: format!("k{i:05}~").into_bytes(), seqno: i + 1 };
        for i in 0..1000 {
            mem.add_range_tombstone(t(i));
        }
        mem.add_range_tombstones((1000..1100).map(t));
        assert!(!mem.is_empty() && !mem.has_entries());
        let sets = mem.range_tombstones().unwrap();
        assert!(sets.len() <= 12, "{} sets for 1,100 tombstones", sets.len());
        assert!(sets.windows(2).all(|w| w[0].len() > 2 * w[1].len()), "sizes fall by more than half");
        assert_eq!(mem.range_tombstone_list(), (0..1100).map(t).collect::<Vec<_>>());
        for i in [0, 1, 517, 1099] {
            let hit: Vec<_> = sets.iter().filter_map(|s| s.newest_covering(0, format!("k{i:05}x").as_bytes(), MAX_SEQNO)).collect();
            assert_eq!(hit, vec![i + 1]);
        }
    }
}
