//! Where the CLI finds key material: `--key-file`, `--passphrase-file`, or the
//! `SYNAPSED_PASSPHRASE` environment variable, in that order. Secrets are held in
//! zeroizing buffers and never printed; error messages name the file, not its content.

use std::path::Path;

use anyhow::{bail, Context};
use synapsed_storage::Credential;
use zeroize::Zeroizing;

/// Environment variable holding the passphrase.
pub(crate) const PASSPHRASE_ENV: &str = "SYNAPSED_PASSPHRASE";

/// Largest key or passphrase file accepted; anything bigger is a wrong path, not a secret.
const MAX_SECRET_FILE_BYTES: u64 = 64 << 10;

/// The credential the flags and environment give, or the "no key material" error.
pub(crate) fn credential(passphrase_file: Option<&Path>, key_file: Option<&Path>) -> anyhow::Result<Credential> {
    if let Some(path) = key_file {
        let bytes = read_secret_file(path)?;
        let key = parse_key_file(&bytes).with_context(|| format!("key file {}", path.display()))?;
        return Ok(Credential::raw_key(*key));
    }
    if let Some(path) = passphrase_file {
        let mut bytes = read_secret_file(path)?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        if bytes.is_empty() {
            bail!("passphrase file {} is empty", path.display());
        }
        return Ok(Credential::passphrase(&*bytes));
    }
    match std::env::var_os(PASSPHRASE_ENV) {
        Some(value) => {
            let value = Zeroizing::new(value.into_encoded_bytes());
            if value.is_empty() {
                bail!("{PASSPHRASE_ENV} is set but empty");
            }
            Ok(Credential::passphrase(&*value))
        }
        None => bail!("no key material: set {PASSPHRASE_ENV} or pass --passphrase-file/--key-file"),
    }
}

fn read_secret_file(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let len = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
    if len > MAX_SECRET_FILE_BYTES {
        bail!("{} is {len} bytes, too large for a key or passphrase file", path.display());
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Zeroizing::new(bytes))
}

/// A key file holds 64 hex characters (surrounding whitespace allowed) or exactly
/// 32 raw bytes. Hex is tried first: 64 hex characters can never be 32 bytes long.
pub(crate) fn parse_key_file(bytes: &[u8]) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    let trimmed = bytes.trim_ascii();
    if trimmed.len() == 64 {
        for (out, pair) in key.iter_mut().zip(trimmed.chunks_exact(2)) {
            let (Some(hi), Some(lo)) =
                (pair.first().and_then(|c| hex_digit(*c)), pair.get(1).and_then(|c| hex_digit(*c)))
            else {
                bail!("expected 64 hex characters or exactly 32 raw bytes; found a non-hex character");
            };
            *out = (hi << 4) | lo;
        }
        return Ok(key);
    }
    if bytes.len() == 32 {
        key.copy_from_slice(bytes);
        return Ok(key);
    }
    bail!("expected 64 hex characters or exactly 32 raw bytes; found {} bytes", bytes.len())
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn hex_and_raw_key_files() {
        let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F\n";
        let key = parse_key_file(hex.as_bytes()).unwrap();
        assert_eq!(key[0], 0);
        assert_eq!(key[26], 0x1a);
        assert_eq!(key[31], 0x1f);
        let raw: Vec<u8> = (100..132).collect();
        assert_eq!(&*parse_key_file(&raw).unwrap(), raw.as_slice());
        // A 32-byte file of whitespace is raw bytes, not an empty hex string.
        assert_eq!(&*parse_key_file(&[b' '; 32]).unwrap(), &[b' '; 32]);
    }

    #[test]
    fn bad_key_files_are_refused() {
        assert!(parse_key_file(b"abcd").is_err());
        assert!(parse_key_file(&[b'g'; 64]).is_err());
        assert!(parse_key_file(&[7u8; 33]).is_err());
        assert!(parse_key_file(b"").is_err());
    }
}
