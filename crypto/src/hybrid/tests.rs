//! Tests of the hybrid KEM: the X-Wing combiner and X25519 use against vectors
//! computed independently (`testdata/hybrid_vectors.py`), encapsulation round
//! trips, and the key encodings.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use crate::test_vectors::bytes32;

#[test]
fn label_is_the_xwing_label() {
    assert_eq!(XWING_LABEL, &[0x5c, 0x2e, 0x2f, 0x2f, 0x5e, 0x5c]);
}

#[test]
fn combiner_known_answer() {
    let ss = xwing_combine(
        &bytes32("combiner.ss_m"),
        &bytes32("combiner.ss_x"),
        &bytes32("combiner.ct_x"),
        &bytes32("combiner.pk_x"),
    );
    assert_eq!(*ss, bytes32("combiner.ss"));
    // Every input matters: changing any one changes the output.
    let base = [bytes32("combiner.ss_m"), bytes32("combiner.ss_x"), bytes32("combiner.ct_x"), bytes32("combiner.pk_x")];
    for which in 0..4 {
        let mut inputs = base;
        inputs[which][31] ^= 1;
        let other = xwing_combine(&inputs[0], &inputs[1], &inputs[2], &inputs[3]);
        assert_ne!(*other, *ss, "input {which} is not bound");
    }
}

#[test]
fn x25519_exchange_and_combiner_known_answer() {
    let sk_x = StaticSecret::from(bytes32("exchange.sk_x"));
    let ek_x = StaticSecret::from(bytes32("exchange.ek_x"));
    let pk_x = X25519Public::from(&sk_x).to_bytes();
    let ct_x = X25519Public::from(&ek_x).to_bytes();
    assert_eq!(pk_x, bytes32("exchange.pk_x"));
    assert_eq!(ct_x, bytes32("exchange.ct_x"));
    // Both sides of the exchange agree with the independent computation.
    let ss_x = ek_x.diffie_hellman(&X25519Public::from(pk_x));
    assert_eq!(ss_x.as_bytes(), &bytes32("exchange.ss_x"));
    assert_eq!(sk_x.diffie_hellman(&X25519Public::from(ct_x)).as_bytes(), &bytes32("exchange.ss_x"));
    let ss = xwing_combine(&bytes32("exchange.ss_m"), ss_x.as_bytes(), &ct_x, &pk_x);
    assert_eq!(*ss, bytes32("exchange.ss"));
    let mut kek = [0u8; 32];
    crate::codec::hkdf_sha256(&ss[..], None, b"synapsed-storage hybrid slot", &mut kek);
    assert_eq!(kek, bytes32("exchange.kek"));
}

#[test]
fn encapsulation_round_trip() {
    let pair = HybridKeypair::generate();
    let enc = pair.public_key().encapsulate().unwrap();
    assert_eq!(enc.ct_m.len(), MLKEM_CIPHERTEXT_LEN);
    let got = pair.secret_key().decapsulate(&enc.ct_x, &enc.ct_m).unwrap();
    assert_eq!(*got, *enc.shared);
    // Two encapsulations to one key give different secrets and ciphertexts.
    let again = pair.public_key().encapsulate().unwrap();
    assert_ne!(*again.shared, *enc.shared);
    assert_ne!(again.ct_x, enc.ct_x);
    // Another key recovers something else (ML-KEM's implicit rejection, another X25519 secret).
    let other = HybridKeypair::generate();
    assert_ne!(*other.secret_key().decapsulate(&enc.ct_x, &enc.ct_m).unwrap(), *enc.shared);
    // A changed ciphertext of either half changes the secret.
    let mut ct_m = enc.ct_m.clone();
    ct_m[100] ^= 1;
    assert_ne!(*pair.secret_key().decapsulate(&enc.ct_x, &ct_m).unwrap(), *enc.shared);
    let mut ct_x = enc.ct_x;
    ct_x[3] ^= 1;
    assert_ne!(*pair.secret_key().decapsulate(&ct_x, &enc.ct_m).unwrap(), *enc.shared);
    assert!(pair.secret_key().decapsulate(&enc.ct_x, &enc.ct_m[1..]).is_none());
}

#[test]
fn public_key_encoding_round_trip_and_errors() {
    let pair = HybridKeypair::generate();
    let public = pair.public_key();
    let bytes = public.encode();
    assert_eq!(bytes.len(), HYBRID_PUBLIC_KEY_LEN);
    assert_eq!(&bytes[..9], b"SYNHYBPK\x01");
    let decoded = HybridPublicKey::decode(&bytes).unwrap();
    assert_eq!(&decoded, public);
    assert_eq!(decoded.fingerprint(), public.fingerprint());
    assert_eq!(public.fingerprint(), sha3_256(&bytes));
    assert_ne!(HybridKeypair::generate().public_key().fingerprint(), public.fingerprint());

    // A coefficient of the ML-KEM key at or above q = 3329 (FIPS 203's key check).
    let mut out_of_range = bytes.clone();
    out_of_range[9 + 32] = 0xff;
    out_of_range[9 + 32 + 1] |= 0x0f;
    let mut wrong_magic = bytes.clone();
    wrong_magic[0] = b'X';
    let mut newer = bytes.clone();
    newer[8] = 2;
    for (bad, what) in [
        (wrong_magic, "wrong magic"),
        (newer, "unsupported version 2"),
        (out_of_range, "coefficient out of range"),
        (bytes[..bytes.len() - 1].to_vec(), "1224 bytes, expected 1225"),
        ([&bytes[..], &[0]].concat(), "1226 bytes"),
        (Vec::new(), "wrong magic"),
    ] {
        match HybridPublicKey::decode(&bad) {
            Err(Error::InvalidArgument(reason)) => assert!(reason.contains(what), "{reason}"),
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn secret_key_encoding_round_trip_and_errors() {
    let pair = HybridKeypair::generate();
    let bytes = pair.secret_key().encode();
    assert_eq!(bytes.len(), HYBRID_SECRET_KEY_LEN);
    assert_eq!(&bytes[..9], b"SYNHYBSK\x01");
    let decoded = HybridSecretKey::decode(&bytes).unwrap();
    assert_eq!(decoded.public_key(), pair.public_key());
    let enc = pair.public_key().encapsulate().unwrap();
    assert_eq!(*decoded.decapsulate(&enc.ct_x, &enc.ct_m).unwrap(), *enc.shared);
    // A damaged public key or hash inside the ML-KEM secret key fails its hash check.
    for offset in [9 + 32 + MLKEM_SK_PUBLIC_OFFSET + 5, 9 + 32 + MLKEM_SK_HASH_OFFSET + 1] {
        let mut bad = bytes.to_vec();
        bad[offset] ^= 0x10;
        match HybridSecretKey::decode(&bad) {
            Err(Error::InvalidArgument(reason)) => assert!(reason.contains("hash check"), "{reason}"),
            other => panic!("offset {offset}: {other:?}"),
        }
    }
    assert!(matches!(HybridSecretKey::decode(&bytes[..100]), Err(Error::InvalidArgument(_))));
    // A public key is not a secret key.
    assert!(matches!(HybridSecretKey::decode(&pair.public_key().encode()), Err(Error::InvalidArgument(_))));
}
