//! SSTable tests through the public API: round trips against a `BTreeMap` model under
//! several option sets, damage to every byte of a file, truncation, the canary check,
//! the caches, and the space used on disk.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use crypto::vfs::{RandomAccessFile, StdVfs, Vfs};
use crypto::KeyManager;
use index::{
    salvage_table, BlockCache, Compression, Direction, Entry, Error, InternalIterator, InternalKey, KeyRange, Memtable,
    MergingIterator, SeqNo, TableBuilder, TableCache, TableInfo, TableOptions, TableReader, ValueKind, MAX_SEQNO,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// user key -> seqno -> (kind, value)
type Model = BTreeMap<Vec<u8>, BTreeMap<SeqNo, (ValueKind, Vec<u8>)>>;

/// A file held in memory, so a damaged copy can be read without touching the disk.
struct MemFile(Vec<u8>);

impl RandomAccessFile for MemFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let src = self.0.get(start..start + buf.len()).ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
}

fn model_get(m: &Model, k: &[u8], snap: SeqNo) -> Option<(SeqNo, ValueKind, Vec<u8>)> {
    let (s, (kind, v)) = m.get(k)?.range(..=snap).next_back()?;
    Some((*s, *kind, v.clone()))
}

/// Every entry of the model in ascending internal-key order.
fn model_entries(m: &Model) -> Vec<Entry> {
    m.iter()
        .flat_map(|(k, vs)| {
            vs.iter().rev().map(move |(s, (kind, v))| Entry { key: InternalKey::new(k.clone(), *s, *kind), value: v.clone() })
        })
        .collect()
}

fn key_of(i: usize) -> Vec<u8> {
    format!("user/{:05}", i * 7).into_bytes()
}

/// `keys` user keys, `entries` versions spread over them with distinct random seqnos,
/// a mix of compressible and random values, and some tombstones.
fn random_model(seed: u64, keys: usize, entries: usize) -> Model {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seqnos: Vec<SeqNo> = (1..=entries as u64).collect();
    for i in (1..seqnos.len()).rev() {
        seqnos.swap(i, rng.gen_range(0..=i));
    }
    let mut m = Model::new();
    for (n, seq) in seqnos.into_iter().enumerate() {
        let k = key_of(if n < keys { n } else { rng.gen_range(0..keys) });
        let kind = match rng.gen_range(0..10) {
            0 => ValueKind::Delete,
            1 => ValueKind::Merge,
            _ => ValueKind::Put,
        };
        let value = match kind {
            ValueKind::Delete => Vec::new(),
            _ if rng.gen_bool(0.5) => format!("value of {} at {seq}, ", String::from_utf8_lossy(&k)).repeat(rng.gen_range(1..4)).into_bytes(),
            _ => (0..rng.gen_range(0..120)).map(|_| rng.gen()).collect(),
        };
        m.entry(k).or_default().insert(seq, (kind, value));
    }
    m
}

fn build(vfs: &StdVfs, dir: &Path, keys: &KeyManager, file_id: u64, entries: &[Entry], options: TableOptions) -> TableInfo {
    let name = format!("{file_id:06}.sst");
    let file = vfs.create(&dir.join(&name)).unwrap();
    let mut b = TableBuilder::new(file, keys, file_id, &name, options).unwrap();
    for e in entries {
        b.add(&e.key, &e.value).unwrap();
    }
    assert_eq!(b.entries(), entries.len() as u64);
    let info = b.finish().unwrap();
    assert_eq!(info.file_size, vfs.file_size(&dir.join(&name)).unwrap());
    info
}

fn open(vfs: &StdVfs, dir: &Path, keys: &KeyManager, file_id: u64, cache: Option<Arc<BlockCache>>) -> Arc<TableReader> {
    let name = format!("{file_id:06}.sst");
    TableReader::open(vfs.open(&dir.join(&name)).unwrap(), keys, file_id, &name, cache).unwrap()
}

fn collect(mut it: Box<dyn InternalIterator>) -> Result<Vec<Entry>, Error> {
    let mut out = Vec::new();
    while let Some(e) = it.next_entry()? {
        out.push(e);
    }
    Ok(out)
}

fn ranges() -> Vec<KeyRange> {
    vec![
        KeyRange::all(),
        KeyRange { start: Bound::Included(key_of(100)), end: Bound::Excluded(key_of(500)) },
        KeyRange { start: Bound::Excluded(key_of(100)), end: Bound::Included(key_of(500)) },
        KeyRange { start: Bound::Unbounded, end: Bound::Included(key_of(50)) },
        KeyRange { start: Bound::Included(key_of(1900)), end: Bound::Unbounded },
        KeyRange { start: Bound::Included(key_of(7)), end: Bound::Included(key_of(7)) },
        // Bounds that fall between keys, before all keys, and after all keys.
        KeyRange { start: Bound::Included(b"user/00010x".to_vec()), end: Bound::Excluded(b"user/01000x".to_vec()) },
        KeyRange { start: Bound::Unbounded, end: Bound::Excluded(b"a".to_vec()) },
        KeyRange { start: Bound::Excluded(b"z".to_vec()), end: Bound::Unbounded },
    ]
}

fn check_against_model(table: &Arc<TableReader>, model: &Model) {
    let all = model_entries(model);
    let max_seq = all.iter().map(|e| e.key.seqno).max().unwrap();
    for snap in [0, 1, 2, max_seq / 4, max_seq / 2, max_seq - 1, max_seq, MAX_SEQNO, u64::MAX] {
        for k in model.keys() {
            assert_eq!(table.get(k, snap).unwrap(), model_get(model, k, snap), "{k:?} @ {snap}");
        }
    }
    for absent in [b"".to_vec(), b"a".to_vec(), b"user/00001".to_vec(), b"user/999999".to_vec(), b"zzz".to_vec()] {
        assert_eq!(table.get(&absent, MAX_SEQNO).unwrap(), None);
    }
    for range in ranges() {
        let want: Vec<Entry> = all.iter().filter(|e| range.contains(&e.key.user_key)).cloned().collect();
        assert_eq!(collect(table.iter(range.clone(), Direction::Forward)).unwrap(), want, "forward {range:?}");
        let mut rev = collect(table.iter(range.clone(), Direction::Reverse)).unwrap();
        rev.reverse();
        assert_eq!(rev, want, "reverse {range:?}");
    }
    assert_eq!(table.verify().unwrap(), all.len() as u64);
}

#[test]
fn table_round_trip_matches_model_under_all_option_sets() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = StdVfs::new();
    let keys = KeyManager::ephemeral();
    let model = random_model(1, 2000, 10_000);
    let entries = model_entries(&model);
    let mut file_id = 10;
    for compression in [Compression::None, Compression::Zstd(3)] {
        for (block_size_bytes, restart_interval) in [(4096, 16), (512, 1), (64 << 10, 128)] {
            for with_cache in [false, true] {
                file_id += 1;
                let options = TableOptions { block_size_bytes, restart_interval, compression, bloom_bits_per_key: if with_cache { 10 } else { 0 } };
                let info = build(&vfs, dir.path(), &keys, file_id, &entries, options.clone());
                assert_eq!(info.entries, entries.len() as u64);
                assert_eq!(info.smallest, entries[0].key);
                assert_eq!(info.largest, entries.last().unwrap().key);
                assert_eq!((info.min_seqno, info.max_seqno), (1, 10_000));
                let cache = with_cache.then(|| BlockCache::new(1 << 20));
                let table = open(&vfs, dir.path(), &keys, file_id, cache.clone());
                assert_eq!(table.info(), &info);
                check_against_model(&table, &model);
                if let Some(cache) = cache {
                    let (hits, misses) = cache.hit_stats();
                    assert!(hits > 0 && misses > 0, "{options:?}: hits {hits} misses {misses}");
                    assert!(cache.used_bytes() > 0 && cache.used_bytes() <= 1 << 20);
                }
            }
        }
    }
}

/// The whole-file worked example of `index/FORMAT.md`: three entries, one data block,
/// no compression, a bloom filter.
#[test]
fn worked_example_layout_matches_format_doc() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = StdVfs::new();
    let keys = KeyManager::ephemeral();
    let entries = vec![
        Entry { key: InternalKey::new(b"apple".to_vec(), 3, ValueKind::Put), value: b"red".to_vec() },
        Entry { key: InternalKey::new(b"apple".to_vec(), 1, ValueKind::Delete), value: Vec::new() },
        Entry { key: InternalKey::new(b"apricot".to_vec(), 2, ValueKind::Put), value: b"sweet".to_vec() },
    ];
    let options = TableOptions { block_size_bytes: 4096, restart_interval: 2, compression: Compression::None, bloom_bits_per_key: 10 };
    let info = build(&vfs, dir.path(), &keys, 7, &entries, options);
    assert_eq!(info.file_size, 437);
    let bytes = vfs.read_all(&dir.path().join("000007.sst")).unwrap();
    // Footer: meta handle (offset 356, size 53), version 1, reserved, crc, magic.
    let footer = &bytes[409..];
    assert_eq!(&footer[..8], &356u64.to_le_bytes());
    assert_eq!(&footer[8..12], &53u32.to_le_bytes());
    assert_eq!(&footer[12..16], &[1, 0, 0, 0]);
    assert_eq!(&footer[20..], b"SYNSST\x01\x00");
    let t = open(&vfs, dir.path(), &keys, 7, None);
    assert_eq!(t.get(b"apple", 2).unwrap(), Some((1, ValueKind::Delete, Vec::new())));
    assert_eq!(t.get(b"apple", 3).unwrap(), Some((3, ValueKind::Put, b"red".to_vec())));
    assert_eq!(t.verify().unwrap(), 3);
}

#[test]
fn compression_shrinks_compressible_tables() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = StdVfs::new();
    let keys = KeyManager::ephemeral();
    let entries: Vec<Entry> = (0..5000u64)
        .map(|i| Entry { key: InternalKey::new(key_of(i as usize), i + 1, ValueKind::Put), value: b"the same words again and again ".repeat(4) })
        .collect();
    let plain = build(&vfs, dir.path(), &keys, 1, &entries, TableOptions { compression: Compression::None, ..TableOptions::default() });
    let zstd = build(&vfs, dir.path(), &keys, 2, &entries, TableOptions { compression: Compression::Zstd(3), ..TableOptions::default() });
    assert!(zstd.file_size * 3 < plain.file_size, "zstd {} vs plain {}", zstd.file_size, plain.file_size);
    for id in [1, 2] {
        let t = open(&vfs, dir.path(), &keys, id, None);
        assert_eq!(collect(t.iter(KeyRange::all(), Direction::Forward)).unwrap(), entries);
    }
}

/// Whether `e` is a corruption error naming `name`.
fn is_corruption_of(e: &Error, name: &str) -> bool {
    matches!(e, Error::Corruption { file, .. } if file == name)
}

/// Builds a small table (a few KiB, several blocks of every kind) and returns its bytes.
fn small_table(keys: &KeyManager, compression: Compression) -> (Vec<u8>, Model) {
    let dir = tempfile::tempdir().unwrap();
    let vfs = StdVfs::new();
    let model = random_model(2, 40, 70);
    let options = TableOptions { block_size_bytes: 512, restart_interval: 4, compression, bloom_bits_per_key: 10 };
    build(&vfs, dir.path(), keys, 5, &model_entries(&model), options);
    (vfs.read_all(&dir.path().join("000005.sst")).unwrap(), model)
}

#[test]
fn every_flipped_byte_is_detected_and_never_yields_wrong_data() {
    let keys = KeyManager::ephemeral();
    let name = "000005.sst";
    for compression in [Compression::None, Compression::Zstd(1)] {
        let (bytes, model) = small_table(&keys, compression);
        assert!((2048..16384).contains(&bytes.len()), "{} bytes", bytes.len());
        let all = model_entries(&model);
        // Sanity: the undamaged copy reads back fully through the in-memory file.
        let good = TableReader::open(Arc::new(MemFile(bytes.clone())), &keys, 5, name, None).unwrap();
        check_against_model(&good, &model);
        let mut open_failures = 0;
        for pos in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[pos] ^= 1 << (pos % 8);
            let table = match TableReader::open(Arc::new(MemFile(bad)), &keys, 5, name, Some(BlockCache::new(1 << 16))) {
                Ok(t) => t,
                Err(e) => {
                    // Header damage may surface as a crypto error (unknown version or epoch);
                    // it must still name the file.
                    assert!(is_corruption_of(&e, name) || (pos < 84 && e.to_string().contains(name)), "open, flip at {pos}: {e:?}");
                    open_failures += 1;
                    continue;
                }
            };
            for k in model.keys() {
                for snap in [10, 40, MAX_SEQNO] {
                    match table.get(k, snap) {
                        Ok(got) => assert_eq!(got, model_get(&model, k, snap), "get, flip at {pos}"),
                        Err(e) => assert!(is_corruption_of(&e, name), "get, flip at {pos}: {e:?}"),
                    }
                }
            }
            for direction in [Direction::Forward, Direction::Reverse] {
                let mut want = all.clone();
                if direction == Direction::Reverse {
                    want.reverse();
                }
                let mut it = table.iter(KeyRange::all(), direction);
                let mut n = 0;
                loop {
                    match it.next_entry() {
                        Ok(Some(e)) => {
                            assert_eq!(Some(&e), want.get(n), "iter {direction:?}, flip at {pos}");
                            n += 1;
                        }
                        Ok(None) => {
                            assert_eq!(n, want.len(), "iter {direction:?} ended early, flip at {pos}");
                            break;
                        }
                        Err(e) => {
                            assert!(is_corruption_of(&e, name), "iter, flip at {pos}: {e:?}");
                            break;
                        }
                    }
                }
            }
            // Every byte is authenticated, so whatever open let through, verify catches.
            let err = table.verify().expect_err(&format!("verify missed the flip at {pos}"));
            assert!(is_corruption_of(&err, name), "verify, flip at {pos}: {err:?}");
        }
        assert!(open_failures > 0);
    }
}

#[test]
fn truncated_files_fail_cleanly() {
    let keys = KeyManager::ephemeral();
    let name = "000005.sst";
    let (bytes, _) = small_table(&keys, Compression::Zstd(1));
    for len in 0..bytes.len() {
        let err = TableReader::open(Arc::new(MemFile(bytes[..len].to_vec())), &keys, 5, name, None).unwrap_err();
        assert!(is_corruption_of(&err, name), "truncated to {len}: {err:?}");
    }
    // Bytes appended after the footer are refused too.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0u8; 7]);
    assert!(is_corruption_of(&TableReader::open(Arc::new(MemFile(longer)), &keys, 5, name, None).unwrap_err(), name));
}

#[test]
fn wrong_key_or_wrong_file_id_is_refused() {
    let keys = KeyManager::ephemeral();
    let (bytes, _) = small_table(&keys, Compression::None);
    let other = KeyManager::ephemeral();
    let err = TableReader::open(Arc::new(MemFile(bytes.clone())), &other, 5, "000005.sst", None).unwrap_err();
    assert!(is_corruption_of(&err, "000005.sst"), "{err:?}");
    // A table renamed to another number is not taken for that table.
    let err = TableReader::open(Arc::new(MemFile(bytes)), &keys, 6, "000006.sst", None).unwrap_err();
    assert!(is_corruption_of(&err, "000006.sst"), "{err:?}");
}

#[test]
fn canary_never_reaches_the_file() {
    let canary = b"CANARY-7f3a9c-SECRET";
    for compression in [Compression::None, Compression::Zstd(3)] {
        let dir = tempfile::tempdir().unwrap();
        let vfs = StdVfs::new();
        let keys = KeyManager::ephemeral();
        let entries: Vec<Entry> = (0..500u64)
            .map(|i| {
                let mut k = canary.to_vec();
                k.extend_from_slice(format!("{i:05}").as_bytes());
                Entry { key: InternalKey::new(k, i + 1, ValueKind::Put), value: canary.repeat(3) }
            })
            .collect();
        build(&vfs, dir.path(), &keys, 9, &entries, TableOptions { compression, ..TableOptions::default() });
        let bytes = vfs.read_all(&dir.path().join("000009.sst")).unwrap();
        // Neither the canary nor any 8-byte piece of it appears.
        for piece in canary.windows(8) {
            assert!(!bytes.windows(piece.len()).any(|w| w == piece), "{compression:?}: found {:?}", String::from_utf8_lossy(piece));
        }
        let t = open(&vfs, dir.path(), &keys, 9, None);
        assert_eq!(t.get(&entries[42].key.user_key, MAX_SEQNO).unwrap().unwrap().2, canary.repeat(3));
    }
}

#[test]
fn builder_refuses_out_of_order_keys_and_empty_tables() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = StdVfs::new();
    let keys = KeyManager::ephemeral();
    let mk = |id: u64| {
        let name = format!("{id:06}.sst");
        TableBuilder::new(vfs.create(&dir.path().join(&name)).unwrap(), &keys, id, &name, TableOptions::default()).unwrap()
    };
    let mut b = mk(1);
    b.add(&InternalKey::new(b"b".to_vec(), 5, ValueKind::Put), b"x").unwrap();
    for bad in [
        InternalKey::new(b"b".to_vec(), 5, ValueKind::Put),
        InternalKey::new(b"b".to_vec(), 6, ValueKind::Put),
        InternalKey::new(b"a".to_vec(), 1, ValueKind::Put),
    ] {
        assert!(matches!(b.add(&bad, b"y"), Err(Error::InvalidArgument(_))), "{bad:?} accepted");
    }
    b.add(&InternalKey::new(b"b".to_vec(), 4, ValueKind::Put), b"z").unwrap();
    assert_eq!(b.entries(), 2);
    assert!(b.estimated_size() > 84);
    b.finish().unwrap();
    assert!(matches!(mk(2).finish(), Err(Error::InvalidArgument(_))));
    let mut b = mk(3);
    assert!(b.add(&InternalKey::new(b"k".to_vec(), MAX_SEQNO + 1, ValueKind::Put), b"").is_err());
}

#[test]
fn block_cache_stays_within_capacity_and_counts_hits() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = StdVfs::new();
    let keys = KeyManager::ephemeral();
    let model = random_model(3, 2000, 10_000);
    build(&vfs, dir.path(), &keys, 1, &model_entries(&model), TableOptions::default());
    let capacity = 64 << 10;
    let cache = BlockCache::new(capacity);
    let table = open(&vfs, dir.path(), &keys, 1, Some(cache.clone()));
    for k in model.keys() {
        assert_eq!(table.get(k, MAX_SEQNO).unwrap(), model_get(&model, k, MAX_SEQNO));
        assert!(cache.used_bytes() <= capacity);
    }
    let (_, misses) = cache.hit_stats();
    assert!(misses > 0);
    // A hot key is served from the cache.
    let hot = model.keys().next().unwrap();
    let (hits_before, misses_before) = cache.hit_stats();
    for _ in 0..100 {
        table.get(hot, MAX_SEQNO).unwrap();
    }
    let (hits, misses) = cache.hit_stats();
    assert!(hits >= hits_before + 99 && misses <= misses_before + 1, "{hits} {misses}");
}

#[test]
fn table_cache_opens_shares_and_evicts() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = StdVfs::new();
    let keys = KeyManager::ephemeral();
    let model = random_model(4, 100, 300);
    build(&vfs, dir.path(), &keys, 12, &model_entries(&model), TableOptions::default());
    assert_eq!(TableCache::table_path(dir.path(), 12), dir.path().join("000012.sst"));
    let tc = TableCache::new(Arc::new(vfs), dir.path().to_path_buf(), keys, Some(BlockCache::new(1 << 20)));
    let a = tc.get(12).unwrap();
    let b = tc.get(12).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    tc.evict(12);
    let c = tc.get(12).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    check_against_model(&c, &model);
    let err = tc.get(13).unwrap_err();
    assert!(matches!(&err, Error::Io { file, .. } if file == "000013.sst"), "{err:?}");
}

/// A bounded cache keeps at most its capacity of readers open, closes the least
/// recently used one first, and reopens a closed table with the same contents.
#[test]
fn bounded_table_cache_closes_the_least_recently_used_reader() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = StdVfs::new();
    let keys = KeyManager::ephemeral();
    let models: Vec<_> = (0..5u64).map(|n| random_model(20 + n, 50, 120)).collect();
    for (n, model) in (1u64..).zip(&models) {
        build(&vfs, dir.path(), &keys, n, &model_entries(model), TableOptions::default());
    }
    let tc = TableCache::with_capacity(Arc::new(vfs), dir.path().to_path_buf(), keys, None, Some(3));
    assert_eq!(tc.capacity(), Some(3));
    let one = tc.get(1).unwrap();
    let two = tc.get(2).unwrap();
    tc.get(3).unwrap();
    assert_eq!(tc.open_count(), 3);
    // Table 1 is used again, so table 2 is now the one unused the longest.
    assert!(Arc::ptr_eq(&one, &tc.get(1).unwrap()));
    let four = tc.get(4).unwrap();
    assert_eq!(tc.open_count(), 3, "the cache never holds more than its capacity");
    // Opening 5 closes 1 or 3 (neither used since 4 was opened), never 4.
    tc.get(5).unwrap();
    assert_eq!(tc.open_count(), 3);
    assert!(Arc::ptr_eq(&four, &tc.get(4).unwrap()), "the most recently opened reader stayed open");
    // 2 was closed for 4: it comes back as a new reader with the same contents.
    let two_again = tc.get(2).unwrap();
    assert!(!Arc::ptr_eq(&two, &two_again), "the reader unused the longest was closed first");
    check_against_model(&two_again, &models[1]);
    // Every table reads correctly through the cache, however often it is reopened.
    for round in 0..3 {
        for (n, model) in (1u64..).zip(&models) {
            check_against_model(&tc.get(n).unwrap(), model);
            assert!(tc.open_count() <= 3, "round {round}");
        }
    }
    tc.retain(|n| n == 5);
    assert_eq!(tc.open_count(), 1);
}

/// Salvage of a damaged table, for every single flipped byte: it never returns
/// an entry the table did not hold, always reports the damage, loses only the
/// damaged data block, and loses nothing to a damaged filter or properties block.
/// Two damaged blocks cost exactly those two.
#[test]
fn salvage_keeps_every_undamaged_block() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = StdVfs::new();
    let keys = KeyManager::ephemeral();
    let model = random_model(77, 60, 90);
    let all = model_entries(&model);
    let options = TableOptions { block_size_bytes: 256, compression: Compression::None, ..TableOptions::default() };
    build(&vfs, dir.path(), &keys, 5, &all, options);
    let bytes = std::fs::read(dir.path().join("000005.sst")).unwrap();
    let salvage = |bytes: Vec<u8>| {
        let mut got = Vec::new();
        let s = salvage_table(&MemFile(bytes), &keys, 5, "000005.sst", &mut |e| got.push(e));
        assert_eq!(s.entries, got.len() as u64);
        (s, got)
    };
    let (intact, got) = salvage(bytes.clone());
    assert!(intact.damage.is_empty(), "{:?}", intact.damage);
    assert_eq!(got, all);
    assert!(intact.blocks > 4, "the test needs several blocks, got {}", intact.blocks);
    assert_eq!((intact.blocks_read, intact.entries_expected), (intact.blocks, Some(all.len() as u64)));

    let (mut tail_damage_lost_nothing, mut one_block_lost) = (0, Vec::new());
    for pos in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[pos] ^= 0x10;
        let (s, got) = salvage(damaged);
        assert!(!s.damage.is_empty(), "flipped byte {pos} went unnoticed");
        // Only real entries, in order: the salvaged ones are a subsequence of the table.
        let mut rest = all.iter();
        for e in &got {
            assert!(rest.any(|a| a == e), "byte {pos}: salvage returned an entry the table does not hold: {e:?}");
        }
        if s.blocks == 0 {
            assert!(got.is_empty(), "byte {pos}");
        } else if s.blocks_lost() == 0 {
            assert_eq!(got.len(), all.len(), "byte {pos}: no block lost but entries missing");
            tail_damage_lost_nothing += 1;
        } else {
            assert_eq!(s.blocks_lost(), 1, "byte {pos}: one flipped byte costs one block");
            assert!(!got.is_empty() && got.len() < all.len(), "byte {pos}");
            if let Some(Error::Corruption { offset, .. }) = s.damage.first() {
                one_block_lost.push((pos, *offset, all.len() - got.len()));
            }
        }
    }
    assert!(tail_damage_lost_nothing > 0, "a damaged filter or properties block must cost no entry");
    let (first, last) = (one_block_lost.first().copied().unwrap(), one_block_lost.last().copied().unwrap());
    assert_ne!(first.1, last.1, "damage in the first and the last data block");
    let mut damaged = bytes.clone();
    damaged[first.0] ^= 0x10;
    damaged[last.0] ^= 0x10;
    let (s, got) = salvage(damaged);
    assert_eq!(s.blocks_lost(), 2);
    assert_eq!(got.len(), all.len() - first.2 - last.2, "exactly the two damaged blocks' entries are lost");
}

/// After a run of incompressible blocks the builder stops trying to compress
/// for a while, but tries again, so data that becomes compressible later in the
/// table is still compressed.
#[test]
fn compression_resumes_after_incompressible_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = StdVfs::new();
    let keys = KeyManager::ephemeral();
    let mut rng = StdRng::seed_from_u64(9);
    let entries: Vec<Entry> = (0..20_000u64)
        .map(|i| {
            let value: Vec<u8> = if i < 1_000 { (0..150).map(|_| rng.gen()).collect() } else { vec![b'a'; 150] };
            Entry { key: InternalKey::new(format!("key{i:08}").into_bytes(), i + 1, ValueKind::Put), value }
        })
        .collect();
    let zstd = build(&vfs, dir.path(), &keys, 1, &entries, TableOptions::default());
    let plain = build(&vfs, dir.path(), &keys, 2, &entries, TableOptions { compression: Compression::None, ..TableOptions::default() });
    assert!(zstd.file_size * 3 < plain.file_size, "compressed {} vs plain {}", zstd.file_size, plain.file_size);
    let table = open(&vfs, dir.path(), &keys, 1, None);
    assert_eq!(collect(table.iter(KeyRange::all(), Direction::Forward)).unwrap(), entries);
}

#[test]
fn merging_memtable_and_tables_matches_model() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = StdVfs::new();
    let keys = KeyManager::ephemeral();
    let model = random_model(5, 500, 6000);
    let all = model_entries(&model);
    // Split the entries by seqno into two tables and a memtable, as flushes would.
    let part = |lo: u64, hi: u64| all.iter().filter(|e| e.key.seqno > lo && e.key.seqno <= hi).cloned().collect::<Vec<_>>();
    build(&vfs, dir.path(), &keys, 1, &part(0, 2000), TableOptions::default());
    build(&vfs, dir.path(), &keys, 2, &part(2000, 4000), TableOptions { compression: Compression::None, ..TableOptions::default() });
    let mem = Arc::new(Memtable::new(3));
    for e in part(4000, 6000) {
        mem.insert(&e.key.user_key, e.key.seqno, e.key.kind, &e.value);
    }
    let t1 = open(&vfs, dir.path(), &keys, 1, None);
    let t2 = open(&vfs, dir.path(), &keys, 2, None);
    for range in ranges() {
        for direction in [Direction::Forward, Direction::Reverse] {
            let children = vec![mem.iter(range.clone(), direction), t1.iter(range.clone(), direction), t2.iter(range.clone(), direction)];
            let mut got = collect(Box::new(MergingIterator::new(children, direction))).unwrap();
            if direction == Direction::Reverse {
                got.reverse();
            }
            let want: Vec<Entry> = all.iter().filter(|e| range.contains(&e.key.user_key)).cloned().collect();
            assert_eq!(got, want, "{range:?} {direction:?}");
        }
    }
}

/// Walks `it` with `advance` and `current`, checking the cursor's contract: no
/// entry before the first step, the same entry however often it is asked for,
/// none after the end (and the end stays). Returns the entries, copied.
fn walk(mut it: Box<dyn InternalIterator>) -> Vec<Entry> {
    assert!(it.current().is_none(), "an entry before the first advance");
    let mut out = Vec::new();
    while it.advance().unwrap() {
        let e = it.current().expect("advance reported an entry");
        assert_eq!(it.current(), Some(e));
        out.push(e.to_entry());
    }
    assert!(it.current().is_none(), "an entry after the end");
    assert!(!it.advance().unwrap() && it.current().is_none(), "the end did not stay");
    out
}

/// Borrowed entries through the cursor of every iterator kind: a table read
/// across many small blocks (the block cursor's key buffer reused from block to
/// block), a memtable, and the merge of both with a second table, in both
/// directions and over every test range; they equal the owned entries.
#[test]
fn cursors_lend_the_same_entries_as_next_entry() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = StdVfs::new();
    let keys = KeyManager::ephemeral();
    let model = random_model(8, 400, 3000);
    let all = model_entries(&model);
    let part = |lo: u64, hi: u64| all.iter().filter(|e| e.key.seqno > lo && e.key.seqno <= hi).cloned().collect::<Vec<_>>();
    let small_blocks = TableOptions { block_size_bytes: 200, restart_interval: 3, ..TableOptions::default() };
    build(&vfs, dir.path(), &keys, 1, &part(0, 1500), small_blocks);
    build(&vfs, dir.path(), &keys, 2, &part(1500, 2500), TableOptions::default());
    let mem = Arc::new(Memtable::new(3));
    for e in part(2500, 3000) {
        mem.insert(&e.key.user_key, e.key.seqno, e.key.kind, &e.value);
    }
    let cache = BlockCache::new(1 << 20);
    let t1 = open(&vfs, dir.path(), &keys, 1, Some(cache.clone()));
    let t2 = open(&vfs, dir.path(), &keys, 2, Some(cache));
    for range in ranges() {
        for direction in [Direction::Forward, Direction::Reverse] {
            let ordered = |mut v: Vec<Entry>| {
                if direction == Direction::Reverse {
                    v.reverse();
                }
                v
            };
            let in_range = |v: Vec<Entry>| v.into_iter().filter(|e| range.contains(&e.key.user_key)).collect::<Vec<_>>();
            assert_eq!(walk(t1.iter(range.clone(), direction)), ordered(in_range(part(0, 1500))), "table {range:?} {direction:?}");
            assert_eq!(walk(mem.iter(range.clone(), direction)), ordered(in_range(part(2500, 3000))), "memtable {range:?} {direction:?}");
            let children = vec![mem.iter(range.clone(), direction), t1.iter(range.clone(), direction), t2.iter(range.clone(), direction)];
            let merged = walk(Box::new(MergingIterator::new(children, direction)));
            assert_eq!(merged, ordered(in_range(all.clone())), "merged {range:?} {direction:?}");
        }
    }
}

/// Space used on disk by random, incompressible data. Run with `--nocapture` to see
/// the numbers.
#[test]
fn space_overhead_of_random_data() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = StdVfs::new();
    let keys = KeyManager::ephemeral();
    let mut rng = StdRng::seed_from_u64(9);
    let mut kvs: Vec<(Vec<u8>, Vec<u8>)> = (0..100_000)
        .map(|_| ((0..24).map(|_| rng.gen()).collect(), (0..150).map(|_| rng.gen()).collect()))
        .collect();
    kvs.sort();
    kvs.dedup_by(|a, b| a.0 == b.0);
    let raw: u64 = kvs.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
    let entries: Vec<Entry> = kvs.into_iter().enumerate().map(|(i, (k, v))| Entry { key: InternalKey::new(k, i as u64 + 1, ValueKind::Put), value: v }).collect();
    for (id, compression) in [(1, Compression::None), (2, Compression::Zstd(1))] {
        let info = build(&vfs, dir.path(), &keys, id, &entries, TableOptions { compression, ..TableOptions::default() });
        let ratio = info.file_size as f64 / raw as f64;
        eprintln!("{compression:?}: {} entries, raw {raw} bytes, file {} bytes, ratio {ratio:.4}", entries.len(), info.file_size);
        assert!(ratio < 1.10, "{compression:?}: ratio {ratio}");
    }
}

/// The anchors a compaction cuts its key range at: ascending user keys of the
/// table, at most as many as asked for, the last one the largest key, and byte
/// counts that add up to the data blocks (most of the file) in even shares.
#[test]
fn key_anchors_spread_evenly_over_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = StdVfs::new();
    let keys = KeyManager::ephemeral();
    let model = random_model(4, 2000, 8000);
    let entries = model_entries(&model);
    let options = TableOptions { block_size_bytes: 512, restart_interval: 4, compression: Compression::None, bloom_bits_per_key: 10 };
    let info = build(&vfs, dir.path(), &keys, 1, &entries, options);
    let table = open(&vfs, dir.path(), &keys, 1, None);
    for max in [1, 2, 7, 64, 100_000] {
        let anchors = table.key_anchors(max);
        assert!(!anchors.is_empty() && anchors.len() <= max, "{max}: {} anchors", anchors.len());
        assert!(anchors.windows(2).all(|w| w[0].0 < w[1].0), "{max}: not ascending");
        assert!(anchors.iter().all(|(k, _)| model.contains_key(k)), "{max}: an anchor is not a key of the table");
        assert_eq!(anchors.last().unwrap().0, info.largest.user_key, "{max}");
        let total: u64 = anchors.iter().map(|(_, b)| b).sum();
        assert!(total <= info.file_size && total > info.file_size / 2, "{max}: {total} of {}", info.file_size);
        if (2..=64).contains(&max) {
            // Every share but the last is the same number of blocks, so of similar size.
            let shares: Vec<u64> = anchors[..anchors.len() - 1].iter().map(|(_, b)| *b).collect();
            let (lo, hi) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
            assert!(*hi <= 2 * *lo, "{max}: shares from {lo} to {hi}");
        }
    }
}
