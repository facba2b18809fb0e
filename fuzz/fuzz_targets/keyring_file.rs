//! Fuzz target `keyring_file`: the checks live in `crypto::fuzzing::keyring_file`, which the stable
//! corpus-replay tests (`crypto/tests/fuzz_corpus.rs`) call too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| crypto::fuzzing::keyring_file(data));
