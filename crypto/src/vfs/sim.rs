//! [`SimVfs`]: an in-memory file system for tests that keeps live and durable
//! bytes apart, injects faults, and simulates power loss.
//!
//! The model is strict POSIX without any of the courtesies real file systems add:
//! a file's bytes survive a crash only up to its last `sync`; a directory entry
//! (create, rename, remove) survives only if its directory was `sync_dir`ed after
//! the change; `truncate` is durable at once (as [`super::StdVfs`] makes it); a
//! size set by `preallocate` (zeros) is durable only after the file's next sync,
//! like appended bytes; and directories themselves are durable as soon as they
//! are created. Files are
//! inodes shared by names, so a file renamed without a directory sync reappears
//! under its old name after [`SimVfs::crash`]. Every choice left to chance (how
//! much of an unsynced tail a torn write keeps, how much a failing write puts
//! down) is drawn from a seeded RNG, so a failing run replays from its seed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{LockError, LockGuard, RandomAccessFile, Vfs, WritableFile};

mod handles;
mod state;

use handles::{SimLock, SimReadable, SimWritable};
use state::{not_found, unique_nodes, Faults, Node, NodeRef, State, EIO, ENOSPC};

/// In-memory file system with crash simulation and fault injection.
pub struct SimVfs {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimVfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("SimVfs")
            .field("boot", &st.boot)
            .field("files", &st.live.len())
            .field("faults", &st.faults)
            .finish_non_exhaustive()
    }
}

impl Default for SimVfs {
    /// An empty file system with seed 0.
    fn default() -> Self {
        SimVfs::unshared(0)
    }
}

impl SimVfs {
    /// An empty file system (seed 0).
    pub fn new() -> Arc<SimVfs> {
        Arc::new(SimVfs::unshared(0))
    }

    /// An empty file system whose random choices (torn-write lengths, partial
    /// failed writes) are drawn from `seed`.
    pub fn with_seed(seed: u64) -> Arc<SimVfs> {
        Arc::new(SimVfs::unshared(seed))
    }

    fn unshared(seed: u64) -> SimVfs {
        SimVfs {
            state: Arc::new(Mutex::new(State {
                boot: 0,
                live: BTreeMap::new(),
                durable: BTreeMap::new(),
                dirs: BTreeSet::new(),
                locks: BTreeMap::new(),
                next_lock_token: 0,
                faults: Faults::default(),
                rng: StdRng::seed_from_u64(seed),
            })),
        }
    }

    /// Simulated power loss: every file reverts to its durable bytes and every
    /// directory to its durable entries; files that were never durably named vanish.
    /// With torn writes on, each file keeps a random prefix of its unsynced tail:
    /// the bytes written since its last sync, when they all went past its durable
    /// end or into durably zero space (preallocated, never written), counted from
    /// the first byte that differs from the durable bytes to the last one (to the
    /// live end if the file grew). The rest of that tail reads as it did durably:
    /// zeros inside the durable size, nothing past it. Files overwritten in place
    /// since their last sync keep their durable bytes whole. Handles opened before
    /// become dead and locks are released. Injected faults stay as they are (see
    /// [`SimVfs::clear_faults`]).
    pub fn crash(&self) {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        st.boot += 1;
        st.locks.clear();
        st.live = st.durable.clone();
        let torn = st.faults.torn_writes;
        for node in unique_nodes(st.durable.values()) {
            let mut n = node.lock();
            let n = &mut *n;
            if torn {
                if let Some((start, end)) = n.unsynced_tail() {
                    let keep = st.rng.gen_range(0..=end - start);
                    // The torn prefix reached the platter: it is what the disk now holds.
                    let landed = n.live.get(start..start + keep).unwrap_or_default();
                    if n.durable.len() < start + keep {
                        n.durable.resize(start + keep, 0);
                    }
                    if let Some(dst) = n.durable.get_mut(start..start + keep) {
                        dst.copy_from_slice(landed);
                    }
                }
            }
            n.live.clone_from(&n.durable);
        }
    }

    /// After `n` more successful appends, every append fails with `EIO` (until
    /// [`SimVfs::clear_faults`]). `0` fails the next append.
    pub fn fail_write_after(&self, n: u64) {
        self.state.lock().faults.writes_before_failure = Some(n);
    }

    /// Whether a failing append first writes a random strict prefix of its data
    /// (as a write interrupted by a disk error may). Off by default.
    pub fn set_partial_failed_writes(&self, on: bool) {
        self.state.lock().faults.partial_failed_writes = on;
    }

    /// After `n` more successful syncs (`WritableFile::sync` and `sync_dir` both
    /// count), every sync fails with `EIO` and makes nothing durable.
    pub fn fail_sync_after(&self, n: u64) {
        self.state.lock().faults.syncs_before_failure = Some(n);
    }

    /// Limits the total live bytes: an append that would pass it fails with
    /// `ENOSPC` (raw os error 28) and writes nothing. `None` removes the limit.
    pub fn set_capacity_bytes(&self, capacity: Option<u64>) {
        self.state.lock().faults.capacity_bytes = capacity;
    }

    /// Whether a crash keeps a random prefix of each file's unsynced tail (torn
    /// writes) instead of dropping it whole. Off by default.
    pub fn set_torn_writes(&self, on: bool) {
        self.state.lock().faults.torn_writes = on;
    }

    /// XORs the byte at `offset` of `path` with `xor`, in both its live and its
    /// durable bytes (where they are long enough): damage on the medium itself.
    pub fn corrupt_byte(&self, path: &Path, offset: u64, xor: u8) -> io::Result<()> {
        let st = self.state.lock();
        let node = st.node(path)?;
        let mut n = node.lock();
        let i = usize::try_from(offset).map_err(|_| io::Error::other("offset beyond memory"))?;
        match n.live.get_mut(i) {
            Some(b) => *b ^= xor,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{}: offset {offset} beyond end", path.display()),
                ))
            }
        }
        if let Some(b) = n.durable.get_mut(i) {
            *b ^= xor;
        }
        Ok(())
    }

    /// Removes every injected fault (write and sync failures, capacity, torn writes).
    pub fn clear_faults(&self) {
        self.state.lock().faults = Faults::default();
    }

    /// Every file's path, sorted.
    pub fn list_files(&self) -> Vec<PathBuf> {
        self.state.lock().live.keys().cloned().collect()
    }

    /// The live bytes of `path` (what a read sees now).
    pub fn read_live(&self, path: &Path) -> Option<Vec<u8>> {
        self.state.lock().live.get(path).map(|n| n.lock().live.clone())
    }

    /// The bytes `path` would have after a crash now (without torn writes), or
    /// `None` if its name would not survive.
    pub fn read_durable(&self, path: &Path) -> Option<Vec<u8>> {
        self.state.lock().durable.get(path).map(|n| n.lock().durable.clone())
    }

    /// Sum of the live lengths of all files.
    pub fn total_live_bytes(&self) -> u64 {
        self.state.lock().total_live_bytes()
    }

    /// How many crashes were simulated.
    pub fn crash_count(&self) -> u64 {
        self.state.lock().boot
    }

    fn writable(&self, st: &State, node: NodeRef) -> Box<dyn WritableFile> {
        Box::new(SimWritable { state: Arc::clone(&self.state), node, boot: st.boot, pos: AtomicU64::new(0) })
    }
}

impl Vfs for SimVfs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let mut st = self.state.lock();
        st.check_parent(path)?;
        if st.dirs.contains(path) {
            return Err(io::Error::new(io::ErrorKind::IsADirectory, format!("{} is a directory", path.display())));
        }
        let node = match st.live.get(path) {
            Some(node) => {
                // O_TRUNC: the inode stays, its bytes go (durably only at the next sync).
                node.lock().live.clear();
                Arc::clone(node)
            }
            None => {
                let node = NodeRef::default();
                st.live.insert(path.to_path_buf(), Arc::clone(&node));
                node
            }
        };
        Ok(self.writable(&st, node))
    }

    fn open_for_overwrite(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let st = self.state.lock();
        let node = st.node(path)?;
        Ok(self.writable(&st, node))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        let st = self.state.lock();
        let node = st.node(path)?;
        let len = node.lock().live.len() as u64;
        Ok(Arc::new(SimReadable { state: Arc::clone(&self.state), node, boot: st.boot, len }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        let node = st.node(from)?;
        st.check_parent(to)?;
        if st.dirs.contains(to) {
            return Err(io::Error::new(io::ErrorKind::IsADirectory, format!("{} is a directory", to.display())));
        }
        st.live.remove(from);
        st.live.insert(to.to_path_buf(), node);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.live.remove(path).map(|_| ()).ok_or_else(|| not_found(path))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let st = self.state.lock();
        let node = st.node(path)?;
        let new_len = usize::try_from(len).map_err(|_| io::Error::other("length beyond memory"))?;
        let growth = len.saturating_sub(node.lock().live.len() as u64);
        if !st.capacity_allows(growth) {
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        let mut n = node.lock();
        let n = &mut *n;
        n.live.resize(new_len, 0);
        n.durable.clone_from(&n.live);
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.state.lock();
        if !st.dir_exists(dir) {
            return Err(not_found(dir));
        }
        let children = st.live.keys().chain(st.dirs.iter()).filter(|p| p.parent() == Some(dir));
        let mut names: Vec<String> = children.filter_map(|p| p.file_name()?.to_str().map(str::to_owned)).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        for d in dir.ancestors() {
            if st.live.contains_key(d) {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is a file", d.display())));
            }
        }
        for d in dir.ancestors() {
            if !d.as_os_str().is_empty() && d.parent().is_some() {
                st.dirs.insert(d.to_path_buf());
            }
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        if !st.dir_exists(dir) {
            return Err(not_found(dir));
        }
        if State::consume(&mut st.faults.syncs_before_failure) {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        st.durable.retain(|p, _| p.parent() != Some(dir));
        for (p, node) in &st.live {
            if p.parent() == Some(dir) {
                st.durable.insert(p.clone(), Arc::clone(node));
            }
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        let st = self.state.lock();
        st.live.contains_key(path) || (!path.as_os_str().is_empty() && st.dir_exists(path))
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        let st = self.state.lock();
        let node = st.node(path)?;
        let len = node.lock().live.len() as u64;
        Ok(len)
    }

    fn lock(&self, path: &Path) -> Result<Box<dyn LockGuard>, LockError> {
        let mut st = self.state.lock();
        st.check_parent(path).map_err(LockError::Io)?;
        if st.locks.contains_key(path) {
            // Every holder is this process: the table is in memory.
            return Err(LockError::Held { pid: Some(std::process::id()) });
        }
        // Like the real lock file: created if missing, holding the holder's pid.
        let pid = format!("{}\n", std::process::id()).into_bytes();
        match st.live.get(path) {
            Some(node) => node.lock().live = pid,
            None => {
                let node = Arc::new(Mutex::new(Node { live: pid, durable: Vec::new() }));
                st.live.insert(path.to_path_buf(), node);
            }
        }
        let token = st.next_lock_token;
        st.next_lock_token += 1;
        st.locks.insert(path.to_path_buf(), token);
        Ok(Box::new(SimLock { state: Arc::clone(&self.state), path: path.to_path_buf(), token }))
    }
}

#[cfg(test)]
mod tests;
