//! Cutting one compaction into parts (subcompactions) that run on threads of
//! their own: disjoint user-key ranges holding similar amounts of input. Each part
//! merges its range of every input, applies the drop rules and writes its own
//! output tables; laid end to end, the parts' outputs hold exactly what one
//! thread would have written, only cut into tables at other places.
//!
//! Why that is the same result: every cut is a user key, and a part's range holds
//! all or none of a user key's versions (ranges are `(previous cut, cut]`). The
//! drop rules of [`crate::retain`] look at one user key's versions at a time, so
//! each part keeps exactly what the whole would keep in its range. The parts'
//! ranges are ascending and disjoint, so their outputs are too, which keeps the
//! output level sorted and free of overlaps.
//!
//! Where to cut: every input table offers anchors, user keys with the bytes of
//! input up to them since the previous anchor. A large table offers keys from its
//! block index (no data read); a small one only its largest key and its size. The
//! anchors of all inputs, sorted, give a running total of input bytes over the
//! key space, and the cuts are where it crosses 1/k, 2/k, ... of the whole.
//!
//! A flush is cut the same way, one level-0 table per part; a memtable has no
//! index to take anchors from, so they come from the store's tables within the
//! memtable's key range, on the bet that new keys fall where old ones lie. A
//! bad bet costs balance (one part does most of the work), never correctness.

use std::ops::Bound;
use std::sync::Arc;

use index::{Direction, KeyRange, Memtable};

use crate::compact::{Compaction, CompactionContext};
use crate::edit::FileMeta;
use crate::error::Result;
use crate::version::overlaps_range;

/// Most parts one compaction is cut into, whatever the caller asks for.
pub const MAX_SUBCOMPACTIONS: usize = 16;

/// Anchors read from the block index of one large input table.
const ANCHORS_PER_TABLE: usize = 128;

/// The user-key ranges the parts of `c` cover, ascending and disjoint, together
/// covering every key. At most `c.max_subcompactions` parts, and at most one per
/// `target_file_size_bytes` of input: each part ends in one output table
/// smaller than the target, and below that size a thread is not worth starting.
pub(crate) fn plan(ctx: &CompactionContext, c: &Compaction) -> Result<Vec<KeyRange>> {
    let files: Vec<&Arc<FileMeta>> = c.inputs.iter().chain(&c.next_inputs).collect();
    let total: u64 = files.iter().map(|f| f.size).sum();
    let by_size = total / ctx.options.target_file_size_bytes.max(1);
    let parts = c.max_subcompactions.clamp(1, MAX_SUBCOMPACTIONS).min(usize::try_from(by_size).unwrap_or(usize::MAX));
    if parts <= 1 {
        return Ok(vec![KeyRange::all()]);
    }
    Ok(ranges(cuts(anchors(ctx, &files, parts), parts)))
}

/// The user-key ranges the parts of a flush of `memtable` cover (see
/// [`crate::flush_memtable_in_parts`]): at most `max_parts`, and at most one
/// per eighth of `target_file_size_bytes` in the memtable, cut where the tables
/// of `like` that meet the memtable's key range hold similar shares of bytes.
pub(crate) fn plan_flush(ctx: &CompactionContext, memtable: &Arc<Memtable>, like: &[Arc<FileMeta>], max_parts: usize) -> Result<Vec<KeyRange>> {
    let min_part = (ctx.options.target_file_size_bytes / 8).max(1);
    let by_size = u64::try_from(memtable.approximate_bytes()).unwrap_or(u64::MAX) / min_part;
    let parts = max_parts.clamp(1, MAX_SUBCOMPACTIONS).min(usize::try_from(by_size).unwrap_or(usize::MAX));
    if parts <= 1 {
        return Ok(vec![KeyRange::all()]);
    }
    let bounds = (memtable.iter(KeyRange::all(), Direction::Forward).next_entry()?, memtable.iter(KeyRange::all(), Direction::Reverse).next_entry()?);
    let (Some(first), Some(last)) = bounds else { return Ok(vec![KeyRange::all()]) };
    let span = KeyRange { start: Bound::Included(first.key.user_key), end: Bound::Included(last.key.user_key) };
    let files: Vec<&Arc<FileMeta>> = like.iter().filter(|f| overlaps_range(f, &span)).collect();
    let anchors = anchors(ctx, &files, parts).into_iter().filter(|(key, _)| span.contains(key)).collect();
    Ok(ranges(cuts(anchors, parts)))
}

/// The anchors of `files` for a cut into `parts`: a large table's keys from its
/// block index, a small one's largest key (tables smaller than an eighth of a
/// part cannot skew a cut by much). A table that cannot be opened offers its
/// largest key too: choosing cuts is no reason to fail, and a compaction that
/// reads the table reports the error then.
fn anchors(ctx: &CompactionContext, files: &[&Arc<FileMeta>], parts: usize) -> Vec<(Vec<u8>, u64)> {
    let total: u64 = files.iter().map(|f| f.size).sum();
    let small = total / (parts as u64 * 8);
    let mut anchors: Vec<(Vec<u8>, u64)> = Vec::new();
    for f in files {
        match (f.size > small).then(|| ctx.tables.get(f.number).ok()).flatten() {
            Some(reader) => anchors.extend(reader.key_anchors(ANCHORS_PER_TABLE)),
            None => anchors.push((f.largest.user_key.clone(), f.size)),
        }
    }
    anchors
}

/// Up to `parts - 1` ascending user keys that cut the anchors' bytes into
/// `parts` shares of similar size. No cut at the largest anchor: nothing would
/// lie after it.
pub(crate) fn cuts(mut anchors: Vec<(Vec<u8>, u64)>, parts: usize) -> Vec<Vec<u8>> {
    anchors.sort_by(|a, b| a.0.cmp(&b.0));
    let total: u128 = anchors.iter().map(|(_, b)| u128::from(*b)).sum();
    let Some(last) = anchors.last().map(|(k, _)| k.clone()) else { return Vec::new() };
    let mut cuts: Vec<Vec<u8>> = Vec::with_capacity(parts.saturating_sub(1));
    let mut running: u128 = 0;
    let mut next = 1u128;
    for (key, bytes) in anchors {
        running += u128::from(bytes);
        // The share boundary `next / parts` of the total, crossed at this anchor.
        if next < parts as u128 && running * parts as u128 >= total * next {
            while next < parts as u128 && running * parts as u128 >= total * next {
                next += 1;
            }
            if key < last && !matches!(cuts.last(), Some(c) if *c >= key) {
                cuts.push(key);
            }
        }
    }
    cuts
}

/// The ranges between `cuts`: `(.., c1]`, `(c1, c2]`, ..., `(c_last, ..)`.
fn ranges(cuts: Vec<Vec<u8>>) -> Vec<KeyRange> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = Bound::Unbounded;
    for cut in cuts {
        out.push(KeyRange { start, end: Bound::Included(cut.clone()) });
        start = Bound::Excluded(cut);
    }
    out.push(KeyRange { start, end: Bound::Unbounded });
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn anchors(list: &[(&str, u64)]) -> Vec<(Vec<u8>, u64)> {
        list.iter().map(|(k, b)| (k.as_bytes().to_vec(), *b)).collect()
    }

    fn strings(cuts: &[Vec<u8>]) -> Vec<&str> {
        cuts.iter().map(|c| std::str::from_utf8(c).unwrap()).collect()
    }

    #[test]
    fn cuts_split_the_bytes_evenly() {
        let a = anchors(&[("b", 10), ("d", 10), ("f", 10), ("h", 10)]);
        assert_eq!(strings(&cuts(a.clone(), 2)), ["d"]);
        assert_eq!(strings(&cuts(a.clone(), 4)), ["b", "d", "f"]);
        assert!(cuts(a.clone(), 1).is_empty());
        // More parts than anchors: at most one cut per anchor, none at the last.
        assert_eq!(strings(&cuts(a, 16)), ["b", "d", "f"]);
    }

    #[test]
    fn anchors_of_several_tables_interleave() {
        // An L0 table over a..z and a second one over m..z: the keys after p
        // hold half of the bytes.
        let a = anchors(&[("h", 10), ("p", 10), ("z", 10), ("p", 10), ("v", 10), ("z", 10)]);
        assert_eq!(strings(&cuts(a.clone(), 2)), ["p"]);
        assert_eq!(strings(&cuts(a, 3)), ["p", "v"]);
    }

    #[test]
    fn skewed_and_degenerate_anchors() {
        // One anchor holds almost everything: cuts cannot split it.
        let a = anchors(&[("a", 1), ("b", 1000), ("c", 1)]);
        assert_eq!(strings(&cuts(a, 4)), ["b"]);
        assert!(cuts(Vec::new(), 4).is_empty());
        assert!(cuts(anchors(&[("a", 5)]), 4).is_empty(), "no cut at the largest key");
        assert!(cuts(anchors(&[("a", 0), ("b", 0)]), 2).len() <= 1, "zero bytes");
    }

    #[test]
    fn ranges_cover_every_key_once() {
        let r = ranges(vec![b"c".to_vec(), b"f".to_vec()]);
        assert_eq!(r.len(), 3);
        for key in ["", "a", "c", "c\0", "d", "f", "g", "zzz"] {
            let hits = r.iter().filter(|range| range.contains(key.as_bytes())).count();
            assert_eq!(hits, 1, "{key:?}");
        }
        assert!(r[0].contains(b"c") && r[1].contains(b"f") && r[2].contains(b"f\0"));
        assert_eq!(ranges(Vec::new()).len(), 1);
    }
}
