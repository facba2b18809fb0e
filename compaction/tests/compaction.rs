//! Flush and leveled compaction end to end over real tables: memtables flushed
//! to L0, compacted L0 -> L1 -> L2 under live snapshots, and every key checked at
//! every snapshot through `Version::get` and through the level iterators, against
//! a model of every write. Then GC and the failure path of a compaction.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;

use compaction::{
    flush_memtable, pick_compaction, pick_range_compaction, run_compaction, CompactionContext, CompactionOptions, TableHooks, Version,
    VersionSet,
};
use crypto::vfs::{SimVfs, Vfs};
use crypto::KeyManager;
use index::{
    Compression, Direction, InternalIterator, KeyRange, Memtable, MergingIterator, SeqNo, TableCache, TableOptions, ValueKind, MAX_SEQNO,
};
use rand::{Rng, SeedableRng};

const LEVELS: usize = 4;

/// Every write ever made: (user key, seqno) -> (kind, value).
type Model = BTreeMap<(Vec<u8>, SeqNo), (ValueKind, Vec<u8>)>;

struct Fixture {
    sim: Arc<SimVfs>,
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    keys: Arc<KeyManager>,
    vs: VersionSet,
    ctx: CompactionContext,
}

fn options() -> CompactionOptions {
    CompactionOptions {
        l0_compaction_trigger: 3,
        level_base_bytes: 256 << 10,
        level_size_multiplier: 4,
        target_file_size_bytes: 6 << 10,
        num_levels: LEVELS,
        table: TableOptions { block_size_bytes: 512, restart_interval: 4, compression: Compression::None, bloom_bits_per_key: 10 },
    }
}

fn fixture() -> Fixture {
    let sim = SimVfs::new();
    let vfs: Arc<dyn Vfs> = sim.clone();
    let dir = PathBuf::from("/store");
    vfs.create_dir_all(&dir).unwrap();
    let keys = KeyManager::ephemeral();
    let vs = VersionSet::create(&vfs, &dir, &keys, LEVELS).unwrap();
    let tables = TableCache::new(Arc::clone(&vfs), dir.clone(), Arc::clone(&keys), None);
    let ctx = CompactionContext { vfs: Arc::clone(&vfs), dir: dir.clone(), keys: Arc::clone(&keys), tables, options: options(), keyspace_tables: Default::default() };
    Fixture { sim, vfs, dir, keys, vs, ctx }
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

impl Fixture {
    /// Writes `n` random operations over `key_space` keys into a fresh memtable,
    /// flushes it to L0 and logs the edit.
    fn write_and_flush(&self, model: &mut Model, rng: &mut impl Rng, seqno: &mut SeqNo, n: usize, key_space: u32) {
        let mem = Arc::new(Memtable::new(self.vs.new_file_number()));
        for _ in 0..n {
            *seqno += 1;
            let k = key(rng.gen_range(0..key_space));
            let (kind, value) = if rng.gen_bool(0.2) {
                (ValueKind::Delete, Vec::new())
            } else {
                (ValueKind::Put, format!("v{seqno}-{}", "x".repeat(rng.gen_range(0..40))).into_bytes())
            };
            mem.insert(&k, *seqno, kind, &value);
            model.insert((k, *seqno), (kind, value));
        }
        let number = self.vs.new_file_number();
        let meta = flush_memtable(&self.ctx, &TableHooks::default(), &mem, number).unwrap().unwrap();
        assert_eq!(meta.number, number);
        assert_eq!(meta.entries, n as u64);
        assert_eq!(meta.max_seqno, *seqno);
        assert_eq!(meta.epoch, self.keys.current_epoch());
        assert!(self.sim.read_durable(&self.dir.join(format!("{number:06}.sst"))).is_some(), "flushed table durable before it is logged");
        self.vs
            .log_and_apply(compaction::VersionEdit { added: vec![(0, meta)], last_seqno: Some(*seqno), log_number: Some(mem.id() + 1), ..Default::default() })
            .unwrap();
    }

    fn compact(&self, c: &compaction::Compaction, snapshots: &[SeqNo]) -> compaction::VersionEdit {
        let edit = run_compaction(&self.ctx, c, snapshots, &|| self.vs.new_file_number()).unwrap();
        self.vs.log_and_apply(edit.clone()).unwrap();
        edit
    }
}

/// What a reader at `snapshot` sees for `k` according to the model.
fn expected(model: &Model, k: &[u8], snapshot: SeqNo) -> Option<(SeqNo, Vec<u8>)> {
    let (&(_, s), (kind, v)) = model.range((k.to_vec(), 0)..=(k.to_vec(), snapshot)).next_back()?;
    (*kind == ValueKind::Put).then(|| (s, v.clone()))
}

/// Visible (key, seqno, value) at `snapshot` in `range`, per the model.
fn expected_scan(model: &Model, snapshot: SeqNo, range: &KeyRange) -> Vec<(Vec<u8>, SeqNo, Vec<u8>)> {
    let keys: Vec<Vec<u8>> = model.keys().map(|(k, _)| k.clone()).filter(|k| range.contains(k)).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    keys.into_iter().filter_map(|k| expected(model, &k, snapshot).map(|(s, v)| (k, s, v))).collect()
}

/// A user key and the newest version of it seen so far at or below the snapshot.
type Pending = Option<(Vec<u8>, Option<(SeqNo, ValueKind, Vec<u8>)>)>;

/// Visible entries at `snapshot` by merging the version's iterators in `direction`.
fn scan(version: &Version, tables: &Arc<TableCache>, snapshot: SeqNo, range: &KeyRange, direction: Direction) -> Vec<(Vec<u8>, SeqNo, Vec<u8>)> {
    let mut it = MergingIterator::new(version.iterators(tables, range, direction).unwrap(), direction);
    let mut out: Vec<(Vec<u8>, SeqNo, Vec<u8>)> = Vec::new();
    // Per user key, the newest version at or below the snapshot.
    let mut current: Pending = None;
    let flush = |cur: Pending, out: &mut Vec<_>| {
        if let Some((k, Some((s, ValueKind::Put, v)))) = cur {
            out.push((k, s, v));
        }
    };
    while let Some(e) = it.next_entry().unwrap() {
        assert!(range.contains(&e.key.user_key), "iterator left its range");
        if current.as_ref().map(|(k, _)| k != &e.key.user_key).unwrap_or(true) {
            flush(current.take(), &mut out);
            current = Some((e.key.user_key.clone(), None));
        }
        if e.key.seqno <= snapshot {
            let slot = &mut current.as_mut().unwrap().1;
            let newer = !matches!(slot, Some((s, _, _)) if e.key.seqno <= *s);
            if newer {
                *slot = Some((e.key.seqno, e.key.kind, e.value.clone()));
            }
        }
    }
    flush(current.take(), &mut out);
    if direction == Direction::Reverse {
        out.reverse();
    }
    out
}

fn check_all(f: &Fixture, tables: &Arc<TableCache>, version: &Version, model: &Model, snapshots: &[SeqNo], key_space: u32) {
    let ranges = [
        KeyRange::all(),
        KeyRange { start: Bound::Included(key(key_space / 3)), end: Bound::Excluded(key(key_space / 2)) },
        KeyRange { start: Bound::Excluded(key(7)), end: Bound::Included(key(key_space - 5)) },
    ];
    for &s in snapshots.iter().chain([MAX_SEQNO].iter()) {
        for i in 0..key_space + 2 {
            let k = key(i);
            let got = version.get(tables, &k, s).unwrap();
            let got = got.and_then(|(seq, kind, v)| (kind == ValueKind::Put).then_some((seq, v)));
            assert_eq!(got, expected(model, &k, s), "get {} at snapshot {s}", String::from_utf8_lossy(&k));
        }
        for range in &ranges {
            let want = expected_scan(model, s, range);
            assert_eq!(scan(version, tables, s, range, Direction::Forward), want, "forward scan at {s} over {range:?}");
            assert_eq!(scan(version, tables, s, range, Direction::Reverse), want, "reverse scan at {s} over {range:?}");
        }
    }
    let _ = f;
}

fn level_sizes(v: &Version) -> Vec<usize> {
    (0..v.num_levels()).map(|l| v.level_files(l).len()).collect()
}

#[test]
fn flush_and_compact_through_the_levels_under_snapshots() {
    let f = fixture();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut model = Model::new();
    let mut seqno = 0;
    let key_space = 400;
    let mut snapshots = Vec::new();
    for round in 0..3 {
        f.write_and_flush(&mut model, &mut rng, &mut seqno, 300, key_space);
        if round == 1 {
            snapshots.push(seqno);
        }
    }
    snapshots.push(seqno / 4);
    let v = f.vs.current();
    assert_eq!(level_sizes(&v), vec![3, 0, 0, 0]);
    check_all(&f, &f.ctx.tables, &v, &model, &snapshots, key_space);

    // L0 -> L1: three tables hit the trigger.
    let c = pick_compaction(&v, &f.ctx.options).unwrap();
    assert_eq!((c.level, c.inputs.len(), c.next_inputs.len(), c.bottommost), (0, 3, 0, true));
    let edit = f.compact(&c, &snapshots);
    assert_eq!(edit.deleted.len(), 3);
    assert!(edit.added.len() > 1, "outputs split at the target size");
    assert!(edit.added.iter().all(|(l, _)| *l == 1));
    let v = f.vs.current();
    assert_eq!(v.level_files(0).len(), 0);
    check_all(&f, &f.ctx.tables, &v, &model, &snapshots, key_space);

    // More writes, more L0, then L0 -> L1 again, now merging into existing L1 tables.
    for _ in 0..3 {
        f.write_and_flush(&mut model, &mut rng, &mut seqno, 300, key_space);
    }
    snapshots.push(seqno - 100);
    let v = f.vs.current();
    let c = pick_compaction(&v, &f.ctx.options).unwrap();
    assert_eq!(c.level, 0);
    assert!(!c.next_inputs.is_empty());
    f.compact(&c, &snapshots);
    let v = f.vs.current();
    check_all(&f, &f.ctx.tables, &v, &model, &snapshots, key_space);

    // L1 -> L2, the whole level, and then what the scores ask for until nothing is over target.
    let c = pick_range_compaction(&v, 1, None, None).unwrap();
    assert_eq!(c.inputs.len(), v.level_files(1).len());
    assert!(c.bottommost);
    f.compact(&c, &snapshots);
    let v = f.vs.current();
    assert_eq!(v.level_files(1).len(), 0);
    assert!(!v.level_files(2).is_empty());
    check_all(&f, &f.ctx.tables, &v, &model, &snapshots, key_space);
    // Shrink the targets so the scores now ask for L2 -> L3 compactions, one table at a time.
    let small = CompactionOptions { level_base_bytes: 1 << 10, level_size_multiplier: 2, ..options() };
    let mut rounds = 0;
    while let Some(c) = pick_compaction(&f.vs.current(), &small) {
        assert_eq!((c.level, c.inputs.len()), (2, 1));
        f.compact(&c, &snapshots);
        rounds += 1;
    }
    assert!(rounds >= 2, "{rounds}");
    let v = f.vs.current();
    assert!(v.level_bytes(2) < small.level_target_bytes(2), "L2 back under its target");
    assert!(!v.level_files(3).is_empty());
    check_all(&f, &f.ctx.tables, &v, &model, &snapshots, key_space);
    for level in 1..LEVELS {
        let files = v.level_files(level);
        for w in files.windows(2) {
            assert!(w[0].largest.user_key < w[1].smallest.user_key, "level {level} overlaps");
        }
    }

    // Reopen: the recovered version reads the same through a fresh table cache.
    let before = level_sizes(&v);
    drop(v);
    let Fixture { sim, vfs, dir, keys, vs, ctx } = f;
    drop(vs);
    sim.crash();
    let vs = VersionSet::recover(&vfs, &dir, &keys, LEVELS).unwrap();
    let tables = TableCache::new(Arc::clone(&vfs), dir.clone(), Arc::clone(&keys), None);
    let v = vs.current();
    assert_eq!(level_sizes(&v), before);
    let f = Fixture { sim, vfs, dir, keys, vs, ctx };
    check_all(&f, &tables, &v, &model, &snapshots, key_space);
}

#[test]
fn bottom_compaction_without_snapshots_keeps_exactly_the_live_keys() {
    let f = fixture();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut model = Model::new();
    let mut seqno = 0;
    for _ in 0..4 {
        f.write_and_flush(&mut model, &mut rng, &mut seqno, 250, 150);
    }
    let c = pick_range_compaction(&f.vs.current(), 0, None, None).unwrap();
    assert!(c.bottommost);
    let edit = f.compact(&c, &[]);
    let live = expected_scan(&model, MAX_SEQNO, &KeyRange::all());
    let entries: u64 = edit.added.iter().map(|(_, m)| m.entries).sum();
    assert_eq!(entries, live.len() as u64, "one version per live key, no tombstones");
    check_all(&f, &f.ctx.tables, &f.vs.current(), &model, &[], 150);

    // Not bottommost: tombstones must stay to hide what lies below.
    let g = fixture();
    let mut model = Model::new();
    let mut seqno = 0;
    for _ in 0..3 {
        g.write_and_flush(&mut model, &mut rng, &mut seqno, 250, 150);
    }
    let c = pick_range_compaction(&g.vs.current(), 0, None, None).unwrap();
    g.compact(&c, &[]);
    let c = pick_range_compaction(&g.vs.current(), 1, None, None).unwrap();
    g.compact(&c, &[]);
    for _ in 0..2 {
        g.write_and_flush(&mut model, &mut rng, &mut seqno, 250, 150);
    }
    let c = pick_range_compaction(&g.vs.current(), 0, None, None).unwrap();
    assert!(!c.bottommost, "L2 holds the same keys");
    // Keys deleted since L2 was written, whose older value still sits in L2: only
    // the kept tombstones hide it, so the reads below would catch a dropped one.
    let l2_max = g.vs.current().level_files(2).iter().map(|m| m.max_seqno).max().unwrap();
    let hidden = (0..150)
        .map(key)
        .filter(|k| expected(&model, k, MAX_SEQNO).is_none() && expected(&model, k, l2_max).is_some())
        .count();
    assert!(hidden > 0);
    g.compact(&c, &[]);
    check_all(&g, &g.ctx.tables, &g.vs.current(), &model, &[], 150);
}

#[test]
fn empty_memtable_flushes_to_nothing() {
    let f = fixture();
    let files = f.sim.list_files();
    assert!(flush_memtable(&f.ctx, &TableHooks::default(), &Arc::new(Memtable::new(1)), 99).unwrap().is_none());
    assert_eq!(f.sim.list_files(), files);
}

#[test]
fn obsolete_tables_are_removed_but_held_ones_stay() {
    let f = fixture();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut model = Model::new();
    let mut seqno = 0;
    for _ in 0..3 {
        f.write_and_flush(&mut model, &mut rng, &mut seqno, 200, 100);
    }
    let reader = f.vs.current();
    let old: HashSet<u64> = reader.table_numbers().collect();
    let c = pick_compaction(&reader, &f.ctx.options).unwrap();
    f.compact(&c, &[]);
    let new: HashSet<u64> = f.vs.current().table_numbers().collect();

    let removed = f.vs.delete_obsolete_files(&HashSet::new(), f.vs.log_number(), 0).unwrap();
    let removed_tables: Vec<&String> = removed.iter().filter(|n| n.ends_with(".sst")).collect();
    assert!(removed_tables.is_empty(), "a reader still holds the old version: {removed:?}");
    // The held version still reads everything.
    check_all(&f, &f.ctx.tables, &reader, &model, &[], 100);
    drop(reader);

    let mut removed = f.vs.delete_obsolete_files(&HashSet::new(), f.vs.log_number(), 1).unwrap();
    removed.sort();
    let mut want: Vec<String> = old.iter().map(|n| format!("{n:06}.sst")).collect();
    want.sort();
    assert_eq!(removed, want);
    for n in &new {
        assert!(f.vfs.exists(&f.dir.join(format!("{n:06}.sst"))));
    }
    for n in &old {
        f.ctx.tables.evict(*n);
    }
    check_all(&f, &f.ctx.tables, &f.vs.current(), &model, &[], 100);
}

#[test]
fn failed_compaction_leaves_no_outputs_behind() {
    let f = fixture();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut model = Model::new();
    let mut seqno = 0;
    for _ in 0..3 {
        f.write_and_flush(&mut model, &mut rng, &mut seqno, 600, 2000);
    }
    let c = pick_range_compaction(&f.vs.current(), 0, None, None).unwrap();
    f.compact(&c, &[]);
    let v = f.vs.current();
    assert!(v.level_files(1).len() >= 3);
    // Damage a data block in the middle of the last L1 table: the compaction
    // reaches it only after writing outputs for the tables before it.
    let victim = v.level_files(1).last().unwrap();
    let path = f.dir.join(format!("{:06}.sst", victim.number));
    f.sim.corrupt_byte(&path, crypto::FILE_HEADER_LEN as u64 + 40, 0x01).unwrap();
    f.ctx.tables.evict(victim.number);
    let before: HashSet<PathBuf> = f.sim.list_files().into_iter().collect();
    let c = pick_range_compaction(&v, 1, None, None).unwrap();
    let err = run_compaction(&f.ctx, &c, &[], &|| f.vs.new_file_number()).unwrap_err();
    assert!(err.to_string().contains(&format!("{:06}.sst", victim.number)), "{err}");
    let after: HashSet<PathBuf> = f.sim.list_files().into_iter().collect();
    assert_eq!(after, before, "partial outputs removed");
}

#[test]
fn a_crash_at_any_sync_of_a_compaction_loses_nothing() {
    for parts in [1, 4] {
        crash_at_every_sync(parts);
    }
}

/// Sync #k of compaction + manifest edit fails; then power is lost. Recovery
/// must read every acknowledged write back, before and after GC. With several
/// parts the syncs of their tables interleave in any order.
fn crash_at_every_sync(parts: usize) {
    let mut k = 0;
    loop {
        let f = fixture();
        let mut rng = rand::rngs::StdRng::seed_from_u64(21);
        let mut model = Model::new();
        let mut seqno = 0;
        for _ in 0..3 {
            f.write_and_flush(&mut model, &mut rng, &mut seqno, 300, 500);
        }
        let snapshots = [seqno / 2];
        let c = compaction::Compaction { max_subcompactions: parts, ..pick_compaction(&f.vs.current(), &f.ctx.options).unwrap() };
        f.sim.fail_sync_after(k);
        let outcome = run_compaction(&f.ctx, &c, &snapshots, &|| f.vs.new_file_number()).and_then(|edit| f.vs.log_and_apply(edit));
        f.sim.clear_faults();
        let Fixture { sim, vfs, dir, keys, vs, ctx } = f;
        drop(vs);
        sim.crash();
        let vs = VersionSet::recover(&vfs, &dir, &keys, LEVELS).unwrap_or_else(|e| panic!("{parts} parts, sync #{k}: {e}"));
        let tables = TableCache::new(Arc::clone(&vfs), dir.clone(), Arc::clone(&keys), None);
        let f = Fixture { sim, vfs, dir, keys, vs, ctx };
        let v = f.vs.current();
        if outcome.is_ok() {
            assert_eq!(v.level_files(0).len(), 0, "acknowledged compaction lost ({parts} parts, sync #{k})");
        }
        check_all(&f, &tables, &v, &model, &snapshots, 500);
        f.vs.delete_obsolete_files(&HashSet::new(), f.vs.log_number(), 0).unwrap();
        let on_disk: HashSet<u64> = f.vfs.list_dir(&f.dir).unwrap().iter().filter_map(|n| n.strip_suffix(".sst")?.parse().ok()).collect();
        assert_eq!(on_disk, v.table_numbers().collect(), "GC leaves exactly the live tables ({parts} parts, sync #{k})");
        check_all(&f, &tables, &v, &model, &snapshots, 500);
        if outcome.is_ok() {
            break;
        }
        k += 1;
    }
    assert!(k >= 2 + parts as u64, "{parts} parts: the compaction needed only {k} syncs");
}

#[test]
fn same_reads_under_other_table_and_size_options() {
    // The same writes under other option sets must read back the same.
    let variants = [
        CompactionOptions { table: TableOptions { compression: Compression::Zstd(3), ..options().table }, ..options() },
        CompactionOptions { table: TableOptions { block_size_bytes: 64, restart_interval: 1, ..options().table }, target_file_size_bytes: 1 << 10, ..options() },
        CompactionOptions { target_file_size_bytes: 1 << 30, table: TableOptions { bloom_bits_per_key: 0, ..options().table }, ..options() },
    ];
    for (i, opts) in variants.into_iter().enumerate() {
        let mut f = fixture();
        f.ctx.options = opts;
        let mut rng = rand::rngs::StdRng::seed_from_u64(99);
        let mut model = Model::new();
        let mut seqno = 0;
        let mut snapshots = Vec::new();
        for round in 0..5 {
            f.write_and_flush(&mut model, &mut rng, &mut seqno, 200, 250);
            snapshots.push(seqno - 50);
            if round % 2 == 1 {
                let c = pick_range_compaction(&f.vs.current(), 0, None, None).unwrap();
                f.compact(&c, &snapshots);
            }
        }
        let c = pick_range_compaction(&f.vs.current(), 1, None, None).unwrap();
        f.compact(&c, &snapshots[2..]);
        let v = f.vs.current();
        check_all(&f, &f.ctx.tables, &v, &model, &snapshots[2..], 250);
        if i == 1 {
            assert!(v.level_files(2).len() > 3, "small targets give many tables");
        }
        if i == 2 {
            assert_eq!(v.level_files(2).len(), 1, "a huge target gives one table");
        }
    }
}

/// Every entry of the tables `edit` adds, in key order.
fn written(f: &Fixture, edit: &compaction::VersionEdit) -> Vec<index::Entry> {
    let mut tables: Vec<&compaction::FileMeta> = edit.added.iter().map(|(_, m)| m).collect();
    tables.sort_by(|a, b| a.smallest.cmp(&b.smallest));
    for w in tables.windows(2) {
        assert!(w[0].largest.user_key < w[1].smallest.user_key, "tables {} and {} overlap", w[0].number, w[1].number);
    }
    let mut out = Vec::new();
    for m in tables {
        let mut it = f.ctx.tables.get(m.number).unwrap().iter(KeyRange::all(), Direction::Forward);
        while let Some(e) = it.next_entry().unwrap() {
            out.push(e);
        }
    }
    out
}

/// L0 tables over L1 (and, unless `bottom`, L2) data, with snapshots between
/// the flushes; returns the model, the snapshots and the L0 -> L1 compaction.
fn layered(f: &Fixture, seed: u64, bottom: bool) -> (Model, Vec<SeqNo>, compaction::Compaction) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut model = Model::new();
    let mut seqno = 0;
    let key_space = 600;
    for _ in 0..3 {
        f.write_and_flush(&mut model, &mut rng, &mut seqno, 400, key_space);
    }
    f.compact(&pick_range_compaction(&f.vs.current(), 0, None, None).unwrap(), &[]);
    if !bottom {
        f.compact(&pick_range_compaction(&f.vs.current(), 1, None, None).unwrap(), &[]);
        f.write_and_flush(&mut model, &mut rng, &mut seqno, 400, key_space);
        f.compact(&pick_range_compaction(&f.vs.current(), 0, None, None).unwrap(), &[]);
    }
    let mut snapshots = Vec::new();
    for _ in 0..4 {
        f.write_and_flush(&mut model, &mut rng, &mut seqno, 400, key_space);
        snapshots.push(seqno - rng.gen_range(0..300));
    }
    let c = pick_range_compaction(&f.vs.current(), 0, None, None).unwrap();
    assert_eq!((c.inputs.len(), c.next_inputs.is_empty(), c.bottommost), (4, false, bottom));
    (model, snapshots, c)
}

#[test]
fn subcompactions_write_exactly_what_one_thread_writes() {
    for (seed, bottom) in [(31, true), (32, false)] {
        let f = fixture();
        let (model, snapshots, c) = layered(&f, seed, bottom);
        let target = f.ctx.options.target_file_size_bytes;
        let one = run_compaction(&f.ctx, &c, &snapshots, &|| f.vs.new_file_number()).unwrap();
        let want = written(&f, &one);
        let small_tables = |e: &compaction::VersionEdit| e.added.iter().filter(|(_, m)| m.size < target).count();
        assert_eq!(small_tables(&one), 1, "one thread: only the last table is short");
        let mut last = None;
        for parts in [2, 3, 8] {
            let split = compaction::Compaction { max_subcompactions: parts, ..c.clone() };
            let edit = run_compaction(&f.ctx, &split, &snapshots, &|| f.vs.new_file_number()).unwrap();
            // Same versions kept, same tombstones dropped or kept, same order;
            // each part writes tables of its own, the last of them usually short.
            assert_eq!(written(&f, &edit), want, "seed {seed}, {parts} parts");
            assert!(edit.added.len() >= parts, "seed {seed}: {parts} parts, {} tables", edit.added.len());
            if parts == 8 {
                assert!(small_tables(&edit) > 2 && edit.added.len() > one.added.len(), "seed {seed}: 8 parts, {} tables", edit.added.len());
            }
            assert_eq!(edit.deleted, one.deleted);
            last = Some(edit);
        }
        // Installed, the split result reads back right at every snapshot.
        f.vs.log_and_apply(last.unwrap()).unwrap();
        check_all(&f, &f.ctx.tables, &f.vs.current(), &model, &snapshots, 600);
    }
}

#[test]
fn a_failure_in_one_part_removes_the_outputs_of_every_part() {
    let f = fixture();
    let (model, snapshots, c) = layered(&f, 41, true);
    let c = compaction::Compaction { max_subcompactions: 4, ..c };
    let before: HashSet<PathBuf> = f.sim.list_files().into_iter().collect();
    let check_untouched = |what: &str| {
        let after: HashSet<PathBuf> = f.sim.list_files().into_iter().collect();
        assert_eq!(after, before, "{what}: outputs left behind");
        check_all(&f, &f.ctx.tables, &f.vs.current(), &model, &snapshots, 600);
    };
    // Damage in the last L1 table fails the last part only, after the other
    // parts may have written (and synced) all their tables.
    let victim = c.next_inputs.last().unwrap().clone();
    let path = f.dir.join(format!("{:06}.sst", victim.number));
    let original = f.sim.read_live(&path).unwrap();
    f.sim.corrupt_byte(&path, original.len() as u64 / 2, 0x01).unwrap();
    f.ctx.tables.evict(victim.number);
    let err = run_compaction(&f.ctx, &c, &snapshots, &|| f.vs.new_file_number()).unwrap_err();
    assert!(err.to_string().contains(&format!("{:06}.sst", victim.number)), "{err}");
    assert_eq!(f.sim.list_files().into_iter().collect::<HashSet<_>>(), before, "damaged input: outputs left behind");
    f.sim.corrupt_byte(&path, original.len() as u64 / 2, 0x01).unwrap();
    f.ctx.tables.evict(victim.number);
    check_untouched("damage undone");
    // Every failed write or sync, wherever it lands: all or nothing.
    let mut failed = 0;
    for (k, sync) in (0..40).map(|k| (k, false)).chain((0..12).map(|k| (k, true))) {
        if sync {
            f.sim.fail_sync_after(k);
        } else {
            f.sim.fail_write_after(k);
        }
        let result = run_compaction(&f.ctx, &c, &snapshots, &|| f.vs.new_file_number());
        f.sim.clear_faults();
        match result {
            Err(_) => {
                failed += 1;
                check_untouched(&format!("failure after {k} (sync: {sync})"));
            }
            Ok(edit) => {
                // Nothing failed: the outputs are whole; drop them unused.
                for (_, m) in &edit.added {
                    f.vfs.remove_file(&f.dir.join(format!("{:06}.sst", m.number))).unwrap();
                }
            }
        }
    }
    eprintln!("{failed} failed");
}

#[test]
fn a_flush_in_parts_writes_the_memtable_as_disjoint_tables() {
    let f = fixture();
    let (_, _, _) = layered(&f, 51, true);
    let like: Vec<Arc<compaction::FileMeta>> = (0..LEVELS).flat_map(|l| f.vs.current().level_files(l).to_vec()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(52);
    let mem = Arc::new(Memtable::new(f.vs.new_file_number()));
    for seqno in 10_000..12_000 {
        let k = key(rng.gen_range(0..600));
        let kind = if rng.gen_bool(0.3) { ValueKind::Delete } else { ValueKind::Put };
        mem.insert(&k, seqno, kind, if kind == ValueKind::Put { b"a value of some length, to fill tables" } else { b"" });
    }
    let mut want = Vec::new();
    let mut it = mem.iter(KeyRange::all(), Direction::Forward);
    while let Some(e) = it.next_entry().unwrap() {
        want.push(e);
    }
    for (parts, like) in [(1, &like[..]), (4, &like[..]), (4, &[][..])] {
        let tables = compaction::flush_memtable_in_parts(&f.ctx, &TableHooks::default(), &mem, like, parts, &|| f.vs.new_file_number()).unwrap();
        let edit = compaction::VersionEdit { added: tables.iter().map(|m| (0, m.clone())).collect(), ..Default::default() };
        assert_eq!(written(&f, &edit), want, "{parts} parts, {} tables to follow", like.len());
        let expect = if like.is_empty() { 1 } else { parts };
        assert_eq!(tables.len(), expect, "{parts} parts, {} tables to follow", like.len());
    }
    // A failed write in any part leaves no table behind.
    let before: HashSet<PathBuf> = f.sim.list_files().into_iter().collect();
    let mut k = 0;
    while let Err(e) = {
        f.sim.fail_write_after(k);
        let result = compaction::flush_memtable_in_parts(&f.ctx, &TableHooks::default(), &mem, &like, 4, &|| f.vs.new_file_number());
        f.sim.clear_faults();
        result
    } {
        assert_eq!(f.sim.list_files().into_iter().collect::<HashSet<_>>(), before, "write #{k} failed ({e}): tables left behind");
        k += 1;
    }
    assert!(k >= 4, "four tables need at least four writes, the flush failed only {k} times");
}

/// A range tombstone of the version: the compaction drops every entry it hides
/// unless a snapshot lies between the two, and retires the tombstone in its own
/// edit once no output kept anything under it.
#[test]
fn range_tombstones_drop_what_they_hide_unless_a_snapshot_needs_it() {
    use compaction::{run_compaction_with, TableHooks, VersionEdit};
    use index::RangeTombstone;
    for with_snapshots in [false, true] {
        let f = fixture();
        let (model, snapshots, c) = layered(&f, 21, true);
        let snapshots = if with_snapshots { snapshots } else { Vec::new() };
        let seqno = model.keys().map(|(_, s)| *s).max().unwrap() + 1;
        let t = RangeTombstone { keyspace: 0, start: key(100), end: key(300), seqno };
        f.vs.log_and_apply(VersionEdit { last_seqno: Some(seqno), added_range_tombstones: vec![t.clone()], ..Default::default() })
            .unwrap();
        let version = f.vs.current();
        let edit = run_compaction_with(&f.ctx, &c, &snapshots, &TableHooks::default(), &version, &|| f.vs.new_file_number())
            .unwrap()
            .edit;
        let all = written(&f, &edit);
        let under: Vec<_> = all.iter().filter(|e| t.contains(0, &e.key.user_key)).collect();
        assert!(all.len() > under.len(), "keys outside the range stay");
        if with_snapshots {
            assert!(!under.is_empty(), "the snapshots read some of the hidden keys");
            for e in &under {
                assert!(snapshots.iter().any(|&s| e.key.seqno <= s && s < seqno), "{:?} kept with no snapshot to read it", e.key);
            }
            assert!(edit.dropped_range_tombstones.is_empty(), "entries kept under the tombstone keep it");
        } else {
            assert!(under.is_empty(), "{} hidden entries kept", under.len());
            assert_eq!(edit.dropped_range_tombstones, vec![seqno], "nothing older is left under it");
        }
        f.vs.log_and_apply(edit).unwrap();
        assert_eq!(f.vs.current().range_tombstones().len(), usize::from(with_snapshots));
        // Reads at every snapshot see what the model says, under the tombstone.
        for &s in &snapshots {
            for i in (100..300).step_by(7) {
                let got = f.vs.current().get(&f.ctx.tables, &key(i), s).unwrap();
                let want = expected(&model, &key(i), s);
                assert_eq!(got.filter(|(_, kind, _)| *kind == ValueKind::Put).map(|(sq, _, v)| (sq, v)), want, "key {i} at {s}");
            }
        }
    }
}
