//! The known-answer vectors of `testdata/hybrid_vectors.txt`, computed by
//! `testdata/hybrid_vectors.py` with independent implementations (Python's hashlib
//! and `cryptography`), for the tests of the combiner, X25519 use and recovery text.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

const VECTORS: &str = include_str!("../testdata/hybrid_vectors.txt");

/// The value of `name` as written in the file.
pub(crate) fn text(name: &str) -> &'static str {
    VECTORS
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(" = "))
        .unwrap_or_else(|| panic!("no vector {name} in hybrid_vectors.txt"))
}

/// The value of `name`, a hex string, as 32 bytes.
pub(crate) fn bytes32(name: &str) -> [u8; 32] {
    let hex = text(name);
    assert_eq!(hex.len(), 64, "{name}");
    std::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
}
