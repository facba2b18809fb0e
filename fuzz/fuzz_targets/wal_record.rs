//! Fuzz target `wal_record`: the checks live in `wal::fuzzing::wal_record`, which the stable
//! corpus-replay tests (`wal/tests/fuzz_corpus.rs`) call too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wal::fuzzing::wal_record(data));
