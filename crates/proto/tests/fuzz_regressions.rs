//! Replays the fuzz regression corpus (`fuzz/regressions/`) through the same
//! invariant checks the fuzz target runs, so every crash ever found stays fixed.

use std::path::Path;

#[test]
fn regression_corpus_holds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/decode_request");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("regression corpus directory") {
        let path = entry.expect("dir entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        memshard_proto::fuzzing::check_request_decoder(&data);
        n += 1;
    }
    assert!(n >= 10, "expected a seeded corpus, found {n} files in {}", dir.display());
}
