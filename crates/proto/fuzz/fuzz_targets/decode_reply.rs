//! Fuzz the reply decoder: no panic, and the invariants of `memshard_proto::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    memshard_proto::fuzzing::check_reply_decoder(data);
});
