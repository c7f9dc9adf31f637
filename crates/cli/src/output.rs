//! A subcommand's results on stdout. `println!` panics when the reader has
//! gone away (`memshard bench --json | head -c 100`); here a closed pipe
//! ends the output quietly, and any other write error is reported.

use crate::Failure;
use anyhow::anyhow;
use std::io::{ErrorKind, Write};

/// Writes `text` to stdout and flushes it.
pub(crate) fn emit(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(Failure::Runtime(anyhow!("cannot write to stdout: {e}"))),
        _ => Ok(()),
    }
}
