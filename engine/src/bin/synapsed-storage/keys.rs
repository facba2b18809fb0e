//! Where the CLI finds key material: `--key-file`, `--passphrase-file`, or the
//! `SYNAPSED_PASSPHRASE` environment variable, in that order. Secrets are held in
//! zeroizing buffers and never printed; error messages name the file, not its content.
//! The passphrase variables are moved out of the environment as the process
//! starts, so no child process inherits them; a key or passphrase file that its
//! group or others may read or write is used with a warning.

use std::path::Path;

use anyhow::{bail, Context};
use synapsed_storage::Credential;
use zeroize::Zeroizing;

/// Environment variable holding the passphrase.
pub(crate) const PASSPHRASE_ENV: &str = "SYNAPSED_PASSPHRASE";

/// The passphrase variables as the process found them, taken out of its environment.
struct EnvSecrets {
    passphrase: Option<Zeroizing<Vec<u8>>>,
    new_passphrase: Option<Zeroizing<Vec<u8>>>,
}

static ENV_SECRETS: std::sync::OnceLock<EnvSecrets> = std::sync::OnceLock::new();

/// Reads `SYNAPSED_PASSPHRASE` and `SYNAPSED_NEW_PASSPHRASE` and removes them
/// from the environment. Called first thing in `main`, while the process has one
/// thread (changing the environment is not thread-safe): from then on no child
/// process inherits a passphrase.
pub(crate) fn take_env_secrets() {
    ENV_SECRETS.get_or_init(|| {
        let take = |name: &str| {
            let value = std::env::var_os(name).map(|v| Zeroizing::new(v.into_encoded_bytes()));
            std::env::remove_var(name);
            value
        };
        EnvSecrets { passphrase: take(PASSPHRASE_ENV), new_passphrase: take(crate::keycmd::NEW_PASSPHRASE_ENV) }
    });
}

fn env_secrets() -> &'static EnvSecrets {
    take_env_secrets();
    ENV_SECRETS.get_or_init(|| EnvSecrets { passphrase: None, new_passphrase: None })
}

/// `SYNAPSED_PASSPHRASE` as the process started with it.
pub(crate) fn env_passphrase() -> Option<&'static [u8]> {
    env_secrets().passphrase.as_deref().map(Vec::as_slice)
}

/// `SYNAPSED_NEW_PASSPHRASE` as the process started with it.
pub(crate) fn env_new_passphrase() -> Option<&'static [u8]> {
    env_secrets().new_passphrase.as_deref().map(Vec::as_slice)
}

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
    match env_passphrase() {
        Some(value) => {
            if value.is_empty() {
                bail!("{PASSPHRASE_ENV} is set but empty");
            }
            Ok(Credential::passphrase(value))
        }
        None => bail!("no key material: set {PASSPHRASE_ENV} or pass --passphrase-file/--key-file"),
    }
}

/// Reads a key, passphrase or recovery-key file (at most 64 KiB). Warns on
/// stderr when its group or others may read or write it: the secret is used all
/// the same (refusing would lock a user out of their store), but they should know.
pub(crate) fn read_secret_file(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let len = meta.len();
    if len > MAX_SECRET_FILE_BYTES {
        bail!("{} is {len} bytes, too large for a key or passphrase file", path.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: {} holds a secret but its group or others may access it (mode {mode:03o}); chmod 600 it",
                path.display()
            );
        }
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

    /// The passphrase variables are gone from the environment once read: a child
    /// process (here `env`, which prints what it inherited) does not see them.
    #[test]
    fn passphrase_variables_do_not_reach_child_processes() {
        std::env::set_var(PASSPHRASE_ENV, "first secret");
        std::env::set_var(crate::keycmd::NEW_PASSPHRASE_ENV, "second secret");
        take_env_secrets();
        assert_eq!(env_passphrase(), Some(&b"first secret"[..]));
        assert_eq!(env_new_passphrase(), Some(&b"second secret"[..]));
        let child = std::process::Command::new("env").output().unwrap();
        assert!(child.status.success());
        let seen = String::from_utf8_lossy(&child.stdout);
        assert!(!seen.contains("SYNAPSED_"), "a child inherited: {seen}");
        assert!(!seen.contains("secret"), "a child inherited: {seen}");
    }

    #[test]
    fn bad_key_files_are_refused() {
        assert!(parse_key_file(b"abcd").is_err());
        assert!(parse_key_file(&[b'g'; 64]).is_err());
        assert!(parse_key_file(&[7u8; 33]).is_err());
        assert!(parse_key_file(b"").is_err());
    }
}
