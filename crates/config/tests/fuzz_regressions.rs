//! Replays the fuzz regression corpus (`fuzz/regressions/load_config/`)
//! through the same invariant checks the `load_config` fuzz target runs, so
//! every crash ever found stays fixed.

use std::path::Path;

#[test]
fn regression_corpus_holds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/load_config");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("regression corpus directory") {
        let path = entry.expect("dir entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        memshard_config::fuzzing::check_from_yaml(&data);
        n += 1;
    }
    assert!(n >= 10, "expected a seeded corpus, found {n} files in {}", dir.display());
}

/// The samples in `testdata/` the corpus was seeded from, as they are now.
#[test]
fn testdata_holds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    for entry in std::fs::read_dir(&dir).expect("testdata directory") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "yml") {
            memshard_config::fuzzing::check_from_yaml(&std::fs::read(&path).expect("sample"));
        }
    }
}
