//! Tests of recovery keys: the text form against vectors computed independently
//! (`testdata/hybrid_vectors.py`), its tolerance and typo detection, and k-of-n
//! splitting.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use crate::test_vectors::{bytes32, text};

fn fixed() -> RecoveryKey {
    RecoveryKey::from_bytes(bytes32("recovery.secret"))
}

fn invalid_reason<T: fmt::Debug>(r: Result<T>) -> String {
    match r {
        Err(Error::InvalidArgument(reason)) => reason,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn text_form_known_answer() {
    let key = fixed();
    assert_eq!(&*key.to_text(), text("recovery.text"));
    assert_eq!(RecoveryKey::from_text(text("recovery.text")).unwrap(), key);
    let t = key.to_text();
    assert!(t.starts_with("SYN1-"));
    let groups: Vec<&str> = t.split('-').skip(1).collect();
    assert_eq!(groups.len(), 14);
    assert!(groups.iter().all(|g| g.len() == 4));
}

#[test]
fn derived_keys_known_answer() {
    let key = fixed();
    assert_eq!(key.x25519_secret().to_bytes(), bytes32("recovery.x25519_secret"));
    assert_eq!(
        x25519_dalek::PublicKey::from(&key.x25519_secret()).to_bytes(),
        bytes32("recovery.x25519_public")
    );
    assert_eq!(*key.seal_key(), bytes32("recovery.seal_key"));
}

#[test]
fn random_keys_round_trip_and_differ() {
    let a = RecoveryKey::generate();
    let b = RecoveryKey::generate();
    assert_ne!(a, b);
    assert_eq!(RecoveryKey::from_text(&a.to_text()).unwrap(), a);
    assert_eq!(a.to_text().parse::<RecoveryKey>().unwrap(), a);
}

#[test]
fn decoding_tolerates_case_spaces_dashes_and_lookalikes() {
    let key = fixed();
    let canonical = text("recovery.text");
    let variants = [
        canonical.to_lowercase(),
        canonical.replace('-', ""),
        canonical.replace('-', " "),
        format!("  {}\n", canonical.replace('-', " - ")),
        // O for 0, I and L for 1, in the payload and the prefix.
        canonical.replace('0', "O").replacen('1', "l", 3),
        canonical.replace("SYN1", "syni"),
    ];
    for v in variants {
        assert_eq!(RecoveryKey::from_text(&v).unwrap(), key, "{v}");
    }
}

#[test]
fn every_mistyped_character_is_caught() {
    let canonical = text("recovery.text");
    let chars: Vec<char> = canonical.chars().collect();
    let mut tried = 0;
    for (i, &c) in chars.iter().enumerate() {
        if i < 5 || c == '-' {
            continue;
        }
        for &sub in ALPHABET {
            let sub = char::from(sub);
            if sub == c {
                continue;
            }
            let mut typo = chars.clone();
            typo[i] = sub;
            let typo: String = typo.into_iter().collect();
            let reason = invalid_reason(RecoveryKey::from_text(&typo));
            assert!(reason.contains("checksum mismatch"), "{typo}: {reason}");
            tried += 1;
        }
    }
    assert_eq!(tried, 56 * 31);
    // Swapping two neighbouring different characters is caught too.
    for i in 5..chars.len() - 1 {
        if chars[i] == '-' || chars[i + 1] == '-' || chars[i] == chars[i + 1] {
            continue;
        }
        let mut swapped = chars.clone();
        swapped.swap(i, i + 1);
        let swapped: String = swapped.into_iter().collect();
        assert!(invalid_reason(RecoveryKey::from_text(&swapped)).contains("checksum"), "{swapped}");
    }
}

#[test]
fn malformed_text_gives_clear_errors() {
    let canonical = text("recovery.text");
    let reason = invalid_reason(RecoveryKey::from_text(&canonical[..canonical.len() - 5]));
    assert!(reason.contains("52 characters after SYN1-, expected 56"), "{reason}");
    let reason = invalid_reason(RecoveryKey::from_text(&format!("{canonical}-ABCD")));
    assert!(reason.contains("60 characters"), "{reason}");
    let reason = invalid_reason(RecoveryKey::from_text(&canonical.replacen("SYN1", "XYZ1", 1)));
    assert!(reason.contains("must start with SYN1"), "{reason}");
    let with_u: String = canonical.char_indices().map(|(i, c)| if i == 7 { 'U' } else { c }).collect();
    let reason = invalid_reason(RecoveryKey::from_text(&with_u));
    assert!(reason.contains("'U' (group 1, character 3)"), "{reason}");
    let reason = invalid_reason(RecoveryKey::from_text(""));
    assert!(reason.contains("must start with SYN1"), "{reason}");
    // A share is not a key, and a key is not a share.
    let reason = invalid_reason(RecoveryKey::from_text(text("share.text")));
    assert!(reason.contains("recovery share"), "{reason}");
    let reason = invalid_reason(RecoveryShare::from_text(canonical));
    assert!(reason.contains("whole recovery key"), "{reason}");
}

#[test]
fn share_text_known_answer() {
    let share = RecoveryShare::from_text(text("share.text")).unwrap();
    assert_eq!(share.split_id, [0x0a, 0x0b, 0x0c]);
    assert_eq!(share.threshold(), 3);
    assert_eq!(share.index(), 2);
    assert_eq!(*share.y, bytes32("combiner.ss_x"));
    assert_eq!(&*share.to_text(), text("share.text"));
}

#[test]
fn any_k_of_n_shares_rebuild_the_key() {
    let key = RecoveryKey::generate();
    let shares = key.split(3, 5).unwrap();
    assert_eq!(shares.len(), 5);
    assert_eq!(shares.iter().map(RecoveryShare::index).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    for a in 0..5 {
        for b in a + 1..5 {
            for c in b + 1..5 {
                let subset = [shares[c].clone(), shares[a].clone(), shares[b].clone()];
                assert_eq!(RecoveryKey::combine(&subset).unwrap(), key, "shares {a} {b} {c}");
            }
        }
    }
    assert_eq!(RecoveryKey::combine(&shares).unwrap(), key);
    // Through their text form too.
    let texts: Vec<_> = shares.iter().map(|s| s.to_text()).collect();
    let parsed: Vec<RecoveryShare> = texts[2..].iter().map(|t| t.parse().unwrap()).collect();
    assert_eq!(RecoveryKey::combine(&parsed).unwrap(), key);
}

#[test]
fn fewer_than_k_shares_fail() {
    let key = RecoveryKey::generate();
    let shares = key.split(3, 5).unwrap();
    for a in 0..5 {
        for b in a + 1..5 {
            let pair = [shares[a].clone(), shares[b].clone()];
            let reason = invalid_reason(RecoveryKey::combine(&pair));
            assert!(reason.contains("3 distinct shares are needed"), "{reason}");
            // Interpolating the two anyway (as if the threshold were 2) does not give the key.
            let raw: Vec<blahaj::Share> = pair
                .iter()
                .map(|s| blahaj::Share::try_from(&[&[s.x][..], &s.y[..]].concat()[..]).unwrap())
                .collect();
            assert_ne!(blahaj::Sharks(2).recover(&raw).unwrap(), key.as_bytes().to_vec());
        }
    }
    // A repeated share does not count twice.
    let repeated = [shares[0].clone(), shares[0].clone(), shares[1].clone()];
    assert!(invalid_reason(RecoveryKey::combine(&repeated)).contains("2 were given"));
    assert!(invalid_reason(RecoveryKey::combine(&[])).contains("no recovery shares"));
}

#[test]
fn shares_of_different_splits_do_not_mix() {
    let key = RecoveryKey::generate();
    let first = key.split(2, 3).unwrap();
    let second = key.split(2, 3).unwrap();
    let mixed = [first[0].clone(), second[1].clone()];
    assert!(invalid_reason(RecoveryKey::combine(&mixed)).contains("different splits"));
}

#[test]
fn split_parameters_are_checked() {
    let key = RecoveryKey::generate();
    assert!(invalid_reason(key.split(1, 3)).contains("1-of-3"));
    assert!(invalid_reason(key.split(4, 3)).contains("4-of-3"));
    assert_eq!(key.split(255, 255).unwrap().len(), 255);
    assert_eq!(RecoveryKey::combine(&key.split(2, 2).unwrap()).unwrap(), key);
}
