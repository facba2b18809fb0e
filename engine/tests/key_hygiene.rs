//! Key hygiene at the engine's surface: no `Debug` or `Display` output of a type
//! that holds or handles keys (the store, its options and stats, credentials,
//! the key manager, recovery keys and shares, device keys, reports, errors)
//! shows a passphrase, a recovery key or other key material (the CLI's output is
//! checked in `keys_cli.rs`). Also measures how long opening takes with the
//! default Argon2id parameters.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Instant;

use synapsed_storage::{Argon2Params, Credential, Db, HybridKeypair, Options, RecoveryKey, Vfs};

const PASSPHRASE: &str = "zq-hunter2-xv-k9-passphrase";
const RAW_KEY: [u8; 32] = [
    0xa7, 0x3c, 0x91, 0x5e, 0x02, 0xd4, 0x6b, 0xf8, 0x13, 0x8a, 0xc5, 0x77, 0x2e, 0xb0, 0x49, 0xe6, 0x5d, 0x0f, 0x98,
    0x31, 0xcb, 0x64, 0xaa, 0x1f, 0x87, 0x3e, 0xd9, 0x50, 0x26, 0xbf, 0x74, 0x08,
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why `text` shows part of `secret`, if it does: any 8-byte run of it as hex
/// (either case), as a `Debug` list of decimals, or raw.
fn leak(text: &str, secret: &[u8]) -> Option<String> {
    for w in secret.windows(8) {
        let h = hex(w);
        let decimal = w.iter().map(u8::to_string).collect::<Vec<_>>().join(", ");
        if text.contains(&h) || text.contains(&h.to_uppercase()) || text.contains(&decimal) {
            return Some(h);
        }
        if text.as_bytes().windows(8).any(|t| t == w) {
            return Some(format!("raw {h}"));
        }
    }
    None
}

/// Whether `text` shows any 8 consecutive characters of the recovery key's text
/// (dashes removed), or of a share's.
fn shows_text(text: &str, secret_text: &str) -> bool {
    let compact: String = secret_text.chars().filter(|c| *c != '-').skip(4).collect();
    let haystack: String = text.chars().filter(|c| *c != '-').collect();
    compact
        .as_bytes()
        .windows(8)
        .any(|w| haystack.contains(std::str::from_utf8(w).unwrap()))
}

fn fast() -> Options {
    Options::tiny_for_tests()
        .with_background_compaction(false)
}

#[test]
fn no_debug_or_display_output_shows_key_material() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let pass = Credential::passphrase(PASSPHRASE);
    let (db, recovery) = Db::create_with_recovery(&dir, &pass, fast()).unwrap();
    let device = HybridKeypair::generate();
    db.add_credential(&Credential::raw_key(RAW_KEY)).unwrap();
    db.add_device_key(device.public_key()).unwrap();
    db.put(b"k", b"v").unwrap();
    let rotation = db.rotate_keys().unwrap();
    let deleted = db.secure_delete(b"k").unwrap();
    let shares = recovery.split(2, 3).unwrap();
    let vfs: Arc<dyn Vfs> = fast().vfs;
    let manager = crypto::KeyManager::unlock(&vfs, &dir, &Credential::raw_key(RAW_KEY)).unwrap();
    let device_secret = device.secret_key().encode();

    let mut outputs: Vec<(String, String)> = vec![
        ("Db".into(), format!("{db:?}")),
        ("Options".into(), format!("{:?}", fast())),
        ("Stats".into(), format!("{:?}", db.stats())),
        ("RotationReport".into(), format!("{rotation:?}")),
        ("SecureDeleteReport".into(), format!("{deleted:?}")),
        ("KeyManager".into(), format!("{manager:?}")),
        ("RecoveryKey".into(), format!("{recovery:?}")),
        ("HybridKeypair".into(), format!("{device:?}")),
        ("HybridSecretKey".into(), format!("{:?}", device.secret_key())),
        ("Credential::Passphrase".into(), format!("{pass:?}")),
        (
            "Credential::RawKey".into(),
            format!("{:?}", Credential::raw_key(RAW_KEY)),
        ),
        (
            "Credential::Hybrid".into(),
            format!("{:?}", Credential::hybrid(device.secret_key().clone())),
        ),
        (
            "Credential::Recovery".into(),
            format!("{:?}", Credential::recovery(recovery.clone())),
        ),
        ("keyslots".into(), format!("{:?}", Db::keyslots(&dir, &fast()).unwrap())),
    ];
    for share in &shares {
        outputs.push(("RecoveryShare".into(), format!("{share:?}")));
    }
    // Errors that a wrong or mistyped secret causes.
    let wrong = Db::open(&dir, &Credential::passphrase("not-the-passphrase-zz"), fast()).unwrap_err();
    outputs.push(("wrong passphrase".into(), format!("{wrong} / {wrong:?}")));
    let mut typo = recovery.to_text().to_string();
    let last = typo.pop().unwrap();
    typo.push(if last == 'A' { 'B' } else { 'A' });
    let bad_text = RecoveryKey::from_text(&typo).unwrap_err();
    outputs.push(("recovery typo".into(), format!("{bad_text} / {bad_text:?}")));
    let wrong_recovery = Db::open(&dir, &Credential::recovery(RecoveryKey::generate()), fast()).unwrap_err();
    outputs.push((
        "wrong recovery".into(),
        format!("{wrong_recovery} / {wrong_recovery:?}"),
    ));
    let empty = Db::change_passphrase(&dir, &pass, b"", &fast()).unwrap_err();
    outputs.push(("empty new passphrase".into(), format!("{empty} / {empty:?}")));

    let recovery_text = recovery.to_text();
    for (what, text) in &outputs {
        assert!(!text.contains(PASSPHRASE), "{what} shows the passphrase: {text}");
        assert!(
            !text.contains("not-the-passphrase-zz"),
            "{what} shows the wrong passphrase: {text}"
        );
        assert_eq!(leak(text, &RAW_KEY), None, "{what} shows the raw key: {text}");
        assert_eq!(
            leak(text, recovery.as_bytes()),
            None,
            "{what} shows the recovery secret: {text}"
        );
        assert!(
            !shows_text(text, &recovery_text),
            "{what} shows the recovery key: {text}"
        );
        assert!(!shows_text(text, &typo), "{what} repeats the mistyped key: {text}");
        assert_eq!(
            leak(text, &device_secret[9..9 + 32]),
            None,
            "{what} shows the device's X25519 secret: {text}"
        );
        assert_eq!(
            leak(text, &device_secret[41..41 + 64]),
            None,
            "{what} shows the device's ML-KEM secret: {text}"
        );
        for share in &shares {
            assert!(!shows_text(text, &share.to_text()), "{what} shows a share: {text}");
        }
    }
    db.close().unwrap();
}

/// Opens a store made with the default Argon2id parameters (m = 19 MiB, t = 2,
/// p = 1) and reports how long the unlock takes; the bound only catches a
/// parameter mix-up, not a slow machine.
#[test]
fn open_time_with_default_argon2_parameters() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let options = || Options::default()
        .with_background_compaction(false);
    assert_eq!(
        options().argon2,
        Argon2Params {
            m_cost_kib: 19456,
            t_cost: 2,
            p_cost: 1
        }
    );
    let pass = Credential::passphrase(PASSPHRASE);
    let (db, recovery) = Db::create_with_recovery(&dir, &pass, options()).unwrap();
    db.close().unwrap();
    let time = |credential: &Credential| {
        let mut best = std::time::Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            Db::open(&dir, credential, options()).unwrap().close().unwrap();
            best = best.min(started.elapsed());
        }
        best
    };
    let with_passphrase = time(&pass);
    let vfs: Arc<dyn Vfs> = options().vfs;
    let started = Instant::now();
    crypto::KeyManager::unlock(&vfs, &dir, &pass).unwrap();
    let unlock_only = started.elapsed();
    let with_recovery = time(&Credential::recovery(recovery));
    eprintln!(
        "open with default Argon2id parameters: passphrase {with_passphrase:.2?} (key unlock alone {unlock_only:.2?}), \
         recovery key {with_recovery:.2?}"
    );
    assert!(
        with_passphrase.as_millis() >= 5,
        "Argon2id at 19 MiB cannot take under 5 ms: {with_passphrase:?}"
    );
    assert!(with_passphrase.as_secs() < 10, "{with_passphrase:?}");
    assert!(with_recovery < with_passphrase, "the recovery slot runs no Argon2id");
}

/// Every file and directory a store creates is its owner's alone (0600 and
/// 0700), whatever the process's umask lets through: after create, writes,
/// a flush (SSTables, manifest), a reopen and a key rotation.
#[test]
fn store_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested").join("store");
    let cred = Credential::passphrase(PASSPHRASE);
    {
        let db = Db::create(&dir, &cred, fast()).unwrap();
        for i in 0..500u32 {
            db.put(&i.to_be_bytes(), &[7u8; 100]).unwrap();
        }
        db.flush().unwrap();
        db.close().unwrap();
    }
    {
        let db = Db::open(&dir, &cred, fast()).unwrap();
        db.rotate_keys().unwrap();
        db.put(b"after", b"reopen").unwrap();
        db.close().unwrap();
    }
    let mut seen = 0;
    let mut stack = vec![tmp.path().join("nested")];
    while let Some(d) = stack.pop() {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "directory {} has mode {mode:o}", d.display());
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "file {} has mode {mode:o}", path.display());
                seen += 1;
            }
        }
    }
    assert!(seen >= 4, "expected the keyslots, manifest, WAL and tables; found {seen} files");
}
