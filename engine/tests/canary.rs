//! No plaintext on disk: distinct marker strings are written as keys and as values
//! (small ones and 100 KiB ones) through single puts and batches, and after each
//! stage — WAL only, memtable flushes, compaction, close, reopen — every byte of
//! every file under the store directory is searched for every marker (and for
//! halves of them, so a marker split across a boundary is found too). Merge
//! operands carry markers too (keys and operands, unfolded in the WAL and the
//! level-0 tables, folded after compaction). Runs with
//! compression on and off, since an uncompressed block is the easiest place for
//! plaintext to slip through. Every table also carries a user property whose
//! name and value are markers (the value with the table's first key).
//! Also with a change-feed retention, which keeps the WAL segments a flush
//! retires (and hands their changes back decrypted).

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::{Rng, RngCore};
use synapsed_storage::{
    Argon2Params, ChangeFeedRetention, CollectedEntry, Compression, Credential, Db, HookError, KeyspaceOptions, Options,
    SortedSetUnion, TableContext, TablePropertiesCollector, TablePropertiesCollectorFactory, UserProperties, WriteBatch,
    DEFAULT_KEYSPACE,
};

const PASSPHRASE: &str = "canary passphrase";

struct Markers {
    /// Every marker, each also used to derive keys and values below.
    all: Vec<String>,
    /// What the store must hold: key -> value.
    model: Vec<(Vec<u8>, Vec<u8>)>,
    /// What the keyspace the test creates must hold.
    ks_model: Vec<(Vec<u8>, Vec<u8>)>,
}

fn marker(rng: &mut impl RngCore, role: &str) -> String {
    format!("CANARY-{role}-{:016x}{:08x}", rng.next_u64(), rng.next_u32())
}

/// A 100 KiB value: the marker repeated between random printable filler, so it is
/// compressible (as real text is) and the marker is everywhere in it.
fn big_value(rng: &mut impl Rng, marker: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(100 << 10);
    while v.len() < 100 << 10 {
        v.extend_from_slice(marker.as_bytes());
        let filler: String = (0..rng.gen_range(0..64)).map(|_| rng.gen_range(b'a'..=b'z') as char).collect();
        v.extend_from_slice(filler.as_bytes());
    }
    v.truncate(100 << 10);
    v
}

/// Writes a user property named by a marker into every table, whose value is
/// another marker followed by the table's first key (a key marker too).
struct MarkerProperties {
    name: String,
    value: String,
}

struct MarkerCollector {
    name: String,
    value: Vec<u8>,
}

impl TablePropertiesCollectorFactory for MarkerProperties {
    fn create(&self, _: &TableContext) -> Box<dyn TablePropertiesCollector> {
        Box::new(MarkerCollector { name: self.name.clone(), value: self.value.clone().into_bytes() })
    }
}

impl TablePropertiesCollector for MarkerCollector {
    fn add(&mut self, entry: &CollectedEntry<'_>) {
        if !self.value.contains(&b'|') {
            self.value.push(b'|');
            self.value.extend_from_slice(entry.key);
        }
    }

    fn finish(&mut self) -> Result<UserProperties, HookError> {
        Ok(UserProperties::from([(self.name.clone(), self.value.clone())]))
    }
}

/// Every table carries the marker property (so the search had it to find).
fn assert_tables_have_property(db: &Db, name: &str, value: &str, stage: &str) {
    let tables = db.table_properties().unwrap();
    assert!(!tables.is_empty(), "{stage}: no table");
    for t in tables {
        let v = t.user_properties.get(name).unwrap_or_else(|| panic!("{stage}: table {} lacks the property", t.file_number));
        assert!(v.starts_with(value.as_bytes()), "{stage}: table {} property differs", t.file_number);
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The bytes searched, or which file holds which marker (or half of one) at which offset.
fn search_markers_on_disk(dir: &Path, markers: &Markers) -> Result<u64, String> {
    let mut needles: Vec<Vec<u8>> = Vec::new();
    for m in &markers.all {
        let b = m.as_bytes();
        needles.push(b.to_vec());
        // Halves of at least 16 bytes: long enough never to occur by chance in ciphertext.
        needles.push(b[..b.len() / 2].to_vec());
        needles.push(b[b.len() / 2..].to_vec());
    }
    let mut scanned = 0;
    let files = files_under(dir);
    if files.is_empty() {
        return Err("no files in the store".into());
    }
    for f in &files {
        let bytes = match std::fs::read(f) {
            // Removed by the open store's background work since the listing:
            // no longer on disk, so nothing there to search.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            read => read.unwrap(),
        };
        scanned += bytes.len() as u64;
        for needle in &needles {
            if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle.as_slice()) {
                return Err(format!(
                    "{} holds {:?} in clear at offset {at}",
                    f.strip_prefix(dir).unwrap().display(),
                    String::from_utf8_lossy(needle)
                ));
            }
        }
    }
    Ok(scanned)
}

/// Fails the test, naming the stage, if any file holds any marker.
fn assert_no_marker_on_disk(dir: &Path, markers: &Markers, stage: &str) -> u64 {
    search_markers_on_disk(dir, markers).unwrap_or_else(|leak| panic!("{stage}: {leak}"))
}

fn assert_reads_back(db: &Db, markers: &Markers, stage: &str) {
    for (k, v) in &markers.model {
        let got = db.get(k).unwrap();
        assert!(got.as_deref() == Some(v.as_slice()), "{stage}: {} does not read back", String::from_utf8_lossy(k));
    }
    let scanned: Vec<(Vec<u8>, Vec<u8>)> = db.scan_prefix(b"").unwrap().map(Result::unwrap).collect();
    let mut expected = markers.model.clone();
    expected.sort();
    assert_eq!(scanned.len(), expected.len(), "{stage}: scan count");
    assert!(scanned == expected, "{stage}: scan differs from what was written");
    if let Some(ks) = db.keyspaces().get(1) {
        let scanned: Vec<(Vec<u8>, Vec<u8>)> = db.scan_prefix_in(ks, b"").unwrap().map(Result::unwrap).collect();
        let mut expected = markers.ks_model.clone();
        expected.sort();
        assert!(scanned == expected, "{stage}: the keyspace's scan differs from what was written into it");
    }
}

fn run(compression: Compression, feed: bool) {
    let mut rng = rand::thread_rng();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let cred = Credential::passphrase(PASSPHRASE);
    // Table user properties: names and values are sealed with the properties block.
    let (prop_name, prop_value) = (marker(&mut rng, "property-name"), marker(&mut rng, "property-value"));
    let collector = Arc::new(MarkerProperties { name: prop_name.clone(), value: prop_value.clone() });
    // Keyspace names live in the manifest (create records and every snapshot);
    // the first one has a merge operator of its own.
    let ks_names = [marker(&mut rng, "keyspace"), format!("_{}", marker(&mut rng, "internal-keyspace"))];
    let options = Options::tiny_for_tests()
        .with_compression(compression)
        .with_background_compaction(false)
        .with_argon2(Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 })
        .with_table_properties_collector(DEFAULT_KEYSPACE, collector)
        .with_change_feed_retention(feed.then(|| ChangeFeedRetention::max_bytes(1 << 30)))
        .with_merge_operator(DEFAULT_KEYSPACE, Arc::new(SortedSetUnion))
        .with_merge_operator(ks_names[0].clone(), Arc::new(SortedSetUnion));
    let db = Db::create(&dir, &cred, options.clone()).unwrap();
    let mut markers = Markers { all: vec![prop_name.clone(), prop_value.clone()], model: Vec::new(), ks_model: Vec::new() };
    let tag = format!("{compression:?}{}", if feed { " with a change-feed retention" } else { "" });

    // Stage 1: single puts, still only in the WAL (and memtable).
    for i in 0..4 {
        let (km, vm) = (marker(&mut rng, "putkey"), marker(&mut rng, "putval"));
        let key = format!("{km}/{i}").into_bytes();
        let value = if i == 0 { big_value(&mut rng, &vm) } else { format!("small value {vm}").into_bytes() };
        db.put(&key, &value).unwrap();
        markers.all.extend([km, vm]);
        markers.model.push((key, value));
    }
    assert_no_marker_on_disk(&dir, &markers, &format!("{tag}: after puts (WAL)"));

    let ks = db.create_keyspace(&ks_names[0], KeyspaceOptions::default()).unwrap();
    db.create_internal_keyspace(&ks_names[1], KeyspaceOptions::default()).unwrap();
    markers.all.extend(ks_names.iter().cloned());
    assert_no_marker_on_disk(&dir, &markers, &format!("{tag}: after creating keyspaces"));

    // Keys and values written into a keyspace (version 2 batch records, then
    // that keyspace's memtable and tables).
    for i in 0..3 {
        let (km, vm) = (marker(&mut rng, "kskey"), marker(&mut rng, "ksval"));
        let key = format!("{km}/{i}").into_bytes();
        let value = if i == 0 { big_value(&mut rng, &vm) } else { format!("in a keyspace {vm}").into_bytes() };
        db.put_in(&ks, &key, &value).unwrap();
        markers.all.extend([km, vm]);
        markers.ks_model.push((key, value));
    }
    assert_no_marker_on_disk(&dir, &markers, &format!("{tag}: after puts into a keyspace (WAL)"));

    // Stage 2: batches, with a large value and a key that is later deleted (its
    // tombstone carries the key to disk too).
    for round in 0..3 {
        let mut batch = WriteBatch::new();
        for i in 0..20 {
            let (km, vm) = (marker(&mut rng, "batchkey"), marker(&mut rng, "batchval"));
            let key = format!("{km}/{round}/{i}").into_bytes();
            let value = if i == 7 { big_value(&mut rng, &vm) } else { format!("{vm} #{i}").into_bytes() };
            batch.put(&key, &value);
            markers.all.extend([km, vm]);
            markers.model.push((key, value));
        }
        // A set built from merge operands: the key and each operand are markers.
        let (mk, m1, m2) = (marker(&mut rng, "mergekey"), marker(&mut rng, "operand"), marker(&mut rng, "operand"));
        batch.merge(mk.as_bytes(), SortedSetUnion::encode([&m1]));
        batch.merge(mk.as_bytes(), SortedSetUnion::encode([&m2]));
        markers.model.push((mk.clone().into_bytes(), SortedSetUnion::encode([&m1, &m2])));
        markers.all.extend([mk, m1, m2]);
        let doomed = marker(&mut rng, "deleted");
        batch.put(doomed.as_bytes(), doomed.as_bytes());
        batch.delete(doomed.as_bytes());
        markers.all.push(doomed);
        // The same batch writes into the keyspace too.
        let (km, vm) = (marker(&mut rng, "ksbatchkey"), marker(&mut rng, "ksbatchval"));
        batch.put_in(&ks, km.as_bytes(), vm.as_bytes());
        markers.ks_model.push((km.clone().into_bytes(), vm.clone().into_bytes()));
        let ks_doomed = marker(&mut rng, "ksdeleted");
        batch.put_in(&ks, ks_doomed.as_bytes(), b"x").delete_in(&ks, ks_doomed.as_bytes());
        markers.all.extend([km, vm, ks_doomed]);
        // Merge operands into the keyspace, folded with its own operator.
        let (mk, m1, m2) = (marker(&mut rng, "ksmergekey"), marker(&mut rng, "ksoperand"), marker(&mut rng, "ksoperand"));
        batch.merge_in(&ks, mk.as_bytes(), SortedSetUnion::encode([&m1]));
        batch.merge_in(&ks, mk.as_bytes(), SortedSetUnion::encode([&m2]));
        markers.ks_model.push((mk.clone().into_bytes(), SortedSetUnion::encode([&m1, &m2])));
        markers.all.extend([mk, m1, m2]);
        db.write(batch).unwrap();
    }
    // A range delete: both bounds go to the WAL record, and with the flush
    // below into the manifest (the range holds none of the keys above).
    let (start_marker, end_marker) = (marker(&mut rng, "rangestart"), marker(&mut rng, "rangeend"));
    let range_start = start_marker.clone().into_bytes();
    let range_end = format!("{start_marker}~{end_marker}").into_bytes();
    let mut batch = WriteBatch::new();
    batch.put(&range_end, b"after the range").delete_range(&range_start, &range_end);
    // And one in the keyspace: its tombstone carries its bounds the same way.
    let (ks_start_marker, ks_end_marker) = (marker(&mut rng, "ksrangestart"), marker(&mut rng, "ksrangeend"));
    batch.delete_range_in(&ks, ks_start_marker.as_bytes(), format!("{ks_start_marker}~{ks_end_marker}").as_bytes());
    db.write(batch).unwrap();
    markers.all.extend([start_marker, end_marker, ks_start_marker, ks_end_marker]);
    markers.model.push((range_end, b"after the range".to_vec()));
    assert_no_marker_on_disk(&dir, &markers, &format!("{tag}: after batches (WAL)"));
    assert_reads_back(&db, &markers, &format!("{tag}: after batches"));

    // Stage 3: memtable flushes to level-0 tables (keys reach the block index,
    // bloom filter, properties and manifest here).
    db.flush().unwrap();
    let after_flush = db.stats();
    assert!(after_flush.files_per_level.iter().sum::<usize>() > 0, "{tag}: flush made no table");
    assert_eq!(after_flush.range_tombstones, 2, "{tag}: both range deletes are in the manifest");
    assert_no_marker_on_disk(&dir, &markers, &format!("{tag}: after flush"));
    assert_tables_have_property(&db, &prop_name, &prop_value, &format!("{tag}: after flush"));

    // More writes after the flush, so compaction merges overlapping tables.
    for i in 0..30 {
        let (km, vm) = (marker(&mut rng, "latekey"), marker(&mut rng, "lateval"));
        let key = format!("{km}/{i}").into_bytes();
        let value = format!("late {vm}").into_bytes();
        db.put(&key, &value).unwrap();
        markers.all.extend([km, vm]);
        markers.model.push((key, value));
    }
    db.flush().unwrap();

    // Stage 4: compaction rewrites everything into the bottom level.
    db.compact_range(None, None).unwrap();
    db.compact_range_in(&ks, None, None).unwrap();
    assert_no_marker_on_disk(&dir, &markers, &format!("{tag}: after compaction"));
    assert_reads_back(&db, &markers, &format!("{tag}: after compaction"));
    assert_tables_have_property(&db, &prop_name, &prop_value, &format!("{tag}: after compaction"));

    // Stage 5: close.
    db.close().unwrap();
    let scanned = assert_no_marker_on_disk(&dir, &markers, &format!("{tag}: after close"));
    if feed {
        let segments = std::fs::read_dir(&dir).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".wal")).count();
        assert!(segments > 1, "{tag}: no retired segment was kept, so none was searched");
    }
    // The data is really on disk (so the search above had something to search).
    let raw: usize = markers.model.iter().chain(&markers.ks_model).map(|(k, v)| k.len() + v.len()).sum();
    if compression == Compression::None {
        assert!(scanned >= raw as u64, "{tag}: {scanned} bytes on disk for {raw} bytes of data");
    }

    // Stage 6: reopen, read everything, write a little more, close again.
    let db = Db::open(&dir, &cred, options.clone()).unwrap();
    assert_reads_back(&db, &markers, &format!("{tag}: after reopen"));
    assert_tables_have_property(&db, &prop_name, &prop_value, &format!("{tag}: after reopen"));
    if feed {
        // The kept segments hand every marker back, decrypted: each put's
        // value, and for a key built from merge operands, each operand.
        let mut values: std::collections::HashMap<Vec<u8>, Vec<Vec<u8>>> = std::collections::HashMap::new();
        for c in db.changes_since(0).unwrap() {
            let c = c.unwrap();
            values.entry(c.key).or_default().push(c.value);
        }
        for (k, v) in &markers.model {
            let written = values.get(k).map(Vec::as_slice).unwrap_or_default();
            let by_operands = SortedSetUnion::decode(v)
                .is_ok_and(|members| members.len() > 1 && members.iter().all(|m| written.contains(&SortedSetUnion::encode([m]))));
            assert!(written.contains(v) || by_operands, "{tag}: the change feed lost a value");
        }
    }
    for name in &ks_names {
        assert!(db.keyspace(name).unwrap().is_some(), "{tag}: keyspace lost by the reopen");
    }
    let (km, vm) = (marker(&mut rng, "reopenkey"), marker(&mut rng, "reopenval"));
    db.put(km.as_bytes(), vm.as_bytes()).unwrap();
    markers.all.extend([km.clone(), vm.clone()]);
    markers.model.push((km.into_bytes(), vm.into_bytes()));
    assert_no_marker_on_disk(&dir, &markers, &format!("{tag}: after reopen and put"));
    db.close().unwrap();
    assert_no_marker_on_disk(&dir, &markers, &format!("{tag}: after the second close"));

    // Stage 7: a checkpoint, a backup to a file:// target and a restore of it
    // hold no marker either, and the restore reads everything back.
    let db = Db::open(&dir, &cred, options.clone()).unwrap();
    let checkpoint = tmp.path().join("checkpoint");
    db.checkpoint(&checkpoint).unwrap();
    let remote = tmp.path().join("remote");
    let target = synapsed_storage::backup::Target::from_url(&format!("file://{}", remote.display()), &|_| None).unwrap();
    synapsed_storage::backup::backup(&db, &dir, &target, &cred, &|_, _| {}).unwrap();
    db.close().unwrap();
    assert_no_marker_on_disk(&checkpoint, &markers, &format!("{tag}: checkpoint"));
    assert_no_marker_on_disk(&remote, &markers, &format!("{tag}: backup target"));
    let restored = tmp.path().join("restored");
    synapsed_storage::backup::restore(&target, None, &restored, &cred, options.clone(), &|_, _| {}).unwrap();
    assert_no_marker_on_disk(&restored, &markers, &format!("{tag}: restored store"));
    let db = Db::open(&restored, &cred, options.clone()).unwrap();
    assert_reads_back(&db, &markers, &format!("{tag}: restored from the backup"));
    db.close().unwrap();
    println!("{tag}: {} markers, {scanned} bytes on disk searched after close", markers.all.len());
}

#[test]
fn no_marker_on_disk_with_compression() {
    run(Compression::Zstd(3), false);
}

#[test]
fn no_marker_on_disk_without_compression() {
    run(Compression::None, false);
}

#[test]
fn no_marker_on_disk_in_kept_change_feed_segments() {
    run(Compression::None, true);
}

#[test]
fn the_search_finds_a_marker_in_plaintext() {
    // The detector itself must work, or the tests above prove nothing.
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = rand::thread_rng();
    let m = marker(&mut rng, "self-test");
    let markers = Markers { all: vec![m.clone()], model: Vec::new(), ks_model: Vec::new() };
    let half = &m.as_bytes()[m.len() / 2..];
    std::fs::write(tmp.path().join("leak"), [b"xx".as_slice(), half, b"yy"].concat()).unwrap();
    let found = search_markers_on_disk(tmp.path(), &markers);
    assert!(found.as_ref().is_err_and(|e| e.contains("leak")), "half a marker in a file was not found: {found:?}");
}

#[test]
fn no_device_key_or_pairing_on_disk() {
    // The device's private key (its 32-byte Ed25519 seed, and its PKCS#8
    // encoding) and the pairings (names and prefixes) are values of internal
    // keyspaces: encrypted like every other, in the log and in tables.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut rng = rand::thread_rng();
    let names: Vec<String> = ["pair-name", "pair-read", "pair-write"].iter().map(|r| marker(&mut rng, r)).collect();
    let markers = Markers { all: names.clone(), model: Vec::new(), ks_model: Vec::new() };
    let options = Options::tiny_for_tests().with_argon2(Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 });
    let db = Db::create(&dir, &Credential::passphrase(PASSPHRASE), options).unwrap();
    let identity = db.devices().identity().unwrap();
    let peer = synapsed_storage::device::DeviceIdentity::generate().unwrap().device_id();
    let pairing = synapsed_storage::device::Pairing {
        device: peer,
        name: names[0].clone(),
        read: vec![names[1].as_bytes().to_vec()],
        write: vec![names[2].as_bytes().to_vec()],
    };
    db.devices().pair(&pairing).unwrap();
    // The seed is the OCTET STRING inside the privateKey OCTET STRING.
    let der = identity.pkcs8_der();
    let at = der.windows(4).position(|w| w == [0x04, 0x22, 0x04, 0x20]).unwrap() + 4;
    let seed = der[at..at + 32].to_vec();
    let no_seed = |stage: &str| {
        for f in files_under(&dir) {
            let bytes = std::fs::read(&f).unwrap();
            for needle in [&seed[..], &seed[..16], &seed[16..]] {
                assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{stage}: {} holds the device key", f.display());
            }
        }
    };
    assert_no_marker_on_disk(&dir, &markers, "pairing in the WAL");
    no_seed("identity in the WAL");
    db.flush().unwrap();
    for ks in db.keyspaces().iter().skip(1) {
        db.compact_range_in(ks, None, None).unwrap();
    }
    db.close().unwrap();
    assert_no_marker_on_disk(&dir, &markers, "pairing in tables");
    no_seed("identity in tables");
    let db = Db::open(&dir, &Credential::passphrase(PASSPHRASE), Options::tiny_for_tests()).unwrap();
    assert_eq!(db.devices().identity().unwrap().device_id(), identity.device_id());
    assert_eq!(db.devices().pairing(&peer).unwrap(), Some(pairing));
}

/// Blob content of `len` bytes carrying `marker` every few hundred bytes: with
/// `compressible`, between printable filler (stored zstd-compressed); without,
/// between random bytes (stored raw, compression saving too little).
fn blob_content(rng: &mut impl Rng, marker: &str, len: usize, compressible: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 1024);
    while v.len() < len {
        v.extend_from_slice(marker.as_bytes());
        let n = if compressible { rng.gen_range(0..64) } else { 512 };
        for _ in 0..n {
            v.push(if compressible { rng.gen_range(b'a'..=b'z') } else { rng.gen() });
        }
    }
    v.truncate(len);
    v
}

#[test]
fn no_marker_on_disk_in_blob_files() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut rng = rand::thread_rng();
    let options = Options::tiny_for_tests();
    let db = Db::create(&dir, &Credential::passphrase(PASSPHRASE), options.clone()).unwrap();
    let mut markers = Markers { all: Vec::new(), model: Vec::new(), ks_model: Vec::new() };
    let mut blobs_written = Vec::new();
    for (i, compressible) in [true, false, true].into_iter().enumerate() {
        let key = marker(&mut rng, &format!("blob-key-{i}"));
        let body = marker(&mut rng, &format!("blob-body-{i}"));
        let content = blob_content(&mut rng, &body, (5 << 20) + i * 1000, compressible);
        db.blobs().unwrap().put(key.as_bytes(), &mut &content[..]).unwrap();
        markers.all.extend([key.clone(), body]);
        blobs_written.push((key, content));
    }
    // An unfinished writer: its frames are on disk, never committed.
    let body = marker(&mut rng, "blob-unfinished");
    {
        let mut w = db.blobs().unwrap().writer(b"unfinished").unwrap();
        w.write_all(&blob_content(&mut rng, &body, 9 << 20, true)).unwrap();
    }
    markers.all.push(body);
    db.flush().unwrap();
    assert_no_marker_on_disk(&dir, &markers, "blobs written");
    let blob_files = files_under(&dir).iter().filter(|p| p.extension().is_some_and(|e| e == "blob")).count();
    assert!(blob_files >= 1, "blob files were searched: {blob_files}");
    db.blobs().unwrap().delete(blobs_written[0].0.as_bytes()).unwrap();
    db.blobs().unwrap().gc().unwrap();
    db.close().unwrap();
    assert_no_marker_on_disk(&dir, &markers, "blob gc and close");
    let db = Db::open(&dir, &Credential::passphrase(PASSPHRASE), options).unwrap();
    for (key, content) in &blobs_written[1..] {
        let mut back = Vec::new();
        db.blobs().unwrap().reader(key.as_bytes()).unwrap().unwrap().read_to_end(&mut back).unwrap();
        assert!(back == *content, "blob {key} reads back");
    }
}

#[test]
fn no_marker_on_disk_in_replication_keyspaces() {
    // Replicated keys and values, versions, fingerprints, conflict records
    // (which name the key) and the synced copy: all sealed like any keyspace.
    let mut rng = rand::thread_rng();
    let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let opts = || {
        Options::tiny_for_tests()
            .with_compression(Compression::None)
            .with_merge_operator("synced-sets", Arc::new(synapsed_storage::SortedSetUnion))
    };
    let cred = Credential::passphrase(PASSPHRASE);
    let mut all = Vec::new();
    {
        let a = Db::create(da.path(), &cred, opts()).unwrap();
        let b = Db::create(db_.path(), &cred, opts()).unwrap();
        for db in [&a, &b] {
            let ks = db.create_keyspace("synced", KeyspaceOptions::default()).unwrap();
            db.replica().unwrap().replicate(&ks).unwrap();
            let sets = db.create_keyspace("synced-sets", KeyspaceOptions::default()).unwrap();
            db.replica().unwrap().replicate(&sets).unwrap();
            db.replica().unwrap().replicate_documents("synced-docs").unwrap();
        }
        // Merge states: set elements (with their dots) and document fields.
        let sets = a.keyspace("synced-sets").unwrap().unwrap();
        for _ in 0..20 {
            let (k, e) = (marker(&mut rng, "sync-set-key"), marker(&mut rng, "sync-set-element"));
            a.replica().unwrap().merge(&sets, k.as_bytes(), &synapsed_storage::SortedSetUnion::encode([e.as_bytes()])).unwrap();
            let (id, field, value) = (marker(&mut rng, "sync-doc-id"), marker(&mut rng, "syncdocfield"), marker(&mut rng, "sync-doc-value"));
            let doc = serde_json::json!({"_id": id, field.clone(): value});
            b.replica().unwrap().put_document("synced-docs", &doc).unwrap();
            all.extend([k, e, id, field, value]);
        }
        let ksa = a.keyspace("synced").unwrap().unwrap();
        let ksb = b.keyspace("synced").unwrap().unwrap();
        for _ in 0..50 {
            let (k, v) = (marker(&mut rng, "sync-key"), marker(&mut rng, "sync-value"));
            a.replica().unwrap().put(&ksa, k.as_bytes(), v.as_bytes()).unwrap();
            all.extend([k, v]);
        }
        // A concurrent write on each side: a conflict record naming the key.
        let k = marker(&mut rng, "sync-conflict-key");
        a.replica().unwrap().put(&ksa, k.as_bytes(), b"one").unwrap();
        b.replica().unwrap().put(&ksb, k.as_bytes(), b"two").unwrap();
        all.push(k);
        let (mut ca, mut cb) = sync::mem::mem_pair();
        std::thread::scope(|s| {
            let h = s.spawn(|| b.replica().unwrap().respond(&mut cb, &synapsed_storage::SessionOptions::default()).unwrap());
            a.replica().unwrap().initiate(&mut ca, &synapsed_storage::SessionOptions::default()).unwrap();
            drop(ca);
            h.join().unwrap();
        });
        assert_eq!(a.replica().unwrap().conflicts().unwrap().len() + b.replica().unwrap().conflicts().unwrap().len(), 1);
        for db in [&a, &b] {
            db.flush().unwrap();
            db.compact_range(None, None).unwrap();
        }
        a.close().unwrap();
        b.close().unwrap();
    }
    let markers = Markers { all, model: Vec::new(), ks_model: Vec::new() };
    assert_no_marker_on_disk(da.path(), &markers, "replicating store");
    assert_no_marker_on_disk(db_.path(), &markers, "replica it synced with");
}

/// A paused resumable upload: its upload record names the key, its committed
/// chunk records and frames hold the body; none of it in clear.
#[test]
fn no_marker_on_disk_in_a_paused_resumable_upload() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut rng = rand::thread_rng();
    let options = Options::tiny_for_tests().with_background_compaction(false);
    let db = Db::create(&dir, &Credential::passphrase(PASSPHRASE), options.clone()).unwrap();
    let mut markers = Markers { all: Vec::new(), model: Vec::new(), ks_model: Vec::new() };
    let key = marker(&mut rng, "blob-upload-key");
    let body = marker(&mut rng, "blob-upload-body");
    {
        let mut w = db.blobs().unwrap().resumable_writer(key.as_bytes()).unwrap();
        w.write_all(&blob_content(&mut rng, &body, 12 << 20, true)).unwrap();
    }
    markers.all.extend([key.clone(), body]);
    db.flush().unwrap();
    assert_no_marker_on_disk(&dir, &markers, "upload paused");
    db.close().unwrap();
    assert_no_marker_on_disk(&dir, &markers, "upload paused, store closed");
    let db = Db::open(&dir, &Credential::passphrase(PASSPHRASE), options).unwrap();
    let writer = synapsed_storage::BlobWriter::resume(&db.blobs().unwrap(), key.as_bytes()).unwrap().unwrap();
    assert!(writer.bytes_written() > 0, "the upload committed chunks before it paused");
    drop(writer);
    db.close().unwrap();
}
