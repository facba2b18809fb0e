//! How keys and values are written on the command line and printed: as UTF-8
//! text by default, as hex digits with `--hex` (for bytes that are not UTF-8),
//! and as JSON objects for `scan --json`.

use std::borrow::Cow;

use anyhow::anyhow;

/// The `--hex` setting of a command.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KvText {
    pub(crate) hex: bool,
}

impl KvText {
    /// The bytes an argument names: its UTF-8 bytes, or with `--hex` the bytes
    /// its hex digits spell. `what` names the argument in an error.
    pub(crate) fn parse(self, what: &str, text: &str) -> anyhow::Result<Vec<u8>> {
        if self.hex {
            hex_decode(text).map_err(|reason| anyhow!("{what} is not hex ({reason}): {text:?}"))
        } else {
            Ok(text.as_bytes().to_vec())
        }
    }

    /// `bytes` as printed: raw, or with `--hex` lowercase hex digits.
    pub(crate) fn show(self, bytes: &[u8]) -> Cow<'_, [u8]> {
        if self.hex {
            Cow::Owned(hex_encode(bytes).into_bytes())
        } else {
            Cow::Borrowed(bytes)
        }
    }

    /// One `scan --json` line: `{"key": ..., "value": ...}` with strings when
    /// the bytes are UTF-8 and `--hex` is off, else `key_hex` / `value_hex`
    /// fields holding hex digits, so no byte is lost or mangled.
    pub(crate) fn json_pair(self, key: &[u8], value: &[u8]) -> String {
        let mut object = serde_json::Map::new();
        for (name, bytes) in [("key", key), ("value", value)] {
            match std::str::from_utf8(bytes) {
                Ok(text) if !self.hex => object.insert(name.to_string(), text.into()),
                _ => object.insert(format!("{name}_hex"), hex_encode(bytes).into()),
            };
        }
        serde_json::Value::Object(object).to_string()
    }
}

/// Lowercase hex digits of `bytes`.
pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// The bytes an even number of hex digits (either case) spell.
pub(crate) fn hex_decode(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 {
        return Err("an odd number of digits".into());
    }
    let value = |c: u8| -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("{:?} is not a hex digit", char::from(c))),
        }
    };
    digits.chunks_exact(2).map(|pair| Ok(value(pair[0])? << 4 | value(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hex_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(hex_decode(&hex_encode(&all)).unwrap(), all);
        assert_eq!(hex_decode("FF00aB").unwrap(), vec![0xff, 0, 0xab]);
        assert!(hex_decode("abc").is_err());
        assert!(hex_decode("zz").is_err());
    }

    #[test]
    fn json_pairs_keep_every_byte() {
        let text = KvText { hex: false };
        assert_eq!(text.json_pair(b"k\"1", b"v"), r#"{"key":"k\"1","value":"v"}"#);
        assert_eq!(text.json_pair(b"k", &[0xff, 0]), r#"{"key":"k","value_hex":"ff00"}"#);
        assert_eq!(KvText { hex: true }.json_pair(b"k", b"v"), r#"{"key_hex":"6b","value_hex":"76"}"#);
    }
}
