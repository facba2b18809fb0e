//! Criterion benches of the AES-256-GCM-SIV envelope every block and record on
//! disk is sealed with: seal and open at the sizes the engine uses (a 150-byte
//! WAL record, a 4 KiB SSTable block, a 64 KiB blob chunk).

#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crypto::{BlockKind, FileKind, KeyManager};

fn envelope(c: &mut Criterion) {
    let keys = KeyManager::ephemeral();
    let (_header, cipher) = keys.new_file(FileKind::Sst, 7, "000007.sst");
    let mut g = c.benchmark_group("envelope");
    for size in [150usize, 4096, 65536] {
        let plain: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let sealed = cipher.seal(4096, BlockKind::SstData, &plain);
        assert_ne!(&sealed[..size.min(sealed.len())], &plain[..], "sealing must change the bytes");
        g.throughput(Throughput::Bytes(size as u64));
        let mut offset = 0u64;
        g.bench_function(format!("seal/{size}B"), |b| {
            b.iter(|| {
                offset += size as u64;
                cipher.seal(offset, BlockKind::SstData, &plain)
            })
        });
        g.bench_function(format!("open/{size}B"), |b| {
            b.iter(|| {
                let opened = cipher.open(4096, BlockKind::SstData, &sealed).unwrap();
                assert_eq!(opened.len(), size);
                opened
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1))
}

criterion_group! { name = benches; config = config(); targets = envelope }
criterion_main!(benches);
