//! Choosing what to compact: a score per level (L0 by table count, deeper
//! levels by bytes against a target that grows by a fixed ratio per level), one
//! table at a time below L0 rotating through the level's key space, plus the
//! overlapping tables of the next level.

use std::sync::Arc;

use crate::compact::{Compaction, CompactionOptions};
use crate::edit::FileMeta;
use crate::version::Version;

/// The user-key range [min smallest, max largest] covered by `files`.
fn user_range<'a>(files: impl IntoIterator<Item = &'a Arc<FileMeta>>) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut range: Option<(Vec<u8>, Vec<u8>)> = None;
    for f in files {
        let (lo, hi) = (&f.smallest.user_key, &f.largest.user_key);
        range = Some(match range {
            None => (lo.clone(), hi.clone()),
            Some((a, b)) => (if lo < &a { lo.clone() } else { a }, if hi > &b { hi.clone() } else { b }),
        });
    }
    range
}

/// Builds the compaction of `inputs` out of `level`: adds the overlapping tables
/// of `level + 1` and decides whether the output is bottommost.
fn complete(version: &Version, level: usize, inputs: Vec<Arc<FileMeta>>) -> Option<Compaction> {
    let (lo, hi) = user_range(&inputs)?;
    let next_inputs = version.overlapping_files(level + 1, Some(&lo), Some(&hi));
    let (lo, hi) = user_range(inputs.iter().chain(&next_inputs))?;
    let bottommost = (level + 2..version.num_levels()).all(|l| version.overlapping_files(l, Some(&lo), Some(&hi)).is_empty());
    Some(Compaction { level, inputs, next_inputs, bottommost, max_subcompactions: 1, keyspace: version.keyspace_id() })
}

/// Level-0 tables overlap and are ordered by age, so a compaction taking one of
/// them must take every one it overlaps, transitively; otherwise an older table
/// left behind would shadow newer data moved below it.
fn expand_level0(version: &Version, mut inputs: Vec<Arc<FileMeta>>) -> Vec<Arc<FileMeta>> {
    loop {
        let Some((lo, hi)) = user_range(&inputs) else { return inputs };
        let grown = version.overlapping_files(0, Some(&lo), Some(&hi));
        if grown.len() == inputs.len() {
            return grown;
        }
        inputs = grown;
    }
}

/// The most urgent compaction for `version`, if any level of any keyspace is
/// over its target.
///
/// Scores: L0 = table count / `l0_compaction_trigger`; Ln = level bytes / target,
/// each keyspace's levels scored on their own. The highest score of at least 1
/// wins (the shallower level, then the default keyspace and lower ids, on a
/// tie). The last level is never an input. The compaction's inputs and outputs
/// are all in the keyspace of the level it picked.
pub fn pick_compaction(version: &Version, options: &CompactionOptions) -> Option<Compaction> {
    let mut best: Option<(f64, usize, &Version)> = None;
    for tree in version.all_keyspace_levels() {
        if let Some((score, level)) = best_level(tree, options) {
            if !matches!(best, Some((s, _, _)) if score <= s) {
                best = Some((score, level, tree));
            }
        }
    }
    let (_, level, tree) = best?;
    pick_at(tree, level)
}

/// The level of `version`'s own levels most over its target, with its score.
fn best_level(version: &Version, options: &CompactionOptions) -> Option<(f64, usize)> {
    let num_levels = version.num_levels();
    let mut best: Option<(f64, usize)> = None;
    for level in 0..num_levels.saturating_sub(1) {
        let score = if level == 0 {
            version.level_files(0).len() as f64 / options.l0_compaction_trigger.max(1) as f64
        } else {
            version.level_bytes(level) as f64 / options.level_target_bytes(level) as f64
        };
        if score >= 1.0 && !matches!(best, Some((s, _)) if score <= s) {
            best = Some((score, level));
        }
    }
    best
}

/// The compaction out of `level` of `version`'s own levels.
fn pick_at(version: &Version, level: usize) -> Option<Compaction> {
    if level == 0 {
        return complete(version, 0, version.level_files(0).to_vec());
    }
    let files = version.level_files(level);
    // Rotate: the first table after the previous compaction's largest key, wrapping around.
    let pick = version
        .compact_pointer(level)
        .and_then(|ptr| files.iter().find(|f| f.smallest.user_key.as_slice() > ptr))
        .or_else(|| files.first())?;
    complete(version, level, vec![Arc::clone(pick)])
}

/// A compaction of the tables of `level` overlapping [`start`, `end`] (None =
/// unbounded), in `version`'s own levels (for another keyspace, pass its levels:
/// [`Version::keyspace_levels`]).
///
/// `None` when nothing in `level` overlaps or `level` is the last level.
pub fn pick_range_compaction(version: &Version, level: usize, start: Option<&[u8]>, end: Option<&[u8]>) -> Option<Compaction> {
    if level + 1 >= version.num_levels() {
        return None;
    }
    let mut inputs = version.overlapping_files(level, start, end);
    if inputs.is_empty() {
        return None;
    }
    if level == 0 {
        inputs = expand_level0(version, inputs);
    }
    complete(version, level, inputs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::edit::tests::meta;
    use crate::edit::VersionEdit;
    use index::{SeqNo, TableOptions};

    fn sized(number: u64, lo: &str, hi: &str, size: u64, max_seqno: SeqNo) -> FileMeta {
        let mut m = meta(number, lo, hi);
        m.size = size;
        m.max_seqno = max_seqno;
        m.min_seqno = max_seqno.saturating_sub(5);
        m
    }

    fn version(files: Vec<(usize, FileMeta)>) -> Version {
        Version::empty(4).apply(&VersionEdit { added: files, ..Default::default() }).unwrap()
    }

    fn options() -> CompactionOptions {
        CompactionOptions { l0_compaction_trigger: 2, level_base_bytes: 100, level_size_multiplier: 10, target_file_size_bytes: 50, num_levels: 4, table: TableOptions::default() }
    }

    fn numbers(files: &[Arc<FileMeta>]) -> Vec<u64> {
        let mut v: Vec<u64> = files.iter().map(|f| f.number).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn targets_grow_by_the_multiplier() {
        let o = options();
        assert_eq!(o.level_target_bytes(1), 100);
        assert_eq!(o.level_target_bytes(2), 1000);
        assert_eq!(o.level_target_bytes(3), 10_000);
        assert_eq!(CompactionOptions { level_size_multiplier: u64::MAX, ..o }.level_target_bytes(9), u64::MAX);
    }

    #[test]
    fn each_keyspace_is_scored_on_its_own_levels_and_its_compaction_stays_in_it() {
        use crate::keyspace::KeyspaceMeta;
        let ks = |id: u32| KeyspaceMeta { id, name: format!("k{id}"), options: Vec::new() };
        let inks = |id: u32, m: FileMeta| FileMeta { keyspace: id, ..m };
        // Keyspace 2's L1 is over its target (score 3); the default keyspace's L0
        // has one table (score 0.5), keyspace 1's two (score 1). Together they
        // would be three L0 tables, but scores never mix keyspaces.
        let v = Version::empty(4)
            .apply(&VersionEdit {
                created_keyspaces: vec![ks(1), ks(2)],
                added: vec![
                    (0, sized(1, "a", "z", 10, 50)),
                    (0, inks(1, sized(2, "a", "m", 10, 40))),
                    (0, inks(1, sized(3, "n", "z", 10, 41))),
                    (1, inks(2, sized(4, "a", "c", 300, 10))),
                    (2, inks(2, sized(5, "b", "d", 10, 5))),
                ],
                ..Default::default()
            })
            .unwrap();
        let c = pick_compaction(&v, &options()).unwrap();
        assert_eq!((c.keyspace, c.level, numbers(&c.inputs), numbers(&c.next_inputs)), (2, 1, vec![4], vec![5]));
        // Without keyspace 2's backlog, keyspace 1's level 0 is next; the
        // default keyspace's single table is not pulled in.
        let v = v.apply(&VersionEdit { deleted: vec![(1, 4)], ..Default::default() }).unwrap();
        let c = pick_compaction(&v, &options()).unwrap();
        assert_eq!((c.keyspace, c.level, numbers(&c.inputs)), (1, 0, vec![2, 3]));
    }

    #[test]
    fn nothing_to_do_under_the_targets() {
        let v = version(vec![(0, sized(1, "a", "z", 10, 50)), (1, sized(2, "a", "c", 99, 10)), (2, sized(3, "a", "c", 999, 5))]);
        assert!(pick_compaction(&v, &options()).is_none());
        assert!(pick_compaction(&Version::empty(4), &options()).is_none());
    }

    #[test]
    fn level0_takes_every_table_and_overlapping_level1() {
        let v = version(vec![
            (0, sized(10, "c", "f", 10, 60)),
            (0, sized(11, "e", "h", 10, 70)),
            (1, sized(20, "a", "b", 10, 10)),
            (1, sized(21, "d", "e", 10, 11)),
            (1, sized(22, "g", "k", 10, 12)),
            (1, sized(23, "m", "p", 10, 13)),
            (2, sized(30, "x", "z", 10, 1)),
        ]);
        let c = pick_compaction(&v, &options()).unwrap();
        assert_eq!(c.level, 0);
        assert_eq!(numbers(&c.inputs), vec![10, 11]);
        assert_eq!(numbers(&c.next_inputs), vec![21, 22]);
        assert!(c.bottommost, "L2 holds only x..z");
        let v2 = version(vec![(0, sized(10, "c", "f", 10, 60)), (0, sized(11, "e", "h", 10, 70)), (2, sized(30, "h", "z", 10, 1))]);
        assert!(!pick_compaction(&v2, &options()).unwrap().bottommost, "L2 overlaps at h");
    }

    #[test]
    fn highest_score_wins_and_last_level_is_never_picked() {
        // L1 at 3x its target beats L0 at 1x (2 tables, trigger 2).
        let v = version(vec![
            (0, sized(10, "a", "b", 1, 60)),
            (0, sized(11, "a", "b", 1, 70)),
            (1, sized(20, "a", "b", 150, 10)),
            (1, sized(21, "c", "d", 150, 10)),
            (3, sized(40, "a", "z", 1 << 40, 1)),
        ]);
        let c = pick_compaction(&v, &options()).unwrap();
        assert_eq!(c.level, 1);
        assert_eq!(numbers(&c.inputs), vec![20]);
        assert!(c.next_inputs.is_empty());
        assert!(!c.bottommost, "L3 overlaps");
        let only_last = version(vec![(3, sized(40, "a", "z", 1 << 40, 1))]);
        assert!(pick_compaction(&only_last, &options()).is_none());
    }

    #[test]
    fn level_compactions_rotate_through_the_key_space() {
        let mut v = version(vec![
            (1, sized(20, "a", "b", 60, 10)),
            (1, sized(21, "c", "d", 60, 10)),
            (1, sized(22, "e", "f", 60, 10)),
            (2, sized(30, "c", "c", 1, 1)),
        ]);
        let mut picked = Vec::new();
        let mut next = 100;
        for _ in 0..4 {
            let c = pick_compaction(&v, &options()).unwrap();
            assert_eq!(c.level, 1);
            let f = Arc::clone(&c.inputs[0]);
            picked.push(f.number);
            // Pretend the compaction rewrote the table into L2 under a new number
            // and a fresh L1 table with the same keys arrived again.
            let mut deleted = vec![(1, f.number)];
            deleted.extend(c.next_inputs.iter().map(|n| (2, n.number)));
            let mut moved = (*f).clone();
            moved.number = next;
            let mut back = (*f).clone();
            back.number = next + 1;
            next += 2;
            let lo = c.next_inputs.iter().map(|n| n.smallest.clone()).chain([moved.smallest.clone()]).min().unwrap();
            let hi = c.next_inputs.iter().map(|n| n.largest.clone()).chain([moved.largest.clone()]).max().unwrap();
            moved.smallest = lo;
            moved.largest = hi;
            v = v.apply(&VersionEdit { deleted, added: vec![(2, moved)], ..Default::default() }).unwrap();
            v = v.apply(&VersionEdit { added: vec![(1, back)], ..Default::default() }).unwrap();
        }
        // a..b, then c..d, then e..f, then wrap to a..b again (renumbered).
        assert_eq!(picked[0], 20);
        assert_eq!(picked[1], 21);
        assert_eq!(picked[2], 22);
        assert_eq!(picked[3], 101);
    }

    #[test]
    fn range_compaction_expands_level0() {
        let v = version(vec![
            (0, sized(10, "a", "c", 10, 60)),
            (0, sized(11, "b", "f", 10, 70)),
            (0, sized(12, "e", "g", 10, 80)),
            (0, sized(13, "x", "y", 10, 90)),
            (1, sized(20, "f", "h", 10, 5)),
        ]);
        let c = pick_range_compaction(&v, 0, Some(b"a"), Some(b"a")).unwrap();
        assert_eq!(numbers(&c.inputs), vec![10, 11, 12], "a..c pulls in b..f, which pulls in e..g");
        assert_eq!(numbers(&c.next_inputs), vec![20]);
        assert!(c.bottommost);
        assert!(pick_range_compaction(&v, 0, Some(b"h"), Some(b"w")).is_none());
        assert!(pick_range_compaction(&v, 3, None, None).is_none(), "last level");
        let all = pick_range_compaction(&v, 0, None, None).unwrap();
        assert_eq!(numbers(&all.inputs), vec![10, 11, 12, 13]);
        let l1 = pick_range_compaction(&v, 1, Some(b"g"), None).unwrap();
        assert_eq!(numbers(&l1.inputs), vec![20]);
        assert!(l1.next_inputs.is_empty());
    }
}
