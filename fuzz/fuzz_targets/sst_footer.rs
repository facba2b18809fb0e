//! Fuzz target `sst_footer`: the checks live in `index::fuzzing::sst_footer`, which the stable
//! corpus-replay tests (`index/tests/fuzz_corpus.rs`) call too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| index::fuzzing::sst_footer(data));
