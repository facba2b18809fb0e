//! Shared pieces of the criterion benches and of the `compare` harness: the
//! deterministic workload data (random-looking keys and values derived from an
//! index, so no run has to hold the whole data set in memory) and a small
//! latency histogram.

#![deny(missing_docs)]

pub mod data;
pub mod histogram;
pub mod timeseries;

pub use data::Workload;
pub use histogram::Histogram;
