//! The registry of live snapshots. Compaction keeps, for every registered seqno,
//! the newest version visible at it; a snapshot registers its seqno on creation
//! and releases it on drop. The registry is shared through an `Arc`, so a
//! snapshot may outlive the store it came from.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use index::SeqNo;
use parking_lot::Mutex;

/// Seqno -> number of live snapshots at it.
#[derive(Debug, Default)]
pub(crate) struct SnapshotRegistry {
    live: Mutex<BTreeMap<SeqNo, usize>>,
}

/// A registered seqno, released on drop.
#[derive(Debug)]
pub(crate) struct SnapshotHandle {
    registry: Arc<SnapshotRegistry>,
    seqno: SeqNo,
}

impl SnapshotRegistry {
    /// Registers the current value of `visible`. Reading it under the registry lock
    /// means a compaction that lists the snapshots either sees this one or started
    /// before it existed (and then only drops versions already shadowed by data
    /// at or below it).
    pub(crate) fn acquire(self: &Arc<Self>, visible: &AtomicU64) -> SnapshotHandle {
        let mut live = self.live.lock();
        let seqno = visible.load(Ordering::Acquire);
        *live.entry(seqno).or_insert(0) += 1;
        SnapshotHandle { registry: self.clone(), seqno }
    }

    /// Live snapshot seqnos, ascending.
    pub(crate) fn list(&self) -> Vec<SeqNo> {
        self.live.lock().keys().copied().collect()
    }

    /// Runs `install` while no snapshot can be taken, unless a live snapshot
    /// is at or above `seqno` (then `None`, and `install` is not run). A
    /// compaction whose filter changed an entry at `seqno` installs its output
    /// through this, so a snapshot taken while it ran, which could read the
    /// entry, never sees it change: either the check finds it, or it is taken
    /// after the install and reads the new version from the start.
    pub(crate) fn install_unless_any_at_or_above<R>(&self, seqno: SeqNo, install: impl FnOnce() -> R) -> Option<R> {
        let live = self.live.lock();
        if live.range(seqno..).next().is_some() {
            return None;
        }
        Some(install())
    }

    fn release(&self, seqno: SeqNo) {
        let mut live = self.live.lock();
        if let Some(count) = live.get_mut(&seqno) {
            *count -= 1;
            if *count == 0 {
                live.remove(&seqno);
            }
        }
    }
}

impl SnapshotHandle {
    pub(crate) fn seqno(&self) -> SeqNo {
        self.seqno
    }
}

impl Drop for SnapshotHandle {
    fn drop(&mut self) {
        self.registry.release(self.seqno);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_counts_and_releases() {
        let reg = Arc::new(SnapshotRegistry::default());
        let visible = AtomicU64::new(5);
        let a = reg.acquire(&visible);
        let b = reg.acquire(&visible);
        visible.store(9, Ordering::Release);
        let c = reg.acquire(&visible);
        assert_eq!((a.seqno(), c.seqno()), (5, 9));
        assert_eq!(reg.list(), vec![5, 9]);
        drop(a);
        assert_eq!(reg.list(), vec![5, 9]);
        drop(b);
        assert_eq!(reg.list(), vec![9]);
        drop(c);
        assert!(reg.list().is_empty());
    }

    #[test]
    fn install_runs_only_without_a_snapshot_at_or_above() {
        let reg = Arc::new(SnapshotRegistry::default());
        let visible = AtomicU64::new(5);
        let a = reg.acquire(&visible);
        assert_eq!(reg.install_unless_any_at_or_above(6, || 1), Some(1));
        assert_eq!(reg.install_unless_any_at_or_above(5, || 2), None);
        assert_eq!(reg.install_unless_any_at_or_above(3, || 3), None);
        drop(a);
        assert_eq!(reg.install_unless_any_at_or_above(3, || 4), Some(4));
    }
}
