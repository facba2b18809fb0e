//! Fuzz target `sst_block`: the checks live in `index::fuzzing::sst_block`, which the stable
//! corpus-replay tests (`index/tests/fuzz_corpus.rs`) call too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| index::fuzzing::sst_block(data));
