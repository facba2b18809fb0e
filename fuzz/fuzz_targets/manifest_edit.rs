//! Fuzz target `manifest_edit`: the checks live in `compaction::fuzzing::manifest_edit`, which the stable
//! corpus-replay tests (`compaction/tests/fuzz_corpus.rs`) call too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| compaction::fuzzing::manifest_edit(data));
