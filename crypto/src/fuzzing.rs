//! Entry points that expose the crypto layer's decoders to fuzzers and to the
//! corpus-replay tests (`tests/fuzz_corpus.rs`), so both run exactly the same checks.
//!
//! Each entry point takes arbitrary bytes, never panics on them, and panics only
//! when a rule is broken: something opens that this process never sealed, something
//! it sealed fails to open, a decoded structure does not re-encode to its bytes, or
//! an error names another file. Keys are random per process, so inputs cannot hold
//! real sealed files: the first input byte chooses between reading the rest as raw
//! file bytes and reading it as damage to do to a file sealed once per process
//! (see [`damage`]). [`seed_corpus`] makes the committed seed inputs.

use std::sync::{Arc, OnceLock};

use fuzz_support::{must, FuzzInput, MAX_DAMAGE_OPS};

use crate::codec::append_crc;
use crate::format::{
    CRC_LEN, FILE_MAGIC, FORMAT_VERSION, KEYRING_HEADER_LEN, KEYRING_MAGIC, KEYRING_VERSION, KEYSLOTS_HEADER_LEN,
    KEYSLOTS_MAGIC, KEYSLOTS_VERSION, PASSPHRASE_BODY_LEN, RAW_KEY_BODY_LEN, SLOT_FRAME_LEN,
};
use crate::{
    Argon2Params, BlockKind, Credential, Error, FileCipher, FileHeader, FileKey, FileKind, KeyManager, Keyring,
    KeyslotFile, MasterKey, FILE_HEADER_LEN, TAG_LEN,
};

/// The fuzz targets of this crate, by corpus directory name.
pub const TARGETS: [&str; 4] = ["file_header", "envelope", "keyslot_file", "keyring_file"];

/// Runs `target`'s entry point on `data`; `false` if the target is unknown.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "file_header" => file_header(data),
        "envelope" => envelope(data),
        "keyslot_file" => keyslot_file(data),
        "keyring_file" => keyring_file(data),
        _ => return false,
    }
    true
}

/// Applies the damage described by the rest of `input` to `bytes`: up to 16
/// operations ([`MAX_DAMAGE_OPS`]), each `op u8` then its arguments; positions are taken modulo the
/// current length so most operations land inside the file.
///
/// | op % 5 | arguments | effect |
/// |---|---|---|
/// | 0 | `pos u16, mask u8` | `bytes[pos] ^= mask` |
/// | 1 | `len u16` | truncate to `len` |
/// | 2 | `n u8, n bytes` | append the bytes |
/// | 3 | `pos u16, value u8` | `bytes[pos] = value` |
/// | 4 | none | rewrite the trailing crc32 over the rest (defeats the checksum, so the AEAD layer is what must refuse) |
fn damage(bytes: &mut Vec<u8>, input: &mut FuzzInput<'_>) {
    for _ in 0..MAX_DAMAGE_OPS {
        if input.is_empty() {
            break;
        }
        match input.u8() % 5 {
            op @ (0 | 3) => {
                let pos = usize::from(input.u16());
                let arg = input.u8();
                let len = bytes.len();
                if let Some(b) = bytes.get_mut(pos.checked_rem(len).unwrap_or(0)) {
                    *b = if op == 0 { *b ^ arg } else { arg };
                }
            }
            1 => {
                let len = usize::from(input.u16());
                bytes.truncate(len);
            }
            2 => {
                let n = usize::from(input.u8());
                bytes.extend_from_slice(input.bytes(n));
            }
            _ => {
                if bytes.len() >= CRC_LEN {
                    bytes.truncate(bytes.len() - CRC_LEN);
                    append_crc(bytes);
                }
            }
        }
    }
}

/// Panics if `error` names a file other than `file`.
fn check_names(error: &Error, file: &str) {
    match error {
        Error::Corruption { file: f, .. } | Error::UnsupportedVersion { file: f, .. } | Error::MissingEpoch { file: f, .. } => {
            assert_eq!(f, file, "an error names another file: {error}");
        }
        _ => {}
    }
}

const KINDS: [FileKind; 4] = [FileKind::Wal, FileKind::Sst, FileKind::Manifest, FileKind::Blob];
const HEADER_FILE: &str = "000042.sst";

/// A key manager and one header of each file kind made under it, once per process.
struct HeaderFixture {
    keys: Arc<KeyManager>,
    headers: Vec<([u8; FILE_HEADER_LEN], FileCipher)>,
}

fn header_fixture() -> &'static HeaderFixture {
    static FIXTURE: OnceLock<HeaderFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys = KeyManager::ephemeral();
        let headers = KINDS.iter().zip(40u64..).map(|(kind, id)| keys.new_file(*kind, id, HEADER_FILE)).collect();
        HeaderFixture { keys, headers }
    })
}

fn kind_index(kind: FileKind) -> usize {
    KINDS.iter().position(|k| *k == kind).unwrap_or(0)
}

/// `sel u8` then the rest: bit 0 clear, the rest is raw header bytes; set, the rest
/// is [`damage`] to the header of kind `(sel >> 3) & 3` made by this process. The
/// expected kind is `(sel >> 1) & 3`. `FileHeader::decode` must re-encode what it
/// accepts; `KeyManager::open_file` must open exactly the header bytes it made for
/// the expected kind (bytes past the header are not part of it), with the same key.
pub fn file_header(data: &[u8]) {
    let fx = header_fixture();
    let mut input = FuzzInput::new(data);
    let sel = input.u8();
    let expected = KINDS.get(usize::from((sel >> 1) & 3)).copied().unwrap_or(FileKind::Wal);
    let bytes = if sel & 1 == 0 {
        input.rest().to_vec()
    } else {
        let (header, _) = fx.headers.get(usize::from((sel >> 3) & 3)).unwrap_or_else(|| unreachable!());
        let mut b = header.to_vec();
        damage(&mut b, &mut input);
        b
    };
    match FileHeader::decode(&bytes, HEADER_FILE) {
        Ok(h) => assert_eq!(Some(&h.encode()[..]), bytes.get(..FILE_HEADER_LEN), "a decoded header re-encodes differently"),
        Err(e) => check_names(&e, HEADER_FILE),
    }
    let (made, made_cipher) = fx.headers.get(kind_index(expected)).unwrap_or_else(|| unreachable!());
    let exact = bytes.get(..FILE_HEADER_LEN) == Some(&made[..]);
    match fx.keys.open_file(&bytes, expected, made_cipher.file_id(), HEADER_FILE) {
        Ok(cipher) => {
            assert!(exact, "open_file accepted header bytes this process never made for {expected:?}");
            assert_eq!(cipher.file_id(), made_cipher.file_id(), "the opened header names another file id");
            let sealed = made_cipher.seal(84, BlockKind::SstData, b"header key check");
            let opened = must(cipher.open(84, BlockKind::SstData, &sealed), "open with the unwrapped key");
            assert_eq!(opened, b"header key check");
        }
        Err(e) => {
            assert!(!exact, "open_file refused a header it made: {e}");
            check_names(&e, HEADER_FILE);
        }
    }
}

const ENVELOPE_KEY: [u8; 32] = [0x3c; 32];
const ENVELOPE_FILE: &str = "000009.sst";
const ENVELOPE_FILE_ID: u64 = 9;
const BLOCK_KINDS: [BlockKind; 8] = [
    BlockKind::WalRecord,
    BlockKind::SstData,
    BlockKind::SstIndex,
    BlockKind::SstFilter,
    BlockKind::SstProperties,
    BlockKind::ManifestRecord,
    BlockKind::BlobChunk,
    BlockKind::SstMeta,
];

/// The blocks the `envelope` target seals: (offset, kind, plaintext). The key and
/// nonces are fixed, so their ciphertexts are the same in every process.
fn envelope_blocks() -> Vec<(u64, BlockKind, Vec<u8>)> {
    vec![
        (0, BlockKind::WalRecord, Vec::new()),
        (84, BlockKind::SstData, b"block one".to_vec()),
        (4096, BlockKind::SstIndex, (0..300u32).map(|i| i as u8).collect()),
        (u64::MAX - 16, BlockKind::ManifestRecord, b"x".to_vec()),
    ]
}

/// A sealed block: (offset, kind, plaintext, ciphertext).
type SealedBlock = (u64, BlockKind, Vec<u8>, Vec<u8>);

fn envelope_cipher() -> &'static (FileCipher, Vec<SealedBlock>) {
    static FIXTURE: OnceLock<(FileCipher, Vec<SealedBlock>)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let cipher = FileCipher::new(&FileKey::from_bytes(ENVELOPE_KEY), ENVELOPE_FILE_ID, ENVELOPE_FILE);
        let sealed = envelope_blocks()
            .into_iter()
            .map(|(offset, kind, plain)| {
                let ct = cipher.seal(offset, kind, &plain);
                (offset, kind, plain, ct)
            })
            .collect();
        (cipher, sealed)
    })
}

/// `sel u8, offset u64 LE, kind u8` then the rest: bit 0 of `sel` clear, the rest is
/// the ciphertext; set, the rest is [`damage`] to sealed block `(sel >> 1) % 4`.
/// `FileCipher::open` must open exactly the (offset, kind, ciphertext) triples it
/// sealed, to their plaintext, report anything else as corruption of its file at
/// that offset, agree with `open_in_place`, and never open under another file id.
pub fn envelope(data: &[u8]) {
    let (cipher, sealed) = envelope_cipher();
    let mut input = FuzzInput::new(data);
    let sel = input.u8();
    let offset = input.u64();
    let kind = BLOCK_KINDS.get(usize::from(input.u8() % 8)).copied().unwrap_or(BlockKind::SstData);
    let ciphertext = if sel & 1 == 0 {
        input.rest().to_vec()
    } else {
        let index = usize::from(sel >> 1) % sealed.len().max(1);
        let mut ct = sealed.get(index).map(|s| s.3.clone()).unwrap_or_default();
        damage(&mut ct, &mut input);
        ct
    };
    let known = sealed.iter().find(|(o, k, _, ct)| *o == offset && *k == kind && *ct == ciphertext);
    let result = cipher.open(offset, kind, &ciphertext);
    match (&result, known) {
        (Ok(plain), Some((_, _, expected, _))) => assert_eq!(plain, expected, "a sealed block opened to other bytes"),
        (Ok(_), None) => panic!("open accepted a block never sealed at offset {offset} as {kind:?}"),
        (Err(e), Some(_)) => panic!("a sealed block failed to open: {e}"),
        (Err(Error::Corruption { file, offset: at, .. }), None) => {
            assert_eq!(file, ENVELOPE_FILE, "corruption names another file");
            assert_eq!(*at, offset, "corruption reported at another offset");
        }
        (Err(e), None) => panic!("open failed with a non-corruption error: {e}"),
    }
    let mut buf = ciphertext.clone();
    let in_place = cipher.open_in_place(offset, kind, &mut buf);
    match (&result, in_place) {
        (Ok(plain), Ok(())) => assert_eq!(&buf, plain, "open_in_place disagrees with open"),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("open and open_in_place disagree: {a:?} / {b:?}"),
    }
    if ciphertext.len() >= TAG_LEN {
        let other = FileCipher::new(&FileKey::from_bytes(ENVELOPE_KEY), ENVELOPE_FILE_ID + 1, "000010.sst");
        assert!(other.open(offset, kind, &ciphertext).is_err(), "a block opened under another file id");
    }
}

const KEYSLOTS_NAME: &str = "KEYSLOTS";
const RIGHT_PASSPHRASE: &str = "fuzz right passphrase";
const RIGHT_RAW_KEY: [u8; 32] = [0x11; 32];
/// Argon2 cost of the fixture's passphrase slot: as small as Argon2 allows.
const TINY_ARGON2: Argon2Params = Argon2Params { m_cost_kib: 8, t_cost: 1, p_cost: 1 };
/// Largest Argon2 cost the target runs. Parameters up to the format's own limits
/// (1 GiB, 32 iterations) are valid and [`KeyslotFile::decode`] accepts them, so a
/// fuzzed file could make one passphrase unlock take seconds and gigabytes; above
/// this bound the target skips the passphrase unlocks of that input (decoding and
/// the raw-key unlocks still run). The format's limits are checked by `decode`.
const FUZZ_MAX_ARGON2: Argon2Params = Argon2Params { m_cost_kib: 1024, t_cost: 4, p_cost: 4 };

struct KeyslotFixture {
    master: MasterKey,
    bytes: Vec<u8>,
}

fn keyslot_fixture() -> &'static KeyslotFixture {
    static FIXTURE: OnceLock<KeyslotFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let master = MasterKey::random();
        let mut file = must(
            KeyslotFile::create(&master, [0x5a; 16], &Credential::passphrase(RIGHT_PASSPHRASE), &TINY_ARGON2),
            "KeyslotFile::create",
        );
        must(file.add_slot(&master, &Credential::raw_key(RIGHT_RAW_KEY), &TINY_ARGON2), "add_slot");
        KeyslotFixture { bytes: file.encode(), master }
    })
}

/// `sel u8` then the rest: bit 0 clear, the rest is a raw `KEYSLOTS` file; set, the
/// rest is [`damage`] to a file made by this process with a passphrase slot then a
/// raw-key slot (tiny Argon2 cost). `KeyslotFile::decode` must re-encode what it
/// accepts. Then the right and a wrong passphrase and raw key are tried: a wrong
/// one never unlocks; the right one unlocks the undamaged file to its master key,
/// never unlocks to another key, and never unlocks once the header or its own slot
/// changed. Hybrid credentials are not tried (each costs an ML-KEM key pair).
pub fn keyslot_file(data: &[u8]) {
    let fx = keyslot_fixture();
    let mut input = FuzzInput::new(data);
    let bytes = if input.u8() & 1 == 0 {
        input.rest().to_vec()
    } else {
        let mut b = fx.bytes.clone();
        damage(&mut b, &mut input);
        b
    };
    let file = match KeyslotFile::decode(&bytes, KEYSLOTS_NAME) {
        Ok(file) => file,
        Err(e) => {
            assert!(bytes != fx.bytes, "the file this process made does not decode: {e}");
            check_names(&e, KEYSLOTS_NAME);
            return;
        }
    };
    assert_eq!(file.encode(), bytes, "a decoded KEYSLOTS file re-encodes differently");
    let cheap = file.slots().iter().filter_map(|s| s.argon2).all(|p| {
        p.m_cost_kib <= FUZZ_MAX_ARGON2.m_cost_kib && p.t_cost <= FUZZ_MAX_ARGON2.t_cost && p.p_cost <= FUZZ_MAX_ARGON2.p_cost
    });
    let same_len = bytes.len() == fx.bytes.len();
    let passphrase_end = KEYSLOTS_HEADER_LEN + SLOT_FRAME_LEN + PASSPHRASE_BODY_LEN;
    let raw_end = passphrase_end + SLOT_FRAME_LEN + RAW_KEY_BODY_LEN;
    let credentials = [
        (Credential::passphrase(RIGHT_PASSPHRASE), true, KEYSLOTS_HEADER_LEN..passphrase_end),
        (Credential::passphrase("fuzz wrong passphrase"), false, 0..0),
        (Credential::raw_key(RIGHT_RAW_KEY), true, passphrase_end..raw_end),
        (Credential::raw_key([0x22; 32]), false, 0..0),
    ];
    for (credential, right, own_slot) in credentials {
        if matches!(credential, Credential::Passphrase(_)) && !cheap {
            continue;
        }
        let result = file.unlock(&credential);
        if bytes == fx.bytes {
            match (&result, right) {
                (Ok(mk), true) => assert_eq!(mk.as_bytes(), fx.master.as_bytes(), "unlocked to another key"),
                (Err(Error::WrongKey), false) => {}
                (other, _) => panic!("the undamaged file: right={right}, unlock returned {:?}", other.as_ref().err()),
            }
            continue;
        }
        match result {
            Ok(mk) => {
                assert!(right, "a wrong credential unlocked a KEYSLOTS file");
                assert_eq!(mk.as_bytes(), fx.master.as_bytes(), "unlocked to a key this process never wrapped");
                assert!(file.matches(&mk), "unlocked to a key the key-check value does not vouch for");
                if same_len {
                    let changed = |at: usize| fx.bytes.get(at) != bytes.get(at);
                    let guarded = (0..KEYSLOTS_HEADER_LEN).chain(own_slot).find(|at| changed(*at));
                    assert!(guarded.is_none(), "unlocked although byte {guarded:?} of the header or its slot changed");
                }
            }
            Err(e) => check_names(&e, KEYSLOTS_NAME),
        }
    }
}

const KEYRING_NAME: &str = "KEYRING";
const KEYRING_MASTER: [u8; 32] = [0x42; 32];
const KEYRING_STORE_ID: [u8; 16] = [0x5a; 16];

struct KeyringFixture {
    keyring: Keyring,
    bytes: Vec<u8>,
}

fn keyring_fixture() -> &'static KeyringFixture {
    static FIXTURE: OnceLock<KeyringFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut keyring = Keyring::new_random();
        keyring.add_epoch();
        keyring.add_epoch();
        let bytes = keyring.seal(&MasterKey::from_bytes(KEYRING_MASTER), &KEYRING_STORE_ID);
        KeyringFixture { keyring, bytes }
    })
}

/// `sel u8` then the rest: bit 0 clear, the rest is a raw `KEYRING` file; set, the
/// rest is [`damage`] to a keyring of three epochs sealed by this process under a
/// fixed master key and store id. `Keyring::open` with that key and id must accept
/// exactly the bytes sealed, returning the same epochs and keys; another master key
/// or store id must never open it.
pub fn keyring_file(data: &[u8]) {
    let fx = keyring_fixture();
    let mut input = FuzzInput::new(data);
    let bytes = if input.u8() & 1 == 0 {
        input.rest().to_vec()
    } else {
        let mut b = fx.bytes.clone();
        damage(&mut b, &mut input);
        b
    };
    let master = MasterKey::from_bytes(KEYRING_MASTER);
    match Keyring::open(&bytes, &master, &KEYRING_STORE_ID, KEYRING_NAME) {
        Ok(ring) => {
            assert!(bytes == fx.bytes, "a keyring this process never sealed was opened");
            assert_eq!(ring.current(), fx.keyring.current(), "current epoch");
            assert_eq!(ring.epochs(), fx.keyring.epochs(), "epochs");
            for epoch in ring.epochs() {
                let (a, b) = (ring.key(epoch).map(|k| *k.as_bytes()), fx.keyring.key(epoch).map(|k| *k.as_bytes()));
                assert!(a.is_some() && a == b, "epoch {epoch} has another key");
            }
        }
        Err(e) => {
            assert!(bytes != fx.bytes, "the sealed keyring failed to open: {e}");
            check_names(&e, KEYRING_NAME);
        }
    }
    let other = MasterKey::from_bytes([0x43; 32]);
    assert!(Keyring::open(&bytes, &other, &KEYRING_STORE_ID, KEYRING_NAME).is_err(), "opened under another key");
    assert!(Keyring::open(&bytes, &master, &[0x5b; 16], KEYRING_NAME).is_err(), "opened for another store");
}

/// The seed inputs of `target`, named: valid and near-valid inputs for each branch
/// of the decoder. Deterministic, so the committed corpus can be rebuilt.
pub fn seed_corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    match target {
        "file_header" => file_header_seeds(),
        "envelope" => envelope_seeds(),
        "keyslot_file" => keyslot_seeds(),
        "keyring_file" => keyring_seeds(),
        _ => Vec::new(),
    }
}

fn with_sel(sel: u8, rest: &[u8]) -> Vec<u8> {
    let mut v = vec![sel];
    v.extend_from_slice(rest);
    v
}

fn op_xor(pos: u16, mask: u8) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&pos.to_le_bytes());
    v.push(mask);
    v
}

fn op_truncate(len: u16) -> Vec<u8> {
    let mut v = vec![1];
    v.extend_from_slice(&len.to_le_bytes());
    v
}

/// Damage seeds shared by the file targets: `sel` picks the fixture.
fn damage_seeds(sel: u8, len: u16, prefix: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut seeds = vec![("fixture_intact".to_string(), with_sel(sel, prefix))];
    for (name, pos) in [("flip_first", 0u16), ("flip_9", 9), ("flip_20", 20), ("flip_40", 40), ("flip_last", len - 1)] {
        let mut ops = prefix.to_vec();
        ops.extend_from_slice(&op_xor(pos, 0x01));
        seeds.push((format!("fixture_{name}"), with_sel(sel, &ops)));
        ops.push(4);
        seeds.push((format!("fixture_{name}_recrc"), with_sel(sel, &ops)));
    }
    let mut cut = prefix.to_vec();
    cut.extend_from_slice(&op_truncate(len / 2));
    seeds.push(("fixture_cut_half".to_string(), with_sel(sel, &cut)));
    let mut grown = prefix.to_vec();
    grown.extend_from_slice(&[2, 4, 0, 0, 0, 0, 4]);
    seeds.push(("fixture_grown_recrc".to_string(), with_sel(sel, &grown)));
    seeds
}

fn raw_header(version: u8, kind: u8, reserved: u8) -> Vec<u8> {
    let mut h = FILE_MAGIC.to_vec();
    h.extend_from_slice(&[version, kind, reserved, 0]);
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&42u64.to_le_bytes());
    h.extend_from_slice(&[0xa5; FILE_HEADER_LEN - 24]);
    h
}

fn file_header_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = vec![
        ("empty".to_string(), Vec::new()),
        ("raw_well_formed".to_string(), with_sel(2, &raw_header(FORMAT_VERSION, 2, 0))),
        ("raw_newer_version".to_string(), with_sel(2, &raw_header(FORMAT_VERSION + 1, 2, 0))),
        ("raw_version_zero".to_string(), with_sel(2, &raw_header(0, 2, 0))),
        ("raw_unknown_kind".to_string(), with_sel(2, &raw_header(FORMAT_VERSION, 9, 0))),
        ("raw_reserved_set".to_string(), with_sel(2, &raw_header(FORMAT_VERSION, 2, 1))),
        ("raw_short".to_string(), with_sel(2, raw_header(FORMAT_VERSION, 2, 0).get(..60).unwrap_or_default())),
    ];
    for (i, kind) in KINDS.iter().enumerate() {
        let k = u8::try_from(i).unwrap_or(0);
        seeds.push((format!("fixture_{kind:?}"), vec![1 | (k << 1) | (k << 3)]));
        seeds.push((format!("fixture_{kind:?}_as_other_kind"), vec![1 | (((k + 1) & 3) << 1) | (k << 3)]));
    }
    // Fixture Sst header (kind 1 in sel bits 3-4) expected as Sst (bits 1-2).
    let sst = 1 | (1 << 1) | (1 << 3);
    for (name, input) in damage_seeds(sst, FILE_HEADER_LEN as u16, &[]) {
        seeds.push((format!("sst_{name}"), input));
    }
    seeds.push(("sst_fixture_trailing_bytes".to_string(), vec![sst, 2, 8, 1, 2, 3, 4, 5, 6, 7, 8]));
    seeds
}

fn envelope_seeds() -> Vec<(String, Vec<u8>)> {
    let prefix = |sel: u8, offset: u64, kind: BlockKind| {
        let mut v = vec![sel];
        v.extend_from_slice(&offset.to_le_bytes());
        v.push((kind as u8).wrapping_sub(1));
        v
    };
    let mut seeds = vec![("empty".to_string(), Vec::new())];
    for (i, (offset, kind, _)) in envelope_blocks().into_iter().enumerate() {
        let sel = 1 | (u8::try_from(i).unwrap_or(0) << 1);
        seeds.push((format!("block{i}_sealed"), prefix(sel, offset, kind)));
        seeds.push((format!("block{i}_moved"), prefix(sel, offset.wrapping_add(1), kind)));
        let other_kind = if kind == BlockKind::SstData { BlockKind::SstIndex } else { BlockKind::SstData };
        seeds.push((format!("block{i}_relabelled"), prefix(sel, offset, other_kind)));
        let mut flipped = prefix(sel, offset, kind);
        flipped.extend_from_slice(&op_xor(3, 0x80));
        seeds.push((format!("block{i}_flipped"), flipped));
        let mut cut = prefix(sel, offset, kind);
        cut.extend_from_slice(&op_truncate(15));
        seeds.push((format!("block{i}_shorter_than_tag"), cut));
    }
    let mut raw = prefix(0, 84, BlockKind::SstData);
    raw.extend_from_slice(&[0x5a; 25]);
    seeds.push(("raw_unsealed".to_string(), raw));
    seeds
}

/// A `KEYSLOTS` file whose structure holds but whose wraps are filler: it decodes,
/// and no credential opens it.
fn raw_keyslots(params: Argon2Params, extra_slot: Option<(u8, usize)>) -> Vec<u8> {
    let mut out = KEYSLOTS_MAGIC.to_vec();
    out.push(KEYSLOTS_VERSION);
    out.extend_from_slice(&[0x5a; 16]);
    out.extend_from_slice(&[0x77; 16]);
    out.push(if extra_slot.is_some() { 2 } else { 1 });
    out.push(1);
    out.extend_from_slice(&u16::try_from(PASSPHRASE_BODY_LEN).unwrap_or(0).to_le_bytes());
    for w in [params.m_cost_kib, params.t_cost, params.p_cost] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&[0x33; PASSPHRASE_BODY_LEN - 12]);
    if let Some((kind, len)) = extra_slot {
        out.push(kind);
        out.extend_from_slice(&u16::try_from(len).unwrap_or(0).to_le_bytes());
        out.extend(std::iter::repeat_n(0x44, len));
    }
    append_crc(&mut out);
    out
}

fn keyslot_seeds() -> Vec<(String, Vec<u8>)> {
    let fixture_len = KEYSLOTS_HEADER_LEN + 2 * SLOT_FRAME_LEN + PASSPHRASE_BODY_LEN + RAW_KEY_BODY_LEN + CRC_LEN;
    let mut seeds = damage_seeds(1, u16::try_from(fixture_len).unwrap_or(0), &[]);
    // Byte 60 is inside the passphrase slot's parameters, 170 inside the raw-key slot.
    for (name, pos) in [("flip_params", 48u16), ("flip_salt", 60), ("flip_raw_slot", 170), ("flip_count", 41)] {
        let mut ops = op_xor(pos, 0x02);
        ops.push(4);
        seeds.push((format!("fixture_{name}_recrc"), with_sel(1, &ops)));
    }
    seeds.push(("empty".to_string(), Vec::new()));
    seeds.push(("raw_one_slot".to_string(), with_sel(0, &raw_keyslots(TINY_ARGON2, None))));
    seeds.push((
        "raw_huge_argon2".to_string(),
        with_sel(0, &raw_keyslots(Argon2Params { m_cost_kib: 4 << 20, t_cost: 100, p_cost: 64 }, None)),
    ));
    seeds.push((
        "raw_argon2_over_limit".to_string(),
        with_sel(0, &raw_keyslots(Argon2Params { m_cost_kib: (4 << 20) + 1, t_cost: 1, p_cost: 1 }, None)),
    ));
    seeds.push(("raw_unknown_slot_kind".to_string(), with_sel(0, &raw_keyslots(TINY_ARGON2, Some((9, 5))))));
    seeds.push(("raw_raw_key_slot_wrong_len".to_string(), with_sel(0, &raw_keyslots(TINY_ARGON2, Some((2, 5))))));
    seeds
}

fn keyring_seeds() -> Vec<(String, Vec<u8>)> {
    // Three epochs: header 37 + body (8 + 3 * 36) + tag 16 + crc 4.
    let len = KEYRING_HEADER_LEN + 8 + 3 * 36 + 16 + CRC_LEN;
    let mut seeds = damage_seeds(1, u16::try_from(len).unwrap_or(0), &[]);
    for (name, pos) in [("flip_store_id", 12u16), ("flip_nonce", 30), ("flip_body", 60)] {
        let mut ops = op_xor(pos, 0x04);
        ops.push(4);
        seeds.push((format!("fixture_{name}_recrc"), with_sel(1, &ops)));
    }
    let mut raw = KEYRING_MAGIC.to_vec();
    raw.push(KEYRING_VERSION);
    raw.extend_from_slice(&KEYRING_STORE_ID);
    raw.extend_from_slice(&[0; 12]);
    raw.extend_from_slice(&[0x99; 8 + 36 + 16]);
    append_crc(&mut raw);
    seeds.push(("raw_unsealed".to_string(), with_sel(0, &raw)));
    let mut newer = raw.clone();
    if let Some(v) = newer.get_mut(8) {
        *v = KEYRING_VERSION + 1;
    }
    seeds.push(("raw_newer_version".to_string(), with_sel(0, &newer)));
    seeds.push(("empty".to_string(), Vec::new()));
    seeds
}
