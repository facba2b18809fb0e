//! Presenting the rows: the machine description, the markdown table with one
//! column per engine and each peer's ratio to synapsed-storage, and the JSON file.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::rows::{Measure, Row};

/// The engine every ratio is relative to.
pub const BASELINE: &str = "synapsed-storage";

/// A value with three significant digits, without exponent notation.
fn significant(x: f64) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    let digits = (2 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.digits$}")
}

/// One cell: a time in ms, or a size in MiB.
pub fn cell(row: &Row) -> String {
    match row.measure {
        Measure::Ms(ms) => format!("{} ms", significant(ms)),
        Measure::Bytes(b) | Measure::PeakRssBytes(b) => format!("{} MiB", significant(b as f64 / (1u64 << 20) as f64)),
    }
}

/// The markdown table: workloads down, engines across.
pub fn markdown(rows: &[Row], engines: &[String]) -> String {
    let mut workloads: Vec<&str> = Vec::new();
    for r in rows.iter().filter(|r| r.engine != "device") {
        if !workloads.contains(&r.workload.as_str()) {
            workloads.push(&r.workload);
        }
    }
    let find = |engine: &str, workload: &str| rows.iter().find(|r| r.engine == engine && r.workload == workload);
    let mut out = String::new();
    for r in rows.iter().filter(|r| r.engine == "device") {
        out.push_str(&format!("- {}: {}\n", r.workload, cell(r)));
    }
    out.push('\n');
    out.push_str("| workload |");
    for e in engines {
        out.push_str(&format!(" {e} |"));
    }
    out.push_str("\n|---|");
    for _ in engines {
        out.push_str("---:|");
    }
    out.push('\n');
    for w in workloads {
        out.push_str(&format!("| {w} |"));
        let base = find(BASELINE, w).map(Row::value);
        for e in engines {
            let mut text = match find(e, w) {
                None => "n/a".to_string(),
                Some(r) => match base {
                    Some(b) if e != BASELINE && b > 0.0 => format!("{} ({:.2}x)", cell(r), r.value() / b),
                    _ => cell(r),
                },
            };
            if w.contains("durable") && crate::engine::weaker_durability(e).is_some() && text != "n/a" {
                text.push_str(" †");
            }
            out.push_str(&format!(" {text} |"));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "\nRatios are peer / {BASELINE}: above 1 means the peer took longer (or used more bytes).\n"
    ));
    for e in engines {
        if let Some(why) = crate::engine::weaker_durability(e) {
            out.push_str(&format!("† not durable: {why}.\n"));
        }
    }
    if engines.iter().any(|e| e == crate::engine::NULL_CIPHER) {
        out.push_str(&format!(
            "`{}` is {BASELINE} with its cipher replaced by a plain copy (a benchmark-only build): \
             1 minus its ratio is the share of each row spent on encryption.\n",
            crate::engine::NULL_CIPHER
        ));
    }
    out
}

/// One row per (engine, workload), in the order first measured, holding the
/// median of that cell's values over the rounds (the mean of the middle two
/// for an even count).
pub fn medians(rows: &[Row]) -> Vec<Row> {
    let mut cells: Vec<(&Row, Vec<f64>)> = Vec::new();
    for r in rows {
        match cells.iter_mut().find(|(first, _)| first.engine == r.engine && first.workload == r.workload) {
            Some((_, values)) => values.push(r.value()),
            None => cells.push((r, vec![r.value()])),
        }
    }
    cells
        .into_iter()
        .map(|(first, mut values)| {
            values.sort_by(f64::total_cmp);
            let mid = values.len() / 2;
            let median = match (values.len() % 2, values.get(mid), mid.checked_sub(1).and_then(|i| values.get(i))) {
                (1, Some(m), _) => *m,
                (_, Some(hi), Some(lo)) => (lo + hi) / 2.0,
                _ => first.value(),
            };
            let measure = match first.measure {
                Measure::Ms(_) => Measure::Ms(median),
                Measure::Bytes(_) => Measure::Bytes(median.round() as u64),
                Measure::PeakRssBytes(_) => Measure::PeakRssBytes(median.round() as u64),
            };
            Row { engine: first.engine.clone(), workload: first.workload.clone(), measure, round: 0 }
        })
        .collect()
}

/// What the table's cells are over `rounds` rounds, and every (peer, row) whose
/// per-round ratio to the baseline fell on both sides of 1: those comparisons
/// are within this machine's noise and the table cannot settle them.
pub fn rounds_note(rows: &[Row], rounds: u32) -> String {
    if rounds < 2 {
        return "\nOne round: single measurements, not medians.\n".to_string();
    }
    let mut out = format!(
        "\nEach cell is the median of {rounds} rounds; the engines ran in an order rotated by one each round.\n"
    );
    let mut split = Vec::new();
    for r in rows.iter().filter(|r| r.engine != BASELINE && r.engine != "device") {
        if split.iter().any(|(e, w, _, _): &(String, String, f64, f64)| *e == r.engine && *w == r.workload) {
            continue;
        }
        let ratios: Vec<f64> = rows
            .iter()
            .filter(|p| p.engine == r.engine && p.workload == r.workload)
            .filter_map(|p| {
                let base = rows.iter().find(|b| b.engine == BASELINE && b.workload == p.workload && b.round == p.round)?;
                (base.value() > 0.0).then(|| p.value() / base.value())
            })
            .collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        split.push((r.engine.clone(), r.workload.clone(), lo, hi));
    }
    let crossing: Vec<_> = split.into_iter().filter(|(_, _, lo, hi)| *lo < 1.0 && *hi > 1.0).collect();
    if crossing.is_empty() {
        out.push_str("No peer's ratio crossed 1 between rounds.\n");
    } else {
        out.push_str("Ratios that crossed 1 between rounds (within noise; not settled by this run):\n");
        for (engine, workload, lo, hi) in crossing {
            out.push_str(&format!("- {workload}, {engine}: {lo:.2}x to {hi:.2}x\n"));
        }
    }
    out
}

/// Writes `{"n": N, "machine": "...", "rows": [...]}` to `path`.
pub fn write_json(path: &Path, n: u64, machine: &str, rows: &[Row]) -> Result<()> {
    let doc = json!({"n": n, "machine": machine, "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>()});
    std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")?;
    Ok(())
}

/// CPU model, cores, memory, kernel, the file system of `dir` and its device's
/// write cache mode ("write back": an fdatasync must flush a volatile cache).
pub fn machine(dir: &Path) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".to_string(), |m| m.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{model}, {cores} cores, {mem_gib:.0} GiB RAM, Linux {}, {} file system, device write cache: {}",
        kernel.trim(),
        fs_type(dir).unwrap_or_else(|| "unknown".to_string()),
        write_cache(dir).unwrap_or_else(|| "unknown".to_string())
    )
}

/// The write cache mode of the block device holding `dir` ("write back" or
/// "write through"), from sysfs; a partition reports its disk's.
pub fn write_cache(dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let base = std::path::PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    [base.join("queue/write_cache"), base.join("../queue/write_cache")]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
}

/// The type of the file system holding `dir`: the longest mount point that prefixes it.
pub fn fs_type(dir: &Path) -> Option<String> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, point, kind) = (f.next()?, f.next()?, f.next()?);
            dir.starts_with(point).then(|| (point.len(), kind.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, kind)| kind)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn row(engine: &str, workload: &str, measure: Measure) -> Row {
        Row { engine: engine.into(), workload: workload.into(), measure, round: 0 }
    }

    #[test]
    fn medians_per_cell_and_crossings_named() {
        let rows = vec![
            row(BASELINE, "put p99", Measure::Ms(10.0)),
            row("fjall", "put p99", Measure::Ms(9.0)),
            row(BASELINE, "put p99", Measure::Ms(10.0)).in_round(1),
            row("fjall", "put p99", Measure::Ms(12.0)).in_round(1),
            row(BASELINE, "put p99", Measure::Ms(40.0)).in_round(2),
            row("fjall", "put p99", Measure::Ms(50.0)).in_round(2),
            row("fjall", "size after load", Measure::Bytes(4)),
            row("fjall", "size after load", Measure::Bytes(6)).in_round(1),
        ];
        let m = medians(&rows);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].measure, Measure::Ms(10.0));
        assert_eq!(m[1].measure, Measure::Ms(12.0));
        assert_eq!(m[2].measure, Measure::Bytes(5), "mean of the middle two");
        let note = rounds_note(&rows, 3);
        assert!(note.contains("median of 3 rounds"), "{note}");
        assert!(note.contains("- put p99, fjall: 0.90x to 1.25x"), "{note}");
        let steady = vec![row(BASELINE, "w", Measure::Ms(1.0)), row("redb", "w", Measure::Ms(2.0))];
        assert!(rounds_note(&steady, 2).contains("No peer's ratio crossed 1"));
    }

    #[test]
    fn weaker_durability_marks_only_durable_cells() {
        let rows = vec![
            row(BASELINE, "individual writes (1000, durable)", Measure::Ms(100.0)),
            row("sled", "individual writes (1000, durable)", Measure::Ms(50.0)),
            row("sled", "random reads", Measure::Ms(50.0)),
        ];
        let t = markdown(&rows, &[BASELINE.to_string(), "sled".to_string()]);
        assert!(t.contains("50.0 ms (0.50x) †"), "{t}");
        assert!(t.contains("| random reads | n/a | 50.0 ms |"), "{t}");
        assert!(t.contains("† not durable: sled's flush"), "{t}");
    }

    #[test]
    fn rows_round_trip_through_json() {
        for m in [Measure::Ms(1.5), Measure::Bytes(42), Measure::PeakRssBytes(7 << 20)] {
            let r = row("redb", "bulk load", m);
            assert_eq!(Row::from_json(&r.to_json()), Some(r));
        }
        assert_eq!(row("x", "y", Measure::Bytes(3)).to_json()["bytes"], 3);
        assert_eq!(row("x", "y", Measure::PeakRssBytes(3)).to_json()["peak_rss_bytes"], 3);
    }

    #[test]
    fn table_has_ratios_to_the_baseline_and_marks_gaps() {
        let rows = vec![
            row("device", "fsync floor p50", Measure::Ms(1.0)),
            row(BASELINE, "bulk load", Measure::Ms(200.0)),
            row("redb", "bulk load", Measure::Ms(500.0)),
            row(BASELINE, "compaction", Measure::Ms(10.0)),
            row("redb", "size after load", Measure::Bytes(3 << 20)),
        ];
        let engines = vec![BASELINE.to_string(), "redb".to_string()];
        let t = markdown(&rows, &engines);
        assert!(t.contains("- fsync floor p50: 1.00 ms"), "{t}");
        assert!(t.contains("| bulk load | 200 ms | 500 ms (2.50x) |"), "{t}");
        assert!(t.contains("| compaction | 10.0 ms | n/a |"), "{t}");
        assert!(t.contains("| size after load | n/a | 3.00 MiB |"), "{t}");
        assert!(!t.contains("| fsync"), "device rows stay out of the engine table: {t}");
    }

    #[test]
    fn three_significant_digits() {
        assert_eq!(significant(0.0), "0");
        assert_eq!(significant(0.001234), "0.00123");
        assert_eq!(significant(1.234), "1.23");
        assert_eq!(significant(12345.6), "12346");
    }
}
