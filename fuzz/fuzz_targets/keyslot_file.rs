//! Fuzz target `keyslot_file`: the checks live in `crypto::fuzzing::keyslot_file`, which the stable
//! corpus-replay tests (`crypto/tests/fuzz_corpus.rs`) call too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| crypto::fuzzing::keyslot_file(data));
