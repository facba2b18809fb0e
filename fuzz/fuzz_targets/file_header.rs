//! Fuzz target `file_header`: the checks live in `crypto::fuzzing::file_header`, which the stable
//! corpus-replay tests (`crypto/tests/fuzz_corpus.rs`) call too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| crypto::fuzzing::file_header(data));
