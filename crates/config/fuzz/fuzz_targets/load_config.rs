//! Fuzz the configuration loader: no panic, and the invariants of `memshard_config::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    memshard_config::fuzzing::check_from_yaml(data);
});
