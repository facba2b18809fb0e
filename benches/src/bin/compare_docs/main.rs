//! `compare-docs`: the document store against SQLite with the JSON1 functions
//! and expression indexes on the same fields (plus FTS5 for the text query),
//! the alternative a user would reach for. Both load the same N documents and
//! answer the same queries; every answer is checked against the count the
//! workload defines, so an engine that returns wrong results fails the run.
//!
//! Rows: import (with the indexes in place), indexed equality lookup (10 hits
//! each), indexed range returning 100, two-word text query, unindexed filter
//! (a full scan), and the same equality by scan; the ratio columns are SQLite's
//! time over synapsed-storage's (above 1: synapsed-storage is faster).
//!
//! Each row gives wall time and CPU time. Both engines run in this process on
//! this thread, one after the other; on a shared machine the wall time of a
//! row also counts the time other processes held the CPU, which moves between
//! rows, so the CPU time (of this thread for the query rows; of the whole
//! process for the import, whose flushes and compactions run on background
//! threads) is the steadier comparison.
//!
//! `cargo run --release -p synapsed-benches --features harness,peer-sqlite --bin compare-docs -- --n 1000000 --dir DIR`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use clap::Parser;
use rusqlite::{params, Connection};
use serde_json::{json, Value};
use synapsed_benches::data::Rng;
use synapsed_storage::docs::{IndexSpec, Query};
use synapsed_storage::{Credential, Db, Options};

#[derive(Parser, Debug)]
#[command(about = "Document store against SQLite JSON1 + expression indexes")]
struct Args {
    /// Documents loaded.
    #[arg(long, default_value_t = 1_000_000)]
    n: u64,
    /// Directory for both stores (removed afterwards).
    #[arg(long, default_value = "compare-docs-data")]
    dir: PathBuf,
    /// Queries per indexed row.
    #[arg(long, default_value_t = 1_000)]
    queries: u64,
    /// Full scans timed.
    #[arg(long, default_value_t = 3)]
    scans: u64,
}

const BATCH: u64 = 1_000;
const VOCABULARY: u64 = 2_000;
const RANGE_HITS: u64 = 100;
/// A prime, so that `i * AMOUNT_STEP mod n` is a permutation of 0..n when n
/// has no factor 7919.
const AMOUNT_STEP: u64 = 7_919;

fn word(w: u64) -> String {
    format!("w{w}x")
}

/// Document `i`: 10 documents per user, amounts a permutation of 0..n, five
/// words of memo, 100 categories (never indexed).
fn document(i: u64, n: u64) -> Value {
    let words: Vec<String> = (0..5).map(|k| word((i.wrapping_mul(31).wrapping_add(k * 977)) % VOCABULARY)).collect();
    json!({
        "_id": format!("d{i:09}"),
        "user": format!("u{}", i % (n / 10).max(1)),
        "amount": (i * AMOUNT_STEP) % n,
        "cat": format!("c{}", i % 100),
        "memo": words.join(" "),
    })
}

struct Row {
    name: &'static str,
    ours: Times,
    sqlite: Times,
    per: &'static str,
}

/// Wall and CPU time of one measurement.
#[derive(Clone, Copy)]
struct Times {
    wall: Duration,
    cpu: Duration,
}

impl std::ops::Div<u32> for Times {
    type Output = Times;
    fn div(self, n: u32) -> Times {
        Times { wall: self.wall / n, cpu: self.cpu / n }
    }
}

fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
}

/// A stopwatch of wall time and of the CPU time of this thread (or of the
/// whole process).
struct Clock {
    wall: Instant,
    cpu: Duration,
    which: libc::clockid_t,
}

impl Clock {
    fn thread() -> Clock {
        Clock { wall: Instant::now(), cpu: cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID), which: libc::CLOCK_THREAD_CPUTIME_ID }
    }

    fn process() -> Clock {
        Clock { wall: Instant::now(), cpu: cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID), which: libc::CLOCK_PROCESS_CPUTIME_ID }
    }

    fn elapsed(&self) -> Times {
        Times { wall: self.wall.elapsed(), cpu: cpu_clock(self.which).saturating_sub(self.cpu) }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    run(&args)?;
    remove(&args.dir)
}

fn run(args: &Args) -> Result<()> {
    ensure!(args.n >= 1_000 && args.n % AMOUNT_STEP != 0, "--n must be at least 1000 and not a multiple of 7919");
    std::fs::create_dir_all(&args.dir)?;
    let ours_dir = args.dir.join("synapsed");
    let sqlite_path = args.dir.join("sqlite.db");
    let _ = std::fs::remove_dir_all(&ours_dir);
    let _ = std::fs::remove_file(&sqlite_path);
    let _ = std::fs::remove_file(args.dir.join("sqlite.db-wal"));
    let mut rows = Vec::new();

    // The same cache budget for both: 256 MiB of block cache, 256 MiB of pages.
    let db = Db::create(&ours_dir, &Credential::passphrase("compare-docs"), Options::default().with_block_cache_bytes(256 << 20))?;
    let conn = Connection::open(&sqlite_path)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-262144;
         CREATE TABLE docs (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
         CREATE INDEX docs_user ON docs (json_extract(body, '$.user'));
         CREATE INDEX docs_amount ON docs (json_extract(body, '$.amount'));",
    )
    .context("SQLite set-up (needs JSON1)")?;
    // FTS5 if this SQLite has it; the bundled build has no full-text module, and
    // then the text row is what a JSON1 user has: LIKE over the field, a scan.
    let fts = conn.execute_batch("CREATE VIRTUAL TABLE memo USING fts5(id UNINDEXED, memo);").is_ok();
    eprintln!("SQLite {}, FTS5: {fts}", rusqlite::version());
    let docs = db.docs();
    docs.create_index("c", &IndexSpec::ordered("user"))?;
    docs.create_index("c", &IndexSpec::ordered("amount"))?;
    docs.create_index("c", &IndexSpec::text("memo"))?;

    // Import.
    let t = Clock::process();
    let mut start = 0;
    while start < args.n {
        let batch: Vec<Value> = (start..(start + BATCH).min(args.n)).map(|i| document(i, args.n)).collect();
        docs.import("c", &batch)?;
        start += BATCH;
    }
    let ours = t.elapsed();
    let t = Clock::process();
    let mut start = 0;
    while start < args.n {
        let tx = conn.unchecked_transaction()?;
        {
            let mut put = tx.prepare_cached("INSERT OR REPLACE INTO docs (id, body) VALUES (?1, ?2)")?;
            for i in start..(start + BATCH).min(args.n) {
                let d = document(i, args.n);
                put.execute(params![d["_id"].as_str(), d.to_string()])?;
                if fts {
                    tx.prepare_cached("INSERT INTO memo (id, memo) VALUES (?1, ?2)")?.execute(params![d["_id"].as_str(), d["memo"].as_str()])?;
                }
            }
        }
        tx.commit()?;
        start += BATCH;
    }
    rows.push(Row { name: "import (3 indexes)", ours, sqlite: t.elapsed(), per: "total" });

    let mut rng = Rng::new(7);
    let users: Vec<u64> = (0..args.queries).map(|_| rng.below((args.n / 10).max(1))).collect();
    let amounts: Vec<u64> = (0..args.queries).map(|_| rng.below(args.n - RANGE_HITS)).collect();
    let pairs: Vec<(u64, u64)> = (0..args.queries).map(|_| (rng.below(args.n), rng.below(5))).collect();

    // Indexed equality.
    let t = Clock::thread();
    for u in &users {
        let r = docs.query("c", &Query::new(json!({"user": format!("u{u}")})))?;
        ensure!(r.documents.len() == 10 && r.explain.index.as_deref() == Some("user"), "synapsed equality: {:?}", r.explain);
    }
    let ours = t.elapsed() / args.queries as u32;
    let mut stmt = conn.prepare("SELECT body FROM docs WHERE json_extract(body, '$.user') = ?1")?;
    let t = Clock::thread();
    for u in &users {
        let n = stmt.query_map(params![format!("u{u}")], |r| r.get::<_, String>(0))?.count();
        ensure!(n == 10, "sqlite equality returned {n}");
    }
    rows.push(Row { name: "indexed equality (10 hits)", ours, sqlite: t.elapsed() / args.queries as u32, per: "per query" });
    let indexed_eq = ours;

    // Indexed range returning 100.
    let t = Clock::thread();
    for a in &amounts {
        let r = docs.query("c", &Query::new(json!({"amount": {"$gte": a, "$lt": a + RANGE_HITS}})).with_sort("amount", false))?;
        ensure!(r.documents.len() == RANGE_HITS as usize, "synapsed range returned {}", r.documents.len());
    }
    let ours = t.elapsed() / args.queries as u32;
    let mut stmt = conn.prepare(
        "SELECT body FROM docs WHERE json_extract(body, '$.amount') >= ?1 AND json_extract(body, '$.amount') < ?2 ORDER BY json_extract(body, '$.amount')",
    )?;
    let t = Clock::thread();
    for a in &amounts {
        let n = stmt.query_map(params![a, a + RANGE_HITS], |r| r.get::<_, String>(0))?.count();
        ensure!(n == RANGE_HITS as usize, "sqlite range returned {n}");
    }
    rows.push(Row { name: "indexed range, 100 sorted", ours, sqlite: t.elapsed() / args.queries as u32, per: "per query" });

    // Text query: two words of one document.
    let words_of = |i: u64, k: u64| (word((i * 31 + k * 977) % VOCABULARY), word((i * 31 + ((k + 1) % 5) * 977) % VOCABULARY));
    let t = Clock::thread();
    let mut ours_hits = Vec::new();
    for &(i, k) in &pairs {
        let (a, b) = words_of(i, k);
        let r = docs.query("c", &Query::new(json!({"$text": format!("{a} {b}")})))?;
        ensure!(!r.documents.is_empty(), "synapsed text found nothing");
        ours_hits.push(r.documents.len());
    }
    let ours = t.elapsed() / args.queries as u32;
    let (sql, text_queries) = if fts {
        ("SELECT d.body FROM memo JOIN docs d ON d.id = memo.id WHERE memo MATCH ?1 || ' ' || ?2", pairs.len())
    } else {
        (
            "SELECT body FROM docs WHERE ' ' || json_extract(body, '$.memo') || ' ' LIKE '% ' || ?1 || ' %' \
             AND ' ' || json_extract(body, '$.memo') || ' ' LIKE '% ' || ?2 || ' %'",
            (args.scans as usize).max(1),
        )
    };
    let mut stmt = conn.prepare(sql)?;
    let t = Clock::thread();
    for (&(i, k), want) in pairs.iter().zip(&ours_hits).take(text_queries) {
        let (a, b) = words_of(i, k);
        let n = stmt.query_map(params![a, b], |r| r.get::<_, String>(0))?.count();
        ensure!(n == *want, "sqlite text returned {n}, synapsed {want}");
    }
    let sqlite_text = t.elapsed() / text_queries as u32;
    rows.push(Row { name: if fts { "text, two words (FTS5)" } else { "text, two words (SQLite: LIKE scan)" }, ours, sqlite: sqlite_text, per: "per query" });

    // Unindexed filter: a full scan.
    let want = (args.n / 100) as usize;
    let t = Clock::thread();
    for s in 0..args.scans {
        let r = docs.query("c", &Query::new(json!({"cat": format!("c{s}")})))?;
        ensure!(r.documents.len() >= want && r.explain.index.is_none(), "synapsed scan: {:?}", r.explain);
    }
    let ours = t.elapsed() / args.scans as u32;
    let mut stmt = conn.prepare("SELECT body FROM docs WHERE json_extract(body, '$.cat') = ?1")?;
    let t = Clock::thread();
    for s in 0..args.scans {
        let n = stmt.query_map(params![format!("c{s}")], |r| r.get::<_, String>(0))?.count();
        ensure!(n >= want, "sqlite scan returned {n}");
    }
    rows.push(Row { name: "unindexed filter (scan)", ours, sqlite: t.elapsed() / args.scans as u32, per: "per query" });
    let scan = ours;

    println!("n = {} documents\n", args.n);
    println!("| row | synapsed-storage wall | SQLite JSON1 wall | SQLite / synapsed (wall) | synapsed-storage CPU | SQLite CPU | SQLite / synapsed (CPU) |");
    println!("|---|---|---|---|---|---|---|");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for r in &rows {
        println!(
            "| {} ({}) | {:.3} ms | {:.3} ms | {:.2}x | {:.3} ms | {:.3} ms | {:.2}x |",
            r.name,
            r.per,
            ms(r.ours.wall),
            ms(r.sqlite.wall),
            r.sqlite.wall.as_secs_f64() / r.ours.wall.as_secs_f64(),
            ms(r.ours.cpu),
            ms(r.sqlite.cpu),
            r.sqlite.cpu.as_secs_f64() / r.ours.cpu.as_secs_f64().max(1e-12)
        );
    }
    println!(
        "\nindexed equality vs unindexed scan (synapsed-storage): {:.0}x wall, {:.0}x CPU",
        scan.wall.as_secs_f64() / indexed_eq.wall.as_secs_f64(),
        scan.cpu.as_secs_f64() / indexed_eq.cpu.as_secs_f64().max(1e-12)
    );
    db.close()?;
    Ok(())
}

fn remove(dir: &Path) -> Result<()> {
    std::fs::remove_dir_all(dir.join("synapsed"))?;
    for f in ["sqlite.db", "sqlite.db-wal", "sqlite.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    Ok(())
}
