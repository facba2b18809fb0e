//! Keys through the engine: every keyslot kind opens a store and reads it back,
//! the recovery key opens it, a passphrase change makes only the new passphrase
//! work, a tampered `KEYSLOTS` is refused, and a key rotation leaves no file
//! under an old epoch and no key for it in `KEYRING`. The same through the CLI.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use synapsed_storage::{
    Argon2Params, Credential, Db, Error, HybridKeypair, RecoveryKey, RotationProgress, SimVfs, SlotKind,
};

mod common;
use common::{options, PASSPHRASE};


fn value(i: usize) -> Vec<u8> {
    format!("value {i} {}", "x".repeat(i % 50)).into_bytes()
}

fn fill(db: &Db, range: std::ops::Range<usize>) {
    for i in range {
        db.put(format!("key/{i:05}").as_bytes(), &value(i)).unwrap();
    }
}

fn assert_all(db: &Db, range: std::ops::Range<usize>) {
    for i in range {
        assert_eq!(
            db.get(format!("key/{i:05}").as_bytes()).unwrap(),
            Some(value(i)),
            "key {i}"
        );
    }
}

fn is_wrong_key<T: std::fmt::Debug>(r: Result<T, Error>) -> bool {
    matches!(r, Err(Error::WrongKey))
}

/// The epoch in a data file's header (bytes 12..16, `crypto/FORMAT.md` section 1),
/// read without the library, for every sealed file of `dir`.
fn epochs_on_disk(dir: &Path) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let bytes = std::fs::read(entry.path()).unwrap();
        if bytes.len() >= 84 && bytes.starts_with(b"SYNAPSED") {
            let epoch = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
            out.push((entry.file_name().to_string_lossy().into_owned(), epoch));
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn passphrase_recovery_key_and_passphrase_change() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let pass = Credential::passphrase(PASSPHRASE);
    let (db, recovery) = Db::create_with_recovery(&dir, &pass, options()).unwrap();
    fill(&db, 0..50);
    db.close().unwrap();

    Db::open(&dir, &pass, options()).unwrap().close().unwrap();
    // The recovery key as a person would type it back in.
    let typed = RecoveryKey::from_text(&recovery.to_text().to_lowercase()).unwrap();
    let db = Db::open(&dir, &Credential::recovery(typed), options()).unwrap();
    assert_all(&db, 0..50);
    db.close().unwrap();

    let wrong = Db::open(&dir, &Credential::recovery(RecoveryKey::generate()), options());
    assert!(matches!(wrong, Err(Error::WrongKey)), "{wrong:?}");
    let message = wrong.unwrap_err().to_string();
    assert!(message.contains("wrong passphrase or key"), "{message}");
    let mut typo = recovery.to_text().to_string();
    typo.replace_range(10..11, if &typo[10..11] == "A" { "B" } else { "A" });
    assert!(
        RecoveryKey::from_text(&typo).is_err(),
        "a typo is caught by the checksum"
    );

    Db::change_passphrase(&dir, &pass, b"new passphrase", &options()).unwrap();
    assert!(
        is_wrong_key(Db::open(&dir, &pass, options()).map(|_| ())),
        "the old passphrase stops working at once"
    );
    let db = Db::open(&dir, &Credential::passphrase("new passphrase"), options()).unwrap();
    assert_all(&db, 0..50);
    db.close().unwrap();

    // A forgotten passphrase: the recovery key authorizes a new one.
    Db::change_passphrase(&dir, &Credential::recovery(recovery.clone()), b"third", &options()).unwrap();
    assert!(is_wrong_key(
        Db::open(&dir, &Credential::passphrase("new passphrase"), options()).map(|_| ())
    ));
    let db = Db::open(&dir, &Credential::passphrase("third"), options()).unwrap();
    assert_all(&db, 0..50);
    db.close().unwrap();
    Db::open(&dir, &Credential::recovery(recovery), options())
        .unwrap()
        .close()
        .unwrap();
    assert!(is_wrong_key(Db::change_passphrase(&dir, &pass, b"x", &options())));
}

#[test]
fn every_keyslot_kind_round_trips_through_the_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let pass = Credential::passphrase(PASSPHRASE);
    let raw = [7u8; 32];
    let device = HybridKeypair::generate();
    let db = Db::create(&dir, &pass, options()).unwrap();
    fill(&db, 0..20);
    db.add_credential(&Credential::raw_key(raw)).unwrap();
    db.add_device_key(device.public_key()).unwrap();
    let recovery = db.replace_recovery_key().unwrap();
    db.close().unwrap();

    let kinds: Vec<(Option<SlotKind>, bool)> = Db::keyslots(&dir, &options())
        .unwrap()
        .iter()
        .map(|s| (s.kind, s.recovery))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (Some(SlotKind::Passphrase), false),
            (Some(SlotKind::RawKey), false),
            (Some(SlotKind::Hybrid), false),
            (Some(SlotKind::Hybrid), true)
        ]
    );
    let credentials = [
        ("passphrase", Credential::passphrase(PASSPHRASE)),
        ("raw key", Credential::raw_key(raw)),
        ("device", Credential::hybrid(device.secret_key().clone())),
        ("recovery", Credential::recovery(recovery)),
    ];
    for (i, (name, credential)) in credentials.iter().enumerate() {
        let db = Db::open(&dir, credential, options()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_all(&db, 0..20 + i);
        db.put(format!("key/{:05}", 20 + i).as_bytes(), &value(20 + i)).unwrap();
        db.close().unwrap();
    }
    let other_device = HybridKeypair::generate();
    assert!(is_wrong_key(
        Db::open(&dir, &Credential::hybrid(other_device.secret_key().clone()), options()).map(|_| ())
    ));
    assert!(is_wrong_key(
        Db::open(&dir, &Credential::raw_key([8u8; 32]), options()).map(|_| ())
    ));

    // Removing the device slot locks that device out.
    let db = Db::open(&dir, &pass, options()).unwrap();
    db.remove_keyslot(2).unwrap();
    db.close().unwrap();
    assert!(is_wrong_key(
        Db::open(&dir, &Credential::hybrid(device.secret_key().clone()), options()).map(|_| ())
    ));
}

/// CRC-32/ISO-HDLC, bit by bit (what `KEYSLOTS` ends with).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_tampered_keyslot_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let pass = Credential::passphrase(PASSPHRASE);
    let (db, recovery) = Db::create_with_recovery(&dir, &pass, options()).unwrap();
    db.close().unwrap();
    let path = dir.join("KEYSLOTS");
    let original = std::fs::read(&path).unwrap();
    assert_eq!(
        crc32(&original[..original.len() - 4]).to_le_bytes(),
        original[original.len() - 4..],
        "crc32 as documented"
    );

    // A flipped byte anywhere: corruption naming KEYSLOTS, for every credential.
    for offset in [9, 30, 50, original.len() / 2, original.len() - 10] {
        let mut bad = original.clone();
        bad[offset] ^= 0x40;
        std::fs::write(&path, &bad).unwrap();
        for credential in [&pass, &Credential::recovery(recovery.clone())] {
            match Db::open(&dir, credential, options()) {
                Err(Error::Corruption { file, .. }) => assert_eq!(file, "KEYSLOTS"),
                other => panic!("offset {offset}: {other:?}"),
            }
        }
    }
    // The same with the crc32 fixed up, so only the AEAD tags can notice: the
    // passphrase slot's wrapped key (slot 0 body starts at 45; wrapped MK at 45 + 40).
    let mut bad = original.clone();
    bad[45 + 40] ^= 1;
    let n = bad.len();
    let crc = crc32(&bad[..n - 4]);
    bad[n - 4..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bad).unwrap();
    let refused = Db::open(&dir, &pass, options());
    assert!(
        matches!(refused, Err(Error::WrongKey) | Err(Error::Corruption { .. })),
        "{refused:?}"
    );
    // Nor does the untouched recovery slot: the seal at the end of KEYSLOTS
    // authenticates the whole slot set under the master key.
    match Db::open(&dir, &Credential::recovery(recovery), options()) {
        Err(Error::Corruption { file, reason, .. }) => {
            assert_eq!(file, "KEYSLOTS");
            assert!(reason.contains("keyslot set failed authentication"), "{reason}");
        }
        other => panic!("a tampered slot set opened: {other:?}"),
    }
    std::fs::write(&path, &original).unwrap();
    Db::open(&dir, &pass, options()).unwrap().close().unwrap();
}

/// A store with data in the WAL, in level 0 and in deeper levels.
fn spread_store(dir: &Path) -> Db {
    let db = Db::create(dir, &Credential::passphrase(PASSPHRASE), options()).unwrap();
    fill(&db, 0..600);
    db.compact_range(None, None).unwrap();
    fill(&db, 600..700);
    db.flush().unwrap();
    fill(&db, 700..720);
    let stats = db.stats();
    assert!(stats.files_per_level[0] > 0, "{stats:?}");
    assert!(stats.files_per_level[1..].iter().sum::<usize>() > 0, "{stats:?}");
    db
}

#[test]
fn rotation_leaves_nothing_under_the_old_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let db = spread_store(&dir);
    let before = db.stats();
    assert_eq!(before.live_epochs, vec![before.current_epoch]);
    let old_epoch = before.current_epoch;
    let on_disk: BTreeSet<u32> = epochs_on_disk(&dir).into_iter().map(|(_, e)| e).collect();
    assert_eq!(on_disk, BTreeSet::from([old_epoch]));
    let listed: Vec<String> = before.files_per_epoch.iter().flat_map(|e| e.files.clone()).collect();
    assert_eq!(
        listed,
        epochs_on_disk(&dir).into_iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    let old_copy = tmp.path().join("before-rotation");
    copy_dir(&dir, &old_copy);
    let old_keyring = std::fs::read(dir.join("KEYRING")).unwrap();

    let mut steps: Vec<RotationProgress> = Vec::new();
    let report = db.rotate_keys_with_progress(&mut |p| steps.push(p.clone())).unwrap();
    assert_ne!(report.new_epoch, old_epoch);
    assert_eq!(report.epochs_destroyed, vec![old_epoch]);
    assert!(report.epochs_retained.is_empty());
    assert_eq!(report.tables_total, before.files_per_level.iter().sum::<usize>());
    let rewrites: Vec<&RotationProgress> = steps.iter().filter(|p| p.step == "rewrite").collect();
    assert!(!rewrites.is_empty());
    assert!(
        rewrites
            .windows(2)
            .all(|w| w[0].tables_rewritten <= w[1].tables_rewritten),
        "{steps:?}"
    );
    assert_eq!(rewrites.last().unwrap().tables_rewritten, report.tables_total);
    assert_eq!(steps.last().unwrap().step, "destroy");

    let after = db.stats();
    assert_eq!(
        after.live_epochs,
        vec![report.new_epoch],
        "the keyring lists only the new epoch"
    );
    assert_eq!(after.files_per_epoch.len(), 1);
    assert_eq!(after.files_per_epoch[0].epoch, report.new_epoch);
    for (name, epoch) in epochs_on_disk(&dir) {
        assert_eq!(epoch, report.new_epoch, "{name} is still under the old epoch");
    }
    assert_ne!(std::fs::read(dir.join("KEYRING")).unwrap(), old_keyring);
    // The rewritten files are as opaque as the old ones (the canary property).
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(6).any(|w| w == b"key/00" || w == b"value "),
            "plaintext on disk after rotation"
        );
    }
    assert_all(&db, 0..720);
    fill(&db, 720..740);
    db.close().unwrap();
    let db = Db::open(&dir, &Credential::passphrase(PASSPHRASE), options()).unwrap();
    assert_all(&db, 0..740);
    db.close().unwrap();

    // The old files with the new KEYRING: the old epoch's key is gone from it.
    std::fs::copy(dir.join("KEYRING"), old_copy.join("KEYRING")).unwrap();
    // (The new KEYRING does not even pair with the old KEYSLOTS any more.)
    match Db::open(&old_copy, &Credential::passphrase(PASSPHRASE), options()) {
        Err(Error::MissingEpoch { epoch, .. }) => assert_eq!(epoch, old_epoch),
        Err(Error::Corruption { file, .. }) => assert_eq!(file, "KEYRING"),
        other => panic!("old files opened with the new keyring: {other:?}"),
    }
    // What shredding cannot cover (docs/security.md): a kept copy of the old
    // KEYRING together with a credential still opens the old files.
    std::fs::write(old_copy.join("KEYRING"), &old_keyring).unwrap();
    let old = Db::open(
        &old_copy,
        &Credential::passphrase(PASSPHRASE),
        options()
            .with_read_only(true),
    )
    .unwrap();
    assert_eq!(old.get(b"key/00001").unwrap(), Some(value(1)));
}

#[test]
fn repeated_rotations_and_an_iterator_that_holds_old_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let db = spread_store(&dir);
    let first = db.rotate_keys().unwrap();
    let mut iter = db.scan_prefix(b"key/").unwrap();
    let head = iter.next().unwrap().unwrap();
    assert_eq!(head.0, b"key/00000");
    let second = db.rotate_keys().unwrap();
    assert_eq!(
        second.epochs_retained,
        vec![first.new_epoch],
        "the iterator's tables keep their epoch"
    );
    assert!(second.epochs_destroyed.is_empty());
    assert_eq!(iter.count(), 719, "the iterator reads on through the rotation");
    let third = db.rotate_keys().unwrap();
    assert_eq!(third.epochs_destroyed, vec![first.new_epoch, second.new_epoch]);
    assert_eq!(db.stats().live_epochs, vec![third.new_epoch]);
    assert_all(&db, 0..720);
    db.close().unwrap();
}

#[test]
fn argon2_parameters_are_kept_per_slot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let params = Argon2Params {
        m_cost_kib: 128,
        t_cost: 3,
        p_cost: 1,
    };
    let opts = options()
        .with_argon2(params);
    Db::create(&dir, &Credential::passphrase(PASSPHRASE), opts.clone())
        .unwrap()
        .close()
        .unwrap();
    let slots = Db::keyslots(&dir, &opts).unwrap();
    assert_eq!(slots[0].argon2, Some(params));
    // Opening needs no parameters: they come from the slot.
    Db::open(&dir, &Credential::passphrase(PASSPHRASE), options())
        .unwrap()
        .close()
        .unwrap();
}

#[test]
fn a_table_copied_over_another_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let db = spread_store(&dir);
    db.close().unwrap();
    let mut tables: Vec<String> = epochs_on_disk(&dir)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.ends_with(".sst"))
        .collect();
    tables.sort();
    assert!(tables.len() >= 2);
    // Same store, same key, valid on its own: only the file id bound into the
    // header and every block's AAD tells the two apart.
    std::fs::copy(dir.join(&tables[0]), dir.join(&tables[1])).unwrap();
    let report = Db::verify(&dir, &Credential::passphrase(PASSPHRASE), options()).unwrap();
    let damaged: Vec<&str> = report.damaged.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(damaged, vec![tables[1].as_str()], "{report:?}");
}

/// Power fails at every sync of a rotation in turn (`SimVfs`: unsynced bytes and
/// directory entries vanish): the store always reopens with every acknowledged
/// value, no file is under an epoch the keyring lacks, and the next rotation
/// finishes the job.
#[test]
fn a_crash_at_any_sync_of_a_rotation_loses_nothing() {
    crash_at_every_sync_of(&|db| db.rotate_keys().map(|_| ()));
}

/// The same for a rekey: a new master key (a new `KEYSLOTS`, the keyring
/// resealed), then a rotation of every file. Whatever sync the power fails at,
/// the store opens with the credential, every value reads, and a later rekey
/// finishes the job.
#[test]
fn a_crash_at_any_sync_of_a_rekey_loses_nothing() {
    crash_at_every_sync_of(&|db| db.rekey(&Credential::passphrase(PASSPHRASE), None).map(|_| ()));
}

/// Cuts the power at sync 0, 1, 2, ... of `change` (a key change of a store
/// with tables on several levels, a flushed memtable and an unflushed one) until
/// one run gets through; after each cut the store must open and read whole,
/// and running `change` again must leave one live epoch.
fn crash_at_every_sync_of(change: &dyn Fn(&Db) -> synapsed_storage::Result<()>) {
    let dir = PathBuf::from("/store");
    let cred = Credential::passphrase(PASSPHRASE);
    let mut completed = false;
    for n in 0..2_000 {
        let sim = SimVfs::new();
        let opts = options()
            .with_vfs(sim.clone());
        let db = Db::create(&dir, &cred, opts.clone()).unwrap();
        fill(&db, 0..300);
        db.compact_range(None, None).unwrap();
        fill(&db, 300..350);
        db.flush().unwrap();
        fill(&db, 350..360);
        sim.fail_sync_after(n);
        let result = change(&db);
        drop(db);
        sim.crash();
        sim.clear_faults();
        let db = Db::open(&dir, &cred, opts).unwrap_or_else(|e| panic!("crash after {n} syncs: {e}"));
        assert_all(&db, 0..360);
        let stats = db.stats();
        for files in &stats.files_per_epoch {
            assert!(
                stats.live_epochs.contains(&files.epoch),
                "crash after {n} syncs: {stats:?}"
            );
        }
        change(&db).unwrap();
        assert_eq!(db.stats().live_epochs.len(), 1, "crash after {n} syncs: {:?}", db.stats().live_epochs);
        assert_all(&db, 0..360);
        db.close().unwrap();
        if result.is_ok() {
            completed = true;
            assert!(n >= 10, "a key change makes many syncs; only {n} were crashed at");
            break;
        }
    }
    assert!(completed, "the key change never got through");
}

/// The shredding scenario of an outside review, end to end: after
/// `secure-delete msg:1` and a passphrase change, the current `KEYSLOTS` plus
/// the old `KEYRING` plus the old (since unlinked) tables, opened with the new
/// passphrase, must not give the deleted value back. It did: the keyring was
/// sealed under a key derived from the never-changing master key.
#[test]
fn secure_delete_holds_against_old_key_files_and_a_new_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let secret = b"the deleted secret".to_vec();
    let db = Db::create(&dir, &Credential::passphrase(PASSPHRASE), options()).unwrap();
    db.put(b"msg:1", &secret).unwrap();
    fill(&db, 0..300);
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    db.close().unwrap();
    // Everything as it is now: the KEYRING and the tables an attacker could
    // later recover from free blocks.
    let old_copy = tmp.path().join("old");
    copy_dir(&dir, &old_copy);

    let db = Db::open(&dir, &Credential::passphrase(PASSPHRASE), options()).unwrap();
    assert_eq!(db.secure_delete(b"msg:1").unwrap().keys_deleted, 1);
    db.close().unwrap();
    Db::change_passphrase(&dir, &Credential::passphrase(PASSPHRASE), b"a new passphrase", &options()).unwrap();
    let new = Credential::passphrase("a new passphrase");

    let attack = tmp.path().join("attack");
    copy_dir(&old_copy, &attack);
    std::fs::copy(dir.join("KEYSLOTS"), attack.join("KEYSLOTS")).unwrap();
    let read_only = options().with_read_only(true);
    match Db::open(&attack, &new, read_only.clone()) {
        Err(e) => assert!(e.is_corruption() && e.to_string().contains("KEYRING"), "{e}"),
        Ok(db) => panic!("the old KEYRING opened under the current KEYSLOTS: msg:1 = {:?}", db.get(b"msg:1")),
    }
    // With the current KEYRING the old tables' epoch is gone.
    std::fs::copy(dir.join("KEYRING"), attack.join("KEYRING")).unwrap();
    match Db::open(&attack, &new, read_only) {
        Err(Error::MissingEpoch { .. }) => {}
        Err(e) => assert!(e.is_corruption(), "{e}"),
        Ok(db) => assert_ne!(db.get(b"msg:1").ok().flatten(), Some(secret.clone())),
    }
    // The store itself: the value is gone, the rest is there, under the new passphrase.
    let db = Db::open(&dir, &new, options()).unwrap();
    assert_eq!(db.get(b"msg:1").unwrap(), None);
    assert_all(&db, 0..300);
    db.close().unwrap();
}

/// `Db::rekey`: a new master key, the credential used still opens, the other
/// passphrase and the old recovery key do not, the new recovery key does, every
/// file is under the new epoch, and an old KEYSLOTS copy opens nothing of the
/// current files even with the passphrase that still works.
#[test]
fn rekey_replaces_the_master_key_and_the_data_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let pass = Credential::passphrase(PASSPHRASE);
    let (db, old_recovery) = Db::create_with_recovery(&dir, &pass, options()).unwrap();
    db.add_credential(&Credential::passphrase("second")).unwrap();
    fill(&db, 0..300);
    db.flush().unwrap();
    let old_slots = std::fs::read(dir.join("KEYSLOTS")).unwrap();
    let new_recovery = RecoveryKey::generate();
    let report = db.rekey(&pass, Some(&new_recovery)).unwrap();
    assert_eq!(report.removed_slots.len(), 2, "{report:?}");
    assert!(report.rotation.epochs_retained.is_empty());
    for (name, epoch) in epochs_on_disk(&dir) {
        assert_eq!(epoch, report.rotation.new_epoch, "{name}");
    }
    assert_all(&db, 0..300);
    db.close().unwrap();
    assert!(is_wrong_key(Db::open(&dir, &Credential::passphrase("second"), options())));
    assert!(is_wrong_key(Db::open(&dir, &Credential::recovery(old_recovery), options())));
    let db = Db::open(&dir, &Credential::recovery(new_recovery), options()).unwrap();
    assert_all(&db, 0..300);
    db.close().unwrap();
    // The old KEYSLOTS (old master key) with the passphrase that opened it then.
    std::fs::write(dir.join("KEYSLOTS"), &old_slots).unwrap();
    assert!(Db::open(&dir, &pass, options()).is_err());
}

/// A key rotation beside batches large enough to be written as tables of their
/// own: both hold the writer mutex and the work mutex at once, and must take
/// them in the same order (`writer`, then `work`) or they deadlock.
#[test]
fn rotations_beside_ingested_batches_do_not_deadlock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let db = Arc::new(Db::create(&dir, &Credential::passphrase(PASSPHRASE), options().with_ingest_min_bytes(256)).unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut batch = synapsed_storage::WriteBatch::new();
                for i in 0..8 {
                    batch.put(format!("k{n:08}-{i}").as_bytes(), [7u8; 64]);
                }
                db.write(batch).unwrap();
                n += 1;
            }
            n
        })
    };
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let rotator = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || {
            for _ in 0..20 {
                db.rotate_keys().unwrap();
            }
            done_tx.send(()).unwrap();
        })
    };
    let finished = done_rx.recv_timeout(std::time::Duration::from_secs(60));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(finished.is_ok(), "20 key rotations beside ingested batches did not finish in 60 s: a lock-order deadlock");
    rotator.join().unwrap();
    assert!(writer.join().unwrap() > 0);
}
