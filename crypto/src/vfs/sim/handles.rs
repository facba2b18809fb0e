//! The file handles and lock guard of [`super::SimVfs`]. Each remembers the boot it
//! was opened in and fails once a simulated crash has started a new one.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rand::Rng;

use super::state::{write_at, NodeRef, State, EIO, ENOSPC};
use crate::vfs::{LockGuard, RandomAccessFile, WritableFile};

/// A file opened by `create` (after truncating) or `open_for_overwrite` (from offset 0).
pub(super) struct SimWritable {
    pub(super) state: Arc<Mutex<State>>,
    pub(super) node: NodeRef,
    pub(super) boot: u64,
    /// Where the next append writes; also the bytes written through this handle.
    pub(super) pos: AtomicU64,
}

impl WritableFile for SimWritable {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check_boot(self.boot)?;
        let pos = self.pos.load(Ordering::Acquire);
        let node_len = self.node.lock().live.len() as u64;
        let end = pos.saturating_add(data.len() as u64);
        if State::consume(&mut st.faults.writes_before_failure) {
            if st.faults.partial_failed_writes && !data.is_empty() {
                let keep = st.rng.gen_range(0..data.len());
                let prefix = data.get(..keep).unwrap_or_default();
                let growth = (pos + keep as u64).saturating_sub(node_len);
                if st.capacity_allows(growth) {
                    write_at(&mut self.node.lock(), pos, prefix)?;
                    self.pos.store(pos + keep as u64, Ordering::Release);
                }
            }
            return Err(io::Error::from_raw_os_error(EIO));
        }
        if !st.capacity_allows(end.saturating_sub(node_len)) {
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        write_at(&mut self.node.lock(), pos, data)?;
        self.pos.store(end, Ordering::Release);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check_boot(self.boot)?;
        if State::consume(&mut st.faults.syncs_before_failure) {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        let mut n = self.node.lock();
        let n = &mut *n;
        n.durable.clone_from(&n.live);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.pos.load(Ordering::Acquire)
    }

    fn preallocate(&self, len: u64) -> io::Result<()> {
        let st = self.state.lock();
        st.check_boot(self.boot)?;
        let new_len = usize::try_from(len).map_err(|_| io::Error::other("length beyond memory"))?;
        let node_len = self.node.lock().live.len();
        if new_len <= node_len {
            return Ok(());
        }
        // As fallocate does: the space is taken now, so a full disk fails here.
        if !st.capacity_allows((new_len - node_len) as u64) {
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        // Live only: the new size reaches `durable` with the next sync, like appended bytes.
        self.node.lock().live.resize(new_len, 0);
        Ok(())
    }
}

/// A file opened for reading; its length is fixed when opened, its bytes are read live.
pub(super) struct SimReadable {
    pub(super) state: Arc<Mutex<State>>,
    pub(super) node: NodeRef,
    pub(super) boot: u64,
    pub(super) len: u64,
}

impl RandomAccessFile for SimReadable {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let st = self.state.lock();
        st.check_boot(self.boot)?;
        let n = self.node.lock();
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| Some((start, start.checked_add(buf.len())?)))
            .and_then(|(start, end)| n.live.get(start..end));
        match src {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the file")),
        }
    }

    fn len(&self) -> u64 {
        self.len
    }
}

/// A held entry of the lock table; the token tells this guard from a later holder.
pub(super) struct SimLock {
    pub(super) state: Arc<Mutex<State>>,
    pub(super) path: PathBuf,
    pub(super) token: u64,
}

impl fmt::Debug for SimLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimLock").field("path", &self.path).finish_non_exhaustive()
    }
}

impl LockGuard for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut st = self.state.lock();
        // After a crash the entry may belong to a guard of the new boot: leave it.
        if st.locks.get(&self.path) == Some(&self.token) {
            st.locks.remove(&self.path);
        }
    }
}
