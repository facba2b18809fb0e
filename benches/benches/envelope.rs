//! Criterion benches of the AES-256-GCM-SIV envelope every block and record on
//! disk is sealed with: seal and open at the sizes the engine uses (a 150-byte
//! WAL record, 4 KiB and 16 KiB SSTable blocks, a 64 KiB blob chunk), both through
//! the allocating calls (`seal`, `open`) and in place in a reused buffer, as the
//! table builder and reader call them (`seal_in_place`, `open_in_place`).

#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use crypto::{BlockKind, FileKind, KeyManager};

fn envelope(c: &mut Criterion) {
    let keys = KeyManager::ephemeral();
    let (_header, cipher) = keys.new_file(FileKind::Sst, 7, "000007.sst");
    let mut g = c.benchmark_group("envelope");
    for size in [150usize, 4096, 16384, 65536] {
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
        let mut buf = Vec::with_capacity(size + crypto::TAG_LEN);
        g.bench_function(format!("seal_in_place/{size}B"), |b| {
            b.iter(|| {
                offset += size as u64;
                buf.clear();
                buf.extend_from_slice(&plain);
                cipher.seal_in_place(offset, BlockKind::SstData, &mut buf);
                buf.len()
            })
        });
        g.bench_function(format!("open_in_place/{size}B"), |b| {
            b.iter_batched_ref(
                || sealed.clone(),
                |buf| {
                    cipher.open_in_place(4096, BlockKind::SstData, buf).unwrap();
                    assert_eq!(buf.len(), size);
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1))
}

criterion_group! { name = benches; config = config(); targets = envelope }
criterion_main!(benches);
