//! A switch that replaces AES-256-GCM-SIV on data blocks and log records with a
//! plain copy, so that benchmarks can report what encryption costs. It exists
//! only in builds with the `bench-insecure-null-cipher` cargo feature, which
//! nothing but the benchmark harness enables; in every other build
//! [`is_on`] is a constant `false` and the check compiles away.
//!
//! With the switch on, "sealing" appends [`crate::TAG_LEN`] zero bytes and
//! "opening" strips them: nothing is encrypted and nothing is authenticated.
//! Key files and file headers are still protected (they are few and small), so
//! file layouts and sizes stay exactly those of the real format. A store written
//! with the switch on cannot be read by a normal build (every block fails
//! authentication), and must never hold real data.

#[cfg(feature = "bench-insecure-null-cipher")]
mod switch {
    use std::sync::atomic::{AtomicBool, Ordering};

    static ON: AtomicBool = AtomicBool::new(false);

    /// Turns the null cipher on for the rest of this process. Benchmarks only:
    /// every store this process writes afterwards is unencrypted.
    pub fn enable_for_this_process() {
        eprintln!("warning: the insecure null cipher is on: nothing written by this process is encrypted");
        ON.store(true, Ordering::Release);
    }

    /// Whether the null cipher is on.
    #[inline]
    pub fn is_on() -> bool {
        ON.load(Ordering::Relaxed)
    }
}

#[cfg(not(feature = "bench-insecure-null-cipher"))]
mod switch {
    /// Whether the null cipher is on: never, in this build.
    #[inline(always)]
    pub fn is_on() -> bool {
        false
    }
}

pub use switch::*;
