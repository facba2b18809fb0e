//! Entry points that expose the engine to fuzzers and to the corpus-replay tests
//! (`tests/fuzz_corpus.rs`), so both run exactly the same checks.
//!
//! [`batch_record`] decodes arbitrary bytes as a WAL batch payload and compares the
//! result with a model decoder written from `engine/FORMAT.md`. [`engine_model`]
//! reads its bytes as a script of operations on a whole store over `SimVfs` (writes,
//! reads, scans, snapshots, flushes, compactions, injected faults, crashes and
//! reopens) and checks every read against a `BTreeMap` model. Both panic only when
//! a rule is broken, never because the input is malformed. [`seed_corpus`] makes
//! the committed seed inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use crypto::vfs::SimVfs;
use fuzz_support::{must, FuzzInput};
use crypto::{Argon2Params, Credential};
use index::{ValueKind, MAX_SEQNO};

use crate::batch::BatchOp;
use crate::format::{decode_batch, encode_batch, RecordOp, BATCH_MAGIC, BATCH_VERSION};
use crate::{Db, Error, Options, Snapshot, SyncPolicy, WriteBatch};

/// The fuzz targets of this crate, by corpus directory name.
pub const TARGETS: [&str; 2] = ["batch_record", "engine_model"];

/// Runs `target`'s entry point on `data`; `false` if the target is unknown.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "batch_record" => batch_record(data),
        "engine_model" => engine_model(data),
        _ => return false,
    }
    true
}

const WAL_NAME: &str = "000003.wal";
const RECORD_OFFSET: u64 = 84;

/// The batch record `FORMAT.md` describes, decoded from its tables alone: `None`
/// wherever the document says the record is refused.
fn model_decode(bytes: &[u8]) -> Option<(u64, Vec<RecordOp>)> {
    let mut input = FuzzInput::new(bytes);
    let header = input.bytes_exact(2)?;
    let version = *header.get(1)?;
    if header.first() != Some(&0xB7) || !(version == 1 || version == 2) {
        return None;
    }
    let first = input.u64_exact()?;
    let count = input.u32_exact()?;
    if first == 0 || count == 0 || first.checked_add(u64::from(count) - 1)? > (1u64 << 56) - 1 {
        return None;
    }
    let mut ops = Vec::new();
    for _ in 0..count {
        let kind_byte = input.bytes_exact(1)?.first().copied()?;
        // Kind 6 is a range delete: key = start, value = end, start < end.
        let range_delete = kind_byte == 6;
        let kind = if range_delete { ValueKind::Delete } else { ValueKind::from_u8(kind_byte)? };
        let keyspace = if version == 2 { input.u32_exact()? } else { 0 };
        let key_len = input.u32_exact()?;
        let key = input.bytes_exact(usize::try_from(key_len).ok()?)?.to_vec();
        let value_len = input.u32_exact()?;
        let value = input.bytes_exact(usize::try_from(value_len).ok()?)?.to_vec();
        if key.is_empty() || (kind == ValueKind::Delete && !range_delete && !value.is_empty()) {
            return None;
        }
        if range_delete && key >= value {
            return None;
        }
        ops.push(RecordOp { kind, keyspace, key, value, range_delete });
    }
    if !input.is_empty() {
        return None;
    }
    Some((first, ops))
}

/// `data` is one batch payload. `decode_batch` must accept exactly what the model
/// decoder accepts, with the same seqno and operations; a record of puts and
/// deletes (and merges) must re-encode to its bytes; a refusal is `Corruption` naming the WAL
/// segment at the record's offset, or `UnsupportedVersion` for another version.
pub fn batch_record(data: &[u8]) {
    let got = decode_batch(data, WAL_NAME, RECORD_OFFSET);
    let model = model_decode(data);
    match (got, model) {
        (Ok(record), Some((first, ops))) => {
            assert_eq!(record.first_seqno, first, "first seqno differs from the model");
            assert_eq!(record.ops, ops, "operations differ from the model");
            assert!(record.last_seqno() <= MAX_SEQNO, "a seqno beyond the limit was accepted");
            let plain: Option<Vec<BatchOp>> = record
                .ops
                .iter()
                .map(|op| match op.kind {
                    ValueKind::Put | ValueKind::Delete | ValueKind::Merge => Some(op.clone()),
                    _ => None,
                })
                .collect();
            if let Some(plain) = plain {
                assert_eq!(encode_batch(first, &plain), data, "a decoded record re-encodes differently");
            }
        }
        (Ok(record), None) => panic!("decode_batch accepted a record the format refuses: {record:?}"),
        (Err(e), Some(_)) => panic!("decode_batch refused a record the format allows: {e}"),
        (Err(Error::Corruption { file, offset, .. }), None) => {
            assert_eq!(file, WAL_NAME, "corruption names another file");
            assert_eq!(offset, RECORD_OFFSET, "corruption reported at another offset");
        }
        (Err(Error::UnsupportedVersion { file, found, .. }), None) => {
            assert_eq!(file, WAL_NAME);
            assert!(data.first() == Some(&BATCH_MAGIC) && found != BATCH_VERSION, "UnsupportedVersion for version 1");
        }
        (Err(e), None) => panic!("decode_batch failed with an unexpected error: {e}"),
    }
}

/// Most operations one `engine_model` input runs, so each execution stays short.
const MAX_OPS: usize = 100;
/// Data keys `k00` .. `k15`.
const KEYS: u8 = 16;
const DIR: &str = "/fuzz-store";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Acked,
    /// The write failed: applied or not is unknown until a marker scan or a crash settles it.
    Unknown,
    /// Failed and found absent after a reopen: must never appear.
    Gone,
}

/// One write: its data operations, and whether it carries a marker key (writes
/// made while faults are armed do, so their presence can be read back).
struct Write {
    status: Status,
    marked: bool,
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

struct Model<'a> {
    input: FuzzInput<'a>,
    sim: Arc<SimVfs>,
    options: Options,
    cred: Credential,
    db: Option<Db>,
    /// Stores abandoned at a crash: never used again, dropped after the run (the
    /// simulated disk is thrown away with them, so whatever they do then is moot).
    crashed: Vec<Db>,
    writes: Vec<Write>,
    snapshots: Vec<(Snapshot, Map)>,
    faults_armed: bool,
    /// A fault stopped the store (a failed write, sync, flush or compaction): the next step reopens it.
    stopped: bool,
}

fn key(i: u8) -> Vec<u8> {
    format!("k{:02}", i % KEYS).into_bytes()
}

fn marker(id: usize) -> Vec<u8> {
    format!("m{id:04}").into_bytes()
}

/// Whether the frame at `offset` of the log `log` is whole but for its last 1 to
/// 15 bytes, which read as zeros like everything after it: the one outcome of a
/// power loss that recovery reports as corruption (`wal/FORMAT.md`). Crash tests
/// use it to tell that outcome from a real failure.
pub fn frame_cut_in_its_last_bytes(log: &[u8], offset: u64) -> bool {
    crate::db::frame_cut_in_its_last_bytes(log, offset)
}

impl Model<'_> {
    fn db(&self) -> &Db {
        self.db.as_ref().unwrap_or_else(|| unreachable!("the store is open between steps"))
    }

    /// Ids of the marked writes visible now; checks acknowledged ones are all there
    /// and settled-absent ones are not.
    fn present(&self) -> BTreeSet<usize> {
        let mut present = BTreeSet::new();
        for item in must(self.db().scan_prefix(b"m"), "marker scan") {
            let (k, v) = must(item, "marker scan item");
            let id: usize = std::str::from_utf8(k.get(1..).unwrap_or_default())
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("a marker key never written: {k:?}"));
            assert_eq!(v, b"marker", "marker {id} has another value");
            present.insert(id);
        }
        for (id, w) in self.writes.iter().enumerate() {
            match w.status {
                Status::Acked if w.marked => assert!(present.contains(&id), "acknowledged write {id} was lost"),
                Status::Gone => assert!(!present.contains(&id), "write {id}, absent after a crash, came back"),
                _ => {}
            }
        }
        assert!(present.iter().all(|id| self.writes.get(*id).is_some_and(|w| w.marked)), "unknown marker");
        present
    }

    /// What the data keys must hold: every write known or seen present, in order.
    fn expected(&self) -> Map {
        let present = self.present();
        let mut map = Map::new();
        for (id, w) in self.writes.iter().enumerate() {
            let applied = match w.status {
                Status::Acked => true,
                Status::Unknown => present.contains(&id),
                Status::Gone => false,
            };
            if applied {
                for (k, v) in &w.ops {
                    match v {
                        Some(v) => map.insert(k.clone(), v.clone()),
                        None => map.remove(k),
                    };
                }
            }
        }
        map
    }

    fn value(&mut self, id: usize) -> Vec<u8> {
        let len = usize::from(self.input.u8());
        let mut v = format!("v{id}-").into_bytes();
        v.resize(v.len() + len, b'x');
        v
    }

    fn write(&mut self, op_count: usize) {
        let id = self.writes.len();
        let mut ops = Vec::new();
        for _ in 0..op_count {
            let b = self.input.u8();
            let v = if b & 0x80 == 0 { Some(self.value(id)) } else { None };
            ops.push((key(b), v));
        }
        let marked = self.faults_armed;
        let result = if !marked && ops.len() == 1 {
            match ops.first() {
                Some((k, Some(v))) => self.db().put(k, v).map(|_| ()),
                Some((k, None)) => self.db().delete(k).map(|_| ()),
                None => unreachable!(),
            }
        } else {
            let mut batch = WriteBatch::new();
            if marked {
                batch.put(marker(id), b"marker");
            }
            for (k, v) in &ops {
                match v {
                    Some(v) => batch.put(k, v),
                    None => batch.delete(k),
                };
            }
            self.db().write(batch).map(|_| ())
        };
        let status = match result {
            Ok(()) => Status::Acked,
            Err(e) => {
                assert!(marked, "a write failed with no fault injected: {e}");
                self.stopped |= !e.is_storage_full();
                Status::Unknown
            }
        };
        self.writes.push(Write { status, marked, ops });
    }

    fn bound(&mut self) -> Bound<Vec<u8>> {
        let b = self.input.u8();
        match b % 3 {
            0 => Bound::Unbounded,
            1 => Bound::Included(key(b / 3)),
            _ => Bound::Excluded(key(b / 3)),
        }
    }

    fn check_range(&mut self, reverse: bool, snapshot: Option<usize>) {
        let (lo, hi) = (self.bound(), self.bound());
        let (snap, expected) = match snapshot {
            Some(i) => match self.snapshots.get(i) {
                Some((s, m)) => (Some(s), m.clone()),
                None => return,
            },
            None => (None, self.expected()),
        };
        let as_ref = |b: &Bound<Vec<u8>>| match b {
            Bound::Included(k) => Bound::Included(k.clone()),
            Bound::Excluded(k) => Bound::Excluded(k.clone()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let valid = match (&lo, &hi) {
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
                a < b || (a == b && matches!((&lo, &hi), (Bound::Included(_), Bound::Included(_))))
            }
            _ => true,
        };
        let mut want: Vec<(Vec<u8>, Vec<u8>)> = if valid {
            expected
                .range((as_ref(&lo), as_ref(&hi)))
                .filter(|(k, _)| k.starts_with(b"k"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        } else {
            Vec::new()
        };
        if reverse {
            want.reverse();
        }
        let bound_ref = |b: &Bound<Vec<u8>>| -> Bound<Vec<u8>> { as_ref(b) };
        let (l, h) = (bound_ref(&lo), bound_ref(&hi));
        let iter = self.db().range(
            l.as_ref().map(|k| k.as_slice()),
            h.as_ref().map(|k| k.as_slice()),
            reverse,
            snap,
        );
        let got: Vec<(Vec<u8>, Vec<u8>)> = match iter {
            Ok(it) => it
                .map(|r| must(r, "range item"))
                .filter(|(k, _)| k.starts_with(b"k"))
                .collect(),
            Err(e) => {
                assert!(!valid, "range {lo:?}..{hi:?} failed: {e}");
                return;
            }
        };
        assert!(got == want, "range {lo:?}..{hi:?} reverse={reverse} snapshot={snapshot:?}: got {got:?}, want {want:?}");
    }

    fn check_get(&mut self) {
        let k = key(self.input.u8());
        let expected = self.expected();
        assert_eq!(must(self.db().get(&k), "get"), expected.get(&k).cloned(), "get {k:?}");
    }

    fn check_all(&self, when: &str) {
        let expected = self.expected();
        let data: Map = must(self.db().scan_prefix(b"k"), "scan").map(|r| must(r, "scan item")).collect();
        let want: Map = expected.into_iter().filter(|(k, _)| k.starts_with(b"k")).collect();
        assert!(data == want, "{when}: the store holds {data:?}, the model {want:?}");
    }

    fn take_snapshot(&mut self) {
        // A failed write's seqnos may still be published later, so a snapshot is
        // only compared with the model while every outcome is settled.
        if self.snapshots.len() >= 4 || self.writes.iter().any(|w| w.status == Status::Unknown) {
            return;
        }
        let expected = self.expected();
        let snap = self.db().snapshot();
        self.snapshots.push((snap, expected));
    }

    fn check_snapshot_get(&mut self) {
        let i = usize::from(self.input.u8());
        let k = key(self.input.u8());
        let Some((snap, map)) = self.snapshots.get(i % self.snapshots.len().max(1)) else { return };
        assert_eq!(must(self.db().get_at(&k, snap), "get_at"), map.get(&k).cloned(), "snapshot get {k:?}");
    }

    fn inject(&mut self) {
        let b = self.input.u8();
        let n = u64::from(self.input.u8() % 8);
        match b % 4 {
            0 => self.sim.fail_write_after(n),
            1 => self.sim.fail_sync_after(n),
            // Counted from below the unwritten rest of the WAL segment's preallocated
            // space (up to 4 KiB), which takes appends without growing.
            2 => self.sim.set_capacity_bytes(Some((self.sim.total_live_bytes() + n * 700).saturating_sub(2048))),
            _ => self.sim.set_torn_writes(true),
        }
        self.sim.set_partial_failed_writes(b & 4 != 0);
        self.faults_armed = true;
    }

    fn crash_and_reopen(&mut self) {
        self.snapshots.clear();
        self.sim.crash();
        if let Some(db) = self.db.take() {
            self.crashed.push(db);
        }
        self.reopen("reopen after a crash");
    }

    fn close_and_reopen(&mut self) {
        self.snapshots.clear();
        if let Some(db) = self.db.take() {
            if let Err(e) = db.close() {
                assert!(self.faults_armed, "close failed with no fault injected: {e}");
            }
        }
        self.sim.crash();
        self.reopen("reopen after close");
    }

    fn reopen(&mut self, when: &str) {
        self.sim.clear_faults();
        self.faults_armed = false;
        self.stopped = false;
        // The one crash outcome `open` reports as damage (docs/design.md section
        // 6): a WAL frame cut in its last 1 to 15 bytes, zeros after, which the
        // application's one call, `open_or_repair`, cuts off; every acknowledged
        // write must still be there.
        let db = must(Db::open_or_repair(Path::new(DIR), &self.cred, self.options.clone()), when).0;
        self.db = Some(db);
        self.check_all(when);
        // The reopen settled every failed write: present now means durable.
        let present = self.present();
        for (id, w) in self.writes.iter_mut().enumerate() {
            if w.status == Status::Unknown {
                w.status = if present.contains(&id) { Status::Acked } else { Status::Gone };
            }
        }
    }

    fn maintenance(&mut self, result: crate::Result<()>, what: &str) {
        if let Err(e) = result {
            assert!(self.faults_armed, "{what} failed with no fault injected: {e}");
            self.stopped |= !e.is_storage_full();
        }
    }

    fn step(&mut self, op: u8) {
        match op % 16 {
            0..=2 => self.write(1),
            3 => {
                let n = usize::from(self.input.u8() % 6) + 1;
                self.write(n);
            }
            4 => self.check_get(),
            5 => self.check_range(false, None),
            6 => self.check_range(true, None),
            7 => self.take_snapshot(),
            8 => {
                let reverse = self.input.u8() & 1 == 1;
                let i = usize::from(self.input.u8()) % self.snapshots.len().max(1);
                self.check_range(reverse, Some(i));
            }
            9 => self.check_snapshot_get(),
            10 => {
                let r = self.db().flush();
                self.maintenance(r, "flush");
            }
            11 => {
                let (a, b) = (self.input.u8(), self.input.u8());
                let (lo, hi) = (key(a.min(b)), key(a.max(b)));
                let whole = a & 1 == 0;
                let r = if whole { self.db().compact_range(None, None) } else { self.db().compact_range(Some(&lo), Some(&hi)) };
                self.maintenance(r, "compact_range");
            }
            12 => self.close_and_reopen(),
            13 => self.crash_and_reopen(),
            14 => self.inject(),
            _ => {
                self.sim.clear_faults();
                self.faults_armed = false;
            }
        }
    }
}

/// `seed u8, sizing u8` then one operation per byte (`op % 16`, see `step`), each
/// followed by its arguments, for at most 100 operations. `sizing` picks the
/// memtable size (low two bits) and whether `compact_range` may cut a compaction
/// into 3 parts on threads of their own, with 1 KiB output tables so that the
/// few KiB an input holds are cut (bit 2; the parts' file operations then
/// interleave, so where an injected fault lands can differ between replays).
/// The store runs on `SimVfs` with tiny options, no background threads and tiny
/// Argon2 cost; every read is compared with a `BTreeMap` model. Writes made while
/// faults are armed carry a marker key; an acknowledged write survives every
/// crash, a failed one is all there or all absent, and once a reopen finds it
/// absent it stays absent. A reopen may fail with corruption only where a crash
/// cut a WAL frame in its last 1 to 15 bytes (`wal/FORMAT.md`); the store is then
/// repaired and checked the same.
pub fn engine_model(data: &[u8]) {
    let mut input = FuzzInput::new(data);
    let seed = u64::from(input.u8());
    let sizing = input.u8();
    let memtable = usize::from(sizing % 4 + 1) << 10;
    let (max_subcompactions, target_file_size_bytes) = if sizing & 4 == 0 { (1, 8 << 10) } else { (3, 1 << 10) };
    let sim = SimVfs::with_seed(seed);
    let options = Options {
        vfs: sim.clone(),
        sync: SyncPolicy::EveryCommit,
        background_compaction: false,
        memtable_size_bytes: memtable,
        max_subcompactions,
        target_file_size_bytes,
        argon2: Argon2Params { m_cost_kib: 8, t_cost: 1, p_cost: 1 },
        ..Options::tiny_for_tests()
    };
    let cred = Credential::passphrase("fuzz");
    let db = must(Db::create(Path::new(DIR), &cred, options.clone()), "create");
    let mut model = Model {
        input,
        sim,
        options,
        cred,
        db: Some(db),
        crashed: Vec::new(),
        writes: Vec::new(),
        snapshots: Vec::new(),
        faults_armed: false,
        stopped: false,
    };
    for _ in 0..MAX_OPS {
        if model.input.is_empty() {
            break;
        }
        if model.stopped {
            model.crash_and_reopen();
            continue;
        }
        let op = model.input.u8();
        model.step(op);
    }
    if model.stopped {
        model.crash_and_reopen();
    }
    model.check_all("end of input");
    model.crash_and_reopen();
    model.snapshots.clear();
    if let Some(db) = model.db.take() {
        must(db.close(), "final close");
    }
}

/// The seed inputs of `target`, named: valid and near-valid inputs for each branch.
/// Deterministic, so the committed corpus can be rebuilt.
pub fn seed_corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    match target {
        "batch_record" => batch_record_seeds(),
        "engine_model" => engine_model_seeds(),
        _ => Vec::new(),
    }
}

fn batch_record_seeds() -> Vec<(String, Vec<u8>)> {
    let put = |k: &[u8], v: &[u8]| BatchOp::put(0, k.to_vec(), v.to_vec());
    let del = |k: &[u8]| BatchOp::delete(0, k.to_vec());
    let example = encode_batch(7, &[put(b"a", b"xy")]);
    let mixed = encode_batch(42, &[put(b"k1", b"v1"), del(b"k2"), put(b"k3", b"")]);
    let mut seeds = vec![
        ("empty".to_string(), Vec::new()),
        ("format_doc_example".to_string(), example.clone()),
        ("put_delete_put".to_string(), mixed.clone()),
        ("max_seqno".to_string(), encode_batch(MAX_SEQNO, &[del(b"z")])),
        ("seqno_overflow".to_string(), encode_batch(MAX_SEQNO, &[del(b"z"), del(b"y")])),
        ("seqno_zero".to_string(), encode_batch(0, &[del(b"z")])),
        ("count_zero".to_string(), encode_batch(3, &[])),
        ("empty_key".to_string(), encode_batch(3, &[put(b"", b"v")])),
        ("cut_short".to_string(), mixed.get(..mixed.len() - 3).unwrap_or_default().to_vec()),
        (
            "keyspaces_v2".to_string(),
            encode_batch(9, &[BatchOp::put(3, b"k1".to_vec(), b"v1".to_vec()), del(b"k2"), BatchOp::delete(u32::MAX, b"k3".to_vec())]),
        ),
        ("keyspaces_v2_doc_example".to_string(), encode_batch(7, &[BatchOp::put(5, b"a".to_vec(), b"xy".to_vec())])),
    ];
    let mut trailing = example.clone();
    trailing.push(0);
    seeds.push(("trailing_byte".to_string(), trailing));
    let mut bad_magic = example.clone();
    if let Some(b) = bad_magic.first_mut() {
        *b = 0xB6;
    }
    seeds.push(("bad_magic".to_string(), bad_magic));
    let mut newer = example.clone();
    if let Some(b) = newer.get_mut(1) {
        *b = 2;
    }
    seeds.push(("newer_version".to_string(), newer));
    let mut huge_count = example.clone();
    if let Some(c) = huge_count.get_mut(10..14) {
        c.copy_from_slice(&u32::MAX.to_le_bytes());
    }
    seeds.push(("huge_op_count".to_string(), huge_count));
    let mut huge_key = example.clone();
    if let Some(c) = huge_key.get_mut(15..19) {
        c.copy_from_slice(&u32::MAX.to_le_bytes());
    }
    seeds.push(("huge_key_len".to_string(), huge_key));
    for (name, kind) in [("reserved_kind_merge", 2u8), ("reserved_kind_delete_with_meta", 5), ("unknown_kind", 6)] {
        let mut b = example.clone();
        if let Some(k) = b.get_mut(14) {
            *k = kind;
        }
        seeds.push((name.to_string(), b));
    }
    // A Delete that carries a value: FORMAT.md requires value len 0 for Delete.
    let mut delete_with_value = example;
    if let Some(k) = delete_with_value.get_mut(14) {
        *k = ValueKind::Delete as u8;
    }
    seeds.push(("delete_with_value".to_string(), delete_with_value));
    seeds
}

fn engine_model_seeds() -> Vec<(String, Vec<u8>)> {
    // Op bytes (see `Model::step`): 0 put k v, 3 batch n ops, 4 get k, 5/6 range lo hi,
    // 7 snapshot, 8 snapshot range, 9 snapshot get, 10 flush, 11 compact a b,
    // 12 close+reopen, 13 crash+reopen, 14 inject kind n, 15 clear faults.
    let puts: Vec<u8> = (0..12u8).flat_map(|i| [0, i, 100 + i]).collect();
    // Long values over many keys, so a compaction has enough input to cut.
    let spread: Vec<u8> = (0..24u8).flat_map(|i| [0, i * 5 + 1, 250]).collect();
    // Sizing byte 5: 2 KiB memtables, compactions in up to 3 parts.
    let in_parts = |parts: &[&[u8]]| -> Vec<u8> {
        let mut v = vec![2, 5];
        for p in parts {
            v.extend_from_slice(p);
        }
        v
    };
    let with = |head: &[u8], tail: &[u8]| -> Vec<u8> {
        let mut v = vec![1, 0];
        v.extend_from_slice(head);
        v.extend_from_slice(tail);
        v
    };
    vec![
        ("empty".to_string(), Vec::new()),
        ("puts_then_reads".to_string(), with(&puts, &[4, 3, 5, 0, 0, 6, 4, 40, 4, 99])),
        ("delete_and_get".to_string(), with(&[0, 5, 10, 0, 0x85, 4, 5, 5, 0, 0], &[])),
        ("batch_then_scan".to_string(), with(&[3, 3, 1, 9, 2, 8, 0x83, 5, 0, 0, 6, 1, 2], &[])),
        ("flush_and_compact".to_string(), with(&puts, &[10, 0, 1, 200, 11, 0, 15, 10, 11, 3, 9, 5, 0, 0])),
        ("snapshot_survives_writes".to_string(), with(&[0, 1, 20, 7, 0, 1, 30, 0x00, 0x81, 9, 0, 1, 8, 0, 0, 0, 0], &[])),
        ("crash_after_writes".to_string(), with(&puts, &[13, 5, 0, 0])),
        ("close_and_reopen".to_string(), with(&puts, &[10, 12, 6, 0, 0])),
        ("failed_write_then_crash".to_string(), with(&[0, 1, 5, 14, 0, 0, 0, 2, 9, 3, 2, 3, 1, 4, 5, 13, 5, 0, 0], &[])),
        ("failed_sync".to_string(), with(&[14, 1, 0, 3, 2, 4, 9, 5, 9, 0, 7, 8, 13, 4, 4], &[])),
        ("disk_full".to_string(), with(&[14, 2, 0], &puts)),
        ("torn_writes_crash".to_string(), with(&[14, 3, 0, 3, 3, 1, 60, 2, 60, 3, 60, 13, 5, 0, 0], &[])),
        ("flush_fails".to_string(), with(&puts, &[14, 0, 1, 10, 13, 6, 0, 0])),
        ("clear_faults_then_write".to_string(), with(&[14, 1, 0, 15, 0, 4, 4, 4, 4], &[])),
        ("compact_in_parts".to_string(), in_parts(&[&puts, &[7, 10], &spread, &[10, 11, 0, 0, 5, 0, 0, 8, 0, 0]])),
        ("compact_in_parts_fails".to_string(), in_parts(&[&puts, &[10], &spread, &[14, 0, 2, 11, 0, 0, 13, 5, 0, 0]])),
    ]
}
