//! The change feed (`Db::changes_since`): a consumer that applies every change
//! it hands out rebuilds exactly what a full scan of the store holds, across
//! flushes, compactions, reopens and writer processes killed with SIGKILL
//! (followed, while they write, through a read-only handle), and resumes from
//! the last seqno it was handed. Retention (by bytes and by age)
//! ends in a typed error, never a silent gap; a kept segment that was removed
//! is reported as a gap, one that was replaced by another copy stops the open;
//! a key rotation and a secure deletion end the retention of what they shred;
//! a read-only handle reads the feed up to what it sees; a power loss at any
//! sync or write leaves kept segments the feed reads without a gap.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{cred, options};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use synapsed_storage::{ChangeFeedRetention, ChangeKind, Db, Error, Options, SimVfs, SyncPolicy, WriteBatch};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// The environment variable that makes `feed_child_writer` the writer process.
const CHILD_DIR_ENV: &str = "SYNAPSED_FEED_CHILD_DIR";

/// Options with a retention far larger than any test writes.
fn retained() -> Options {
    options().with_change_feed_retention(Some(ChangeFeedRetention::max_bytes(1 << 30)))
}

/// Applies every change after `from` to `model`, checking that they come in
/// commit order without a gap; returns the last seqno handed out.
fn consume(db: &Db, from: u64, model: &mut Model) -> u64 {
    let mut last = from;
    for change in db.changes_since(from).unwrap() {
        let change = change.unwrap_or_else(|e| panic!("feed after {last}: {e}"));
        assert_eq!(change.seqno, last + 1, "changes come in commit order, without a gap");
        assert_eq!(change.keyspace, 0);
        match change.kind {
            ChangeKind::Put => {
                model.insert(change.key, change.value);
            }
            ChangeKind::Delete => {
                assert!(change.value.is_empty());
                model.remove(&change.key);
            }
            other => panic!("unexpected change kind {other:?}"),
        }
        last = change.seqno;
    }
    last
}

fn scan(db: &Db) -> Model {
    db.scan_prefix(b"").unwrap().map(Result::unwrap).collect()
}

/// A batch of puts and deletes over 40 keys.
fn random_batch(rng: &mut StdRng, tag: &str) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for i in 0..rng.gen_range(1..8) {
        let key = format!("k{:02}", rng.gen_range(0..40));
        if rng.gen_bool(0.25) {
            batch.delete(key.as_bytes());
        } else {
            batch.put(key.as_bytes(), format!("{tag}-{i}-{}", rng.gen::<u32>()).as_bytes());
        }
    }
    batch
}

/// The WAL segments in `dir`, by name, oldest first.
fn wal_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".wal"))
        .collect();
    names.sort();
    names
}

fn truncated(result: Result<impl Sized, Error>) -> (u64, u64) {
    match result {
        Err(Error::ChangeFeedTruncated { requested, oldest_available }) => (requested, oldest_available),
        Err(e) => panic!("expected ChangeFeedTruncated, got {e}"),
        Ok(_) => panic!("expected ChangeFeedTruncated, got a feed"),
    }
}

#[test]
fn the_feed_rebuilds_the_store_across_flushes_compactions_and_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut db = Db::create(&dir, &cred(), retained()).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let mut model = Model::new();
    let mut last = 0;
    for round in 0..8 {
        for b in 0..60 {
            db.write(random_batch(&mut rng, &format!("r{round}b{b}"))).unwrap();
        }
        match round % 4 {
            0 => db.flush().unwrap(),
            1 => db.compact_range(None, None).unwrap(),
            2 => {
                db.close().unwrap();
                db = Db::open(&dir, &cred(), retained()).unwrap();
            }
            _ => {}
        }
        // Resumes from the last seqno it was handed, whatever happened since.
        last = consume(&db, last, &mut model);
        assert_eq!(last, db.stats().last_seqno, "round {round}: the feed reaches the last commit");
        assert_eq!(model, scan(&db), "round {round}: the feed rebuilds the store");
    }
    let stats = db.stats();
    assert!(stats.compactions > 0 && stats.flushes > 0, "{stats:?}");
    // A new consumer starting from nothing rebuilds it too.
    let mut fresh = Model::new();
    assert_eq!(consume(&db, 0, &mut fresh), last);
    assert_eq!(fresh, model);
    // Feeds from the middle hand out exactly the changes after their seqno.
    let middle: Vec<u64> = db.changes_since(last / 2).unwrap().map(|c| c.unwrap().seqno).collect();
    assert_eq!(middle, (last / 2 + 1..=last).collect::<Vec<_>>());
    assert_eq!(db.changes_since(last).unwrap().count(), 0, "nothing after the last commit");
    db.close().unwrap();
    assert!(wal_files(&dir).len() > 4, "retired segments are kept: {:?}", wal_files(&dir));
}

/// Not a test of its own: the writer process that
/// `the_feed_rebuilds_the_store_after_sigkilled_writers` starts and kills.
/// Writes random batches (background flushes and compactions on, tiny
/// memtables) and acknowledges each on stdout, until it is killed.
#[test]
#[ignore = "the writer process of the_feed_rebuilds_the_store_after_sigkilled_writers"]
fn feed_child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else { return };
    let seed: u64 = std::env::var("SYNAPSED_FEED_CHILD_SEED").unwrap().parse().unwrap();
    let options = Options::tiny_for_tests().with_change_feed_retention(Some(ChangeFeedRetention::max_bytes(1 << 30)));
    let db = Db::open(Path::new(&dir), &cred(), options).unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    for n in 0u64.. {
        let seqno = db.write(random_batch(&mut rng, &format!("s{seed}n{n}"))).unwrap();
        if n % 97 == 96 {
            db.compact_range(None, None).unwrap();
        }
        println!("ack {seqno}");
    }
}

#[test]
fn the_feed_rebuilds_the_store_after_sigkilled_writers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    Db::create(&dir, &cred(), retained()).unwrap().close().unwrap();
    let seed: u64 = std::env::var("SYNAPSED_FEED_SEED").ok().map_or_else(rand::random, |s| s.parse().unwrap());
    println!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = Model::new();
    let mut last = 0;
    let mut kills_after_flush = 0;
    let mut read_beside_the_writer = 0;
    for cycle in 0..8u64 {
        let ctx = format!("seed {seed} cycle {cycle}");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["feed_child_writer", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, &dir)
            .env("SYNAPSED_FEED_CHILD_SEED", (seed ^ cycle).to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut acks = BufReader::new(child.stdout.take().unwrap()).lines();
        let wait_for = rng.gen_range(1..400);
        let mut acked = 0;
        let mut last_acked = 0;
        // A read-only handle in this process follows the feed while the writer
        // writes, flushes and compacts; the same consumer goes on after the kill.
        let mut reader: Option<Db> = None;
        while acked < wait_for {
            let Some(line) = acks.next() else { panic!("{ctx}: the writer stopped before it was killed") };
            if let Some(seqno) = line.unwrap().strip_prefix("ack ") {
                last_acked = seqno.parse().unwrap();
                acked += 1;
                if acked % 50 == 25 {
                    // A handle whose refresh fails is closed; a new open starts afresh.
                    reader = reader
                        .take()
                        .filter(|r| r.refresh().is_ok())
                        .or_else(|| Db::open(&dir, &cred(), retained().with_read_only(true)).ok());
                    if let Some(r) = &reader {
                        last = consume(r, last, &mut model);
                        read_beside_the_writer += 1;
                    }
                }
            }
        }
        drop(reader);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let db = Db::open(&dir, &cred(), retained()).unwrap_or_else(|e| panic!("{ctx}: open after the kill: {e}"));
        kills_after_flush += usize::from(db.stats().files_per_level.iter().sum::<usize>() > 0);
        assert!(db.stats().last_seqno >= last_acked, "{ctx}: an acknowledged write is lost");
        last = consume(&db, last, &mut model);
        assert_eq!(last, db.stats().last_seqno, "{ctx}: the feed reaches the last commit");
        assert_eq!(model, scan(&db), "{ctx}: the feed rebuilds the store");
        if cycle % 3 == 2 {
            db.compact_range(None, None).unwrap();
            assert_eq!(model, scan(&db), "{ctx}: after a compaction");
        }
        db.close().unwrap();
    }
    assert!(kills_after_flush > 0, "no writer flushed before it was killed: the test proved little");
    println!("{read_beside_the_writer} reads of the feed beside a live writer");
    let db = Db::open(&dir, &cred(), retained()).unwrap();
    let mut fresh = Model::new();
    assert_eq!(consume(&db, 0, &mut fresh), last);
    assert_eq!(fresh, scan(&db), "a consumer starting from nothing rebuilds the store");
    assert!(Db::verify(&dir, &cred(), retained()).unwrap().is_ok());
}

/// Writes `rounds` rounds of 10 single-key puts (seqnos `10 r + 1 ..= 10 r + 10`),
/// each round flushed, so each round's segment is retired on its own.
fn write_rounds(db: &Db, rounds: u64, value_len: usize) {
    for r in 0..rounds {
        for i in 0..10 {
            db.put(format!("r{r}k{i}").as_bytes(), &vec![b'v'; value_len]).unwrap();
        }
        db.flush().unwrap();
    }
}

#[test]
fn a_seqno_older_than_the_byte_limit_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let limit = 3000;
    let opts = options().with_change_feed_retention(Some(ChangeFeedRetention::max_bytes(limit)));
    let db = Db::create(&dir, &cred(), opts).unwrap();
    write_rounds(&db, 10, 100);
    let (requested, oldest) = truncated(db.changes_since(0));
    assert_eq!(requested, 0);
    assert!(oldest > 1 && oldest <= 91, "the oldest kept change is {oldest}");
    assert_eq!((oldest - 1) % 10, 0, "segments hold whole rounds");
    // A seqno inside the dropped part is refused the same way.
    assert_eq!(truncated(db.changes_since(oldest - 2)), (oldest - 2, oldest));
    // From the oldest kept change on, the feed hands out everything.
    let seqnos: Vec<u64> = db.changes_since(oldest - 1).unwrap().map(|c| c.unwrap().seqno).collect();
    assert_eq!(seqnos, (oldest..=100).collect::<Vec<_>>());
    // What is kept fits the limit: every segment but the live one is a kept one.
    db.close().unwrap();
    let mut kept = wal_files(&dir);
    kept.pop();
    let bytes: u64 = kept.iter().map(|n| std::fs::metadata(dir.join(n)).unwrap().len()).sum();
    assert!(!kept.is_empty() && bytes <= limit, "{kept:?} take {bytes} bytes");
}

#[test]
fn without_a_retention_the_feed_covers_the_live_segments_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let db = Db::create(&dir, &cred(), options()).unwrap();
    write_rounds(&db, 2, 10);
    for i in 0..5 {
        db.put(format!("late{i}").as_bytes(), b"x").unwrap();
    }
    assert_eq!(truncated(db.changes_since(0)), (0, 21));
    let seqnos: Vec<u64> = db.changes_since(20).unwrap().map(|c| c.unwrap().seqno).collect();
    assert_eq!(seqnos, (21..=25).collect::<Vec<_>>());
    db.close().unwrap();
    assert_eq!(wal_files(&dir).len(), 1, "no segment is kept: today's behaviour");
}

#[test]
fn a_seqno_older_than_the_age_limit_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let opts = options().with_change_feed_retention(Some(ChangeFeedRetention::max_age(Duration::from_secs(2))));
    let db = Db::create(&dir, &cred(), opts).unwrap();
    write_rounds(&db, 3, 10);
    assert_eq!(db.changes_since(0).unwrap().count(), 30, "young segments are kept");
    std::thread::sleep(Duration::from_millis(2500));
    // Removal runs after every flush.
    write_rounds(&db, 1, 10);
    assert_eq!(truncated(db.changes_since(0)), (0, 31));
    assert_eq!(db.changes_since(30).unwrap().count(), 10);
}

#[test]
fn kept_segments_age_out_on_an_idle_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let opts = Options::tiny_for_tests().with_change_feed_retention(Some(ChangeFeedRetention::max_age(Duration::from_millis(200))));
    let db = Db::create(&dir, &cred(), opts).unwrap();
    write_rounds(&db, 3, 10);
    let deadline = Instant::now() + Duration::from_secs(20);
    // Every kept segment goes (some may already have gone at a flush above).
    while !matches!(db.changes_since(0), Err(Error::ChangeFeedTruncated { oldest_available: 31, .. })) {
        assert!(Instant::now() < deadline, "the kept segments never aged out");
        std::thread::sleep(Duration::from_millis(50));
    }
    // And their files go, not only their records (right after the edit that released them).
    while wal_files(&dir).len() > 1 {
        assert!(Instant::now() < deadline, "released segments stay on disk: {:?}", wal_files(&dir));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_removed_kept_segment_is_reported_as_a_gap_and_a_replaced_one_stops_the_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let db = Db::create(&dir, &cred(), retained()).unwrap();
    write_rounds(&db, 1, 10);
    for i in 0..10 {
        db.put(format!("r1k{i}").as_bytes(), b"x").unwrap();
    }
    // A copy of the second round's segment while it is still being written.
    let second = wal_files(&dir).pop().unwrap();
    let early_copy = std::fs::read(dir.join(&second)).unwrap();
    db.flush().unwrap();
    write_rounds(&db, 1, 10);
    db.close().unwrap();
    let files = wal_files(&dir);
    assert_eq!(files.len(), 4, "three kept segments and the live one: {files:?}");
    assert_eq!(files[1], second);

    // The copy put back in place of the kept segment: refused before anything is written.
    let kept = std::fs::read(dir.join(&second)).unwrap();
    std::fs::write(dir.join(&second), &early_copy).unwrap();
    for read_only in [false, true] {
        match Db::open(&dir, &cred(), retained().with_read_only(read_only)) {
            Err(Error::Corruption { file, reason, .. }) => assert!(file == second && reason.contains("change feed"), "{file}: {reason}"),
            other => panic!("read_only {read_only}: an older copy of a kept segment was accepted: {other:?}"),
        }
    }
    let report = Db::verify(&dir, &cred(), retained()).unwrap();
    assert!(report.damaged.iter().any(|(f, _)| *f == second), "{:?}", report.damaged);
    std::fs::write(dir.join(&second), &kept).unwrap();

    // The segment removed: the store opens, and the feed stops at the gap.
    std::fs::remove_file(dir.join(&second)).unwrap();
    let db = Db::open(&dir, &cred(), retained()).unwrap();
    let mut feed = db.changes_since(0).unwrap();
    let before: Vec<u64> = feed.by_ref().take(10).map(|c| c.unwrap().seqno).collect();
    assert_eq!(before, (1..=10).collect::<Vec<_>>());
    assert_eq!(truncated(feed.next().unwrap()), (10, 21));
    assert!(feed.next().is_none(), "the feed ends at its error");
    // Resuming after the gap works.
    assert_eq!(db.changes_since(20).unwrap().count(), 10);
}

#[test]
fn a_key_rotation_and_a_secure_delete_end_the_retention_of_what_they_shred() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let db = Db::create(&dir, &cred(), retained()).unwrap();
    write_rounds(&db, 2, 10);
    assert!(wal_files(&dir).len() > 1);
    let report = db.rotate_keys().unwrap();
    assert!(!report.epochs_destroyed.is_empty(), "the old epoch is destroyed: {report:?}");
    assert!(report.epochs_retained.is_empty(), "no kept segment holds an old epoch back: {report:?}");
    let (_, oldest) = truncated(db.changes_since(0));
    assert_eq!(oldest, 21, "the retention restarts at the rotation");

    // Segments kept after the rotation hold the secret until it is securely deleted.
    db.put(b"secret", b"the secret value").unwrap();
    write_rounds(&db, 1, 10);
    let has_secret = |db: &Db, from: u64| db.changes_since(from).unwrap().any(|c| c.unwrap().value == b"the secret value");
    assert!(has_secret(&db, 20));
    db.secure_delete(b"secret").unwrap();
    let (_, oldest) = truncated(db.changes_since(20));
    assert!(!has_secret(&db, oldest - 1), "the deleted value is still in the feed");
    let stats = db.stats();
    assert_eq!(stats.files_per_epoch.len(), 1, "every file is under the current epoch: {:?}", stats.files_per_epoch);
}

#[test]
fn a_read_only_handle_reads_the_feed_up_to_what_it_sees() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let db = Db::create(&dir, &cred(), retained()).unwrap();
    write_rounds(&db, 2, 10);
    db.put(b"live", b"1").unwrap();
    let reader = Db::open(&dir, &cred(), retained().with_read_only(true)).unwrap();
    let mut model = Model::new();
    assert_eq!(consume(&reader, 0, &mut model), 21);
    for i in 0..5 {
        db.put(format!("more{i}").as_bytes(), b"2").unwrap();
    }
    assert_eq!(reader.changes_since(21).unwrap().count(), 0, "never past the seqno the handle sees");
    reader.refresh().unwrap();
    assert_eq!(consume(&reader, 21, &mut model), 26);
    assert_eq!(model, scan(&db));
    assert!(matches!(reader.changes_since(0).map(|f| f.count()), Ok(26)));
}

#[test]
fn large_batches_go_through_the_log_with_a_retention_and_are_reported_without_one() {
    let tmp = tempfile::tempdir().unwrap();
    let big = |db: &Db| {
        let mut batch = WriteBatch::new();
        for i in 0..20 {
            batch.put(format!("big{i}").as_bytes(), [b'b'; 100]);
        }
        db.write(batch).unwrap()
    };
    // Without a retention a large batch goes straight to a table: the feed says
    // it cannot hand it out.
    let db = Db::create(&tmp.path().join("a"), &cred(), options().with_ingest_min_bytes(1000)).unwrap();
    db.put(b"first", b"1").unwrap();
    assert_eq!(big(&db), 21);
    assert_eq!(db.stats().ingests, 1);
    db.put(b"after", b"2").unwrap();
    assert_eq!(truncated(db.changes_since(0)), (0, 2));
    let mut feed = db.changes_since(1).unwrap();
    assert_eq!(truncated(feed.next().unwrap()), (1, 22));
    assert_eq!(db.changes_since(21).unwrap().map(|c| c.unwrap().seqno).collect::<Vec<_>>(), vec![22]);
    // With one it is logged like any other batch.
    let db = Db::create(&tmp.path().join("b"), &cred(), retained().with_ingest_min_bytes(1000)).unwrap();
    db.put(b"first", b"1").unwrap();
    assert_eq!(big(&db), 21);
    db.put(b"after", b"2").unwrap();
    assert_eq!(db.stats().ingests, 0);
    let mut model = Model::new();
    assert_eq!(consume(&db, 0, &mut model), 22);
    assert_eq!(model, scan(&db));
}

#[test]
fn a_retention_needs_a_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let none = options().with_change_feed_retention(Some(ChangeFeedRetention::default()));
    assert!(matches!(Db::create(&tmp.path().join("s"), &cred(), none), Err(Error::InvalidArgument(_))));
}

#[test]
fn damage_in_a_kept_segment_is_reported_and_one_overwritten_after_its_release_is_a_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let db = Db::create(&dir, &cred(), retained()).unwrap();
    write_rounds(&db, 2, 10);
    let reader = Db::open(&dir, &cred(), retained().with_read_only(true)).unwrap();
    let first = dir.join(&wal_files(&dir)[0]);
    let original = std::fs::read(&first).unwrap();
    let mut damaged = original.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x40;
    std::fs::write(&first, &damaged).unwrap();
    // Damage in a segment the manifest keeps is damage, in both kinds of handle.
    for handle in [&db, &reader] {
        match handle.changes_since(0).unwrap().next() {
            Some(Err(e)) => assert!(e.is_corruption(), "{e}"),
            other => panic!("damage in a kept segment was not reported: {other:?}"),
        }
    }
    std::fs::write(&first, &original).unwrap();
    assert_eq!(reader.changes_since(0).unwrap().count(), 20);

    // The writer ends the retention (a rotation); the segment is caught
    // overwritten in place, before its removal. The reader's view still lists it,
    // but the manifest no longer does: a gap, not damage.
    db.rotate_keys().unwrap();
    assert!(!first.exists());
    std::fs::write(&first, vec![0x5a; original.len()]).unwrap();
    let mut feed = reader.changes_since(0).unwrap();
    assert_eq!(truncated(feed.next().unwrap()), (0, 11));
}

#[test]
fn kept_segments_survive_a_power_loss_at_every_sync_and_write() {
    // The power goes after the n-th sync, after the n-th write, or (torn writes)
    // after the n-th sync with part of each file's unsynced tail landed.
    let dir = Path::new("/stores/feed");
    let opts = |vfs: std::sync::Arc<SimVfs>| retained().with_vfs(vfs).with_sync(SyncPolicy::EveryCommit);
    let (mut checked, mut repaired) = (0, 0);
    for (fail_writes, torn) in [(false, false), (true, false), (false, true)] {
        for n in 0.. {
            let ctx = format!("writes {fail_writes}, torn {torn}, n {n}");
            let sim = SimVfs::with_seed(n);
            let db = Db::create(dir, &cred(), opts(sim.clone())).unwrap();
            sim.set_torn_writes(torn);
            if fail_writes {
                sim.fail_write_after(n);
            } else {
                sim.fail_sync_after(n);
            }
            let mut rng = StdRng::seed_from_u64(n);
            let completed = (|| {
                for round in 0..4 {
                    for b in 0..12 {
                        db.write(random_batch(&mut rng, &format!("r{round}b{b}")))?;
                    }
                    db.flush()?;
                    if round == 2 {
                        db.compact_range(None, None)?;
                    }
                }
                Ok::<_, Error>(())
            })()
            .is_ok();
            // After the fault the store refuses writes, so its close adds nothing
            // durable; then the power goes.
            drop(db);
            sim.crash();
            sim.clear_faults();
            let (db, repair) =
                Db::open_or_repair(dir, &cred(), opts(sim.clone())).unwrap_or_else(|e| panic!("{ctx}: reopen after a crash: {e}"));
            if repair.is_some() {
                // A repair drops the change-feed records; the feed then starts after it.
                repaired += 1;
            } else {
                let mut model = Model::new();
                assert_eq!(consume(&db, 0, &mut model), db.stats().last_seqno, "{ctx}");
                assert_eq!(model, scan(&db), "{ctx}: the feed rebuilds the store");
                checked += 1;
            }
            db.close().unwrap();
            if completed {
                break;
            }
        }
    }
    eprintln!("{checked} crashes checked through the feed, {repaired} repaired");
    assert!(checked > 20, "{checked} crashes checked");
}

#[test]
fn a_retention_can_be_turned_on_and_off_between_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    // A store written without a retention: its segments go as before.
    let db = Db::create(&dir, &cred(), options()).unwrap();
    write_rounds(&db, 2, 10);
    db.put(b"unflushed", b"1").unwrap();
    db.close().unwrap();
    assert_eq!(wal_files(&dir).len(), 1);
    // Opened with one, the segment the open replays and retires is kept.
    let db = Db::open(&dir, &cred(), retained()).unwrap();
    assert_eq!(truncated(db.changes_since(0)), (0, 21));
    write_rounds(&db, 1, 10);
    assert_eq!(db.changes_since(20).unwrap().map(|c| c.unwrap().seqno).collect::<Vec<_>>(), (21..=31).collect::<Vec<_>>());
    db.close().unwrap();
    assert!(wal_files(&dir).len() > 1);
    // Opened without one again, every kept segment is released and removed.
    let db = Db::open(&dir, &cred(), options()).unwrap();
    assert_eq!(wal_files(&dir).len(), 1, "{:?}", wal_files(&dir));
    assert_eq!(truncated(db.changes_since(20)), (20, 32));
    assert_eq!(db.get(b"unflushed").unwrap().as_deref(), Some(&b"1"[..]));
}

/// Changes carry their keyspace and range deletes their bounds: a consumer
/// that applies them per keyspace rebuilds every keyspace, across a flush.
#[test]
fn the_feed_names_each_change_s_keyspace_and_hands_out_range_deletes() {
    use synapsed_storage::KeyspaceOptions;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &cred(), retained()).unwrap();
    let ks = db.create_keyspace("chats", KeyspaceOptions::default()).unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"d/1", b"one").put_in(&ks, b"c/1", b"hello").put_in(&ks, b"c/2", b"bye");
    db.write(batch).unwrap();
    db.flush().unwrap();
    for i in 0..10u8 {
        db.put(&[b'r', i], b"x").unwrap();
    }
    db.delete_range(b"r\x02", b"r\x08").unwrap();
    db.delete_in(&ks, b"c/2").unwrap();

    let mut models: BTreeMap<u32, Model> = BTreeMap::new();
    let mut ranges = Vec::new();
    for change in db.changes_since(0).unwrap() {
        let c = change.unwrap();
        let model = models.entry(c.keyspace).or_default();
        match c.kind {
            ChangeKind::Put => {
                model.insert(c.key, c.value);
            }
            ChangeKind::Delete => {
                model.remove(&c.key);
            }
            ChangeKind::DeleteRange => {
                ranges.push((c.keyspace, c.key.clone(), c.value.clone()));
                model.retain(|k, _| !(*k >= c.key && *k < c.value));
            }
            other => panic!("unexpected change kind {other:?}"),
        }
    }
    assert_eq!(ranges, vec![(0, b"r\x02".to_vec(), b"r\x08".to_vec())]);
    assert_eq!(models.get(&0), Some(&scan(&db)), "the default keyspace is rebuilt");
    let in_ks: Model = db.scan_prefix_in(&ks, b"").unwrap().map(Result::unwrap).collect();
    assert_eq!(models.get(&ks.id()), Some(&in_ks), "the keyspace is rebuilt");
    assert_eq!(in_ks.len(), 1);
}
