//! The workload, run by a child process against one engine (so that its peak
//! RSS is that engine's alone). It follows redb's published benchmark: a bulk
//! load of N random pairs in one transaction, 1,000 individual durable writes,
//! 100 durable transactions of 1,000 inserts, N random reads (twice), N/2 range
//! reads of 10 items, N random reads over 2 and 4 threads, N/2 removals in one
//! transaction, and the bytes on disk after the load and after compaction. On
//! top of that, a latency run: one thread doing durable single puts while
//! another does random gets, reporting percentiles of each.
//!
//! Every read checks the value it got against the one the workload defines, so
//! an engine that returns wrong data fails the run instead of winning it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use synapsed_benches::data::{Rng, Workload};
use synapsed_benches::Histogram;

use crate::engine::{self, Engine, Pairs};
use crate::rows::Recorder;

/// Workload groups that `--workloads` can select (the bulk load always runs:
/// everything else reads or extends what it wrote).
pub const GROUPS: [&str; 7] = ["writes", "reads", "ranges", "threads", "latency", "removals", "compaction"];

/// Individual durable writes.
const INDIVIDUAL_WRITES: u64 = 1_000;
/// Durable transactions, and inserts per transaction.
const TXNS: u64 = 100;
const TXN_INSERTS: u64 = 1_000;
/// Items per range read.
const RANGE_ITEMS: usize = 10;
/// Values read back untimed after the load to check the engine before timing it.
const SPOT_CHECKS: u64 = 1_000;
/// Key indexes written by the latency run start here, far from the others.
const LATENCY_KEYS_FROM: u64 = 1 << 40;
/// Commits of the durable-floor probe run right before the latency window (about
/// half a second), and the most time it may take.
const FLOOR_COMMITS: u32 = 2_000;
const FLOOR_BUDGET: Duration = Duration::from_secs(2);

/// What one child runs.
#[derive(Debug, Clone)]
pub struct ChildConfig {
    /// Engine name.
    pub engine: String,
    /// Pairs loaded.
    pub n: u64,
    /// Selected groups.
    pub groups: Vec<String>,
    /// The engine's (fresh) directory.
    pub dir: std::path::PathBuf,
    /// Cache budget in bytes.
    pub cache_bytes: usize,
    /// Length of the latency run.
    pub latency: Duration,
    /// Workload seed.
    pub seed: u64,
    /// Load through the engine's other bulk path ([`engine::bulk_path`]) and
    /// stop after checking it (`groups` is ignored).
    pub other_bulk_load: bool,
    /// Appended to every row's workload name.
    pub row_suffix: String,
}

impl ChildConfig {
    fn wants(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, Duration)> {
    let start = Instant::now();
    let out = f()?;
    Ok((out, start.elapsed()))
}

/// `count` random reads of present keys through one reader, each value checked.
fn random_reads(engine: &dyn Engine, w: &Workload, n: u64, count: u64, seed: u64) -> Result<()> {
    let mut reader = engine.reader()?;
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(256);
    for _ in 0..count {
        let i = rng.below(n);
        ensure!(reader.get(&w.key(i), &mut out)?, "key {i} is missing");
        ensure!(out == w.value(i), "key {i} read back a wrong value");
    }
    Ok(())
}

/// Peak resident set size of this process, from /proc/self/status.
pub fn peak_rss_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM in /proc/self/status")?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse()?;
    Ok(kib * 1024)
}

/// Runs the workload against one engine, recording rows into `result`.
pub fn run_child(cfg: &ChildConfig, result: &Path) -> Result<()> {
    let mut rec = Recorder::create(&cfg.engine, result)?.with_suffix(&cfg.row_suffix);
    let outcome = run(cfg, &mut rec);
    // The peak RSS is worth having even from a run that failed halfway.
    rec.peak_rss("peak RSS", peak_rss_bytes()?)?;
    outcome
}

fn run(cfg: &ChildConfig, rec: &mut Recorder) -> Result<()> {
    let n = cfg.n;
    ensure!(n >= 2, "--n must be at least 2");
    let w = Workload::new(cfg.seed);
    let load = Pairs { workload: &w, range: 0..n };
    if cfg.other_bulk_load {
        let engine = engine::open_for_other_bulk_load(&cfg.engine, &cfg.dir, cfg.cache_bytes)?;
        let e: &dyn Engine = engine.as_ref();
        eprintln!("  {}: loading {} pairs through its other bulk path", cfg.engine, load.len());
        let ((), t) = timed(|| e.bulk_load_other(load))?;
        rec.time("bulk load", t)?;
        rec.bytes("size after load", e.disk_bytes()?)?;
        random_reads(e, &w, n, SPOT_CHECKS.min(n), cfg.seed ^ 0x5eed).context("checking the load")?;
        return Ok(());
    }
    let mut engine = engine::open(&cfg.engine, &cfg.dir, cfg.cache_bytes)?;
    let e: &dyn Engine = engine.as_ref();

    eprintln!("  {}: loading {} pairs", cfg.engine, load.len());
    let ((), t) = timed(|| e.bulk_load(load))?;
    rec.time("bulk load", t)?;
    // The peak so far is the load's (the run's own "peak RSS" row covers everything).
    rec.peak_rss("peak RSS after the bulk load", peak_rss_bytes()?)?;
    rec.bytes("size after load", e.disk_bytes()?)?;
    random_reads(e, &w, n, SPOT_CHECKS.min(n), cfg.seed ^ 0x5eed).context("checking the load")?;

    if cfg.wants("writes") {
        let ((), t) = timed(|| {
            for i in n..n + INDIVIDUAL_WRITES {
                e.put_durable(&w.key(i), &w.value(i))?;
            }
            Ok(())
        })?;
        rec.time("individual writes (1000, durable)", t)?;
        let from = n + INDIVIDUAL_WRITES;
        let ((), t) = timed(|| {
            for j in 0..TXNS {
                let start = from + j * TXN_INSERTS;
                e.txn_durable(Pairs { workload: &w, range: start..start + TXN_INSERTS })?;
            }
            Ok(())
        })?;
        rec.time("batch writes (100 x 1000, durable)", t)?;
        let last = from + TXNS * TXN_INSERTS - 1;
        let mut out = Vec::new();
        ensure!(e.get(&w.key(last), &mut out)? && out == w.value(last), "the last batch write is not readable");
    }

    if cfg.wants("reads") {
        for (round, name) in ["random reads", "random reads (again)"].into_iter().enumerate() {
            let ((), t) = timed(|| random_reads(e, &w, n, n, cfg.seed ^ round as u64))?;
            rec.time(name, t)?;
        }
    }

    if cfg.wants("ranges") {
        let ((), t) = timed(|| {
            let mut reader = e.reader()?;
            let mut rng = Rng::new(cfg.seed ^ 0x7a11);
            for _ in 0..n / 2 {
                let i = rng.below(n);
                let start = w.key(i);
                let mut first = true;
                let items = reader.range(&start, RANGE_ITEMS, &mut |k, v| {
                    // The start key exists, so it comes back first; every value is checked.
                    ensure!(!first || k == start, "range from key {i} began at another key");
                    ensure!(v == w.value_of_key(k), "range from key {i} read back a wrong value");
                    first = false;
                    Ok(())
                })?;
                ensure!(items >= 1, "range from key {i} returned nothing");
            }
            Ok(())
        })?;
        rec.time("random range reads (n/2 x 10)", t)?;
    }

    if cfg.wants("threads") {
        for threads in [2u64, 4] {
            let ((), t) = timed(|| {
                std::thread::scope(|s| {
                    let handles: Vec<_> = (0..threads)
                        .map(|k| s.spawn(move || random_reads(e, &w, n, n / threads, cfg.seed ^ (100 + k))))
                        .collect();
                    for h in handles {
                        match h.join() {
                            Ok(r) => r?,
                            Err(_) => bail!("a reader thread panicked"),
                        }
                    }
                    Ok(())
                })
            })?;
            rec.time(&format!("random reads, {threads} threads"), t)?;
        }
    }

    if cfg.wants("latency") {
        latency_run(e, &w, n, cfg, rec)?;
    }

    if cfg.wants("removals") {
        let ((), t) = timed(|| e.remove_bulk(Pairs { workload: &w, range: 0..n / 2 }))?;
        rec.time("removals (n/2, one txn)", t)?;
        let mut out = Vec::new();
        ensure!(!e.get(&w.key(0), &mut out)?, "key 0 survived its removal");
        ensure!(e.get(&w.key(n - 1), &mut out)?, "key {} was removed but should not be", n - 1);
        ensure!(e.range(&w.key(n - 1), 1, &mut |_, _| Ok(()))? == 1, "a range from key {} finds nothing", n - 1);
    }

    if cfg.wants("compaction") {
        rec.bytes("size before compaction", engine.disk_bytes()?)?;
        let (supported, t) = timed(|| engine.compact())?;
        if supported {
            rec.time("compaction", t)?;
            rec.bytes("size after compaction", engine.disk_bytes()?)?;
        } else {
            eprintln!("  {}: no compaction to run", cfg.engine);
        }
    }
    drop(engine);
    Ok(())
}

/// One thread does durable single puts while another does random gets (each in
/// a read session of its own, as a request would), both for `cfg.latency`.
///
/// The device's tail moves by 2x and more from one minute to the next, more than
/// engines differ in theirs, so the durable floor is measured again right before
/// the window (in the engine's directory) and recorded beside the engine's
/// rows: a put p99 is read against the floor's p99 of the same minute.
fn latency_run(e: &dyn Engine, w: &Workload, n: u64, cfg: &ChildConfig, rec: &mut Recorder) -> Result<()> {
    std::fs::create_dir_all(&cfg.dir)?;
    let floor = crate::device::durable_floor(&cfg.dir, FLOOR_COMMITS, FLOOR_BUDGET)?;
    for (label, q) in [("p50", 0.5), ("p99", 0.99)] {
        rec.nanos(&format!("latency: device durable floor just before, {label}"), floor.quantile_ns(q))?;
    }
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + cfg.latency;
    let (puts, gets) = std::thread::scope(|s| {
        let writer = s.spawn(|| -> Result<Histogram> {
            let mut h = Histogram::new();
            let mut i = LATENCY_KEYS_FROM;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let start = Instant::now();
                e.put_durable(&w.key(i), &w.value(i))?;
                h.record(start.elapsed());
                i += 1;
            }
            Ok(h)
        });
        let reader = s.spawn(|| -> Result<Histogram> {
            let mut h = Histogram::new();
            let mut rng = Rng::new(cfg.seed ^ 0x1a7e);
            let mut out = Vec::with_capacity(256);
            while Instant::now() < deadline {
                let i = rng.below(n);
                let start = Instant::now();
                let found = e.get(&w.key(i), &mut out)?;
                h.record(start.elapsed());
                ensure!(found && out == w.value(i), "key {i} read back wrong during the latency run");
            }
            Ok(h)
        });
        let gets = reader.join();
        // A failed reader stops the writer early instead of leaving it to the deadline.
        stop.store(true, Ordering::Relaxed);
        let puts = writer.join();
        match (puts, gets) {
            (Ok(p), Ok(g)) => Ok((p?, g?)),
            _ => bail!("a latency-run thread panicked"),
        }
    })?;
    for (what, h) in [("durable put", &puts), ("get", &gets)] {
        ensure!(h.count() > 0, "the latency run did no {what}");
        for (label, q) in [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)] {
            rec.nanos(&format!("latency: {what} {label}"), h.quantile_ns(q))?;
        }
        eprintln!("  {}: {} {what}s in {:?}", cfg.engine, h.count(), cfg.latency);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::rows::{read_rows, Measure};

    /// The whole workload at a tiny size against every engine compiled in (with
    /// `--features compare`, every peer adapter too).
    #[test]
    fn every_compiled_engine_records_every_row() {
        for engine in crate::engine::ALL.iter().filter(|e| crate::engine::compiled(e)) {
            let dir = tempfile::tempdir().unwrap();
            let result = dir.path().join("rows.jsonl");
            let cfg = ChildConfig {
                engine: engine.to_string(),
                n: 2_000,
                groups: GROUPS.iter().map(|g| g.to_string()).collect(),
                dir: dir.path().join("engine"),
                cache_bytes: 1 << 20,
                latency: Duration::from_millis(300),
                seed: 9,
                other_bulk_load: false,
                row_suffix: String::new(),
            };
            run_child(&cfg, &result).unwrap_or_else(|e| panic!("{engine}: {e:#}"));
            let rows = read_rows(&result).unwrap();
            let find = |w: &str| {
                rows.iter().find(|r| r.workload == w).unwrap_or_else(|| panic!("{engine}: no row {w}: {rows:?}"))
            };
            for w in ["bulk load", "random reads", "random reads, 4 threads", "removals (n/2, one txn)"] {
                assert!(matches!(find(w).measure, Measure::Ms(ms) if ms > 0.0), "{engine}: {w}");
            }
            if !matches!(*engine, "sled" | "lmdb") {
                assert!(matches!(find("compaction").measure, Measure::Ms(_)), "{engine}");
                assert!(matches!(find("size after compaction").measure, Measure::Bytes(_)), "{engine}");
            }
            assert!(matches!(find("size after load").measure, Measure::Bytes(b) if b > 2_000 * 174 / 2), "{engine}");
            assert!(matches!(find("peak RSS").measure, Measure::PeakRssBytes(b) if b > 1 << 20), "{engine}");
            let floor50 = find("latency: device durable floor just before, p50").value();
            let floor99 = find("latency: device durable floor just before, p99").value();
            assert!(floor50 > 0.0 && floor50 <= floor99, "{engine}: floor p50 {floor50} p99 {floor99}");
            let p50 = find("latency: get p50").value();
            let p999 = find("latency: get p99.9").value();
            assert!(p50 > 0.0 && p50 <= p999, "{engine}: p50 {p50} p99.9 {p999}");
            assert!(rows.iter().all(|r| r.engine == *engine));
        }
    }

    /// Every engine with another bulk path loads through it, checked, with its
    /// rows (time, size, peak RSS) named apart from the main run's.
    #[test]
    fn other_bulk_paths_load_and_check_what_they_loaded() {
        let engines: Vec<_> =
            crate::engine::ALL.iter().filter(|e| crate::engine::compiled(e) && crate::engine::bulk_path(e).is_some()).collect();
        assert!(engines.contains(&&"synapsed-storage"));
        for engine in engines {
            let dir = tempfile::tempdir().unwrap();
            let result = dir.path().join("rows.jsonl");
            let cfg = ChildConfig {
                engine: engine.to_string(),
                n: 3_000,
                groups: Vec::new(),
                dir: dir.path().join("engine"),
                cache_bytes: 1 << 20,
                latency: Duration::from_millis(10),
                seed: 4,
                other_bulk_load: true,
                row_suffix: ", other bulk path".into(),
            };
            run_child(&cfg, &result).unwrap_or_else(|e| panic!("{engine}: {e:#}"));
            let rows = read_rows(&result).unwrap();
            let names: Vec<&str> = rows.iter().map(|r| r.workload.as_str()).collect();
            assert_eq!(names, ["bulk load, other bulk path", "size after load, other bulk path", "peak RSS, other bulk path"], "{engine}");
        }
    }

    #[test]
    fn an_unknown_engine_fails_but_still_reports_memory() {
        let dir = tempfile::tempdir().unwrap();
        let result = dir.path().join("rows.jsonl");
        let cfg = ChildConfig {
            engine: "no-such-engine".into(),
            n: 10,
            groups: Vec::new(),
            dir: dir.path().join("engine"),
            cache_bytes: 1 << 20,
            latency: Duration::from_millis(10),
            seed: 1,
            other_bulk_load: false,
            row_suffix: String::new(),
        };
        let err = run_child(&cfg, &result).unwrap_err();
        assert!(err.to_string().contains("no-such-engine"), "{err}");
        let rows = read_rows(&result).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].workload, "peak RSS");
    }
}
