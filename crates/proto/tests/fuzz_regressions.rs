//! Replays the fuzz regression corpora (`fuzz/regressions/`) through the same
//! invariant checks the fuzz targets run, so every crash ever found stays fixed.

use std::path::Path;

/// Runs `check` on every file of `fuzz/regressions/<target>`; the corpus must
/// hold at least `min` files.
fn replay(target: &str, min: usize, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("regression corpus directory") {
        let path = entry.expect("dir entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        check(&data);
        n += 1;
    }
    assert!(n >= min, "expected a seeded corpus, found {n} files in {}", dir.display());
}

#[test]
fn regression_corpus_holds() {
    replay("decode_request", 10, memshard_proto::fuzzing::check_request_decoder);
}

#[test]
fn reply_regression_corpus_holds() {
    replay("decode_reply", 10, memshard_proto::fuzzing::check_reply_decoder);
}

/// The checker itself: a stream of every reply kind decodes unit by unit,
/// and truncated or broken streams stop without a panic.
#[test]
fn reply_checker_covers_every_kind() {
    let stream: &[u8] = b"VALUE k 1 2 3\r\nab\r\nEND\r\nSTORED\r\nNOT_STORED\r\nEXISTS\r\nNOT_FOUND\r\nDELETED\r\n\
TOUCHED\r\nOK\r\nRESET\r\n7\r\nVERSION 1.6\r\nSTAT a b\r\nERROR\r\nCLIENT_ERROR x\r\nSERVER_ERROR y\r\n\
VA 1 t\r\nz\r\nHD\r\nEN\r\nNS\r\nEX\r\nNF\r\nMN\r\nME k a=1\r\n";
    for cut in 0..=stream.len() {
        memshard_proto::fuzzing::check_reply_decoder(&stream[..cut]);
    }
    for odd in [&b"VALUE k 0 1\r\nxyz\r\n"[..], b"WHAT\r\n", b"VERSION\n", b"STAT\r\n", b"00042 \n", b"HD \r\n"] {
        memshard_proto::fuzzing::check_reply_decoder(odd);
    }
    // A line above MAX_REPLY_LINE: accepted whole, refused while unterminated.
    let mut long = b"VERSION ".to_vec();
    long.resize(memshard_proto::MAX_REPLY_LINE + 100, b'v');
    memshard_proto::fuzzing::check_reply_decoder(&long);
    long.extend_from_slice(b"\r\n");
    memshard_proto::fuzzing::check_reply_decoder(&long);
}
