//! Read-only memory mappings of immutable files ([`super::Vfs::open_mapped`] of
//! [`super::StdVfs`]).
//!
//! A read copies the asked bytes out of the mapping into the caller's buffer,
//! exactly as `pread` would fill it: everything after (authentication,
//! decryption, decompression) runs on that private copy, so bytes changed in
//! the file under the mapping are caught by the block's tag like any other
//! damage, never used unchecked.
//!
//! The mapping covers the file's length at open and no more. The engine never
//! truncates or extends a table once it is written: it deletes whole files (an
//! unlinked file's pages stay readable through the mapping until it is
//! dropped), and secure delete overwrites a table in place at its full length
//! once its readers let go. A file shortened by something else while mapped is
//! outside that contract: reading a page past its new end raises `SIGBUS`,
//! which ends the process (there is no handler to turn it into an error). A
//! file shortened before it is opened is caught by the table's own checks (its
//! footer sits at the end it has now, and must authenticate) and reported as
//! corruption, with nothing mapped past the end.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions};

use super::RandomAccessFile;

/// A file read through a read-only mapping of its first `map.len()` bytes.
struct MappedFile {
    map: Mmap,
}

impl RandomAccessFile for MappedFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).ok();
        let src = start.and_then(|s| s.checked_add(buf.len()).and_then(|end| self.map.get(s..end)));
        match src {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the mapped file")),
        }
    }
    fn len(&self) -> u64 {
        self.map.len() as u64
    }
}

/// Maps `path` read-only over the length it has now; `None` for an empty file
/// or one too large to map on this target (the caller reads those with pread).
pub(super) fn open(path: &Path) -> io::Result<Option<Arc<dyn RandomAccessFile>>> {
    let file = File::open(path)?;
    let Ok(len) = usize::try_from(file.metadata()?.len()) else { return Ok(None) };
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: the mapping is read-only and spans exactly the `len` bytes the file
    // has now, so every slice of it `read_exact_at` takes lies inside the file
    // as opened. Mapped memory is undefined behaviour for Rust only if it
    // changes or disappears under a live reference: `read_exact_at` holds its
    // reference just for one copy into a buffer of its own, and the engine
    // never truncates or extends a table it has written (it deletes whole
    // files, whose pages the mapping keeps, and secure delete overwrites at
    // full length after the readers let go). Bytes changed by a write during a
    // copy land in that buffer, which the AEAD check then rejects; a file
    // shortened under the mapping raises SIGBUS (see the module documentation
    // and docs/design.md).
    let map = unsafe { MmapOptions::new().len(len).map(&file)? };
    Ok(Some(Arc::new(MappedFile { map })))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn reads_like_pread_within_the_mapped_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let f = open(&path).unwrap().unwrap();
        assert_eq!(f.len(), 10_000);
        let mut buf = [0u8; 100];
        f.read_exact_at(&mut buf, 4_090).unwrap();
        assert_eq!(&buf[..], &bytes[4_090..4_190]);
        f.read_exact_at(&mut buf, 9_900).unwrap();
        assert_eq!(&buf[..], &bytes[9_900..]);
        for offset in [9_901, 10_000, u64::MAX] {
            let e = f.read_exact_at(&mut buf, offset).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{offset}");
        }
        // Growing the file afterwards does not grow the mapping.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().set_len(20_000).unwrap();
        assert_eq!(f.len(), 10_000);
        assert!(f.read_exact_at(&mut buf, 9_950).is_err());
    }

    #[test]
    fn an_empty_file_is_not_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        std::fs::write(&path, b"").unwrap();
        assert!(open(&path).unwrap().is_none());
        assert!(open(&dir.path().join("missing")).is_err());
    }
}
