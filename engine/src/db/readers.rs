//! Reader registration across processes, so that overwriting obsolete files
//! (secure deletion) never rewrites a file a read-only process still reads.
//!
//! A read-only open registers in `DIR/readers/` before it reads anything: it
//! creates `NAME.lock` and holds an exclusive `flock` on it for as long as the
//! handle lives (`NAME` is `<pid>-<counter>`, unique among live processes). While
//! `NAME.pins` is absent the reader may read any file (it is opening or
//! refreshing: manifest, logs, tables); once its version is loaded and every
//! table of it is open, it writes `NAME.pins`, the table numbers it holds
//! (format below), by an atomic rename. A table the writer only unlinks stays
//! readable through the reader's open descriptor; only an overwrite harms it.
//!
//! The writer, before overwriting obsolete files (a nonzero
//! `Options::secure_delete_passes`, or a secure deletion running), reads the
//! registrations: a lock file it
//! can lock itself belongs to a dead reader and is removed; a live reader without
//! pins holds back every obsolete file, one with pins holds back those tables.
//! Files held back stay in place and are removed by a later pass. A key rotation
//! (and so a secure deletion) waits at most `Options::reader_wait_ms` for them;
//! after that it evicts the readers still holding them (removes their
//! registration) and overwrites. An evicted reader that then reads an
//! overwritten block fails its authentication tag, finds its registration gone
//! and returns [`Error::Retired`](crate::Error::Retired): retryable, never wrong
//! data. See docs/design.md, "Readers beside a writer".
//!
//! `NAME.pins` (little-endian): magic `SYNRPINS` (8 bytes), version `1` (1 byte),
//! count (u32), then `count` table numbers (u64 each). It holds no user data
//! (table numbers are in the file names already) and is not encrypted. A file
//! that does not parse counts as "no pins" (holds back everything).
//!
//! Where `readers/` cannot be created (a read-only medium), a reader goes
//! unregistered: no writer can be working there either.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crypto::vfs::{LockError, LockGuard, Vfs};
use parking_lot::Mutex;

/// The directory of reader registrations inside the store directory.
pub(crate) const READERS_DIR: &str = "readers";
const PINS_MAGIC: &[u8; 8] = b"SYNRPINS";
const PINS_VERSION: u8 = 1;
const PINS_HEADER_LEN: usize = 8 + 1 + 4;
/// Most table numbers a pins file may list (a read-only handle holds at most
/// `max_open_files` tables, itself at most 1,000,000).
const MAX_PINNED_TABLES: usize = 1_000_000;
/// Attempts at a registration name (one is lost only to a writer that removed
/// a lock file in the instant between its creation and its lock).
const REGISTER_ATTEMPTS: u32 = 8;

/// Registrations held by handles of this process: known to be alive without
/// taking their lock (which a process cannot test on its own `flock`s cheaply).
static LIVE_HERE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A read-only handle's registration; removed on drop.
pub(crate) struct ReaderRegistration {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    name: String,
    _lock: Box<dyn LockGuard>,
}

impl std::fmt::Debug for ReaderRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderRegistration").field("name", &self.name).finish_non_exhaustive()
    }
}

fn lock_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.lock"))
}

fn pins_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.pins"))
}

impl ReaderRegistration {
    /// Registers a reader of the store in `store` (no pins: it may read any
    /// file). `None` where no registration can be made.
    pub(crate) fn register(vfs: &Arc<dyn Vfs>, store: &Path) -> Option<ReaderRegistration> {
        let dir = store.join(READERS_DIR);
        vfs.create_dir_all(&dir).ok()?;
        for _ in 0..REGISTER_ATTEMPTS {
            let name = format!("{}-{}", std::process::id(), NEXT_ID.fetch_add(1, Ordering::Relaxed));
            LIVE_HERE.lock().insert(name.clone());
            let path = lock_path(&dir, &name);
            let registered = match vfs.lock(&path) {
                // A writer that locked the file in the instant before, taking it
                // for a dead reader's, removed it: this lock is on no name.
                Ok(guard) if vfs.exists(&path) => Some(guard),
                Ok(_) | Err(LockError::Held { .. }) => None,
                Err(LockError::Io(_)) => {
                    LIVE_HERE.lock().remove(&name);
                    return None;
                }
            };
            match registered {
                Some(guard) => {
                    // A dead namesake's pins (same pid, reused) must not speak for this reader.
                    let _ = vfs.remove_file(&pins_path(&dir, &name));
                    return Some(ReaderRegistration { vfs: vfs.clone(), dir, name, _lock: guard });
                }
                None => {
                    LIVE_HERE.lock().remove(&name);
                }
            }
        }
        None
    }

    /// From now on this reader may read any file (it is about to refresh).
    pub(crate) fn pin_all(&self) {
        let _ = self.vfs.remove_file(&pins_path(&self.dir, &self.name));
    }

    /// From now on this reader reads only `tables` (held open).
    pub(crate) fn pin(&self, tables: &HashSet<u64>) {
        let mut numbers: Vec<u64> = tables.iter().copied().collect();
        numbers.sort_unstable();
        let bytes = encode_pins(&numbers);
        let tmp = self.dir.join(format!("{}.pins.tmp", self.name));
        let written = self.vfs.create(&tmp).and_then(|f| f.append(&bytes)).and_then(|()| {
            self.vfs.rename(&tmp, &pins_path(&self.dir, &self.name))
        });
        if written.is_err() {
            // Without pins the reader holds back every file: safe, only slower.
            let _ = self.vfs.remove_file(&tmp);
        }
    }

    /// Names the registration, for messages.
    pub(crate) fn describe(&self) -> String {
        format!("the files of this handle (registered as {READERS_DIR}/{}.lock)", self.name)
    }

    /// Whether a writer evicted this reader after waiting for it too long.
    pub(crate) fn is_evicted(&self) -> bool {
        !self.vfs.exists(&lock_path(&self.dir, &self.name))
    }
}

impl Drop for ReaderRegistration {
    fn drop(&mut self) {
        let _ = self.vfs.remove_file(&pins_path(&self.dir, &self.name));
        let _ = self.vfs.remove_file(&lock_path(&self.dir, &self.name));
        LIVE_HERE.lock().remove(&self.name);
    }
}

fn encode_pins(numbers: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PINS_HEADER_LEN + 8 * numbers.len());
    out.extend_from_slice(PINS_MAGIC);
    out.push(PINS_VERSION);
    out.extend_from_slice(&u32::try_from(numbers.len()).unwrap_or(u32::MAX).to_le_bytes());
    for n in numbers {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out
}

/// The table numbers of a pins file; `None` if it does not parse.
fn decode_pins(bytes: &[u8]) -> Option<HashSet<u64>> {
    let rest = bytes.strip_prefix(PINS_MAGIC.as_slice())?;
    let (&version, rest) = rest.split_first()?;
    if version != PINS_VERSION {
        return None;
    }
    let (count, rest) = rest.split_first_chunk::<4>()?;
    let count = usize::try_from(u32::from_le_bytes(*count)).ok()?;
    if count > MAX_PINNED_TABLES || rest.len() != count.checked_mul(8)? {
        return None;
    }
    Some(rest.chunks_exact(8).filter_map(|c| c.try_into().ok().map(u64::from_le_bytes)).collect())
}

/// What the live readers of a store hold.
#[derive(Debug, Default)]
pub(crate) struct ReaderPins {
    /// Some live reader has no pins (opening or refreshing): it may read any file.
    pub(crate) all: bool,
    /// Tables the other live readers hold.
    pub(crate) tables: HashSet<u64>,
    /// (registration name, its tables or `None` for all) of each live reader.
    pub(crate) readers: Vec<(String, Option<HashSet<u64>>)>,
}

/// Reads the registrations of the store in `store`, removing dead readers'.
pub(crate) fn reader_pins(vfs: &dyn Vfs, store: &Path) -> ReaderPins {
    let dir = store.join(READERS_DIR);
    let mut pins = ReaderPins::default();
    let Ok(names) = vfs.list_dir(&dir) else { return pins };
    for name in names.iter().filter_map(|n| n.strip_suffix(".lock")) {
        let path = lock_path(&dir, name);
        let alive = LIVE_HERE.lock().contains(name)
            || match vfs.lock(&path) {
                Ok(_guard) => {
                    // Nobody holds it: its reader is gone.
                    let _ = vfs.remove_file(&pins_path(&dir, name));
                    let _ = vfs.remove_file(&dir.join(format!("{name}.pins.tmp")));
                    let _ = vfs.remove_file(&path);
                    false
                }
                Err(LockError::Held { .. }) => true,
                Err(LockError::Io(e)) => e.kind() != std::io::ErrorKind::NotFound,
            };
        if !alive {
            continue;
        }
        let held = vfs.read_all(&pins_path(&dir, name)).ok().and_then(|b| decode_pins(&b));
        match &held {
            Some(tables) => pins.tables.extend(tables.iter().copied()),
            None => pins.all = true,
        }
        pins.readers.push((name.to_string(), held));
    }
    pins
}

/// Evicts reader `name`: removes its registration, so it no longer holds
/// anything back and learns, at its next failed read, why.
pub(crate) fn evict(vfs: &dyn Vfs, store: &Path, name: &str) {
    let dir = store.join(READERS_DIR);
    let _ = vfs.remove_file(&pins_path(&dir, name));
    let _ = vfs.remove_file(&lock_path(&dir, name));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn pins_round_trip_and_refuse_bad_bytes() {
        let bytes = encode_pins(&[3, 9]);
        assert_eq!(bytes.len(), PINS_HEADER_LEN + 16);
        // The worked example of engine/FORMAT.md, "Reader registrations".
        let doc = "53 59 4e 52 50 49 4e 53 01 02 00 00 00 03 00 00 00 00 00 00 00 09 00 00 00 00 00 00 00";
        let doc: Vec<u8> = doc.split(' ').map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
        assert_eq!(bytes, doc);
        assert_eq!(decode_pins(&bytes), Some([3, 9].into_iter().collect()));
        assert_eq!(decode_pins(&bytes[..bytes.len() - 1]), None);
        let mut other = bytes.clone();
        other[8] = 2;
        assert_eq!(decode_pins(&other), None);
        assert_eq!(decode_pins(b""), None);
    }
}
