//! Times the comparison's write rows one commit at a time, to see where a
//! durable batch's time goes: loads N pairs in one batch (as the harness's bulk
//! load), then 1,000 durable puts and 100 durable batches of 1,000, printing the
//! distribution of each and the level shape before and after.
//!
//! `cargo run --release -p synapsed-benches --example write_probe -- DIR [N]`
//! (`SYNC_OVERLAP_MIN_OPS=0` turns the overlapped WAL sync off,
//! `MEMTABLE_INSERT_THREADS=1` the parallel memtable insert). `FLUSH_WAIT=1`
//! times the bulk load's commit alone and then the background flush its
//! memtable gets once the next write freezes it; `AFTER_LOAD=1` makes durable
//! puts for 5 s after the bulk load beside a thread doing gets (the harness's
//! latency run) and lists the puts over 0.5 ms, before and after that flush
//! finished; `MIXED=1` is described at `mixed`.

use std::time::{Duration, Instant};

use synapsed_benches::Workload;
use synapsed_storage::{Credential, Db, Options, SyncPolicy, WriteBatch};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: write_probe DIR [N]")?);
    let n: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1_000_000);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let mut options = Options::default().with_sync(SyncPolicy::EveryCommit).with_block_cache_bytes(256 << 20);
    if let Ok(v) = std::env::var("SYNC_OVERLAP_MIN_OPS") {
        options.sync_overlap_min_ops = v.parse()?;
    }
    if let Ok(v) = std::env::var("MEMTABLE_INSERT_THREADS") {
        options.memtable_insert_threads = v.parse()?;
    }
    let db = Db::create(&dir, &Credential::passphrase("write probe"), options)?;
    let w = Workload::new(24301);
    if std::env::var_os("FLUSH_WAIT").is_some() {
        let batch = pairs(&w, 0..n);
        let t = Instant::now();
        db.write(batch)?;
        let written = t.elapsed();
        // The full memtable is frozen, and its flush started, by the next write.
        db.put(b"next", b"write")?;
        while db.stats().flushes == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        println!("write {written:?}; background flush done {:?} after; levels {:?}", t.elapsed() - written, db.stats().files_per_level);
        return Ok(());
    }
    if std::env::var_os("AFTER_LOAD").is_some() {
        let batch = pairs(&w, 0..n);
        db.write(batch)?;
        let stop = std::sync::atomic::AtomicBool::new(false);
        let t0 = Instant::now();
        let mut slow = Vec::new();
        let mut all = Vec::new();
        let mut flushed_at = None;
        std::thread::scope(|s| -> Result<(), Box<dyn std::error::Error>> {
            s.spawn(|| {
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = db.get(&w.key(i % n));
                    i += 7919;
                }
            });
            let mut i = n;
            while t0.elapsed() < Duration::from_secs(5) {
                let t = Instant::now();
                db.put(&w.key(i), &w.value(i))?;
                let d = t.elapsed();
                all.push(d);
                if d > Duration::from_micros(500) {
                    slow.push((t - t0, d));
                }
                if flushed_at.is_none() && i.is_multiple_of(64) && db.stats().flushes > 0 {
                    flushed_at = Some(t0.elapsed());
                }
                i += 1;
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        })?;
        println!("flush done at {flushed_at:?}");
        let before = slow.iter().filter(|(at, _)| flushed_at.is_none_or(|f| *at < f)).count();
        println!("{} puts over 0.5 ms: {before} before the flush finished, {} after", slow.len(), slow.len() - before);
        let after: Vec<_> = slow.iter().filter(|(at, _)| flushed_at.is_some_and(|f| *at >= f)).collect();
        for (at, d) in slow.iter().take(10).chain(after.into_iter().step_by(8).take(60)) {
            print!("{:.0}ms:{:.1} ", at.as_secs_f64() * 1e3, d.as_secs_f64() * 1e3);
        }
        println!();
        report("puts", &mut all);
        return Ok(());
    }
    if std::env::var_os("MIXED").is_some() {
        return mixed(&db, &w);
    }
    if std::env::var_os("LATENCY").is_some() {
        return latency(&db, &w, n);
    }
    let start = Instant::now();
    let batch = pairs(&w, 0..n);
    db.write(batch)?;
    println!("bulk load {:?}; levels {:?}", start.elapsed(), db.stats().files_per_level);

    let mut puts = Vec::new();
    for i in n..n + 1000 {
        let t = Instant::now();
        db.put(&w.key(i), &w.value(i))?;
        puts.push(t.elapsed());
    }
    report("durable put", &mut puts);
    println!("levels {:?}", db.stats().files_per_level);

    let mut batches = Vec::new();
    let from = n + 1000;
    for j in 0..100 {
        let batch = pairs(&w, from + j * 1000..from + (j + 1) * 1000);
        let t = Instant::now();
        db.write(batch)?;
        batches.push(t.elapsed());
    }
    report("durable batch of 1000", &mut batches);
    let stats = db.stats();
    println!("levels {:?}; flushes {}, compactions {}", stats.files_per_level, stats.flushes, stats.compactions);
    Ok(())
}

/// One batch putting the workload's pairs `range`.
fn pairs(w: &Workload, range: std::ops::Range<u64>) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for i in range {
        batch.put(w.key(i), w.value(i));
    }
    batch
}

fn report(name: &str, v: &mut [Duration]) {
    let total: Duration = v.iter().sum();
    v.sort();
    let q = |p: f64| v.get((v.len().saturating_sub(1) as f64 * p) as usize).copied().unwrap_or_default();
    println!(
        "{name}: total {total:?}, p50 {:?}, p90 {:?}, p99 {:?}, p99.9 {:?}, max {:?}",
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        q(1.0)
    );
}

/// `LATENCY=1`: the state the harness's latency run starts from (bulk load,
/// 1,000 durable puts, 100 durable batches of 1,000, every flush done, one pass
/// of reads), then 10 s of durable single puts beside a thread doing gets.
fn latency(db: &Db, w: &Workload, n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let batch = pairs(w, 0..n);
    db.write(batch)?;
    for i in n..n + 1000 {
        db.put(&w.key(i), &w.value(i))?;
    }
    for j in 0..100 {
        let from = n + 1000 + j * 1000;
        let batch = pairs(w, from..from + 1000);
        db.write(batch)?;
    }
    while db.stats().flushes == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    for i in 0..n {
        db.get(&w.key(i.wrapping_mul(7919) % n))?;
    }
    let before = db.stats();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut puts = Vec::new();
    // READER=none leaves the puts alone; READER=spin only burns a core.
    let reader = std::env::var("READER").unwrap_or_default();
    std::thread::scope(|s| {
        if reader != "none" {
            s.spawn(|| {
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if reader == "spin" {
                        i = std::hint::black_box(i.wrapping_add(1));
                        continue;
                    }
                    let _ = db.get(&w.key(i % n));
                    i += 7919;
                }
            });
        }
        let mut i = 20_000_000u64;
        while Instant::now() < deadline {
            let t = Instant::now();
            if db.put(&w.key(i), &w.value(i)).is_err() {
                break;
            }
            puts.push(t.elapsed());
            i += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let after = db.stats();
    println!("flushes {} -> {}, compactions {} -> {}", before.flushes, after.flushes, before.compactions, after.compactions);
    report("put", &mut puts);
    Ok(())
}

/// `MIXED=1`: for 10 s one thread makes durable single puts while another
/// commits durable batches of 1,000 (about 180 KB each), so memtables fill,
/// flush and compact under the puts; prints the puts' latency distribution.
fn mixed(db: &Db, w: &Workload) -> Result<(), Box<dyn std::error::Error>> {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut puts = Vec::new();
    std::thread::scope(|s| -> Result<(), Box<dyn std::error::Error>> {
        let batches = s.spawn(|| {
            let mut next = 10_000_000u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let batch = pairs(w, next..next + 1000);
                next += 1000;
                if db.write(batch).is_err() {
                    break;
                }
            }
            next - 10_000_000
        });
        let mut i = 0u64;
        while Instant::now() < deadline {
            let t = Instant::now();
            db.put(&w.key(i), &w.value(i))?;
            puts.push(t.elapsed());
            i += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let batched = batches.join().map_err(|_| "batch thread panicked")?;
        println!("batched {batched} pairs alongside");
        Ok(())
    })?;
    let stats = db.stats();
    report("durable put under batches", &mut puts);
    println!("flushes {}, compactions {}", stats.flushes, stats.compactions);
    Ok(())
}
