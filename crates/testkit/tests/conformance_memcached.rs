//! Replays the whole conformance table against real memcached 1.6.18.
//!
//! This proves two things: the recorded table is what memcached really
//! answers (so nobody hand-edited an expectation into fiction), and the
//! runner is deterministic (split writes, timeouts, close detection). It also
//! checks that the runner *does* flag wrong replies and wrong connection
//! fates, so a green run means something.

use memshard_testkit::conformance::{Expect, Step, TABLE_FILES, TableFile, duplicate_names};
use memshard_testkit::runner::{Outcome, run_case, run_table};
use memshard_testkit::{Case, Target, peer_or_skip, spawn_memcached, table};

/// The arguments the table was recorded with (see the README).
const MEMCACHED_ARGS: &[&str] = &["-t", "1", "-m", "64"];

#[test]
fn table_is_large_unique_recorded_and_documented() {
    let cases = table().expect("table parses");
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    assert_eq!(duplicate_names(&cases), Vec::<String>::new());
    for case in &cases {
        assert!(case.expect.is_some(), "{} is not recorded: run the record_conformance example", case.name);
        assert_eq!(
            case.memshard.is_some(),
            case.why.is_some(),
            "{}: a `why` documents exactly a memshard deviation",
            case.name
        );
    }
}

#[test]
fn table_files_are_in_canonical_form() {
    // The recorder rewrites files through `render`; a hand edit that render
    // would reformat is caught here rather than as a noisy diff later.
    for (name, text) in TABLE_FILES {
        let file = TableFile::parse(name, text).expect("parses");
        assert_eq!(&file.render(), text, "{name} is not in canonical form");
    }
}

#[test]
fn meta_debug_answers_as_memcached_does() {
    // `me` was once refused; every form of it now expects memcached's reply.
    let cases = table().unwrap();
    for name in ["me.hit", "me.miss", "me.no-key"] {
        let me = cases.iter().find(|c| c.name == name).unwrap();
        assert!(me.why.is_none(), "{name} is still a deviation");
        assert_eq!(me.expectation(Target::Memshard), me.expectation(Target::Memcached), "{name}");
    }
}

#[tokio::test]
async fn table_matches_real_memcached() {
    if peer_or_skip("memcached").is_none() {
        return;
    }
    let server = spawn_memcached(MEMCACHED_ARGS).expect("memcached starts");
    let cases = table().unwrap();
    // Twice over, to catch timing-dependent (flaky) cases in one test run.
    for round in 1..=2 {
        let report = run_table(server.addr(), &cases, Target::Memcached).await;
        assert!(report.is_clean(), "round {round}:\n{report}");
        assert_eq!(report.total, cases.len());
    }
}

fn case(name: &str, request: &[u8], reply: &[u8], closes: bool) -> Case {
    let mut case = Case::new(name);
    case.steps.push(Step::Send(vec![memshard_testkit::conformance::Piece::Bytes(request.to_vec())]));
    case.expect = Some(Expect { reply: reply.to_vec(), closes });
    case
}

async fn outcome(addr: std::net::SocketAddr, case: &Case) -> Option<String> {
    match run_case(addr, case, Target::Memcached).await.unwrap() {
        Outcome::Pass => None,
        Outcome::Mismatch(m) => Some(m.to_string()),
    }
}

#[tokio::test]
async fn runner_flags_wrong_replies_and_fates() {
    if peer_or_skip("memcached").is_none() {
        return;
    }
    let server = spawn_memcached(MEMCACHED_ARGS).unwrap();
    let addr = server.addr();

    let right = case("t.right", b"get k\r\n", b"END\r\n", false);
    assert_eq!(outcome(addr, &right).await, None);

    let wrong = case("t.wrong", b"get k\x01\r\n", b"ERROR\r\n", false);
    let report = outcome(addr, &wrong).await.expect("mismatch");
    assert!(report.contains("t.wrong"), "{report}");
    assert!(report.contains("get k\\x01\\r\\n"), "escaped request: {report}");
    assert!(report.contains("expected: \"ERROR\\r\\n\""), "{report}");
    assert!(report.contains("actual:   \"END\\r\\n\""), "{report}");

    let not_closed = case("t.not-closed", b"get k\r\n", b"END\r\n", true);
    let report = outcome(addr, &not_closed).await.expect("mismatch");
    assert!(report.contains("did not close"), "{report}");

    let closed = case("t.closed", b"quit\r\n", b"", false);
    let report = outcome(addr, &closed).await.expect("mismatch");
    assert!(report.contains("closed"), "{report}");

    // Extra bytes after the expected reply are a mismatch too (whether they
    // arrive with the reply or later, before the mn probe's answer).
    let extra = case("t.extra", b"get k\r\nget k\r\n", b"END\r\n", false);
    let report = outcome(addr, &extra).await.expect("mismatch");
    assert!(report.contains("END\\r\\nEND\\r\\n"), "{report}");

    // A server left waiting for a data block fails the mn probe.
    let waiting = case("t.waiting", b"set k 0 0 10\r\nabc", b"", false);
    let report = outcome(addr, &waiting).await.expect("mismatch");
    assert!(report.contains("instead of"), "{report}");

    // Normalization hides CAS values but not their presence.
    let mut gets = case("t.gets", b"set k 0 0 1\r\nx\r\ngets k\r\n", b"STORED\r\nVALUE k 0 1 1\r\nx\r\nEND\r\n", false);
    assert!(outcome(addr, &gets).await.is_some(), "raw CAS must differ");
    gets.normalize = vec![memshard_testkit::conformance::Rule::Cas];
    assert_eq!(outcome(addr, &gets).await, None);
    gets.expect.as_mut().unwrap().reply = b"STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n".to_vec();
    assert!(outcome(addr, &gets).await.is_some(), "missing CAS must fail");
}

#[test]
fn every_protocol_command_is_covered() {
    let cases = table().unwrap();
    let requests: Vec<Vec<u8>> = cases.iter().map(Case::request_preview).collect();
    let commands = [
        "get",
        "gets",
        "gat",
        "gats",
        "set",
        "add",
        "replace",
        "append",
        "prepend",
        "cas",
        "delete",
        "incr",
        "decr",
        "touch",
        "flush_all",
        "version",
        "verbosity",
        "stats",
        "quit",
        "mg",
        "ms",
        "md",
        "ma",
        "mn",
        "me",
    ];
    for command in commands {
        let line_start = format!("{command} ");
        let covered = requests.iter().any(|r| {
            r.split(|&b| b == b'\n')
                .any(|line| line.starts_with(line_start.as_bytes()) || line == format!("{command}\r").as_bytes())
        });
        assert!(covered, "no case sends `{command}`");
    }
}
