//! Regenerates the expected replies in `crates/testkit/conformance/*.mct`
//! from a freshly spawned real memcached (`-t 1 -m 64 -U 0`).
//!
//! ```text
//! cargo run -p memshard-testkit --example record_conformance            # all cases
//! cargo run -p memshard-testkit --example record_conformance -- mg. ms.  # names containing mg. or ms.
//! ```
//!
//! Review the resulting `git diff` before committing: every changed line is a
//! change in what memcached answers (or in a request you edited).

// This is a command-line tool; its output is the point.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use memshard_testkit::conformance::TABLE_FILES;
use memshard_testkit::recorder::{record_file, table_dir};
use memshard_testkit::spawn_memcached;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let filters: Vec<String> = std::env::args().skip(1).collect();
    let server = match spawn_memcached(&["-t", "1", "-m", "64"]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot start memcached: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("recording against memcached pid {} at {}", server.pid(), server.addr());
    let (mut recorded, mut changed, mut failed) = (0, 0, 0);
    for (name, _) in TABLE_FILES {
        let path = table_dir().join(name);
        match record_file(server.addr(), &path, &filters).await {
            Ok(summary) => {
                recorded += summary.recorded;
                changed += summary.changed.len();
                failed += summary.failed.len();
                for case in &summary.changed {
                    println!("  changed {case}");
                }
                for (case, why) in &summary.failed {
                    println!("  FAILED  {case}: {why}");
                }
                println!("{name}: {} recorded", summary.recorded);
            }
            Err(e) => {
                eprintln!("{name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("{recorded} recorded, {changed} changed, {failed} failed");
    if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
