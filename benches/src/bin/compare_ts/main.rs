//! `compare-ts`: the time-series store against SQLite (a WITHOUT ROWID table
//! keyed by (series, ts)) on the same data: import, bytes per point after
//! compaction, a raw range query of 10k points and a one-year hourly average
//! over 10-second points, with the bytes per point Gorilla's XOR alone would
//! take on the same data beside them. See `benches/README.md`.
//!
//! `cargo run --release -p synapsed-benches --features harness,peer-sqlite --bin compare-ts -- --n 10000000`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use clap::Parser;
use synapsed_benches::data::Rng;
use synapsed_benches::timeseries::{block_bytes_per_point, points, Shape, INTERVAL_MS, START_MS};
use synapsed_storage::{Aggregate, Credential, Db, Options, Point, ValueCodec};

#[derive(Parser, Debug)]
#[command(about = "Time-series store against SQLite")]
struct Args {
    /// Points per data set.
    #[arg(long, default_value_t = 10_000_000)]
    n: usize,
    /// Directory for the stores (removed afterwards). Not tmpfs.
    #[arg(long, default_value = "compare-ts-data")]
    dir: PathBuf,
    /// Range queries of 10k points timed (their mean is reported).
    #[arg(long, default_value_t = 50)]
    queries: u32,
    /// Workload seed.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// Also write the rows as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

const RANGE_POINTS: i64 = 10_000;
const YEAR_MS: i64 = 365 * 86_400_000;
const HOUR_MS: i64 = 3_600_000;

struct Row {
    data: &'static str,
    what: String,
    synapsed: String,
    sqlite: String,
}

fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let m = e.metadata()?;
        total += if m.is_dir() { dir_bytes(&e.path())? } else { m.len() };
    }
    Ok(total)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    let mut rows = Vec::new();
    for shape in [Shape::OneDecimalWalk, Shape::RepeatingGauge] {
        let (ts, values) = points(shape, args.n, args.seed);
        eprintln!("== {} ({} points)", shape.name(), args.n);
        let name = shape.name();
        rows.push(Row {
            data: name,
            what: "block bytes/point: chosen codec | Gorilla XOR".into(),
            synapsed: format!("{:.3}", block_bytes_per_point(&ts, &values, None)),
            sqlite: format!("{:.3} (XOR)", block_bytes_per_point(&ts, &values, Some(ValueCodec::Xor))),
        });

        // synapsed-storage
        let sdir = args.dir.join("synapsed");
        let _ = std::fs::remove_dir_all(&sdir);
        let db = Db::create(&sdir, &Credential::passphrase("compare-ts"), Options::default())?;
        let t0 = Instant::now();
        let pts = ts.iter().zip(&values).map(|(&ts_ms, &value)| Point { ts_ms, value });
        let n = db.time_series().import("bench", pts)?;
        ensure!(n as usize == args.n);
        db.flush()?;
        let s_import = t0.elapsed();
        for ks in db.keyspaces() {
            db.compact_range_in(&ks, None, None)?;
        }
        db.close()?;
        let s_bytes = dir_bytes(&sdir)?;
        let db = Db::open(&sdir, &Credential::passphrase("compare-ts"), Options::default())?;

        // SQLite
        let qdir = args.dir.join("sqlite");
        let _ = std::fs::remove_dir_all(&qdir);
        std::fs::create_dir_all(&qdir)?;
        let conn = rusqlite::Connection::open(qdir.join("ts.db"))?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE points (series INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (series, ts)) WITHOUT ROWID;")?;
        let t0 = Instant::now();
        {
            let tx = conn.unchecked_transaction()?;
            {
                let mut st = tx.prepare("INSERT INTO points VALUES (1, ?1, ?2)")?;
                for (t, v) in ts.iter().zip(&values) {
                    st.execute(rusqlite::params![t, v])?;
                }
            }
            tx.commit()?;
        }
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        let q_import = t0.elapsed();
        conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
        let q_bytes = dir_bytes(&qdir)?;

        rows.push(Row { data: name, what: format!("import {} points", args.n), synapsed: ms(s_import), sqlite: ms(q_import) });
        let per = |b: u64| format!("{:.2} B/point ({} bytes)", b as f64 / args.n as f64, b);
        rows.push(Row { data: name, what: "on disk after compaction".into(), synapsed: per(s_bytes), sqlite: per(q_bytes) });

        // Raw range queries of 10k points at random places.
        let mut rng = Rng::new(args.seed ^ 7);
        let span = (args.n as i64 - RANGE_POINTS).max(1);
        let (mut s_q, mut q_q) = (Duration::ZERO, Duration::ZERO);
        let mut st = conn.prepare("SELECT ts, value FROM points WHERE series = 1 AND ts >= ?1 AND ts < ?2 ORDER BY ts")?;
        for _ in 0..args.queries {
            let from = START_MS + rng.below(span as u64) as i64 * INTERVAL_MS;
            let to = from + RANGE_POINTS * INTERVAL_MS;
            let t0 = Instant::now();
            let got = db.time_series().query("bench", from, to)?;
            s_q += t0.elapsed();
            let t0 = Instant::now();
            let mut rows_q = st.query(rusqlite::params![from, to])?;
            let mut count = 0usize;
            let mut checksum = 0f64;
            while let Some(r) = rows_q.next()? {
                checksum += r.get::<_, f64>(1)?;
                count += 1;
            }
            q_q += t0.elapsed();
            ensure!(got.len() == count, "range sizes differ: {} vs {count}", got.len());
            let mine: f64 = got.iter().map(|p| p.value).sum();
            ensure!((mine - checksum).abs() <= 1e-6 * checksum.abs().max(1.0), "range sums differ");
        }
        drop(st);
        rows.push(Row {
            data: name,
            what: format!("range query of {RANGE_POINTS} points (mean of {})", args.queries),
            synapsed: ms(s_q / args.queries.max(1)),
            sqlite: ms(q_q / args.queries.max(1)),
        });

        // One year, hourly average.
        let (from, to) = (START_MS, START_MS + YEAR_MS);
        let t0 = Instant::now();
        let report = db.time_series().downsample("bench", from, to, HOUR_MS, Aggregate::Avg)?;
        let s_avg = t0.elapsed();
        let t0 = Instant::now();
        let buckets = {
            let mut st = conn.prepare("SELECT (ts - ?1) / ?3 AS b, avg(value) FROM points WHERE series = 1 AND ts >= ?1 AND ts < ?2 GROUP BY b ORDER BY b")?;
            let mut q_rows = st.query(rusqlite::params![from, to, HOUR_MS])?;
            let mut buckets = 0usize;
            while let Some(r) = q_rows.next()? {
                let _: f64 = r.get(1)?;
                buckets += 1;
            }
            buckets
        };
        let q_avg = t0.elapsed();
        ensure!(buckets == report.points.len(), "bucket counts differ: {} vs {buckets}", report.points.len());
        rows.push(Row {
            data: name,
            what: format!("1-year hourly avg ({} buckets; {} blocks from summaries, {} decoded)", buckets, report.blocks_from_summary, report.blocks_decoded),
            synapsed: ms(s_avg),
            sqlite: ms(q_avg),
        });
        // One year, daily average: most blocks lie inside one day.
        let t0 = Instant::now();
        let daily = db.time_series().downsample("bench", from, to, 24 * HOUR_MS, Aggregate::Avg)?;
        let s_day = t0.elapsed();
        let t0 = Instant::now();
        let days: i64 = conn.query_row(
            "SELECT count(*) FROM (SELECT (ts - ?1) / ?3 AS b, avg(value) FROM points WHERE series = 1 AND ts >= ?1 AND ts < ?2 GROUP BY b)",
            rusqlite::params![from, to, 24 * HOUR_MS],
            |r| r.get(0),
        )?;
        let q_day = t0.elapsed();
        ensure!(days as usize == daily.points.len(), "day counts differ");
        rows.push(Row {
            data: name,
            what: format!("1-year daily avg ({days} buckets; {} blocks from summaries, {} decoded)", daily.blocks_from_summary, daily.blocks_decoded),
            synapsed: ms(s_day),
            sqlite: ms(q_day),
        });
        db.close()?;
        drop(conn);
        let _ = std::fs::remove_dir_all(&sdir);
        let _ = std::fs::remove_dir_all(&qdir);
    }
    println!("| data | measure | synapsed-storage | SQLite |");
    println!("|---|---|---|---|");
    for r in &rows {
        println!("| {} | {} | {} | {} |", r.data, r.what, r.synapsed, r.sqlite);
    }
    if let Some(path) = &args.json {
        let json: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| serde_json::json!({"data": r.data, "measure": r.what, "synapsed": r.synapsed, "sqlite": r.sqlite}))
            .collect();
        std::fs::write(path, serde_json::to_string_pretty(&json)?).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
