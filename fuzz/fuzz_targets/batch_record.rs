//! Fuzz target `batch_record`: the checks live in `synapsed_storage::fuzzing::batch_record`, which the stable
//! corpus-replay tests (`engine/tests/fuzz_corpus.rs`) call too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| synapsed_storage::fuzzing::batch_record(data));
