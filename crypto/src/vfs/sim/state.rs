//! The shared state of a [`super::SimVfs`]: files as inodes with live and durable
//! bytes, the live and durable directory entries, the lock table and the faults.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rand::rngs::StdRng;

/// `EIO`: what an injected write or sync failure returns.
pub(super) const EIO: i32 = 5;
/// `ENOSPC`: what an append beyond the capacity returns.
pub(super) const ENOSPC: i32 = 28;

/// One file's contents: what the process sees, and what a power loss would leave.
#[derive(Default)]
pub(super) struct Node {
    pub(super) live: Vec<u8>,
    pub(super) durable: Vec<u8>,
}

impl Node {
    /// The span `[start, end)` of live bytes written since the last sync that a
    /// torn write may partly keep, if every such write went past the durable end
    /// or over durable zeros (appends, also into preallocated space): from the
    /// first byte that differs from the durable bytes to the last one, or to the
    /// live end if the file grew. `None` if nothing changed, the file shrank, or a
    /// durable non-zero byte was overwritten (an in-place rewrite is not torn).
    pub(super) fn unsynced_tail(&self) -> Option<(usize, usize)> {
        let (live, durable) = (&self.live, &self.durable);
        if live.len() < durable.len() {
            return None;
        }
        let start = live.iter().zip(durable).position(|(a, b)| a != b).unwrap_or(durable.len());
        if !durable.get(start..).unwrap_or_default().iter().all(|b| *b == 0) {
            return None;
        }
        let end = if live.len() > durable.len() {
            live.len()
        } else {
            live.iter().zip(durable).rposition(|(a, b)| a != b).map_or(start, |i| i + 1)
        };
        (end > start).then_some((start, end))
    }
}

pub(super) type NodeRef = Arc<Mutex<Node>>;

/// The injected faults; all off by default.
#[derive(Debug, Default)]
pub(super) struct Faults {
    /// `Some(n)`: n more appends succeed, then every append fails.
    pub(super) writes_before_failure: Option<u64>,
    /// A failing append first writes a random strict prefix of its data.
    pub(super) partial_failed_writes: bool,
    /// `Some(n)`: n more syncs (file or directory) succeed, then every sync fails.
    pub(super) syncs_before_failure: Option<u64>,
    /// Total live bytes appends may grow the file system to.
    pub(super) capacity_bytes: Option<u64>,
    /// At a crash, keep a random prefix of each file's unsynced appended tail.
    pub(super) torn_writes: bool,
}

/// Everything behind the file system's one mutex.
pub(super) struct State {
    /// Incremented by every crash; handles of an older boot are dead.
    pub(super) boot: u64,
    /// Directory entries as the process sees them.
    pub(super) live: BTreeMap<PathBuf, NodeRef>,
    /// Directory entries as a crash would leave them (updated by `sync_dir`).
    pub(super) durable: BTreeMap<PathBuf, NodeRef>,
    /// Directories; durable once created.
    pub(super) dirs: BTreeSet<PathBuf>,
    /// Held locks: path -> token of the guard holding it.
    pub(super) locks: BTreeMap<PathBuf, u64>,
    pub(super) next_lock_token: u64,
    pub(super) faults: Faults,
    pub(super) rng: StdRng,
}

pub(super) fn dead_handle() -> io::Error {
    io::Error::other("file handle opened before a simulated crash")
}

pub(super) fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file", path.display()))
}

/// Each distinct node once, in path order (a node may have several names).
pub(super) fn unique_nodes<'a>(map: impl IntoIterator<Item = &'a NodeRef>) -> Vec<&'a NodeRef> {
    let mut seen = HashSet::new();
    map.into_iter().filter(|n| seen.insert(Arc::as_ptr(n))).collect()
}

impl State {
    pub(super) fn dir_exists(&self, dir: &Path) -> bool {
        dir.as_os_str().is_empty() || dir.parent().is_none() || self.dirs.contains(dir)
    }

    pub(super) fn check_parent(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(parent) if self.dir_exists(parent) => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: parent directory does not exist", path.display()),
            )),
        }
    }

    pub(super) fn node(&self, path: &Path) -> io::Result<NodeRef> {
        self.live.get(path).cloned().ok_or_else(|| not_found(path))
    }

    pub(super) fn check_boot(&self, boot: u64) -> io::Result<()> {
        if boot == self.boot {
            Ok(())
        } else {
            Err(dead_handle())
        }
    }

    pub(super) fn total_live_bytes(&self) -> u64 {
        unique_nodes(self.live.values()).iter().map(|n| n.lock().live.len() as u64).sum()
    }

    /// Consumes one unit of a `*_before_failure` budget; `true` if the operation must fail.
    pub(super) fn consume(budget: &mut Option<u64>) -> bool {
        match budget {
            Some(0) => true,
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    }

    pub(super) fn capacity_allows(&self, growth: u64) -> bool {
        match self.faults.capacity_bytes {
            Some(cap) => self.total_live_bytes().saturating_add(growth) <= cap,
            None => true,
        }
    }
}

/// Writes `data` into `node` at `pos`, zero-filling any gap (as a write past EOF does).
pub(super) fn write_at(node: &mut Node, pos: u64, data: &[u8]) -> io::Result<()> {
    let start = usize::try_from(pos).map_err(|_| io::Error::other("offset beyond memory"))?;
    let end = start.checked_add(data.len()).ok_or_else(|| io::Error::other("offset beyond memory"))?;
    if node.live.len() < end {
        node.live.resize(end, 0);
    }
    if let Some(dst) = node.live.get_mut(start..end) {
        dst.copy_from_slice(data);
    }
    Ok(())
}
