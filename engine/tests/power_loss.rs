//! Power-loss test on `SimVfs` (strict POSIX: unsynced bytes and unsynced
//! directory entries vanish at a crash). A single writer commits numbered
//! batches with `SyncPolicy::EveryCommit` under tiny options, so flushes and
//! compactions run all the time; the store is then cut off at a random point,
//! either by a crash fired from another thread (which can land inside a flush,
//! a compaction or a manifest switch) or by the N-th write or sync failing.
//! After reopening, the batches present must be exactly a prefix of those
//! attempted, covering every acknowledged batch, and the store's contents must
//! equal that prefix applied in order: nothing acknowledged lost, no batch
//! partly visible. A reopen may fail only with the one corruption a power loss
//! can leave (`wal/FORMAT.md`: a WAL frame cut in its last 1 to 15 bytes, zeros
//! after, which holds no acknowledged batch); the store is then repaired and
//! checked the same way.
//!
//! A failure names the seed and cycle; `SYNAPSED_POWER_SEED=<n>` replays one seed.
//!
//! A crash must stop the old store instantly, as power loss stops a process: the
//! store runs on a [`KillableVfs`] over the `SimVfs` that refuses every
//! operation once killed, with the kill and the crash taken atomically.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use synapsed_storage::vfs::{LockError, LockGuard, RandomAccessFile, WritableFile};
use synapsed_storage::{Credential, Db, Error, Options, SimVfs, SyncPolicy, Vfs, WriteBatch};

/// Forwards to a `SimVfs` until killed; afterwards every operation fails.
#[derive(Debug)]
struct KillableVfs {
    sim: Arc<SimVfs>,
    killed: Arc<RwLock<bool>>,
}

fn killed() -> io::Error {
    io::Error::other("power lost")
}

impl KillableVfs {
    fn new(sim: Arc<SimVfs>) -> Arc<Self> {
        Arc::new(KillableVfs { sim, killed: Arc::new(RwLock::new(false)) })
    }

    /// Cuts the power: no operation of the old store runs after the crash.
    fn kill(&self) {
        let mut k = self.killed.write();
        if !*k {
            *k = true;
            self.sim.crash();
        }
    }

    fn gate<T>(&self, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        let k = self.killed.read();
        if *k {
            return Err(killed());
        }
        f()
    }
}

struct KillableFile {
    inner: Box<dyn WritableFile>,
    killed: Arc<RwLock<bool>>,
}

impl WritableFile for KillableFile {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        let k = self.killed.read();
        if *k {
            return Err(killed());
        }
        self.inner.append(data)
    }
    fn sync(&self) -> io::Result<()> {
        let k = self.killed.read();
        if *k {
            return Err(killed());
        }
        self.inner.sync()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn preallocate(&self, len: u64) -> io::Result<()> {
        let k = self.killed.read();
        if *k {
            return Err(killed());
        }
        self.inner.preallocate(len)
    }
}

impl Vfs for KillableVfs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let inner = self.gate(|| self.sim.create(path))?;
        Ok(Box::new(KillableFile { inner, killed: self.killed.clone() }))
    }
    fn open_for_overwrite(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let inner = self.gate(|| self.sim.open_for_overwrite(path))?;
        Ok(Box::new(KillableFile { inner, killed: self.killed.clone() }))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        self.gate(|| self.sim.open(path))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.gate(|| self.sim.rename(from, to))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.gate(|| self.sim.remove_file(path))
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.gate(|| self.sim.truncate(path, len))
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.gate(|| self.sim.list_dir(dir))
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.gate(|| self.sim.create_dir_all(dir))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.gate(|| self.sim.sync_dir(dir))
    }
    fn exists(&self, path: &Path) -> bool {
        self.gate(|| Ok(self.sim.exists(path))).unwrap_or(false)
    }
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        self.gate(|| self.sim.file_size(path))
    }
    fn lock(&self, path: &Path) -> Result<Box<dyn LockGuard>, LockError> {
        if *self.killed.read() {
            return Err(LockError::Io(killed()));
        }
        self.sim.lock(path)
    }
}

/// One attempted batch: its id and its operations on the shared keys.
struct Batch {
    id: u64,
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fn marker(id: u64) -> Vec<u8> {
    format!("m{id:08}").into_bytes()
}

fn random_batch(rng: &mut StdRng, id: u64) -> Batch {
    let ops = (0..rng.gen_range(1..=12))
        .map(|_| {
            let k = format!("k{:03}", rng.gen_range(0..64)).into_bytes();
            if rng.gen_bool(0.85) {
                let pad = rng.gen_range(0..200);
                (k, Some(format!("b{id}:{}", "x".repeat(pad)).into_bytes()))
            } else {
                (k, None)
            }
        })
        .collect();
    Batch { id, ops }
}

fn to_write_batch(b: &Batch) -> WriteBatch {
    let mut wb = WriteBatch::new();
    wb.put(marker(b.id), format!("b{}", b.id));
    for (k, v) in &b.ops {
        match v {
            Some(v) => wb.put(k, v),
            None => wb.delete(k),
        };
    }
    wb
}

fn scan(db: &Db, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.scan_prefix(prefix).unwrap().map(|r| r.unwrap()).collect()
}

/// How a cycle ends.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// A crash from another thread after this many acknowledged batches plus a short delay.
    KillAfter(u64, u64),
    /// The N-th append from now fails, then the power goes.
    FailWrite(u64),
    /// The N-th sync from now fails, then the power goes.
    FailSync(u64),
    /// A clean close.
    Close(u64),
}

struct Run {
    seed: u64,
    rng: StdRng,
    sim: Arc<SimVfs>,
    dir: PathBuf,
    cred: Credential,
    background: bool,
    /// Every batch of the surviving history, by id (ids are dense from 0).
    history: Vec<Batch>,
    /// Highest id acknowledged so far.
    acked: Option<u64>,
    cycles: u64,
    /// Batches acknowledged over all cycles (for the summary).
    acked_total: u64,
}

impl Run {
    fn options(&self, vfs: Arc<dyn Vfs>) -> Options {
        Options::tiny_for_tests()
            .with_vfs(vfs)
            .with_sync(SyncPolicy::EveryCommit)
            .with_background_compaction(self.background)
    }

    fn open(&self, vfs: Arc<KillableVfs>) -> Db {
        let ctx = format!("seed {} cycle {}", self.seed, self.cycles);
        // The one power-loss outcome `open` reports as damage (docs/design.md
        // section 6): a WAL frame cut in its last 1 to 15 bytes, zeros after,
        // typed `TornLastFrame`. It holds no acknowledged batch; the
        // application's one call, `open_or_repair`, cuts it off and opens.
        match Db::open(&self.dir, &self.cred, self.options(vfs.clone())) {
            Ok(db) => db,
            Err(e) => {
                assert!(e.is_torn_last_frame(), "{ctx}: reopen failed: {e}");
                if let Error::TornLastFrame { file, offset } = &e {
                    let log = self.sim.read_live(&self.dir.join(file));
                    assert!(log.is_some_and(|log| synapsed_storage::fuzzing::frame_cut_in_its_last_bytes(&log, *offset)), "{ctx}: {e}");
                }
                let (db, report) = Db::open_or_repair(&self.dir, &self.cred, self.options(vfs))
                    .unwrap_or_else(|e| panic!("{ctx}: open_or_repair failed: {e}"));
                assert!(report.is_some(), "{ctx}: open_or_repair did not repair");
                db
            }
        }
    }

    /// Reopened state must be exactly history[0..=p] applied for some p >= acked.
    fn check(&mut self, db: &Db) {
        let ctx = format!("seed {} cycle {}", self.seed, self.cycles);
        let markers = scan(db, b"m");
        for (i, (k, v)) in markers.iter().enumerate() {
            assert_eq!(k, &marker(i as u64), "{ctx}: batches present are not a prefix (missing {i})");
            assert_eq!(v, format!("b{i}").as_bytes(), "{ctx}: marker {i} value");
        }
        let present = markers.len() as u64;
        if let Some(acked) = self.acked {
            assert!(present > acked, "{ctx}: acknowledged batch {acked} lost ({present} batches present)");
        }
        assert!(present as usize <= self.history.len(), "{ctx}: more batches than were written");
        self.history.truncate(present as usize);
        self.acked = present.checked_sub(1);
        let mut expected = BTreeMap::new();
        for b in &self.history {
            for (k, v) in &b.ops {
                match v {
                    Some(v) => expected.insert(k.clone(), v.clone()),
                    None => expected.remove(k),
                };
            }
        }
        let got: BTreeMap<_, _> = scan(db, b"k").into_iter().collect();
        assert!(got == expected, "{ctx}: contents are not the prefix of {present} batches applied in order");
        let reversed: Vec<_> = db.range(Bound::Included(b"k"), Bound::Excluded(b"l"), true, None).unwrap().map(|r| r.unwrap().0).collect();
        assert!(reversed.iter().eq(expected.keys().rev()), "{ctx}: reverse scan differs");
    }

    /// Writes batches until the cut; returns whether the store must be crashed.
    fn cycle(&mut self, vfs: &Arc<KillableVfs>, db: Db, cut: Cut) {
        let acked_now = Arc::new(AtomicU64::new(0));
        let killer = if let Cut::KillAfter(after, delay_us) = cut {
            let (vfs, acked_now) = (vfs.clone(), acked_now.clone());
            Some(std::thread::spawn(move || {
                while acked_now.load(Ordering::Acquire) < after {
                    std::thread::sleep(Duration::from_micros(50));
                }
                std::thread::sleep(Duration::from_micros(delay_us));
                vfs.kill();
            }))
        } else {
            None
        };
        match cut {
            Cut::FailWrite(n) => {
                self.sim.set_partial_failed_writes(self.rng.gen_bool(0.5));
                self.sim.fail_write_after(n);
            }
            Cut::FailSync(n) => self.sim.fail_sync_after(n),
            _ => {}
        }
        let limit = match cut {
            Cut::Close(n) => n,
            _ => 5_000,
        };
        let mut failed = false;
        for _ in 0..limit {
            let id = self.history.len() as u64;
            let batch = random_batch(&mut self.rng, id);
            let result = db.write(to_write_batch(&batch));
            self.history.push(batch);
            match result {
                Ok(_) => {
                    self.acked = Some(id);
                    self.acked_total += 1;
                    acked_now.fetch_add(1, Ordering::AcqRel);
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed && !matches!(cut, Cut::KillAfter(..)) {
            // Writes stay stopped after a failure, and reads keep working.
            let probe = db.write(to_write_batch(&random_batch(&mut self.rng, u64::MAX)));
            assert!(probe.is_err(), "seed {} cycle {}: write accepted after a failure", self.seed, self.cycles);
            if let Some(acked) = self.acked {
                assert!(db.get(&marker(acked)).is_ok(), "seed {}: reads fail after a write failure", self.seed);
            }
        }
        match cut {
            Cut::Close(_) => db.close().unwrap(),
            Cut::KillAfter(..) => {
                if !failed {
                    // The kill was never reached within the limit: cut here.
                    acked_now.store(u64::MAX, Ordering::Release);
                }
                killer.unwrap().join().unwrap();
                drop(db);
            }
            _ => {
                vfs.kill();
                drop(db);
            }
        }
        self.sim.clear_faults();
    }

    fn random_cut(&mut self) -> Cut {
        match self.rng.gen_range(0..10) {
            0..=4 => Cut::KillAfter(self.rng.gen_range(0..150), self.rng.gen_range(0..2_000)),
            5 | 6 => Cut::FailWrite(self.rng.gen_range(0..1_500)),
            7 | 8 => Cut::FailSync(self.rng.gen_range(0..300)),
            _ => Cut::Close(self.rng.gen_range(0..100)),
        }
    }
}

/// Runs `cycles` crash cycles for `seed`; returns how many were crashes and how
/// many batches were acknowledged.
fn run_seed(seed: u64, cycles: u64) -> (u64, u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let sim = SimVfs::with_seed(seed);
    sim.set_torn_writes(rng.gen_bool(0.5));
    let mut run = Run {
        seed,
        background: rng.gen_bool(0.5),
        rng,
        sim: sim.clone(),
        dir: PathBuf::from("/power/db"),
        cred: Credential::passphrase("power loss"),
        history: Vec::new(),
        acked: None,
        cycles: 0,
        acked_total: 0,
    };
    let vfs = KillableVfs::new(sim.clone());
    let mut db = Db::create(&run.dir, &run.cred, run.options(vfs.clone())).unwrap();
    let mut vfs_now = vfs;
    let mut crashes = 0;
    for cycle in 0..cycles {
        run.cycles = cycle;
        let cut = run.random_cut();
        run.cycle(&vfs_now, db, cut);
        if !matches!(cut, Cut::Close(_)) {
            crashes += 1;
        }
        vfs_now = KillableVfs::new(sim.clone());
        db = run.open(vfs_now.clone());
        run.check(&db);
    }
    db.close().unwrap();
    let report = Db::verify(&run.dir, &run.cred, run.options(KillableVfs::new(sim))).unwrap();
    assert!(report.is_ok(), "seed {seed}: verify after the last cycle: {:?}", report.damaged);
    (crashes, run.acked_total)
}

#[test]
fn acknowledged_batches_survive_power_loss() {
    // SYNAPSED_POWER_SEED=<n> replays one seed; SYNAPSED_POWER_SEEDS=<a>..<b> runs a range.
    let seeds: Vec<u64> = if let Ok(s) = std::env::var("SYNAPSED_POWER_SEED") {
        vec![s.trim().parse().expect("SYNAPSED_POWER_SEED must be a number")]
    } else if let Ok(r) = std::env::var("SYNAPSED_POWER_SEEDS") {
        let (a, b) = r.trim().split_once("..").expect("SYNAPSED_POWER_SEEDS must look like 100..200");
        (a.parse().unwrap()..b.parse().unwrap()).collect()
    } else {
        (0..60).collect()
    };
    let started = std::time::Instant::now();
    let (mut crashes, mut acked) = (0, 0);
    for &seed in &seeds {
        let (c, a) = run_seed(seed, 7);
        crashes += c;
        acked += a;
    }
    eprintln!(
        "power loss: {} seeds, {crashes} crash cycles, {acked} acknowledged batches checked in {:.1?}",
        seeds.len(),
        started.elapsed()
    );
    if seeds.len() > 1 {
        assert!(crashes >= 200, "only {crashes} crash cycles ran");
    }
}

/// `create` cut short by a power loss at every write and every sync it makes:
/// afterwards the directory either opens as the complete (empty) store or says
/// it holds no store, and then `create` succeeds in it. Never a directory that
/// neither `open` nor `create` accepts.
#[test]
fn init_interrupted_at_any_point_can_be_redone() {
    let dir = Path::new("/stores/interrupted");
    let cred = Credential::passphrase("init");
    let mut outcomes = BTreeMap::new();
    for fail_writes in [false, true] {
        for n in 0..64u64 {
            let sim = SimVfs::new();
            let options = Options::tiny_for_tests().with_vfs(sim.clone()).with_background_compaction(false);
            if fail_writes {
                sim.fail_write_after(n);
            } else {
                sim.fail_sync_after(n);
            }
            let created = Db::create(dir, &cred, options.clone());
            if let Ok(db) = created {
                // The fault never fired inside create: every later n is the same.
                drop(db);
                break;
            }
            sim.crash();
            sim.clear_faults();
            let db = match Db::open(dir, &cred, options.clone()) {
                Ok(db) => {
                    *outcomes.entry("opens").or_insert(0) += 1;
                    db
                }
                Err(synapsed_storage::Error::NotFound(_)) => {
                    *outcomes.entry("init again").or_insert(0) += 1;
                    Db::create(dir, &cred, options.clone())
                        .unwrap_or_else(|e| panic!("writes {fail_writes}, n {n}: init after an interrupted init: {e}"))
                }
                Err(e) => panic!("writes {fail_writes}, n {n}: open after an interrupted init: {e}"),
            };
            db.put(b"k", b"v").unwrap();
            assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
            db.close().unwrap();
        }
    }
    assert!(outcomes.get("init again").is_some_and(|n| *n > 3), "{outcomes:?}");
    eprintln!("interrupted init outcomes: {outcomes:?}");
}

/// A power loss at every sync (and at every append) of a sequence of keyspace
/// creates and drops: after reopening, the keyspaces are those of a prefix of
/// the sequence that covers every acknowledged step, the data written before
/// is intact, and a keyspace created afterwards gets an id above every id the
/// sequence handed out, so no id is reused whatever the crash kept.
#[test]
fn keyspace_create_and_drop_survive_power_loss_at_every_sync() {
    use synapsed_storage::KeyspaceOptions;

    let dir = Path::new("/stores/keyspaces");
    let cred = Credential::passphrase("keyspaces");
    // (create?, name): the states after each step, as sets of (id, name).
    let steps: [(bool, &str); 5] = [(true, "a"), (true, "_b"), (false, "a"), (true, "c"), (false, "_b")];
    let mut states: Vec<Vec<(u32, String)>> = vec![vec![]];
    let mut ids: BTreeMap<&str, u32> = BTreeMap::new();
    for &(create, name) in &steps {
        let mut s = states.last().unwrap().clone();
        if create {
            let id = ids.len() as u32 + 1;
            ids.insert(name, id);
            s.push((id, name.to_string()));
        } else {
            s.retain(|(_, n)| n != name);
        }
        states.push(s);
    }
    let mut outcomes = BTreeMap::new();
    for fail_writes in [false, true] {
        for n in 0.. {
            let sim = SimVfs::new();
            let options = |vfs: Arc<dyn Vfs>| {
                Options::tiny_for_tests().with_vfs(vfs).with_sync(SyncPolicy::EveryCommit).with_background_compaction(false)
            };
            let killable = KillableVfs::new(sim.clone());
            let db = Db::create(dir, &cred, options(killable.clone())).unwrap();
            db.put(b"before", b"keyspaces").unwrap();
            if fail_writes {
                sim.fail_write_after(n);
            } else {
                sim.fail_sync_after(n);
            }
            let mut acknowledged = 0;
            for &(create, name) in &steps {
                let done = if create {
                    db.create_internal_keyspace(name, KeyspaceOptions::default()).map(|_| ())
                } else {
                    db.drop_internal_keyspace(name)
                };
                if done.is_err() {
                    break;
                }
                acknowledged += 1;
            }
            // The power goes at once: nothing of the old store runs after it.
            killable.kill();
            drop(db);
            sim.clear_faults();
            let all_done = acknowledged == steps.len();
            let db = Db::open(dir, &cred, options(sim.clone()))
                .unwrap_or_else(|e| panic!("writes {fail_writes}, n {n}: reopen after a crash: {e}"));
            let found: Vec<(u32, String)> =
                db.keyspaces().iter().filter(|k| k.id() != 0).map(|k| (k.id(), k.name().to_string())).collect();
            let at = states
                .iter()
                .position(|s| *s == found)
                .unwrap_or_else(|| panic!("writes {fail_writes}, n {n}: keyspaces {found:?} are no prefix of the steps"));
            assert!(at >= acknowledged, "writes {fail_writes}, n {n}: {acknowledged} steps acknowledged, state after {at} found");
            assert!(at <= acknowledged + 1, "writes {fail_writes}, n {n}: state after {at} found, only {} attempted", acknowledged + 1);
            assert_eq!(db.get(b"before").unwrap().as_deref(), Some(&b"keyspaces"[..]));
            // Every id the kept steps created, dropped ones included, stays taken.
            let highest_kept = steps[..at].iter().filter(|(create, _)| *create).map(|(_, name)| ids[name]).max().unwrap_or(0);
            let next = db.create_keyspace("after", KeyspaceOptions::default()).unwrap().id();
            assert!(next > highest_kept, "writes {fail_writes}, n {n}: id {next} handed out again");
            db.close().unwrap();
            *outcomes.entry(format!("found state {at}")).or_insert(0) += 1;
            if all_done {
                // The fault never fired inside the sequence: every later n is the same.
                break;
            }
        }
    }
    // Crashes landed at every step, with and without the step they interrupted.
    assert!(outcomes.len() == steps.len() + 1, "{outcomes:?}");
    eprintln!("keyspace power-loss outcomes: {outcomes:?}");
}

/// One step of [`keyspace_data_survives_power_loss_at_every_sync`].
#[derive(Clone, Copy)]
enum KsStep {
    Create(&'static str),
    Drop(&'static str),
    /// A batch: (keyspace, key, value) with "" for the default keyspace.
    Write(&'static [(&'static str, &'static str, &'static str)]),
    /// A range delete of [start, end) in a keyspace other than the default one.
    DeleteRange(&'static str, &'static str, &'static str),
    Flush,
    Compact(&'static str),
}

/// What a store holds: live keyspaces (the default one as ""), each with its pairs.
type KsState = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

/// A power loss at every sync (and at every append) of a sequence of keyspace
/// creates, writes and range deletes across keyspaces, flushes, compactions
/// and a drop: after reopening, the store holds the state after every
/// acknowledged step and at most the one interrupted, never part of a batch,
/// never a dropped keyspace's data.
#[test]
fn keyspace_data_survives_power_loss_at_every_sync() {
    use synapsed_storage::KeyspaceOptions;

    let dir = Path::new("/stores/keyspace-data");
    let cred = Credential::passphrase("keyspace data");
    let steps = [
        KsStep::Create("a"),
        KsStep::Write(&[("a", "k1", "v1")]),
        KsStep::Write(&[("", "d1", "x"), ("a", "k2", "v2"), ("a", "k1", "v1'")]),
        KsStep::Flush,
        KsStep::Create("b"),
        KsStep::Write(&[("b", "k1", "b1"), ("a", "k3", "v3"), ("", "d2", "y")]),
        KsStep::DeleteRange("a", "k2", "k3"),
        KsStep::Write(&[("b", "k0", "b0"), ("b", "k3", "b3"), ("", "k1", "d")]),
        KsStep::DeleteRange("b", "k1", "k3"),
        KsStep::Drop("a"),
        KsStep::Write(&[("b", "k2", "b2"), ("", "d1", "x'")]),
        KsStep::Flush,
        KsStep::Compact("b"),
    ];
    let mut states: Vec<KsState> = vec![KsState::from([(String::new(), BTreeMap::new())])];
    for step in &steps {
        let mut s = states.last().unwrap().clone();
        match *step {
            KsStep::Create(n) => {
                s.insert(n.to_string(), BTreeMap::new());
            }
            KsStep::Drop(n) => {
                s.remove(n);
            }
            KsStep::Write(ops) => {
                for (ks, k, v) in ops {
                    s.get_mut(*ks).unwrap().insert(k.as_bytes().to_vec(), v.as_bytes().to_vec());
                }
            }
            KsStep::DeleteRange(ks, start, end) => {
                s.get_mut(ks).unwrap().retain(|k, _| k.as_slice() < start.as_bytes() || k.as_slice() >= end.as_bytes());
            }
            KsStep::Flush | KsStep::Compact(_) => {}
        }
        states.push(s);
    }
    let read_state = |db: &Db| -> KsState { common::keyspace_contents(db).into_iter().collect() };
    let mut outcomes = BTreeMap::new();
    for fail_writes in [false, true] {
        for n in 0.. {
            let sim = SimVfs::new();
            let options = |vfs: Arc<dyn Vfs>| {
                Options::tiny_for_tests().with_vfs(vfs).with_sync(SyncPolicy::EveryCommit).with_background_compaction(false)
            };
            let killable = KillableVfs::new(sim.clone());
            let db = Db::create(dir, &cred, options(killable.clone())).unwrap();
            if fail_writes {
                sim.fail_write_after(n);
            } else {
                sim.fail_sync_after(n);
            }
            let mut acknowledged = 0;
            for step in &steps {
                let done = match *step {
                    KsStep::Create(name) => db.create_keyspace(name, KeyspaceOptions::default()).map(|_| ()),
                    KsStep::Drop(name) => db.drop_keyspace(name),
                    KsStep::Write(ops) => {
                        let mut batch = WriteBatch::new();
                        for (ks, k, v) in ops {
                            match ks {
                                &"" => batch.put(k, v),
                                name => batch.put_in(&db.keyspace(name).unwrap().unwrap(), k, v),
                            };
                        }
                        db.write(batch).map(|_| ())
                    }
                    KsStep::DeleteRange(name, start, end) => {
                        db.delete_range_in(&db.keyspace(name).unwrap().unwrap(), start.as_bytes(), end.as_bytes())
                    }
                    KsStep::Flush => db.flush(),
                    KsStep::Compact(name) => db.compact_range_in(&db.keyspace(name).unwrap().unwrap(), None, None),
                };
                if done.is_err() {
                    break;
                }
                acknowledged += 1;
            }
            killable.kill();
            drop(db);
            sim.clear_faults();
            let all_done = acknowledged == steps.len();
            let db = Db::open(dir, &cred, options(sim.clone()))
                .unwrap_or_else(|e| panic!("writes {fail_writes}, n {n}: reopen after a crash: {e}"));
            let found = read_state(&db);
            let ok = [acknowledged, acknowledged + 1].iter().any(|&at| states.get(at) == Some(&found));
            assert!(ok, "writes {fail_writes}, n {n}: {acknowledged} steps acknowledged, found {found:?}");
            db.close().unwrap();
            // Once more: what the reopen kept stays.
            let db = Db::open(dir, &cred, options(sim.clone())).unwrap();
            assert_eq!(read_state(&db), found, "writes {fail_writes}, n {n}: a second reopen changed the store");
            db.close().unwrap();
            *outcomes.entry(format!("{acknowledged} acknowledged")).or_insert(0) += 1;
            if all_done {
                break;
            }
        }
    }
    assert!(outcomes.len() == steps.len() + 1, "crashes landed in every step: {outcomes:?}");
    eprintln!("keyspace data power-loss outcomes: {outcomes:?}");
}

/// Power fails at every write and every sync in turn while range deletes are
/// written, flushed into the manifest and compacted: after reopening, the
/// store holds exactly the state after the acknowledged steps (or after the
/// one step the failure interrupted, if it reached the disk whole).
#[test]
fn range_deletes_survive_power_loss_at_every_sync() {
    #[derive(Clone, Copy)]
    enum Step {
        DeleteRange(usize, usize),
        Put(usize),
        Flush,
        Compact,
    }
    let dir = Path::new("/stores/range-deletes");
    let cred = Credential::passphrase("range deletes");
    let key = |i: usize| format!("k/{i:02}").into_bytes();
    let steps = [
        Step::DeleteRange(5, 15),
        Step::Put(10),
        Step::Flush,
        Step::DeleteRange(20, 30),
        Step::Compact,
        Step::DeleteRange(0, 3),
        Step::Flush,
    ];
    let mut states: Vec<BTreeMap<Vec<u8>, Vec<u8>>> = vec![(0..40).map(|i| (key(i), b"old".to_vec())).collect()];
    for step in steps {
        let mut s = states.last().unwrap().clone();
        match step {
            Step::DeleteRange(a, b) => s.retain(|k, _| *k < key(a) || *k >= key(b)),
            Step::Put(i) => {
                s.insert(key(i), b"new".to_vec());
            }
            Step::Flush | Step::Compact => {}
        }
        states.push(s);
    }
    let mut crashes = 0;
    for fail_writes in [false, true] {
        for n in 0.. {
            let sim = SimVfs::new();
            let options = |vfs: Arc<dyn Vfs>| {
                Options::tiny_for_tests().with_vfs(vfs).with_sync(SyncPolicy::EveryCommit).with_background_compaction(false)
            };
            let killable = KillableVfs::new(sim.clone());
            let db = Db::create(dir, &cred, options(killable.clone())).unwrap();
            let mut batch = WriteBatch::new();
            for i in 0..40 {
                batch.put(key(i), b"old");
            }
            db.write(batch).unwrap();
            db.flush().unwrap();
            if fail_writes {
                sim.fail_write_after(n);
            } else {
                sim.fail_sync_after(n);
            }
            let mut acknowledged = 0;
            for step in steps {
                let done = match step {
                    Step::DeleteRange(a, b) => db.delete_range(&key(a), &key(b)),
                    Step::Put(i) => db.put(&key(i), b"new"),
                    Step::Flush => db.flush(),
                    Step::Compact => db.compact_range(None, None),
                };
                if done.is_err() {
                    break;
                }
                acknowledged += 1;
            }
            killable.kill();
            drop(db);
            sim.clear_faults();
            let all_done = acknowledged == steps.len();
            let (db, _) = Db::open_or_repair(dir, &cred, options(sim.clone()))
                .unwrap_or_else(|e| panic!("writes {fail_writes}, n {n}: reopen after a crash: {e}"));
            let found: BTreeMap<Vec<u8>, Vec<u8>> =
                db.range(Bound::Unbounded, Bound::Unbounded, false, None).unwrap().map(Result::unwrap).collect();
            let reverse: Vec<Vec<u8>> = db.range(Bound::Unbounded, Bound::Unbounded, true, None).unwrap().map(|r| r.unwrap().0).collect();
            assert!(reverse.iter().rev().eq(found.keys()), "writes {fail_writes}, n {n}: reverse scan differs");
            let matches = |at: usize| states.get(at).is_some_and(|s| *s == found);
            assert!(
                matches(acknowledged) || matches(acknowledged + 1),
                "writes {fail_writes}, n {n}: {acknowledged} steps acknowledged, found {:?}",
                found.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect::<Vec<_>>()
            );
            // Later writes and a compaction keep the state.
            db.compact_range(None, None).unwrap();
            let again: BTreeMap<Vec<u8>, Vec<u8>> =
                db.range(Bound::Unbounded, Bound::Unbounded, false, None).unwrap().map(Result::unwrap).collect();
            assert_eq!(again, found, "writes {fail_writes}, n {n}: a compaction after recovery changed the contents");
            db.close().unwrap();
            crashes += 1;
            if all_done {
                break;
            }
        }
    }
    assert!(crashes > steps.len(), "only {crashes} crash points");
    eprintln!("range delete power-loss crash points: {crashes}");
}
