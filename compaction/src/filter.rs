//! Compaction filters: an application's hook that sees entries as a compaction
//! rewrites them and keeps, removes or rewrites each one (TTL, time-series
//! retention). The compaction calls [`EntryFilter::apply`] once per merged
//! entry, before the drop rules of [`crate::retain`] decide what is written.
//!
//! Which entries are offered, and why that is snapshot-safe:
//! - only the newest version of each user key among the compaction's inputs,
//!   and only a full value (`ValueKind::Put`): tombstones, merge operands and
//!   the reserved kinds are never offered;
//! - only when its seqno is above every live snapshot of the compaction (the
//!   `snapshots` it runs with). A snapshot reads a version only at or below its
//!   own seqno, so no snapshot the compaction knows of can read an offered
//!   entry. A snapshot taken while the compaction runs can (its seqno is at
//!   least every input's); [`FilterReport::min_changed_seqno`] tells the caller
//!   whether one of those could see a change, and the caller discards the
//!   output in that case (the engine does, `engine/src/db/filters.rs`).
//!
//! Removing writes a tombstone, never a gap: the entry becomes a `Delete` at
//! its own seqno (no snapshot can see that seqno, by the rule above), so an
//! older version of the key below it, in this compaction or in a deeper level,
//! stays hidden from every reader that saw the removed value. The drop rules
//! then treat it as any tombstone: at the bottommost level with nothing older
//! that a snapshot can read, the tombstone and every older version go
//! entirely; elsewhere the tombstone stays until a compaction reaches the
//! bottom. A rewritten value keeps its key, seqno and kind.
//!
//! A filter's error is a value: the entry is kept unchanged (keeping is always
//! safe), the compaction carries on, and the error is counted in the report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use index::{Entry, HookError, SeqNo, ValueKind};

/// Largest value a filter may rewrite to: the SSTable value limit
/// (`index/FORMAT.md`, "Limits"). A larger rewrite counts as an error.
const MAX_REWRITTEN_VALUE_BYTES: usize = 64 << 20;

/// What to do with one offered entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterDecision {
    /// Keep the entry as it is.
    Keep,
    /// Remove the value: the key reads as deleted from then on.
    Remove,
    /// Keep the key with this value instead.
    ChangeValue(Vec<u8>),
}

/// One entry offered to a filter.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct FilterEntry<'a> {
    /// The user key.
    pub key: &'a [u8],
    /// The value.
    pub value: &'a [u8],
    /// The entry's sequence number.
    pub seqno: SeqNo,
    /// The level the compaction writes to.
    pub level: usize,
}

/// A per-keyspace hook that sees entries during compaction and keeps, removes
/// or rewrites each one. Called from compaction threads, possibly several at
/// once (a compaction cut into parts), so it must be `Send + Sync`.
///
/// Offered, in compaction order, only the newest version of each user key
/// among the compaction's inputs, only when it holds a full value (a `Put`),
/// and only when its seqno is above every snapshot the compaction knows of, so
/// no snapshot can read what it changes. Removing writes a tombstone at the
/// entry's seqno (older versions stay hidden; at the bottommost level the
/// tombstone and every older version are dropped). Filters run in
/// compactions only, never in flushes or ingests.
pub trait CompactionFilter: Send + Sync {
    /// Decides what happens to `entry`. An error keeps the entry unchanged.
    fn filter(&self, entry: &FilterEntry<'_>) -> Result<FilterDecision, HookError>;
}

/// What a filter did during one compaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FilterReport {
    /// Entries offered to the filter.
    pub offered: u64,
    /// Entries it removed (written as tombstones, or dropped at the bottom).
    pub removed: u64,
    /// Entries whose value it rewrote.
    pub changed: u64,
    /// Entries for which it returned an error (kept unchanged).
    pub errors: u64,
    /// The first error's message.
    pub first_error: Option<String>,
    /// The smallest seqno of an entry removed or rewritten: a snapshot at or
    /// above it, taken after the compaction listed its snapshots, would see
    /// the change once the output is installed.
    pub min_changed_seqno: Option<SeqNo>,
}

/// The report, shared by the parts of one compaction (each on its own thread).
#[derive(Debug)]
pub(crate) struct FilterTally {
    offered: AtomicU64,
    removed: AtomicU64,
    changed: AtomicU64,
    errors: AtomicU64,
    min_changed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Default for FilterTally {
    fn default() -> Self {
        FilterTally {
            offered: AtomicU64::new(0),
            removed: AtomicU64::new(0),
            changed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            min_changed: AtomicU64::new(u64::MAX),
            first_error: Mutex::new(None),
        }
    }
}

impl FilterTally {
    fn error(&self, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        first.get_or_insert(message);
    }

    pub(crate) fn report(&self) -> FilterReport {
        let min = self.min_changed.load(Ordering::Relaxed);
        FilterReport {
            offered: self.offered.load(Ordering::Relaxed),
            removed: self.removed.load(Ordering::Relaxed),
            changed: self.changed.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            first_error: self.first_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
            min_changed_seqno: (min != u64::MAX).then_some(min),
        }
    }
}

/// Applies a filter to the entries of one compaction part, in compaction order
/// (user key ascending, newest version first).
pub(crate) struct EntryFilter<'a> {
    filter: Option<&'a dyn CompactionFilter>,
    /// The newest live snapshot (0 without any): entries at or below it are never offered.
    horizon: SeqNo,
    level: usize,
    tally: &'a FilterTally,
    /// The user key of the previous entry, when `started`.
    last_key: Vec<u8>,
    started: bool,
}

impl<'a> EntryFilter<'a> {
    /// A filter for a compaction writing into `level` under the live `snapshots`.
    pub(crate) fn new(filter: Option<&'a dyn CompactionFilter>, snapshots: &[SeqNo], level: usize, tally: &'a FilterTally) -> Self {
        let horizon = snapshots.iter().copied().max().unwrap_or(0);
        EntryFilter { filter, horizon, level, tally, last_key: Vec::new(), started: false }
    }

    /// Offers `entry` to the filter if the rules of this module allow it, and
    /// applies the decision to it in place.
    pub(crate) fn apply(&mut self, entry: &mut Entry) {
        let Some(filter) = self.filter else { return };
        let newest = !self.started || self.last_key != entry.key.user_key;
        if newest {
            self.started = true;
            self.last_key.clear();
            self.last_key.extend_from_slice(&entry.key.user_key);
        }
        if !newest || entry.key.kind != ValueKind::Put || entry.key.seqno <= self.horizon {
            return;
        }
        self.tally.offered.fetch_add(1, Ordering::Relaxed);
        let offered = FilterEntry { key: &entry.key.user_key, value: &entry.value, seqno: entry.key.seqno, level: self.level };
        match filter.filter(&offered) {
            Ok(FilterDecision::Keep) => return,
            Ok(FilterDecision::Remove) => {
                entry.key.kind = ValueKind::Delete;
                entry.value.clear();
                self.tally.removed.fetch_add(1, Ordering::Relaxed);
            }
            Ok(FilterDecision::ChangeValue(value)) if value.len() > MAX_REWRITTEN_VALUE_BYTES => {
                self.tally.error(format!("rewritten value of {} bytes exceeds the table limit of {MAX_REWRITTEN_VALUE_BYTES}", value.len()));
                return;
            }
            Ok(FilterDecision::ChangeValue(value)) => {
                entry.value = value;
                self.tally.changed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.tally.error(e.0);
                return;
            }
        }
        self.tally.min_changed.fetch_min(entry.key.seqno, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use index::{InternalKey, MAX_SEQNO};

    /// Removes values starting with "old", doubles values starting with "x", fails on "bad".
    struct Rules;

    impl CompactionFilter for Rules {
        fn filter(&self, e: &FilterEntry<'_>) -> Result<FilterDecision, HookError> {
            Ok(match e.value {
                v if v.starts_with(b"old") => FilterDecision::Remove,
                v if v.starts_with(b"x") => FilterDecision::ChangeValue([v, v].concat()),
                v if v.starts_with(b"bad") => return Err(HookError::new("cannot parse")),
                _ => FilterDecision::Keep,
            })
        }
    }

    fn entry(key: &str, seqno: SeqNo, kind: ValueKind, value: &str) -> Entry {
        Entry { key: InternalKey::new(key.as_bytes().to_vec(), seqno, kind), value: value.as_bytes().to_vec() }
    }

    fn run(entries: Vec<Entry>, snapshots: &[SeqNo]) -> (Vec<Entry>, FilterReport) {
        let tally = FilterTally::default();
        let mut f = EntryFilter::new(Some(&Rules), snapshots, 1, &tally);
        let out = entries
            .into_iter()
            .map(|mut e| {
                f.apply(&mut e);
                e
            })
            .collect();
        (out, tally.report())
    }

    #[test]
    fn only_the_newest_put_above_every_snapshot_is_offered() {
        let (out, report) = run(
            vec![
                entry("a", 9, ValueKind::Put, "old a"),
                entry("a", 5, ValueKind::Put, "old a5"),
                entry("b", 4, ValueKind::Put, "old b"),
                entry("c", 8, ValueKind::Delete, ""),
                entry("c", 7, ValueKind::Put, "old c"),
                entry("d", 8, ValueKind::Merge, "old operand"),
                entry("e", 10, ValueKind::Put, "x1"),
            ],
            &[4],
        );
        assert_eq!(report.offered, 2, "a@9 and e@10; b@4 is at the snapshot, c and d are not values");
        assert_eq!(out[0], entry("a", 9, ValueKind::Delete, ""));
        assert_eq!(out[1], entry("a", 5, ValueKind::Put, "old a5"));
        assert_eq!(out[2], entry("b", 4, ValueKind::Put, "old b"));
        assert_eq!(out[4], entry("c", 7, ValueKind::Put, "old c"));
        assert_eq!(out[5], entry("d", 8, ValueKind::Merge, "old operand"));
        assert_eq!(out[6], entry("e", 10, ValueKind::Put, "x1x1"));
        assert_eq!((report.removed, report.changed, report.min_changed_seqno), (1, 1, Some(9)));
    }

    #[test]
    fn an_error_keeps_the_entry_and_is_counted() {
        let (out, report) = run(vec![entry("a", 3, ValueKind::Put, "bad"), entry("b", 2, ValueKind::Put, "bad too")], &[]);
        assert_eq!(out[0], entry("a", 3, ValueKind::Put, "bad"));
        assert_eq!(report.errors, 2);
        assert_eq!(report.first_error.as_deref(), Some("cannot parse"));
        assert_eq!(report.min_changed_seqno, None);
    }

    #[test]
    fn without_a_filter_nothing_changes() {
        let tally = FilterTally::default();
        let mut f = EntryFilter::new(None, &[], 1, &tally);
        let mut e = entry("a", 3, ValueKind::Put, "old");
        f.apply(&mut e);
        assert_eq!(e, entry("a", 3, ValueKind::Put, "old"));
        assert_eq!(tally.report(), FilterReport::default());
    }

    /// Removes values whose last byte is even, rewrites those divisible by 3.
    struct ByLastByte;

    impl CompactionFilter for ByLastByte {
        fn filter(&self, e: &FilterEntry<'_>) -> Result<FilterDecision, HookError> {
            let last = e.value.last().copied().unwrap_or(0);
            Ok(if last % 2 == 0 {
                FilterDecision::Remove
            } else if last % 3 == 0 {
                FilterDecision::ChangeValue([e.value, b"*"].concat())
            } else {
                FilterDecision::Keep
            })
        }
    }

    /// The value a reader at `snapshot` sees for `key` in `entries` (newest first per key).
    fn read(entries: &[Entry], key: &[u8], snapshot: SeqNo) -> Option<Vec<u8>> {
        let e = entries.iter().find(|e| e.key.user_key == key && e.key.seqno <= snapshot)?;
        (e.key.kind == ValueKind::Put).then(|| e.value.clone())
    }

    /// Random histories of puts and deletes under random snapshots, filtered
    /// then passed through the drop rules, with older data below (off the
    /// bottom) or none (at it): every snapshot reads exactly what it read
    /// before; the latest readers see the filter's decision on the newest
    /// value where it was offered and the old read elsewhere; no removed value
    /// lets an older version through.
    #[test]
    fn random_histories_keep_snapshots_and_hide_older_versions() {
        use rand::{Rng, SeedableRng};
        use crate::retain::Retainer;
        for seed in 0..500u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut entries = Vec::new();
            let mut seqno = 1;
            let keys: Vec<Vec<u8>> = (0..4).map(|i| vec![b'k', i]).collect();
            for key in &keys {
                let mut versions = Vec::new();
                for _ in 0..rng.gen_range(0..6) {
                    let kind = if rng.gen_bool(0.25) { ValueKind::Delete } else { ValueKind::Put };
                    let value = if kind == ValueKind::Put { vec![b'v', rng.gen()] } else { Vec::new() };
                    versions.push(Entry { key: InternalKey::new(key.clone(), seqno, kind), value });
                    seqno += 1;
                }
                versions.reverse();
                entries.extend(versions);
            }
            let snapshots: Vec<SeqNo> = (0..rng.gen_range(0..3)).map(|_| rng.gen_range(1..seqno + 1)).collect();
            let bottommost = rng.gen_bool(0.5);
            // Off the bottom, each key has an older version in a deeper level.
            let deep: Vec<Entry> = if bottommost {
                Vec::new()
            } else {
                keys.iter().map(|k| Entry { key: InternalKey::new(k.clone(), 0, ValueKind::Put), value: b"deep".to_vec() }).collect()
            };
            let tally = FilterTally::default();
            let mut filter = EntryFilter::new(Some(&ByLastByte), &snapshots, 1, &tally);
            let mut retainer = Retainer::new(&snapshots, bottommost);
            let mut kept = Vec::new();
            for e in &entries {
                let mut e = e.clone();
                filter.apply(&mut e);
                if retainer.keep(&e.key) {
                    kept.push(e);
                }
            }
            let merged = |list: &[Entry]| -> Vec<Entry> {
                let mut all: Vec<Entry> = list.iter().chain(&deep).cloned().collect();
                all.sort_by(|a, b| a.key.user_key.cmp(&b.key.user_key).then(b.key.seqno.cmp(&a.key.seqno)));
                all
            };
            let (before, after) = (merged(&entries), merged(&kept));
            let horizon = snapshots.iter().copied().max().unwrap_or(0);
            for key in &keys {
                for &s in &snapshots {
                    assert_eq!(read(&after, key, s), read(&before, key, s), "seed {seed} key {key:?} snapshot {s}");
                }
                let newest = entries.iter().find(|e| &e.key.user_key == key);
                let expected = match newest {
                    Some(e) if e.key.kind == ValueKind::Put && e.key.seqno > horizon => match ByLastByte.filter(&FilterEntry {
                        key,
                        value: &e.value,
                        seqno: e.key.seqno,
                        level: 1,
                    }) {
                        Ok(FilterDecision::Remove) => None,
                        Ok(FilterDecision::ChangeValue(v)) => Some(v),
                        _ => Some(e.value.clone()),
                    },
                    _ => read(&before, key, MAX_SEQNO),
                };
                assert_eq!(read(&after, key, MAX_SEQNO), expected, "seed {seed} key {key:?} latest");
            }
        }
    }
}
