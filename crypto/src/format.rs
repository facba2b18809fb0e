//! On-disk constants of the crypto layer. See `crypto/FORMAT.md`, which documents
//! every layout named here byte by byte.

/// Magic at the start of every encrypted data file (WAL segment, SSTable, manifest, blob file).
pub(crate) const FILE_MAGIC: [u8; 8] = *b"SYNAPSED";
/// Format version written in every file header; readers refuse anything newer.
pub const FORMAT_VERSION: u8 = 1;
/// AES-256-GCM-SIV nonce length.
pub(crate) const NONCE_LEN: usize = 12;
/// AES-256-GCM-SIV tag length.
pub(crate) const AEAD_TAG_LEN: usize = 16;
/// Length of a wrapped 32-byte key: nonce + ciphertext + tag.
pub(crate) const WRAPPED_KEY_LEN: usize = NONCE_LEN + 32 + 16;
/// Bytes of the header before the wrapped key; they are the AAD of the key wrap.
pub(crate) const HEADER_PREFIX_LEN: usize = 8 + 1 + 1 + 2 + 4 + 8;
/// Total length of the file header that starts every encrypted data file.
pub const FILE_HEADER_LEN: usize = HEADER_PREFIX_LEN + WRAPPED_KEY_LEN;

const _: () = assert!(FILE_HEADER_LEN == 84);
const _: () = assert!(WRAPPED_KEY_LEN == 60);

// ---- KEYSLOTS ----------------------------------------------------------------

/// Magic of the `KEYSLOTS` file.
pub(crate) const KEYSLOTS_MAGIC: [u8; 8] = *b"SYNKSLOT";
/// Version 1 of the `KEYSLOTS` layout (no seal), still read and upgraded. It is
/// also the version byte bound into every slot's AAD, in both file versions, so
/// slots move from a version-1 file into a version-2 one unchanged.
pub(crate) const KEYSLOTS_VERSION: u8 = 1;
/// Version 2 of the `KEYSLOTS` layout: version 1 plus the seal (generation,
/// flags, keyring key) whose tag authenticates the whole file under MK.
pub(crate) const KEYSLOTS_SEALED_VERSION: u8 = 2;
/// Seal of a version-2 `KEYSLOTS`, before its sealed keys: generation u64,
/// flags u8, nonce.
pub(crate) const KEYSLOTS_SEAL_PREFIX_LEN: usize = 8 + 1 + NONCE_LEN;
/// Flag: a next keyring key follows the current one (a key-file change was under way).
pub(crate) const KEYSLOTS_FLAG_NEXT: u8 = 1;
/// Flag: the `KEYRING` may still be version 1 (an upgrade was under way).
pub(crate) const KEYSLOTS_FLAG_LEGACY_KEYRING: u8 = 2;
/// Largest seal: prefix, two keyring keys, tag.
pub(crate) const KEYSLOTS_SEAL_MAX_LEN: usize = KEYSLOTS_SEAL_PREFIX_LEN + 2 * 32 + AEAD_TAG_LEN;
/// Length of the store id.
pub(crate) const STORE_ID_LEN: usize = 16;
/// Length of the key-check value (a prefix of HKDF(MK, "synapsed-storage kcv")).
pub(crate) const KCV_LEN: usize = 16;
/// magic, version, store id, kcv, slot count.
pub(crate) const KEYSLOTS_HEADER_LEN: usize = 8 + 1 + STORE_ID_LEN + KCV_LEN + 1;
/// Offset of the slot-count byte.
pub(crate) const KEYSLOTS_COUNT_OFFSET: usize = KEYSLOTS_HEADER_LEN - 1;
/// Most slots a `KEYSLOTS` file may hold.
pub(crate) const MAX_SLOTS: usize = 16;
/// Per-slot framing: kind u8, body length u16.
pub(crate) const SLOT_FRAME_LEN: usize = 1 + 2;
/// Length of a wrapped master key inside a slot: ciphertext(32) + tag(16).
pub(crate) const SLOT_WRAPPED_MK_LEN: usize = 32 + AEAD_TAG_LEN;
/// Length of the salt of passphrase and raw-key slots.
pub(crate) const SLOT_SALT_LEN: usize = 16;
/// Passphrase slot body before the nonce: m_cost u32, t_cost u32, p_cost u32, salt.
pub(crate) const PASSPHRASE_PARAMS_LEN: usize = 4 + 4 + 4 + SLOT_SALT_LEN;
/// Passphrase slot body: params and salt, nonce, wrapped master key.
pub(crate) const PASSPHRASE_BODY_LEN: usize = PASSPHRASE_PARAMS_LEN + NONCE_LEN + SLOT_WRAPPED_MK_LEN;
/// Raw-key slot body before the nonce: salt.
pub(crate) const RAW_KEY_PARAMS_LEN: usize = SLOT_SALT_LEN;
/// Raw-key slot body: salt, nonce, wrapped master key.
pub(crate) const RAW_KEY_BODY_LEN: usize = RAW_KEY_PARAMS_LEN + NONCE_LEN + SLOT_WRAPPED_MK_LEN;
/// Trailing crc32 of every key file.
pub(crate) const CRC_LEN: usize = 4;
/// Largest Argon2 memory cost a slot may be written with, and so the largest
/// accepted from disk: 1 GiB (four times LUKS2's default ceiling). A tampered
/// `KEYSLOTS` asking for more is corruption before anything is allocated.
pub(crate) const MAX_ARGON2_M_COST_KIB: u32 = 1024 * 1024;
/// Largest Argon2 iteration count written or accepted.
pub(crate) const MAX_ARGON2_T_COST: u32 = 32;
/// Largest Argon2 parallelism written or accepted.
pub(crate) const MAX_ARGON2_P_COST: u32 = 16;

/// Largest `KEYSLOTS` file the format allows (16 slots of the largest body);
/// a reader refuses anything longer before allocating.
pub(crate) const MAX_KEYSLOTS_FILE_LEN: usize =
    KEYSLOTS_HEADER_LEN + MAX_SLOTS * (SLOT_FRAME_LEN + u16::MAX as usize) + KEYSLOTS_SEAL_MAX_LEN + CRC_LEN;

const _: () = assert!(KEYSLOTS_HEADER_LEN == 42);
const _: () = assert!(PASSPHRASE_BODY_LEN == 88);
const _: () = assert!(RAW_KEY_BODY_LEN == 76);
const _: () = assert!(MAX_SLOTS <= u8::MAX as usize);
// Any slot body the format can hold fits the u16 length field.
const _: () = assert!(PASSPHRASE_BODY_LEN <= u16::MAX as usize);
const _: () = assert!(RAW_KEY_BODY_LEN <= u16::MAX as usize);

// ---- KEYRING -----------------------------------------------------------------

/// Magic of the `KEYRING` file.
pub(crate) const KEYRING_MAGIC: [u8; 8] = *b"SYNKRING";
/// Version 1 of the `KEYRING` layout (sealed under a key derived from MK), still
/// read and upgraded.
pub(crate) const KEYRING_VERSION: u8 = 1;
/// Version 2: sealed under a key derived from the keyring key kept in
/// `KEYSLOTS`, with a generation in its header and an integrity root in its body.
pub(crate) const KEYRING_SEALED_VERSION: u8 = 2;
/// Version-2 header: magic, version, store id, generation u64, nonce.
pub(crate) const KEYRING_V2_HEADER_LEN: usize = 8 + 1 + STORE_ID_LEN + 8 + NONCE_LEN;
/// Version-2 body before the entries: integrity root, current epoch u32, count u32.
pub(crate) const KEYRING_V2_BODY_PREFIX_LEN: usize = 32 + 4 + 4;
/// magic, version, store id, nonce: the AAD of the sealed body.
pub(crate) const KEYRING_HEADER_LEN: usize = 8 + 1 + STORE_ID_LEN + NONCE_LEN;
/// Body before the entries: current epoch u32, count u32.
pub(crate) const KEYRING_BODY_PREFIX_LEN: usize = 4 + 4;
/// One keyring entry: epoch u32, key [32].
pub(crate) const KEYRING_ENTRY_LEN: usize = 4 + 32;
/// Most epochs a keyring may hold (old epochs are destroyed once no file uses them).
pub(crate) const MAX_EPOCHS: usize = 4096;
/// Smallest possible `KEYRING` file: header, empty body, tag, crc.
pub(crate) const KEYRING_MIN_LEN: usize = KEYRING_HEADER_LEN + KEYRING_BODY_PREFIX_LEN + AEAD_TAG_LEN + CRC_LEN;

/// Largest `KEYRING` file the format allows; a reader refuses anything longer before allocating.
pub(crate) const MAX_KEYRING_FILE_LEN: usize = KEYRING_V2_HEADER_LEN
    + KEYRING_V2_BODY_PREFIX_LEN
    + AEAD_TAG_LEN
    + CRC_LEN
    + MAX_EPOCHS * KEYRING_ENTRY_LEN;
const _: () = assert!(KEYRING_V2_HEADER_LEN == 45);

const _: () = assert!(KEYRING_HEADER_LEN == 37);
const _: () = assert!(KEYRING_ENTRY_LEN == 36);
// The largest keyring body stays far below AES-GCM-SIV's message limit and u32.
const _: () = assert!(KEYRING_BODY_PREFIX_LEN + MAX_EPOCHS * KEYRING_ENTRY_LEN < (1 << 20));

// ---- Hybrid (X25519 + ML-KEM-768) keys and keyslots ----------------------------

/// Length of an X25519 public key, secret key and shared secret.
pub(crate) const X25519_LEN: usize = 32;
/// ML-KEM-768 encapsulation (public) key length (FIPS 203).
pub(crate) const MLKEM_PUBLIC_KEY_LEN: usize = 1184;
/// ML-KEM-768 decapsulation (secret) key length, as PQClean lays it out:
/// `s (1152) || public key (1184) || SHA3-256(public key) (32) || z (32)`.
pub(crate) const MLKEM_SECRET_KEY_LEN: usize = 2400;
/// Offset of the public key inside the ML-KEM-768 secret key.
pub(crate) const MLKEM_SK_PUBLIC_OFFSET: usize = 1152;
/// Offset of SHA3-256(public key) inside the ML-KEM-768 secret key.
pub(crate) const MLKEM_SK_HASH_OFFSET: usize = MLKEM_SK_PUBLIC_OFFSET + MLKEM_PUBLIC_KEY_LEN;
/// ML-KEM-768 ciphertext length.
pub(crate) const MLKEM_CIPHERTEXT_LEN: usize = 1088;
/// Length of a public-key fingerprint (SHA3-256 of the encoded public key).
pub(crate) const FINGERPRINT_LEN: usize = 32;

/// Magic of an encoded [`crate::HybridPublicKey`].
pub(crate) const HYBRID_PUBLIC_MAGIC: [u8; 8] = *b"SYNHYBPK";
/// Magic of an encoded [`crate::HybridSecretKey`].
pub(crate) const HYBRID_SECRET_MAGIC: [u8; 8] = *b"SYNHYBSK";
/// Version of both hybrid key encodings.
pub(crate) const HYBRID_KEY_VERSION: u8 = 1;
/// Encoded public key: magic, version, X25519 public key, ML-KEM-768 public key.
pub(crate) const HYBRID_PUBLIC_KEY_LEN: usize = 8 + 1 + X25519_LEN + MLKEM_PUBLIC_KEY_LEN;
/// Encoded secret key: magic, version, X25519 secret key, ML-KEM-768 secret key.
pub(crate) const HYBRID_SECRET_KEY_LEN: usize = 8 + 1 + X25519_LEN + MLKEM_SECRET_KEY_LEN;

/// Hybrid slot variant: the recipient (another device) holds the whole secret key.
pub(crate) const HYBRID_VARIANT_DEVICE: u8 = 1;
/// Hybrid slot variant: a recovery slot, which carries its ML-KEM secret key sealed
/// under a key derived from the recovery secret.
pub(crate) const HYBRID_VARIANT_RECOVERY: u8 = 2;
/// Hybrid slot body before the recovery section: variant, fingerprint, X25519
/// ephemeral public key, ML-KEM-768 ciphertext.
pub(crate) const HYBRID_SLOT_PREFIX_LEN: usize = 1 + FINGERPRINT_LEN + X25519_LEN + MLKEM_CIPHERTEXT_LEN;
/// Recovery section: nonce and the sealed ML-KEM-768 secret key (with its tag).
pub(crate) const RECOVERY_SECTION_LEN: usize = NONCE_LEN + MLKEM_SECRET_KEY_LEN + AEAD_TAG_LEN;
/// Body of a device slot: prefix, nonce, wrapped master key.
pub(crate) const HYBRID_DEVICE_BODY_LEN: usize = HYBRID_SLOT_PREFIX_LEN + NONCE_LEN + SLOT_WRAPPED_MK_LEN;
/// Body of a recovery slot: prefix, recovery section, nonce, wrapped master key.
pub(crate) const HYBRID_RECOVERY_BODY_LEN: usize = HYBRID_DEVICE_BODY_LEN + RECOVERY_SECTION_LEN;

const _: () = assert!(MLKEM_PUBLIC_KEY_LEN == pqcrypto_mlkem::mlkem768::public_key_bytes());
const _: () = assert!(MLKEM_SECRET_KEY_LEN == pqcrypto_mlkem::mlkem768::secret_key_bytes());
const _: () = assert!(MLKEM_CIPHERTEXT_LEN == pqcrypto_mlkem::mlkem768::ciphertext_bytes());
const _: () = assert!(32 == pqcrypto_mlkem::mlkem768::shared_secret_bytes());
const _: () = assert!(MLKEM_SK_HASH_OFFSET + 32 + 32 == MLKEM_SECRET_KEY_LEN);
const _: () = assert!(HYBRID_PUBLIC_KEY_LEN == 1225);
const _: () = assert!(HYBRID_SLOT_PREFIX_LEN == 1153);
const _: () = assert!(HYBRID_DEVICE_BODY_LEN == 1213);
const _: () = assert!(HYBRID_RECOVERY_BODY_LEN == 3641);
const _: () = assert!(HYBRID_RECOVERY_BODY_LEN <= u16::MAX as usize);

// ---- Recovery keys and shares (text for people) ----------------------------------

/// Prefix of a recovery key's text form; the digit is the encoding's version.
pub(crate) const RECOVERY_KEY_PREFIX: &str = "SYN1";
/// Prefix of a recovery share's text form.
pub(crate) const RECOVERY_SHARE_PREFIX: &str = "SYS1";
/// Checksum bytes appended to the payload before base32 encoding.
pub(crate) const TEXT_CHECKSUM_LEN: usize = 3;
/// Recovery key payload: secret (32), checksum (3) = 35 bytes = 56 base32 characters.
pub(crate) const RECOVERY_KEY_PAYLOAD_LEN: usize = 32 + TEXT_CHECKSUM_LEN;
/// Share payload: split id (3), threshold (1), x (1), y (32), checksum (3) = 40 bytes.
pub(crate) const RECOVERY_SHARE_PAYLOAD_LEN: usize = 3 + 1 + 1 + 32 + TEXT_CHECKSUM_LEN;
/// Characters per dash-separated group in the text forms.
pub(crate) const TEXT_GROUP_LEN: usize = 4;

// Both payloads are whole multiples of 5 bytes, so base32 needs no padding bits.
const _: () = assert!(RECOVERY_KEY_PAYLOAD_LEN / 5 * 5 == RECOVERY_KEY_PAYLOAD_LEN);
const _: () = assert!(RECOVERY_SHARE_PAYLOAD_LEN / 5 * 5 == RECOVERY_SHARE_PAYLOAD_LEN);
