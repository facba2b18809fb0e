//! No plaintext of the time-series store on disk: series names, label names
//! and values that are marker strings, and point values (random bit patterns,
//! which the XOR codec keeps whole, and one-decimal values, which the decimal
//! codec stores as integers) are written through appends and an import; after
//! the WAL-only stage, a flush, a compaction, retention and a close, no file
//! under the store holds any marker, a value's 8 bytes (either byte order) or
//! a value's text, nor the integers the decimal codec made of them.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::Path;

use rand::{Rng, RngCore};
use synapsed_storage::{Argon2Params, Compression, Credential, Db, Options, Point, BLOCK_POINTS};

fn marker(rng: &mut impl RngCore, role: &str) -> String {
    format!("CANARY-{role}-{:016x}{:08x}", rng.next_u64(), rng.next_u32())
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn assert_absent(dir: &Path, needles: &[(String, Vec<u8>)], stage: &str) {
    let mut all = Vec::new();
    files(dir, &mut all);
    assert!(!all.is_empty());
    for f in all {
        let bytes = std::fs::read(&f).unwrap();
        for (what, needle) in needles {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_slice()), "{stage}: {what} found in {}", f.display());
        }
    }
}

fn run(compression: Compression) {
    let mut rng = rand::thread_rng();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let options = Options::tiny_for_tests()
        .with_compression(compression)
        .with_background_compaction(false)
        .with_argon2(Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 });
    let cred = Credential::passphrase("ts canary");
    let db = Db::create(&dir, &cred, options).unwrap();
    let series = [marker(&mut rng, "series"), marker(&mut rng, "series")];
    let (label, label_value) = (marker(&mut rng, "label"), marker(&mut rng, "label-value"));
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for m in series.iter().chain([&label, &label_value]) {
        needles.push((m.clone(), m.as_bytes().to_vec()));
        // Halves too, so a marker split across a boundary is found.
        needles.push((format!("half of {m}"), m.as_bytes()[..m.len() / 2].to_vec()));
        needles.push((format!("half of {m}"), m.as_bytes()[m.len() / 2..].to_vec()));
    }
    let ts = db.time_series();
    ts.set_labels(&series[0], &[(label.as_str(), label_value.as_str())]).unwrap();
    // Random bit patterns (XOR keeps the first value of a block whole).
    let random: Vec<Point> = (0..BLOCK_POINTS + 10)
        .map(|i| Point { ts_ms: 1_000 * i as i64, value: f64::from_bits(rng.next_u64() & !(0x7ff << 52) | (0x400 << 52)) })
        .collect();
    for p in random.iter().step_by(97) {
        needles.push((format!("value {}", p.value), p.value.to_bits().to_le_bytes().to_vec()));
        needles.push((format!("value {} (big-endian)", p.value), p.value.to_bits().to_be_bytes().to_vec()));
        needles.push((format!("text of {}", p.value), p.value.to_string().into_bytes()));
    }
    for p in &random[..20] {
        ts.append(&series[0], p.ts_ms, p.value).unwrap();
    }
    ts.import(&series[0], random[20..].iter().copied()).unwrap();
    // One-decimal values with a distinctive start: the decimal codec's first integer.
    let base = rng.gen_range(1_000_000_000i64..2_000_000_000);
    let decimals: Vec<Point> = (0..2 * BLOCK_POINTS).map(|i| Point { ts_ms: 10 * i as i64, value: (base + (i as i64 % 7)) as f64 / 10.0 }).collect();
    needles.push(("first decimal integer".into(), (base as u64).to_be_bytes().to_vec()));
    needles.push(("first decimal integer (LE)".into(), (base as u64).to_le_bytes().to_vec()));
    needles.push(("text of a decimal value".into(), decimals[0].value.to_string().into_bytes()));
    ts.import(&series[1], decimals).unwrap();
    assert_absent(&dir, &needles, "WAL only");
    db.flush().unwrap();
    assert_absent(&dir, &needles, "after flush");
    ts.set_retention(&series[0], Some(500_000)).unwrap();
    for ks in db.keyspaces() {
        db.compact_range_in(&ks, None, None).unwrap();
    }
    assert_absent(&dir, &needles, "after retention and compaction");
    assert_eq!(ts.series().unwrap().len(), 2);
    db.close().unwrap();
    assert_absent(&dir, &needles, "after close");
}

#[test]
fn no_series_name_label_or_value_reaches_the_disk_in_plaintext() {
    run(Compression::None);
    run(Compression::Zstd(3));
}
