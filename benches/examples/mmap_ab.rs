//! Point reads through pread against reads through memory-mapped tables
//! (`Options::mmap_reads`), with a block cache far smaller than the data so
//! almost every read goes to the table file, on a cold and on a warm page cache.
//!
//! Loads N pairs of the comparison's workload once (compacted into tables), then
//! runs ROUNDS rounds; each round runs both modes, in an order that alternates
//! from round to round, and each mode: drops the store's files from the page
//! cache (`posix_fadvise(DONTNEED)` on its own files only, so other processes'
//! caches are untouched), opens the store (footers, indexes and filters are read
//! here, untimed), times COLD random gets, reads every table file once to warm
//! the page cache, and times WARM random gets. Prints each round and the medians.
//!
//! `cargo run --release -p synapsed-benches --features harness --example mmap_ab -- DIR [N [ROUNDS [COLD [WARM [CACHE_KIB]]]]]`

#![allow(clippy::indexing_slicing)]

use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use synapsed_benches::data::Rng;
use synapsed_benches::Workload;
use synapsed_storage::{Credential, Db, Options, SyncPolicy, WriteBatch};

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn tables(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "sst") {
            v.push(p);
        }
    }
    Ok(v)
}

/// Drops every file of the store from the page cache (its own files only).
fn drop_cache(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let f = std::fs::File::open(e?.path())?;
        // SAFETY: posix_fadvise only reads its integer arguments; `f` is open.
        unsafe {
            libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        }
    }
    Ok(())
}

fn warm(dir: &Path) -> std::io::Result<()> {
    for t in tables(dir)? {
        std::hint::black_box(std::fs::read(t)?);
    }
    Ok(())
}

/// Nanoseconds per get over `count` random gets of present keys, each checked.
fn gets(db: &Db, w: &Workload, n: u64, count: u64, seed: u64) -> Result<f64, Box<dyn std::error::Error>> {
    let mut rng = Rng::new(seed);
    let start = Instant::now();
    for _ in 0..count {
        let i = rng.below(n);
        let v = db.get(&w.key(i))?.ok_or("missing key")?;
        if v != w.value(i) {
            return Err("wrong value".into());
        }
    }
    Ok(start.elapsed().as_nanos() as f64 / count as f64)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(args.first().ok_or("usage: mmap_ab DIR [N [ROUNDS [COLD [WARM [CACHE_KIB]]]]]")?);
    let n: u64 = arg(&args, 1, 300_000);
    let rounds: u64 = arg(&args, 2, 5);
    let cold: u64 = arg(&args, 3, 5_000);
    let warm_gets: u64 = arg(&args, 4, 200_000);
    let cache_kib: usize = arg(&args, 5, 1024);
    let w = Workload::new(0x5eed);
    let cred = Credential::passphrase("mmap a/b");
    let options = |mmap: bool| {
        Options::default().with_sync(SyncPolicy::Never).with_block_cache_bytes(cache_kib << 10).with_mmap_reads(mmap)
    };
    if !dir.exists() {
        let db = Db::create(&dir, &cred, options(false))?;
        let mut i = 0;
        while i < n {
            let mut batch = WriteBatch::new();
            for j in i..(i + 10_000).min(n) {
                batch.put(w.key(j), w.value(j));
            }
            db.write(batch)?;
            i += 10_000;
        }
        db.flush()?;
        db.compact_range(None, None)?;
        db.close()?;
    }
    let bytes: u64 = tables(&dir)?.iter().map(|t| std::fs::metadata(t).map(|m| m.len()).unwrap_or(0)).sum();
    eprintln!("n = {n}, {} tables, {:.1} MiB, block cache {cache_kib} KiB", tables(&dir)?.len(), bytes as f64 / 1048576.0);
    let mut results: [[Vec<f64>; 2]; 2] = Default::default(); // [mode][cold, warm]
    for round in 0..rounds {
        let order = if round % 2 == 0 { [false, true] } else { [true, false] };
        for mmap in order {
            drop_cache(&dir)?;
            let db = Db::open(&dir, &cred, options(mmap))?;
            let c = gets(&db, &w, n, cold, round * 2 + 1)?;
            warm(&dir)?;
            let h = gets(&db, &w, n, warm_gets, round * 2 + 2)?;
            db.close()?;
            let name = if mmap { "mmap " } else { "pread" };
            println!("round {round} {name}: cold {:.2} us/get, warm {:.2} us/get", c / 1e3, h / 1e3);
            results[usize::from(mmap)][0].push(c);
            results[usize::from(mmap)][1].push(h);
        }
    }
    for (i, what) in ["cold", "warm"].iter().enumerate() {
        let p = median(results[0][i].clone());
        let m = median(results[1][i].clone());
        println!("{what}: pread {:.2} us/get, mmap {:.2} us/get (median of {rounds}); pread/mmap {:.2}x", p / 1e3, m / 1e3, p / m);
    }
    Ok(())
}
