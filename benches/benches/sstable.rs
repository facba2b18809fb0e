//! Criterion benches of the SSTable format, over the in-memory `SimVfs` so they
//! measure CPU (block building, prefix compression, zstd, sealing; and the
//! reverse) rather than the disk. Encode builds a whole table of 4096 entries;
//! decode is a point lookup with no block cache, so each lookup authenticates,
//! decrypts, decompresses and searches one data block, and a full scan that
//! decodes every block.

#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crypto::vfs::SimVfs;
use crypto::{KeyManager, Vfs};
use index::{Compression, Direction, InternalKey, KeyRange, TableBuilder, TableOptions, TableReader, ValueKind, MAX_SEQNO};
use synapsed_benches::data::{Rng, Workload};

const ENTRIES: usize = 4096;

fn entries(w: &Workload) -> Vec<(InternalKey, Vec<u8>)> {
    let mut keys: Vec<_> = (0..ENTRIES as u64).map(|i| (w.key(i).to_vec(), w.value(i).to_vec())).collect();
    keys.sort();
    keys.into_iter().enumerate().map(|(i, (k, v))| (InternalKey::new(k, i as u64 + 1, ValueKind::Put), v)).collect()
}

fn build(vfs: &Arc<dyn Vfs>, keys: &KeyManager, path: &Path, compression: Compression, data: &[(InternalKey, Vec<u8>)]) -> u64 {
    let options = TableOptions { compression, ..TableOptions::default() };
    let mut t = TableBuilder::new(vfs.create(path).unwrap(), keys, 1, "000001.sst", options).unwrap();
    for (k, v) in data {
        t.add(k, v).unwrap();
    }
    t.finish().unwrap().file_size
}

fn setup() -> (Arc<dyn Vfs>, Arc<KeyManager>, PathBuf) {
    let vfs: Arc<dyn Vfs> = SimVfs::new();
    vfs.create_dir_all(Path::new("/bench")).unwrap();
    (vfs, KeyManager::ephemeral(), PathBuf::from("/bench/000001.sst"))
}

fn compressions() -> [(&'static str, Compression); 2] {
    [("none", Compression::None), ("zstd1", Compression::Zstd(1))]
}

fn encode(c: &mut Criterion) {
    let w = Workload::new(11);
    let data = entries(&w);
    let raw: usize = data.iter().map(|(k, v)| k.user_key.len() + v.len()).sum();
    let (vfs, keys, path) = setup();
    let mut g = c.benchmark_group("sstable_encode_4096_entries");
    g.throughput(Throughput::Bytes(raw as u64));
    for (name, compression) in compressions() {
        g.bench_function(name, |b| b.iter(|| build(&vfs, &keys, &path, compression, &data)));
    }
    g.finish();
}

fn decode(c: &mut Criterion) {
    let w = Workload::new(12);
    let data = entries(&w);
    let raw: usize = data.iter().map(|(k, v)| k.user_key.len() + v.len()).sum();
    let mut g = c.benchmark_group("sstable_decode");
    for (name, compression) in compressions() {
        let (vfs, keys, path) = setup();
        build(&vfs, &keys, &path, compression, &data);
        let table = TableReader::open(vfs.open(&path).unwrap(), &keys, 1, "000001.sst", None).unwrap();
        let mut rng = Rng::new(3);
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("uncached_get/{name}"), |b| {
            b.iter(|| {
                let (k, v) = &data[rng.below(ENTRIES as u64) as usize];
                let found = table.get(&k.user_key, MAX_SEQNO).unwrap().unwrap();
                assert_eq!(&found.2, v);
            })
        });
        g.throughput(Throughput::Bytes(raw as u64));
        g.bench_function(format!("full_scan/{name}"), |b| {
            b.iter(|| {
                let mut it = table.iter(KeyRange::all(), Direction::Forward);
                let mut n = 0;
                while let Some(e) = it.next_entry().unwrap() {
                    n += e.value.len();
                }
                assert_eq!(n, ENTRIES * data[0].1.len());
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = encode, decode }
criterion_main!(benches);
