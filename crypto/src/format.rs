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
/// Version of the `KEYSLOTS` layout.
pub(crate) const KEYSLOTS_VERSION: u8 = 1;
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
/// Largest Argon2 memory cost accepted from disk or from a caller: 4 GiB.
pub(crate) const MAX_ARGON2_M_COST_KIB: u32 = 4 * 1024 * 1024;
/// Largest Argon2 iteration count accepted.
pub(crate) const MAX_ARGON2_T_COST: u32 = 100;
/// Largest Argon2 parallelism accepted.
pub(crate) const MAX_ARGON2_P_COST: u32 = 64;

/// Largest `KEYSLOTS` file the format allows (16 slots of the largest body);
/// a reader refuses anything longer before allocating.
pub(crate) const MAX_KEYSLOTS_FILE_LEN: usize =
    KEYSLOTS_HEADER_LEN + MAX_SLOTS * (SLOT_FRAME_LEN + u16::MAX as usize) + CRC_LEN;

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
/// Version of the `KEYRING` layout.
pub(crate) const KEYRING_VERSION: u8 = 1;
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
pub(crate) const MAX_KEYRING_FILE_LEN: usize = KEYRING_MIN_LEN + MAX_EPOCHS * KEYRING_ENTRY_LEN;

const _: () = assert!(KEYRING_HEADER_LEN == 37);
const _: () = assert!(KEYRING_ENTRY_LEN == 36);
// The largest keyring body stays far below AES-GCM-SIV's message limit and u32.
const _: () = assert!(KEYRING_BODY_PREFIX_LEN + MAX_EPOCHS * KEYRING_ENTRY_LEN < (1 << 20));
