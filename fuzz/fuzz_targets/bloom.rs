//! Fuzz target `bloom`: the checks live in `index::fuzzing::bloom`, which the stable
//! corpus-replay tests (`index/tests/fuzz_corpus.rs`) call too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| index::fuzzing::bloom(data));
