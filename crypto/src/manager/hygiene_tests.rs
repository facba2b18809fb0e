//! Key hygiene: formatting any key-holding type with `{:?}` (and `Display` where a
//! type has one) never shows key material, in hex, decimal or raw form.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use crate::envelope::FileCipher;
use crate::hybrid::{HybridKeypair, HybridSecretKey};
use crate::keys::DataKey;

/// Why `text` shows part of `secret`, if it does: any 8-byte run of the secret as
/// lower- or upper-case hex, as a `Debug` list of decimals, or as raw bytes.
fn leak(text: &str, secret: &[u8]) -> Option<String> {
    for w in secret.windows(8) {
        let hex = crate::keyslot::hex(w);
        let decimal = w.iter().map(u8::to_string).collect::<Vec<_>>().join(", ");
        if text.contains(&hex) || text.contains(&hex.to_uppercase()) || text.contains(&decimal) {
            return Some(format!("{hex} / [{decimal}]"));
        }
        if text.as_bytes().windows(8).any(|t| t == w) {
            return Some(format!("raw {hex}"));
        }
    }
    None
}

#[test]
fn no_key_type_formats_its_key_material() {
    let (_, vfs, dir) = {
        let sim = crate::vfs::SimVfs::new();
        let vfs: Arc<dyn Vfs> = sim.clone();
        (sim, vfs, std::path::PathBuf::from("/store"))
    };
    let params = Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 };
    let (manager, recovery) =
        KeyManager::create_with_recovery(&vfs, &dir, &Credential::passphrase("zq-hunter2-xv-k9"), &params)
            .unwrap();
    let pair = HybridKeypair::generate();
    let shares = recovery.split(2, 3).unwrap();
    let file_key = FileKey::random();
    let cipher = FileCipher::new(&file_key, 1, "000001.wal");
    let keyring = manager.keyring.read().clone();
    let dek: DataKey = keyring.key(1).unwrap().clone();
    let keyslots = KeyslotFile::decode(&vfs.read_all(&dir.join(KEYSLOTS_FILE)).unwrap(), KEYSLOTS_FILE).unwrap();
    let secret_key_bytes = pair.secret_key().encode();
    let decoded_secret = HybridSecretKey::decode(&secret_key_bytes).unwrap();

    let formatted: Vec<(&str, String)> = vec![
        ("MasterKey", format!("{:?}", manager.master)),
        ("DataKey", format!("{dek:?}")),
        ("FileKey", format!("{file_key:?}")),
        ("FileCipher", format!("{cipher:?}")),
        ("Keyring", format!("{keyring:?} {keyring:#?}")),
        ("KeyManager", format!("{manager:?} {manager:#?}")),
        ("KeyslotFile", format!("{keyslots:?}")),
        ("Credential::Passphrase", format!("{:?}", Credential::passphrase("zq-hunter2-xv-k9"))),
        ("Credential::RawKey", format!("{:?}", Credential::raw_key(*dek.as_bytes()))),
        ("Credential::Hybrid", format!("{:?}", Credential::hybrid(decoded_secret.clone()))),
        ("Credential::Recovery", format!("{:?}", Credential::recovery(recovery.clone()))),
        ("HybridSecretKey", format!("{decoded_secret:?} {decoded_secret:#?}")),
        ("HybridKeypair", format!("{pair:?} {pair:#?}")),
        ("HybridPublicKey", format!("{:?}", pair.public_key())),
        ("RecoveryKey", format!("{recovery:?} {recovery:#?}")),
        ("RecoveryShare", format!("{:?} {:#?}", shares[0], shares)),
        ("Error::WrongKey", Error::WrongKey.to_string()),
    ];
    let mut secrets: Vec<(&str, Vec<u8>)> = vec![
        ("master key", manager.master.read().as_bytes().to_vec()),
        ("data key", dek.as_bytes().to_vec()),
        ("file key", file_key.as_bytes().to_vec()),
        // The whole encoded secret key after its public magic and version.
        ("hybrid secret key", secret_key_bytes[9..].to_vec()),
        ("recovery key", recovery.as_bytes().to_vec()),
        ("recovery text", recovery.to_text().as_bytes().to_vec()),
        ("passphrase", b"zq-hunter2-xv-k9".to_vec()),
    ];
    for share in &shares {
        secrets.push(("share value", share.value().to_vec()));
        secrets.push(("share text", share.to_text().as_bytes().to_vec()));
    }
    for (what, text) in &formatted {
        assert!(!text.is_empty(), "{what}");
        for (name, secret) in &secrets {
            if let Some(found) = leak(text, secret) {
                panic!("{what} formats the {name}: {found} in {text}");
            }
        }
    }
    // The checker itself finds a key that is printed.
    assert!(leak(&format!("{:?}", manager.master.read().as_bytes()), manager.master.read().as_bytes()).is_some());
    assert!(leak(&crate::keyslot::hex(dek.as_bytes()), dek.as_bytes()).is_some());
}

/// The engine keeps credentials and managers across threads.
#[test]
fn credentials_and_managers_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Credential>();
    assert_send_sync::<KeyManager>();
    assert_send_sync::<HybridSecretKey>();
    assert_send_sync::<crate::RecoveryKey>();
    assert_send_sync::<crate::RecoveryShare>();
}
