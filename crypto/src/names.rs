//! Names of the numbered files of a store directory, made and parsed in one
//! place: WAL segments `NNNNNN.wal`, tables `NNNNNN.sst` and manifests
//! `MANIFEST-NNNNNN` (at least six digits, zero-padded; `engine/FORMAT.md`,
//! "The store directory"). Every crate names and recognises store files
//! through these functions, so the layout cannot drift between them.

/// The name of WAL segment `number`.
pub fn wal_file(number: u64) -> String {
    format!("{number:06}.wal")
}

/// The name of table `number`.
pub fn table_file(number: u64) -> String {
    format!("{number:06}.sst")
}

/// The name of manifest `number`.
pub fn manifest_file(number: u64) -> String {
    format!("{MANIFEST_PREFIX}{number:06}")
}

const MANIFEST_PREFIX: &str = "MANIFEST-";

/// The number of WAL segment `name`, if it names one.
pub fn wal_number(name: &str) -> Option<u64> {
    numbered(name.strip_suffix(".wal")?)
}

/// The number of table `name`, if it names one.
pub fn table_number(name: &str) -> Option<u64> {
    numbered(name.strip_suffix(".sst")?)
}

/// The number of manifest `name`, if it names one.
pub fn manifest_number(name: &str) -> Option<u64> {
    numbered(name.strip_prefix(MANIFEST_PREFIX)?)
}

/// `digits` as a number, if it is a non-empty run of ASCII digits that fits.
fn numbered(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_not_store_files() {
        assert_eq!(wal_file(7), "000007.wal");
        assert_eq!(table_file(1_234_567), "1234567.sst");
        assert_eq!(manifest_file(12), "MANIFEST-000012");
        assert_eq!(wal_number(&wal_file(42)), Some(42));
        assert_eq!(table_number(&table_file(1_234_567)), Some(1_234_567));
        assert_eq!(manifest_number(&manifest_file(12)), Some(12));
        for other in ["000012.wal.tmp", ".sst", "x1.sst", "MANIFEST-", "MANIFEST-1a", "CURRENT", "99999999999999999999.wal"] {
            assert_eq!((wal_number(other), table_number(other), manifest_number(other)), (None, None, None), "{other}");
        }
        assert_eq!(table_number("000012.wal"), None);
    }
}
