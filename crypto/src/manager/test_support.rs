//! What the key manager's test modules share: a cheap Argon2 cost, a
//! passphrase credential, and a store directory on a fresh `SimVfs`.
#![allow(dead_code)] // each test module uses its own part of this

use std::path::PathBuf;
use std::sync::Arc;

use crate::keyslot::{Argon2Params, Credential};
use crate::vfs::{SimVfs, Vfs};

/// An Argon2 cost low enough for tests to run fast.
pub(crate) const TINY: Argon2Params = Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 };

/// The passphrase credential `p`.
pub(crate) fn pass(p: &str) -> Credential {
    Credential::passphrase(p)
}

/// A fresh simulated file system, it as a `Vfs`, and the store directory `/store`.
pub(crate) fn sim() -> (Arc<SimVfs>, Arc<dyn Vfs>, PathBuf) {
    let sim = SimVfs::new();
    let vfs: Arc<dyn Vfs> = sim.clone();
    (sim, vfs, PathBuf::from("/store"))
}
