//! The time-series store's behaviours one by one: order and the out-of-order
//! window, points merged into sealed blocks, replacement of a timestamp,
//! floats kept bit for bit, labels, downsampling from block summaries,
//! retention by range deletes (and the data gone after compaction), readers
//! of a store without series, and concurrent writers of one series.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::{cred, options};
use synapsed_storage::{Aggregate, Db, Error, Point, BLOCK_POINTS};

fn store() -> (tempfile::TempDir, Db) {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    (tmp, db)
}

fn regular(n: usize, start: i64, every: i64, value: impl Fn(usize) -> f64) -> Vec<Point> {
    (0..n).map(|i| Point { ts_ms: start + i as i64 * every, value: value(i) }).collect()
}

#[test]
fn points_outside_the_window_are_refused_and_inside_it_merge_into_sealed_blocks() {
    let (_tmp, db) = store();
    let ts = db.time_series();
    let points = regular(3 * BLOCK_POINTS, 0, 1000, |i| i as f64);
    ts.import("s", points.clone()).unwrap();
    let newest = points.last().unwrap().ts_ms;
    ts.set_out_of_order_window("s", 2_000_000).unwrap();
    // Inside the window but older than every head point: lands in a sealed block.
    let late = newest - 1_999_500;
    assert!(late < points[2 * BLOCK_POINTS].ts_ms);
    ts.append("s", late, -1.0).unwrap();
    // Replaces an existing timestamp of a sealed block.
    ts.append("s", points[2 * BLOCK_POINTS + 5].ts_ms, 42.0).unwrap();
    let err = ts.append("s", newest - 2_000_001, 0.0).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(ref m) if m.contains("out-of-order window")), "{err}");
    let got = ts.query("s", i64::MIN, i64::MAX).unwrap();
    assert_eq!(got.len(), points.len() + 1);
    assert!(got.windows(2).all(|p| p[0].ts_ms < p[1].ts_ms));
    assert!(got.contains(&Point { ts_ms: late, value: -1.0 }));
    assert!(got.contains(&Point { ts_ms: points[2 * BLOCK_POINTS + 5].ts_ms, value: 42.0 }));
    assert_eq!(ts.series().unwrap()[0].points, points.len() as u64 + 1);
}

#[test]
fn floats_round_trip_bit_for_bit_in_blocks_and_in_the_head() {
    let (_tmp, db) = store();
    let ts = db.time_series();
    let specials = [f64::NAN, -0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY, f64::from_bits(0x7ff0_0000_0000_0001), 5e-324, 0.1 + 0.2];
    let points: Vec<Point> = (0..BLOCK_POINTS + 100).map(|i| Point { ts_ms: i as i64, value: specials[i % specials.len()] }).collect();
    ts.import("f", points.clone()).unwrap();
    db.flush().unwrap();
    let got = ts.query("f", 0, i64::MAX).unwrap();
    let bits = |p: &[Point]| p.iter().map(|p| (p.ts_ms, p.value.to_bits())).collect::<Vec<_>>();
    assert_eq!(bits(&got), bits(&points));
    assert_eq!(ts.latest("f").unwrap().unwrap().value.to_bits(), points.last().unwrap().value.to_bits());
}

#[test]
fn labels_persist_and_series_list_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let db = Db::create(tmp.path(), &cred(), options()).unwrap();
        let ts = db.time_series();
        ts.append("b", 1, 1.0).unwrap();
        ts.set_labels("a", &[("host", "db-1"), ("dc", "fra")]).unwrap();
        assert!(matches!(ts.set_labels("a", &[("", "x")]), Err(Error::InvalidArgument(_))));
        assert!(matches!(ts.append("", 1, 1.0), Err(Error::InvalidArgument(_))));
        db.close().unwrap();
    }
    let db = Db::open(tmp.path(), &cred(), options().with_read_only(true)).unwrap();
    let list = db.time_series().series().unwrap();
    assert_eq!(list.iter().map(|s| (s.name.as_str(), s.points)).collect::<Vec<_>>(), [("a", 0), ("b", 1)]);
    assert_eq!(list[0].labels, [("host".to_string(), "db-1".to_string()), ("dc".to_string(), "fra".to_string())]);
}

#[test]
fn a_store_without_series_reads_as_empty_even_read_only() {
    let tmp = tempfile::tempdir().unwrap();
    Db::create(tmp.path(), &cred(), options()).unwrap().close().unwrap();
    let db = Db::open(tmp.path(), &cred(), options().with_read_only(true)).unwrap();
    let ts = db.time_series();
    assert!(ts.series().unwrap().is_empty());
    assert!(ts.query("x", 0, 10).unwrap().is_empty());
    assert!(ts.latest("x").unwrap().is_none());
    assert!(ts.append("x", 1, 1.0).is_err());
}

#[test]
fn downsampling_uses_summaries_of_blocks_inside_one_step_and_matches_decoding() {
    let (_tmp, db) = store();
    let ts = db.time_series();
    let points = regular(20 * BLOCK_POINTS, 0, 10_000, |i| ((i * 37) % 1000) as f64 / 10.0);
    ts.import("walk", points.clone()).unwrap();
    let day = 86_400_000;
    let end = points.last().unwrap().ts_ms + 1;
    for agg in [Aggregate::Min, Aggregate::Max, Aggregate::Count, Aggregate::First, Aggregate::Last, Aggregate::Sum, Aggregate::Avg] {
        let report = ts.downsample("walk", 0, end, day, agg).unwrap();
        assert!(report.blocks_from_summary > 10, "{agg:?}: {report:?}");
        assert!(report.blocks_decoded < 10, "{agg:?}: {report:?}");
        // The same buckets from the raw points.
        let mut want: Vec<(i64, Vec<f64>)> = Vec::new();
        for p in &points {
            let b = p.ts_ms / day * day;
            match want.last_mut() {
                Some((k, vs)) if *k == b => vs.push(p.value),
                _ => want.push((b, vec![p.value])),
            }
        }
        assert_eq!(report.points.len(), want.len());
        for (got, (b, vs)) in report.points.iter().zip(&want) {
            assert_eq!(got.ts_ms, *b);
            let sum: f64 = vs.iter().sum();
            let expect = match agg {
                Aggregate::Min => vs.iter().copied().fold(f64::INFINITY, f64::min),
                Aggregate::Max => vs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                Aggregate::Count => vs.len() as f64,
                Aggregate::First => vs[0],
                Aggregate::Last => *vs.last().unwrap(),
                Aggregate::Sum => sum,
                _ => sum / vs.len() as f64,
            };
            // Sums of one-decimal values differ from a point-by-point sum by rounding only.
            assert!((got.value - expect).abs() <= 1e-9 * expect.abs().max(1.0), "{agg:?} at {b}: {} vs {expect}", got.value);
        }
    }
    // A step smaller than a block decodes the blocks.
    let fine = ts.downsample("walk", 0, end, 60_000, Aggregate::Avg).unwrap();
    assert_eq!(fine.blocks_from_summary, 0);
    assert!(matches!(ts.downsample("walk", 0, end, 0, Aggregate::Avg), Err(Error::InvalidArgument(_))));
}

#[test]
fn retention_deletes_whole_blocks_by_range_deletes_and_compaction_reclaims_them() {
    let (_tmp, db) = store();
    let ts = db.time_series();
    let points = regular(10 * BLOCK_POINTS, 0, 1000, |i| (i % 100) as f64);
    ts.import("r", points.clone()).unwrap();
    db.flush().unwrap();
    let before = db.stats().range_tombstones;
    let newest = points.last().unwrap().ts_ms;
    let keep = 2 * BLOCK_POINTS as i64 * 1000 + 500;
    ts.set_retention("r", Some(keep)).unwrap();
    // One range delete for the blocks and one for their summaries.
    assert_eq!(db.stats().range_tombstones, before + 2);
    let got = ts.query("r", i64::MIN, i64::MAX).unwrap();
    assert_eq!(got.first().unwrap().ts_ms, newest - keep + 500);
    assert_eq!(got.len() as u64, ts.series().unwrap()[0].points);
    // Growing the window later does not bring expired points back.
    ts.set_retention("r", None).unwrap();
    assert_eq!(ts.query("r", i64::MIN, i64::MAX).unwrap(), got);
    // Nothing else was rewritten, and compaction drops what was deleted.
    db.flush().unwrap();
    let size_before = db.stats().bytes_per_level.iter().sum::<u64>();
    for ks in db.keyspaces() {
        db.compact_range_in(&ks, None, None).unwrap();
    }
    assert!(db.stats().bytes_per_level.iter().sum::<u64>() < size_before, "{} >= {size_before}", db.stats().bytes_per_level.iter().sum::<u64>());
    assert_eq!(ts.query("r", i64::MIN, i64::MAX).unwrap(), got);
    assert!(matches!(ts.set_retention("r", Some(-1)), Err(Error::InvalidArgument(_))));
}

#[test]
fn concurrent_appends_to_one_series_lose_nothing() {
    let (_tmp, db) = store();
    std::thread::scope(|s| {
        for t in 0..4i64 {
            let db = &db;
            s.spawn(move || {
                for i in 0..100i64 {
                    db.time_series().append("c", 1_000_000 + i * 4 + t, t as f64).unwrap();
                }
            });
        }
    });
    let got = db.time_series().query("c", 0, i64::MAX).unwrap();
    assert_eq!(got.len(), 400);
    assert_eq!(db.time_series().series().unwrap()[0].points, 400);
}
