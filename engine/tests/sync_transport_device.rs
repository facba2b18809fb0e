//! Device identity and pairings: kept in the store, made once, refused when
//! malformed; through the library and through `device id` / `pair add|ls|rm`.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{cred, options, PASSPHRASE};
use common::cli::{BIN, FAST_KDF};
use synapsed_storage::device::{DeviceId, DeviceIdentity, Pairing};
use synapsed_storage::{Db, Error};


#[test]
fn identity_is_made_once_and_survives_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    assert!(db.devices().stored_identity().unwrap().is_none());
    let id = db.devices().device_id().unwrap();
    assert_eq!(db.devices().device_id().unwrap(), id);
    db.close().unwrap();
    let db = Db::open(tmp.path(), &cred(), options()).unwrap();
    assert_eq!(db.devices().device_id().unwrap(), id);
    db.close().unwrap();
    let ro = Db::open(tmp.path(), &cred(), options().with_read_only(true)).unwrap();
    assert_eq!(ro.devices().device_id().unwrap(), id);
}

#[test]
fn concurrent_first_use_agrees_on_one_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    let ids: Vec<DeviceId> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| db.devices().device_id().unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let stored = db.devices().device_id().unwrap();
    assert!(ids.iter().all(|id| *id == stored), "{ids:?} vs {stored:?}");
}

#[test]
fn a_read_only_store_without_identity_does_not_make_one() {
    let tmp = tempfile::tempdir().unwrap();
    Db::create(tmp.path(), &cred(), options()).unwrap().close().unwrap();
    let ro = Db::open(tmp.path(), &cred(), options().with_read_only(true)).unwrap();
    assert!(ro.devices().identity().is_err());
    assert!(ro.devices().pairings().unwrap().is_empty());
}

#[test]
fn pairings_are_added_listed_replaced_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    let a = DeviceIdentity::generate().unwrap().device_id();
    let b = DeviceIdentity::generate().unwrap().device_id();
    assert!(!db.devices().unpair(&a).unwrap());
    db.devices().pair(&Pairing::full(a, "phone")).unwrap();
    let limited = Pairing { device: b, name: "laptop".into(), read: vec![b"notes/".to_vec()], write: vec![] };
    db.devices().pair(&limited).unwrap();
    let mut want = vec![Pairing::full(a, "phone"), limited.clone()];
    want.sort_by_key(|p| p.device);
    assert_eq!(db.devices().pairings().unwrap(), want);
    let replaced = Pairing { write: vec![b"notes/".to_vec()], ..limited };
    db.devices().pair(&replaced).unwrap();
    assert_eq!(db.devices().pairing(&b).unwrap(), Some(replaced.clone()));
    assert!(db.devices().unpair(&a).unwrap());
    assert_eq!(db.devices().pairings().unwrap(), vec![replaced]);
    // Not with itself.
    let me = db.devices().device_id().unwrap();
    assert!(matches!(db.devices().pair(&Pairing::full(me, "")), Err(Error::InvalidArgument(_))));
}

#[test]
fn a_damaged_pairing_record_is_reported_not_served() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    let a = DeviceIdentity::generate().unwrap().device_id();
    db.devices().pair(&Pairing::full(a, "phone")).unwrap();
    let ks = db.keyspace(synapsed_storage::device::PAIRS_KEYSPACE).unwrap().unwrap();
    db.put_in(&ks, a.as_bytes(), b"\x01\x00\x09short").unwrap();
    assert!(db.devices().pairing(&a).unwrap_err().is_corruption());
    db.put_in(&ks, b"short key", &Pairing::full(a, "").encode().unwrap()).unwrap();
    assert!(db.devices().pairings().unwrap_err().is_corruption());
}

fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .env("SYNAPSED_PASSPHRASE", PASSPHRASE)
        .arg("--db")
        .arg(dir)
        .args(FAST_KDF)
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

#[test]
fn cli_device_id_and_pairs() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    for d in [&a, &b] {
        assert_eq!(cli(d, &["init"]).0, 0);
    }
    let (code, id_a, _) = cli(&a, &["device", "id"]);
    assert_eq!(code, 0);
    let id_a = id_a.trim().to_string();
    assert_eq!(id_a.len(), 52);
    assert!(id_a.parse::<DeviceId>().is_ok());
    assert_eq!(cli(&a, &["device", "id"]).1.trim(), id_a, "the id is stable");
    let id_b = cli(&b, &["device", "id"]).1.trim().to_string();
    assert_ne!(id_a, id_b);

    let (code, out, _) = cli(&b, &["pair", "add", &id_a, "--name", "laptop"]);
    assert_eq!((code, out.trim()), (0, format!("paired {id_a}").as_str()));
    let other = DeviceIdentity::generate().unwrap().device_id().to_string();
    let (code, ..) = cli(&b, &["pair", "add", &other.to_lowercase(), "--read", "notes/", "--read", "mail/", "--write", "notes/"]);
    assert_eq!(code, 0);
    let (code, ls, _) = cli(&b, &["pair", "ls"]);
    assert_eq!(code, 0);
    let mut want = vec![format!("{id_a}\tlaptop\tread=*\twrite=*"), format!("{other}\t\tread=notes/,mail/\twrite=notes/")];
    want.sort();
    let mut got: Vec<&str> = ls.lines().collect();
    got.sort();
    assert_eq!(got, want);

    let (code, _, err) = cli(&b, &["pair", "add", "not-an-id"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: not a device id"), "{err}");
    let (code, _, err) = cli(&b, &["pair", "add", &id_b]);
    assert_eq!(code, 1);
    assert!(err.contains("its own device id"), "{err}");

    assert_eq!(cli(&b, &["pair", "rm", &id_a]).0, 0);
    let (code, _, err) = cli(&b, &["pair", "rm", &id_a]);
    assert_eq!(code, 1);
    assert!(err.contains("not paired"), "{err}");
    assert_eq!(cli(&b, &["pair", "ls"]).1.lines().count(), 1);
}

#[test]
fn no_debug_output_shows_the_device_key() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    let identity = db.devices().identity().unwrap();
    let transport = db.devices().transport(synapsed_storage::device::TransportOptions::default()).unwrap();
    let der = identity.pkcs8_der();
    let at = der.windows(4).position(|w| w == [0x04, 0x22, 0x04, 0x20]).unwrap() + 4;
    let seed = &der[at..at + 32];
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let decimal = format!("{:?}", &seed[..8]).trim_end_matches(']').to_string();
    for text in [format!("{identity:?}"), format!("{transport:?}"), format!("{:?}", db.devices())] {
        assert!(!text.to_lowercase().contains(&hex[..16]), "{text}");
        assert!(!text.contains(&decimal), "{text}");
    }
    assert!(format!("{identity:?}").contains(&identity.device_id().to_string()));
}
