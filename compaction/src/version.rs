//! Versions: immutable pictures of which tables make up each level, how an edit
//! turns one version into the next, and how reads walk the levels.
//!
//! Invariants (checked whenever a version is built, so a bad edit is refused
//! before it reaches the manifest):
//! - level 0 is ordered newest first (max seqno, then file number, descending);
//!   its tables may overlap;
//! - every deeper level is sorted by smallest key and its tables do not overlap in
//!   user keys, so at most one table per level can hold a given user key;
//! - a table number appears at most once in the whole version.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use index::{Direction, InternalIterator, KeyRange, RangeTombstones, SeqNo, TableCache, ValueKind};

use crate::edit::{FileMeta, VersionEdit};
use crate::error::{Error, Result};
use crate::keyspace::{KeyspaceMeta, DEFAULT_KEYSPACE_ID};
use crate::level_iter::LevelIterator;

/// Name of the file that names the live manifest.
pub const CURRENT_FILE: &str = "CURRENT";

/// Live keyspaces other than the default one, by id.
type Keyspaces = Arc<BTreeMap<u32, Arc<KeyspaceMeta>>>;

/// The levels of each live keyspace other than the default one, by id.
type Trees = Arc<BTreeMap<u32, Arc<Version>>>;

/// Tables per level.
type Levels = Vec<Vec<Arc<FileMeta>>>;

/// Per level, where its next compaction starts.
type CompactPointers = Vec<Option<Vec<u8>>>;

/// An immutable picture of the levels.
///
/// The levels of the store's version are the default keyspace's; each other
/// live keyspace has levels of its own, held as a version of their own
/// ([`Version::keyspace_levels`], [`Version::all_keyspace_levels`]) on which
/// reads ([`Version::get`], [`Version::iterators`]) and the pickers work
/// exactly as on the default keyspace's.
#[derive(Debug, Clone, Default)]
pub struct Version {
    levels: Vec<Vec<Arc<FileMeta>>>,
    /// Per level, the largest user key of the last compaction out of it, so the
    /// next compaction of that level starts after it and rotates through the key space.
    compact_pointers: Vec<Option<Vec<u8>>>,
    /// The keyspace whose levels `levels` are: 0 in the store's version.
    keyspace: u32,
    /// The levels of every other live keyspace (empty in a keyspace's own levels).
    trees: Trees,
    /// Live keyspaces other than the default one, by id.
    keyspaces: Keyspaces,
    /// The next keyspace id to hand out: above every id ever created, dropped ones included.
    next_keyspace_id: u32,
    /// Range tombstones moved out of the WAL by flushes and ingests, fragmented
    /// for reads; each leaves once nothing older than it is left under its range.
    range_tombstones: Arc<RangeTombstones>,
    /// The merge operator recorded for each keyspace that has had a merge, by id.
    merge_operators: Arc<BTreeMap<u32, String>>,
}

impl Version {
    /// An empty version with `num_levels` levels.
    pub(crate) fn empty(num_levels: usize) -> Self {
        Version {
            levels: vec![Vec::new(); num_levels],
            compact_pointers: vec![None; num_levels],
            keyspace: DEFAULT_KEYSPACE_ID,
            trees: Arc::default(),
            keyspaces: Arc::default(),
            next_keyspace_id: DEFAULT_KEYSPACE_ID + 1,
            range_tombstones: Arc::default(),
            merge_operators: Arc::default(),
        }
    }

    /// The merge operator name recorded for keyspace `id`, if it has had a merge.
    pub fn merge_operator_name(&self, id: u32) -> Option<&str> {
        self.merge_operators.get(&id).map(String::as_str)
    }

    /// Every recorded (keyspace id, merge operator name).
    pub fn merge_operator_names(&self) -> impl Iterator<Item = (u32, &str)> + '_ {
        self.merge_operators.iter().map(|(id, name)| (*id, name.as_str()))
    }

    /// Applies the merge operator part of `edit` (after its keyspace part): a
    /// dropped keyspace's record goes with it.
    fn apply_merge_operators(&self, edit: &VersionEdit) -> Arc<BTreeMap<u32, String>> {
        let dropped = edit.dropped_keyspaces.iter().any(|id| self.merge_operators.contains_key(id));
        if edit.merge_operators.is_empty() && !dropped {
            return Arc::clone(&self.merge_operators);
        }
        let mut map = BTreeMap::clone(&self.merge_operators);
        for id in &edit.dropped_keyspaces {
            map.remove(id);
        }
        for (id, name) in &edit.merge_operators {
            map.insert(*id, name.clone());
        }
        Arc::new(map)
    }

    /// The empty levels of keyspace `id`, as a version of their own.
    fn empty_tree(num_levels: usize, id: u32) -> Self {
        Version { keyspace: id, ..Version::empty(num_levels) }
    }

    /// The keyspace whose levels this version's levels are (0 for the store's
    /// version, the default keyspace).
    pub fn keyspace_id(&self) -> u32 {
        self.keyspace
    }

    /// The levels of live keyspace `id` as a version of their own (this
    /// version itself for its own keyspace); `None` if `id` is not live.
    pub fn keyspace_levels(self: &Arc<Self>, id: u32) -> Option<Arc<Version>> {
        if id == self.keyspace {
            return Some(Arc::clone(self));
        }
        self.trees.get(&id).cloned()
    }

    /// The levels of every live keyspace, each as a version of its own: this
    /// version's (the default keyspace's) first, then the others by id.
    pub fn all_keyspace_levels(&self) -> impl Iterator<Item = &Version> + '_ {
        std::iter::once(self).chain(self.trees.values().map(|t| &**t))
    }

    /// The levels of the live keyspaces other than this version's own.
    pub(crate) fn keyspace_trees(&self) -> impl Iterator<Item = &Arc<Version>> + '_ {
        self.trees.values()
    }

    /// Every table of every keyspace, with its level.
    pub fn all_files(&self) -> impl Iterator<Item = (usize, &Arc<FileMeta>)> + '_ {
        self.all_keyspace_levels().flat_map(Version::own_files)
    }

    /// The tables of this version's own levels (its keyspace's only), with their level.
    pub fn own_files(&self) -> impl Iterator<Item = (usize, &Arc<FileMeta>)> + '_ {
        self.levels.iter().enumerate().flat_map(|(l, files)| files.iter().map(move |f| (l, f)))
    }

    /// The range tombstones of this version (those no longer in a WAL segment).
    pub fn range_tombstones(&self) -> &Arc<RangeTombstones> {
        &self.range_tombstones
    }

    /// Seqnos of the range tombstones that the compaction whose result is
    /// `edit` leaves with nothing older under them. The tables it wrote
    /// (`edit.added`) hold an entry under a tombstone only if its seqno is in
    /// `still_under` (what the compaction kept for a snapshot); every other
    /// table of the version after `edit` is judged by its bounds: it meets the
    /// tombstone's range and its smallest seqno is older. Memtables hold only
    /// newer data than any tombstone in the version (a tombstone joins it with
    /// the flush of its memtable, after every older one), so such a tombstone
    /// hides nothing any read could find, and `edit` may drop it along.
    pub fn retirable_range_tombstones(&self, edit: &VersionEdit, still_under: &HashSet<SeqNo>) -> Result<Vec<SeqNo>> {
        if self.range_tombstones.is_empty() {
            return Ok(Vec::new());
        }
        let after = self.apply(edit)?;
        let written: HashSet<u64> = edit.added.iter().map(|(_, f)| f.number).collect();
        Ok(after
            .range_tombstones
            .tombstones()
            .iter()
            .filter(|t| {
                // Only the tables of the tombstone's own keyspace can hold what
                // it hides (none, once that keyspace is dropped).
                let tree = after.all_keyspace_levels().find(|v| v.keyspace_id() == t.keyspace);
                let older_under = tree.is_some_and(|tree| {
                    tree.own_files().any(|(_, f)| {
                        !written.contains(&f.number)
                            && f.min_seqno < t.seqno
                            && t.overlaps(&f.smallest.user_key, &f.largest.user_key)
                    })
                });
                !still_under.contains(&t.seqno) && !older_under
            })
            .map(|t| t.seqno)
            .collect())
    }

    /// Applies the range-tombstone part of `edit`: adds, then drops; a drop of
    /// a tombstone not in the version, or an add of one already in it, is refused.
    fn apply_range_tombstones(&self, edit: &VersionEdit) -> Result<Arc<RangeTombstones>> {
        if edit.added_range_tombstones.is_empty() && edit.dropped_range_tombstones.is_empty() {
            return Ok(Arc::clone(&self.range_tombstones));
        }
        let mut seqnos: HashSet<SeqNo> = self.range_tombstones.tombstones().iter().map(|t| t.seqno).collect();
        for t in &edit.added_range_tombstones {
            if !seqnos.insert(t.seqno) {
                return Err(Error::InvalidEdit(format!("adds range tombstone {}, which is in the version", t.seqno)));
            }
        }
        for seqno in &edit.dropped_range_tombstones {
            if !seqnos.remove(seqno) {
                return Err(Error::InvalidEdit(format!("drops range tombstone {seqno}, which is not in the version")));
            }
        }
        let dropped: HashSet<SeqNo> = edit.dropped_range_tombstones.iter().copied().collect();
        let added = self.range_tombstones.with(edit.added_range_tombstones.iter().cloned());
        Ok(Arc::new(added.without(|s| dropped.contains(&s))))
    }

    /// Live keyspaces other than the default one (id 0), by id.
    pub fn keyspaces(&self) -> impl Iterator<Item = &Arc<KeyspaceMeta>> + '_ {
        self.keyspaces.values()
    }

    /// The live keyspace named `name`, other than the default one.
    pub fn keyspace_by_name(&self, name: &str) -> Option<&Arc<KeyspaceMeta>> {
        self.keyspaces.values().find(|k| k.name == name)
    }

    /// Whether keyspace `id` is live (the default keyspace always is).
    pub fn has_keyspace(&self, id: u32) -> bool {
        id == DEFAULT_KEYSPACE_ID || self.keyspaces.contains_key(&id)
    }

    /// The id the next created keyspace gets: above every id ever created.
    pub fn next_keyspace_id(&self) -> u32 {
        self.next_keyspace_id.max(DEFAULT_KEYSPACE_ID + 1)
    }

    /// Applies the keyspace part of `edit`: creates, then drops. The next id
    /// becomes the largest of its old value, the edit's and every created id + 1.
    fn apply_keyspaces(&self, edit: &VersionEdit) -> Result<(Keyspaces, u32)> {
        let mut next_id = self.next_keyspace_id().max(edit.next_keyspace_id.unwrap_or(0));
        if edit.created_keyspaces.is_empty() && edit.dropped_keyspaces.is_empty() {
            return Ok((Arc::clone(&self.keyspaces), next_id));
        }
        let mut map = BTreeMap::clone(&self.keyspaces);
        for ks in &edit.created_keyspaces {
            if ks.id == DEFAULT_KEYSPACE_ID || map.contains_key(&ks.id) {
                return Err(Error::InvalidEdit(format!("creates keyspace {}, which is live", ks.id)));
            }
            if map.values().any(|k| k.name == ks.name) {
                return Err(Error::InvalidEdit(format!("creates keyspace {} with the name of a live keyspace", ks.id)));
            }
            next_id = next_id.max(ks.id.checked_add(1).ok_or_else(|| Error::InvalidEdit("keyspace ids exhausted".into()))?);
            map.insert(ks.id, Arc::new(ks.clone()));
        }
        for id in &edit.dropped_keyspaces {
            if map.remove(id).is_none() {
                return Err(Error::InvalidEdit(format!("drops keyspace {id}, which is not live")));
            }
        }
        Ok((Arc::new(map), next_id))
    }

    /// Number of levels.
    pub fn num_levels(&self) -> usize {
        self.levels.len()
    }

    /// Tables of `level`: L0 newest first; other levels sorted by key, not overlapping.
    pub fn level_files(&self, level: usize) -> &[Arc<FileMeta>] {
        self.levels.get(level).map_or(&[], Vec::as_slice)
    }

    /// Total size in bytes of the tables of `level`.
    pub fn level_bytes(&self, level: usize) -> u64 {
        self.level_files(level).iter().map(|f| f.size).sum()
    }

    /// Numbers of every table in this version, of every keyspace.
    pub fn table_numbers(&self) -> impl Iterator<Item = u64> + '_ {
        self.all_files().map(|(_, f)| f.number)
    }

    /// Adds this version's table numbers to `out`.
    pub(crate) fn collect_numbers(&self, out: &mut HashSet<u64>) {
        out.extend(self.table_numbers());
    }

    pub(crate) fn compact_pointer(&self, level: usize) -> Option<&[u8]> {
        self.compact_pointers.get(level).and_then(|p| p.as_deref())
    }

    /// The version that results from applying `edit`; refuses edits that break
    /// the invariants. Scalar fields of the edit (log number, ...) are the version
    /// set's business and are ignored here.
    ///
    /// Order within an edit: keyspaces are created, then tables are removed and
    /// added (each in the keyspace its `FileMeta::keyspace` names; a removed
    /// table is found by its number, unique in the version), then keyspaces
    /// are dropped with whatever tables they still hold (those become
    /// obsolete files).
    pub(crate) fn apply(&self, edit: &VersionEdit) -> Result<Version> {
        let (keyspaces, next_keyspace_id) = self.apply_keyspaces(edit)?;
        let num_levels = self.num_levels();
        let mut trees = if edit.created_keyspaces.is_empty() && edit.dropped_keyspaces.is_empty() && edit.added.iter().all(|(_, f)| f.keyspace == self.keyspace) && edit.deleted.iter().all(|&(level, n)| self.level_files(level).iter().any(|f| f.number == n)) {
            None
        } else {
            Some(BTreeMap::clone(&self.trees))
        };
        if let Some(trees) = trees.as_mut() {
            for ks in &edit.created_keyspaces {
                trees.insert(ks.id, Arc::new(Version::empty_tree(num_levels, ks.id)));
            }
            // The tables of other keyspaces, grouped by keyspace.
            let mut deleted: BTreeMap<u32, Vec<(usize, u64)>> = BTreeMap::new();
            for &(level, number) in &edit.deleted {
                if self.level_files(level).iter().any(|f| f.number == number) {
                    continue;
                }
                let owner = trees.iter().find(|(_, t)| t.level_files(level).iter().any(|f| f.number == number)).map(|(id, _)| *id);
                let owner = owner.ok_or_else(|| Error::InvalidEdit(format!("deletes table {number}, which is not in level {level}")))?;
                deleted.entry(owner).or_default().push((level, number));
            }
            let mut added: BTreeMap<u32, Vec<(usize, FileMeta)>> = BTreeMap::new();
            for (level, meta) in edit.added.iter().filter(|(_, f)| f.keyspace != self.keyspace) {
                added.entry(meta.keyspace).or_default().push((*level, meta.clone()));
            }
            let touched: std::collections::BTreeSet<u32> = deleted.keys().chain(added.keys()).copied().collect();
            for id in touched {
                let tree = trees.get(&id).ok_or_else(|| Error::InvalidEdit(format!("adds a table to keyspace {id}, which is not live")))?;
                let sub = VersionEdit {
                    deleted: deleted.remove(&id).unwrap_or_default(),
                    added: added.remove(&id).unwrap_or_default(),
                    ..VersionEdit::default()
                };
                let (levels, compact_pointers) = tree.apply_tables(&sub)?;
                let mut tree = Version { levels, compact_pointers, ..Version::empty_tree(num_levels, id) };
                tree.sort_and_check()?;
                trees.insert(id, Arc::new(tree));
            }
            for id in &edit.dropped_keyspaces {
                trees.remove(id);
            }
        }
        let (levels, compact_pointers) = self.apply_tables(edit)?;
        let trees = trees.map_or_else(|| Arc::clone(&self.trees), Arc::new);
        let range_tombstones = self.apply_range_tombstones(edit)?;
        let merge_operators = self.apply_merge_operators(edit);
        let mut v = Version {
            levels,
            compact_pointers,
            keyspace: self.keyspace,
            trees,
            keyspaces,
            next_keyspace_id,
            range_tombstones,
            merge_operators,
        };
        v.sort_and_check()?;
        if !v.trees.is_empty() {
            // Table numbers are unique across keyspaces too.
            let mut seen = HashSet::new();
            if let Some((_, f)) = v.all_files().find(|(_, f)| !seen.insert(f.number)) {
                return Err(Error::InvalidEdit(format!("table {} appears twice", f.number)));
            }
        }
        Ok(v)
    }

    /// This version's own levels and compaction pointers after the edit's
    /// removals from them and additions of tables of this version's keyspace
    /// (tables of other keyspaces, and removals of tables not in these
    /// levels, are left to [`Version::apply`]).
    fn apply_tables(&self, edit: &VersionEdit) -> Result<(Levels, CompactPointers)> {
        let num_levels = self.num_levels();
        let mut levels = self.levels.clone();
        let mut compact_pointers = self.compact_pointers.clone();
        let mut deleted_per_level: Vec<Option<Vec<u8>>> = vec![None; num_levels];
        for &(level, number) in &edit.deleted {
            let files = levels
                .get_mut(level)
                .ok_or_else(|| Error::InvalidEdit(format!("deletes table {number} from level {level} of {num_levels}")))?;
            let Some(pos) = files.iter().position(|f| f.number == number) else {
                // In another keyspace's levels (or nowhere, which `apply` reports),
                // unless this very edit already removed it from here.
                if self.level_files(level).iter().any(|f| f.number == number) {
                    return Err(Error::InvalidEdit(format!("deletes table {number}, which is not in level {level}")));
                }
                continue;
            };
            let gone = files.remove(pos);
            if let Some(slot) = deleted_per_level.get_mut(level) {
                let key = &gone.largest.user_key;
                if !matches!(slot.as_ref(), Some(k) if k >= key) {
                    *slot = Some(key.clone());
                }
            }
        }
        let mut added_levels = vec![false; num_levels];
        for (level, meta) in edit.added.iter().filter(|(_, f)| f.keyspace == self.keyspace) {
            let files = levels
                .get_mut(*level)
                .ok_or_else(|| Error::InvalidEdit(format!("adds table {} to level {level} of {num_levels}", meta.number)))?;
            files.push(Arc::new(meta.clone()));
            if let Some(flag) = added_levels.get_mut(*level) {
                *flag = true;
            }
        }
        // A compaction out of level n (deletes there, adds to n + 1) moves that
        // level's rotation pointer past the keys it just took.
        for (level, largest) in deleted_per_level.into_iter().enumerate() {
            let moved_down = added_levels.get(level + 1).copied().unwrap_or(false);
            if let (Some(key), true) = (largest, moved_down) {
                if let Some(slot) = compact_pointers.get_mut(level) {
                    *slot = Some(key);
                }
            }
        }
        Ok((levels, compact_pointers))
    }

    fn sort_and_check(&mut self) -> Result<()> {
        let mut seen = HashSet::new();
        for (level, files) in self.levels.iter_mut().enumerate() {
            if level == 0 {
                files.sort_by(|a, b| b.max_seqno.cmp(&a.max_seqno).then(b.number.cmp(&a.number)));
            } else {
                files.sort_by(|a, b| a.smallest.cmp(&b.smallest));
                for pair in files.windows(2) {
                    if let [a, b] = pair {
                        if a.largest.user_key >= b.smallest.user_key {
                            return Err(Error::InvalidEdit(format!(
                                "tables {} and {} overlap in level {level}",
                                a.number, b.number
                            )));
                        }
                    }
                }
            }
            for f in files.iter() {
                if !seen.insert(f.number) {
                    return Err(Error::InvalidEdit(format!("table {} appears twice", f.number)));
                }
            }
        }
        Ok(())
    }

    /// The edit that builds this version from an empty one (the manifest
    /// snapshot): the tables of every keyspace.
    pub(crate) fn snapshot_files(&self) -> Vec<(usize, FileMeta)> {
        self.all_files().map(|(level, f)| (level, FileMeta::clone(f))).collect()
    }

    /// Tables of `level` whose user-key range meets [`start`, `end`] (None = unbounded).
    pub fn overlapping_files(&self, level: usize, start: Option<&[u8]>, end: Option<&[u8]>) -> Vec<Arc<FileMeta>> {
        self.level_files(level).iter().filter(|f| overlaps(f, start, end)).cloned().collect()
    }

    /// Newest version of `user_key` at or below `snapshot` across the levels.
    pub fn get(&self, tables: &TableCache, user_key: &[u8], snapshot: SeqNo) -> Result<Option<(SeqNo, ValueKind, Vec<u8>)>> {
        // L0 tables are flushes in seqno order, so the newest table holding a
        // visible version of the key holds the newest visible version.
        for f in self.level_files(0) {
            if f.contains_user_key(user_key) && f.min_seqno <= snapshot {
                if let Some(hit) = tables.get(f.number)?.get(user_key, snapshot)? {
                    return Ok(Some(hit));
                }
            }
        }
        // Deeper levels hold strictly older data for any key than the levels
        // above them, and at most one table per level can hold the key.
        for level in 1..self.num_levels() {
            let files = self.level_files(level);
            let idx = files.partition_point(|f| f.largest.user_key.as_slice() < user_key);
            if let Some(f) = files.get(idx) {
                if f.smallest.user_key.as_slice() <= user_key && f.min_seqno <= snapshot {
                    if let Some(hit) = tables.get(f.number)?.get(user_key, snapshot)? {
                        return Ok(Some(hit));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Iterators over every table overlapping `range` (one per L0 file, one lazily
    /// concatenating iterator per deeper level), each in `direction`.
    pub fn iterators(&self, tables: &Arc<TableCache>, range: &KeyRange, direction: Direction) -> Result<Vec<Box<dyn InternalIterator>>> {
        let mut out: Vec<Box<dyn InternalIterator>> = Vec::with_capacity(self.level_files(0).len() + self.num_levels());
        for f in self.level_files(0) {
            if overlaps_range(f, range) {
                out.push(tables.get(f.number)?.iter(range.clone(), direction));
            }
        }
        for level in 1..self.num_levels() {
            // Deeper levels are sorted and disjoint: the tables meeting the
            // range are one run, found by binary search.
            let files = self.level_files(level);
            if files.is_empty() {
                continue;
            }
            let first = files.partition_point(|f| !overlaps_range_start(f, range));
            let end = files.partition_point(|f| overlaps_range_end(f, range)).max(first);
            if let Some(run) = files.get(first..end).filter(|run| !run.is_empty()) {
                out.push(Box::new(LevelIterator::new(Arc::clone(tables), run.to_vec(), range.clone(), direction)));
            }
        }
        Ok(out)
    }
}

/// Whether `f`'s user keys meet [`start`, `end`] (inclusive; None = unbounded).
pub(crate) fn overlaps(f: &FileMeta, start: Option<&[u8]>, end: Option<&[u8]>) -> bool {
    let after_start = !matches!(start, Some(s) if f.largest.user_key.as_slice() < s);
    let before_end = !matches!(end, Some(e) if f.smallest.user_key.as_slice() > e);
    after_start && before_end
}

/// Whether `f`'s user keys meet `range`.
pub(crate) fn overlaps_range(f: &FileMeta, range: &KeyRange) -> bool {
    overlaps_range_start(f, range) && overlaps_range_end(f, range)
}

/// Whether `f` reaches the start of `range` (its largest key is not before it).
fn overlaps_range_start(f: &FileMeta, range: &KeyRange) -> bool {
    match &range.start {
        Bound::Included(s) => f.largest.user_key >= *s,
        Bound::Excluded(s) => f.largest.user_key > *s,
        Bound::Unbounded => true,
    }
}

/// Whether `f` starts before the end of `range` (its smallest key is not past it).
fn overlaps_range_end(f: &FileMeta, range: &KeyRange) -> bool {
    match &range.end {
        Bound::Included(e) => f.smallest.user_key <= *e,
        Bound::Excluded(e) => f.smallest.user_key < *e,
        Bound::Unbounded => true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::edit::tests::meta;
    use crate::keyspace::KeyspaceMeta;

    fn numbers(v: &Version, level: usize) -> Vec<u64> {
        v.level_files(level).iter().map(|f| f.number).collect()
    }

    #[test]
    fn apply_orders_levels() {
        let mut l0_old = meta(3, "a", "z");
        l0_old.max_seqno = 10;
        let mut l0_new = meta(2, "c", "d");
        l0_new.max_seqno = 50;
        let edit = VersionEdit {
            added: vec![(0, l0_old), (0, l0_new), (1, meta(7, "m", "p")), (1, meta(8, "a", "c")), (1, meta(9, "q", "q"))],
            ..Default::default()
        };
        let v = Version::empty(4).apply(&edit).unwrap();
        assert_eq!(numbers(&v, 0), vec![2, 3], "L0 newest first by max seqno");
        assert_eq!(numbers(&v, 1), vec![8, 7, 9], "deeper levels by smallest key");
        assert_eq!(v.level_bytes(1), 1007 + 1008 + 1009);
        let v2 = v.apply(&VersionEdit { deleted: vec![(1, 7), (0, 3)], ..Default::default() }).unwrap();
        assert_eq!(numbers(&v2, 0), vec![2]);
        assert_eq!(numbers(&v2, 1), vec![8, 9]);
        assert_eq!(numbers(&v, 1), vec![8, 7, 9], "the old version is unchanged");
    }

    #[test]
    fn apply_refuses_bad_edits() {
        let v = Version::empty(3).apply(&VersionEdit { added: vec![(1, meta(1, "a", "f"))], ..Default::default() }).unwrap();
        let cases = [
            VersionEdit { added: vec![(1, meta(2, "f", "g"))], ..Default::default() },
            VersionEdit { added: vec![(3, meta(2, "x", "y"))], ..Default::default() },
            VersionEdit { deleted: vec![(2, 1)], ..Default::default() },
            VersionEdit { deleted: vec![(1, 1), (1, 1)], ..Default::default() },
            VersionEdit { added: vec![(2, meta(1, "x", "y"))], ..Default::default() },
        ];
        for edit in cases {
            assert!(matches!(v.apply(&edit), Err(Error::InvalidEdit(_))), "{edit:?} accepted");
        }
        // Same user key at the boundary is fine in L0, where tables may overlap.
        assert!(v.apply(&VersionEdit { added: vec![(0, meta(2, "f", "g"))], ..Default::default() }).is_ok());
    }

    #[test]
    fn keyspace_edits_apply_in_order_and_bad_ones_are_refused() {
        let ks = |id: u32, name: &str| KeyspaceMeta { id, name: name.into(), options: Vec::new() };
        let v = Version::empty(3);
        assert_eq!((v.keyspaces().count(), v.next_keyspace_id()), (0, 1));
        let v = v.apply(&VersionEdit { created_keyspaces: vec![ks(1, "a"), ks(4, "b")], ..Default::default() }).unwrap();
        assert_eq!(v.next_keyspace_id(), 5, "past the highest created id");
        assert_eq!(v.keyspace_by_name("b").map(|k| k.id), Some(4));
        assert!(v.has_keyspace(0) && v.has_keyspace(1) && !v.has_keyspace(2));
        // A create and a drop in one edit: creates first.
        let v = v.apply(&VersionEdit { created_keyspaces: vec![ks(5, "c")], dropped_keyspaces: vec![5, 1], ..Default::default() }).unwrap();
        assert_eq!(v.keyspaces().map(|k| k.id).collect::<Vec<_>>(), vec![4]);
        assert_eq!(v.next_keyspace_id(), 6);
        // The next id only moves forward.
        let v = v.apply(&VersionEdit { next_keyspace_id: Some(3), ..Default::default() }).unwrap();
        assert_eq!(v.next_keyspace_id(), 6);
        let cases = [
            VersionEdit { created_keyspaces: vec![ks(4, "d")], ..Default::default() },
            VersionEdit { created_keyspaces: vec![ks(0, "d")], ..Default::default() },
            VersionEdit { created_keyspaces: vec![ks(7, "b")], ..Default::default() },
            VersionEdit { dropped_keyspaces: vec![1], ..Default::default() },
            VersionEdit { dropped_keyspaces: vec![4, 4], ..Default::default() },
            VersionEdit { created_keyspaces: vec![ks(u32::MAX, "max")], ..Default::default() },
        ];
        for edit in cases {
            assert!(matches!(v.apply(&edit), Err(Error::InvalidEdit(_))), "{edit:?} accepted");
        }
    }

    #[test]
    fn each_keyspace_has_its_own_levels() {
        let ks = |id: u32, name: &str| KeyspaceMeta { id, name: name.into(), options: Vec::new() };
        let inks = |id: u32, m: FileMeta| FileMeta { keyspace: id, ..m };
        let v = Version::empty(3)
            .apply(&VersionEdit { created_keyspaces: vec![ks(1, "a"), ks(2, "b")], added: vec![(1, meta(1, "a", "f"))], ..Default::default() })
            .unwrap();
        // The same key range in level 1 of three keyspaces: no overlap, each has its own levels.
        let v = Arc::new(
            v.apply(&VersionEdit { added: vec![(1, inks(1, meta(2, "a", "f"))), (1, inks(2, meta(3, "b", "c"))), (0, inks(1, meta(4, "a", "z")))], ..Default::default() })
                .unwrap(),
        );
        assert_eq!(numbers(&v, 1), vec![1]);
        let one = v.keyspace_levels(1).unwrap();
        assert_eq!((one.keyspace_id(), numbers(&one, 0), numbers(&one, 1)), (1, vec![4], vec![2]));
        assert_eq!(numbers(&v.keyspace_levels(2).unwrap(), 1), vec![3]);
        assert!(v.keyspace_levels(9).is_none());
        let mut all: Vec<u64> = v.table_numbers().collect();
        all.sort_unstable();
        assert_eq!(all, vec![1, 2, 3, 4]);
        assert_eq!(v.snapshot_files().len(), 4);
        // A removal finds its table in whichever keyspace holds it; a compaction
        // out of keyspace 1's level 0 moves that keyspace's pointer only.
        let v2 = v.apply(&VersionEdit { deleted: vec![(0, 4)], added: vec![(1, inks(1, meta(5, "g", "z")))], ..Default::default() }).unwrap();
        let one = Arc::new(v2.clone()).keyspace_levels(1).unwrap();
        assert_eq!((numbers(&one, 0), numbers(&one, 1)), (vec![], vec![2, 5]));
        assert_eq!(one.compact_pointer(0), Some(&b"z"[..]));
        assert_eq!(v2.compact_pointer(0), None);
        // Refused: overlap inside one keyspace's level, a table twice across
        // keyspaces, a table of a keyspace that is not live, a missing table.
        let cases = [
            VersionEdit { added: vec![(1, inks(1, meta(6, "e", "g")))], ..Default::default() },
            VersionEdit { added: vec![(1, inks(2, meta(2, "x", "y")))], ..Default::default() },
            VersionEdit { added: vec![(1, inks(7, meta(6, "x", "y")))], ..Default::default() },
            VersionEdit { deleted: vec![(1, 4)], ..Default::default() },
        ];
        for edit in cases {
            assert!(matches!(v.apply(&edit), Err(Error::InvalidEdit(_))), "{edit:?} accepted");
        }
        // A drop takes the keyspace's levels with it.
        let v3 = Arc::new(v.apply(&VersionEdit { dropped_keyspaces: vec![1], ..Default::default() }).unwrap());
        assert!(v3.keyspace_levels(1).is_none());
        let mut left: Vec<u64> = v3.table_numbers().collect();
        left.sort_unstable();
        assert_eq!(left, vec![1, 3]);
    }

    #[test]
    fn range_tombstones_join_leave_and_retire_when_nothing_older_is_under_them() {
        use index::RangeTombstone;
        let t = |start: &str, end: &str, seqno: SeqNo| RangeTombstone { keyspace: 0, start: start.into(), end: end.into(), seqno };
        // meta(n, ..) holds seqnos n + 3 ..= n + 9.
        let v = Version::empty(3)
            .apply(&VersionEdit { added: vec![(1, meta(1, "a", "c")), (1, meta(20, "m", "p"))], ..Default::default() })
            .unwrap();
        let v = v.apply(&VersionEdit { added_range_tombstones: vec![t("b", "d", 10), t("x", "z", 11), t("n", "o", 15)], ..Default::default() }).unwrap();
        assert_eq!(v.range_tombstones().len(), 3);
        assert!(v.range_tombstones().hides(0, b"b", 4, 10));
        let none = HashSet::new();
        // Nothing is under "x".."z"; table 20 (seqnos 23..) is newer than the tombstone at 15.
        assert_eq!(v.retirable_range_tombstones(&VersionEdit::default(), &none).unwrap(), vec![11, 15]);
        // A compaction that removes table 1 (seqnos 4..=10) frees the tombstone over it.
        let gone = VersionEdit { deleted: vec![(1, 1)], added: vec![(2, meta(2, "a", "a"))], ..Default::default() };
        assert_eq!(v.retirable_range_tombstones(&gone, &none).unwrap(), vec![10, 11, 15]);
        // An output overlapping the range with older seqnos counts only if the
        // compaction says it kept an entry under the tombstone.
        let straddles = VersionEdit { deleted: vec![(1, 1)], added: vec![(2, meta(3, "b", "b"))], ..Default::default() };
        assert_eq!(v.retirable_range_tombstones(&straddles, &none).unwrap(), vec![10, 11, 15]);
        let kept: HashSet<SeqNo> = [10].into();
        assert_eq!(v.retirable_range_tombstones(&straddles, &kept).unwrap(), vec![11, 15], "kept for a snapshot");
        // A table outside the compaction is judged by its bounds.
        let v3 = v.apply(&VersionEdit { added: vec![(0, meta(4, "c", "c"))], ..Default::default() }).unwrap();
        assert_eq!(v3.retirable_range_tombstones(&gone, &none).unwrap(), vec![11, 15], "table 4 holds seqno 7 under b..d");
        let v2 = v.apply(&VersionEdit { dropped_range_tombstones: vec![11], ..Default::default() }).unwrap();
        assert_eq!(v2.range_tombstones().tombstones().iter().map(|t| t.seqno).collect::<Vec<_>>(), vec![10, 15]);
        assert_eq!(v.range_tombstones().len(), 3, "the old version is unchanged");
        for bad in [
            VersionEdit { dropped_range_tombstones: vec![12], ..Default::default() },
            VersionEdit { added_range_tombstones: vec![t("a", "b", 10)], ..Default::default() },
        ] {
            assert!(matches!(v.apply(&bad), Err(Error::InvalidEdit(_))), "{bad:?} accepted");
        }
    }

    #[test]
    fn compaction_moves_the_pointer() {
        let v = Version::empty(3)
            .apply(&VersionEdit { added: vec![(1, meta(1, "a", "c")), (1, meta(2, "d", "f"))], ..Default::default() })
            .unwrap();
        assert_eq!(v.compact_pointer(1), None);
        let v = v.apply(&VersionEdit { deleted: vec![(1, 1)], added: vec![(2, meta(3, "a", "c"))], ..Default::default() }).unwrap();
        assert_eq!(v.compact_pointer(1), Some(&b"c"[..]));
        let v = v.apply(&VersionEdit { deleted: vec![(2, 3)], ..Default::default() }).unwrap();
        assert_eq!(v.compact_pointer(2), None, "a plain delete is not a compaction");
    }

    #[test]
    fn overlap_helpers() {
        let f = meta(1, "d", "g");
        assert!(overlaps(&f, None, None));
        assert!(overlaps(&f, Some(b"g"), None));
        assert!(!overlaps(&f, Some(b"h"), None));
        assert!(overlaps(&f, None, Some(b"d")));
        assert!(!overlaps(&f, None, Some(b"c")));
        let r = |s: Bound<&str>, e: Bound<&str>| KeyRange { start: s.map(|x| x.as_bytes().to_vec()), end: e.map(|x| x.as_bytes().to_vec()) };
        assert!(overlaps_range(&f, &r(Bound::Included("g"), Bound::Unbounded)));
        assert!(!overlaps_range(&f, &r(Bound::Excluded("g"), Bound::Unbounded)));
        assert!(!overlaps_range(&f, &r(Bound::Unbounded, Bound::Excluded("d"))));
        assert!(overlaps_range(&f, &r(Bound::Included("a"), Bound::Included("d"))));
        assert!(overlaps_range(&f, &KeyRange::all()));
    }
}
