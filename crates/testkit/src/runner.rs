//! Runs conformance cases against a server and compares replies byte for byte.
//!
//! Per case: flush the server on a side connection, open a fresh connection,
//! write the request chunks with a short pause between them, read until the
//! (normalized) expected reply has arrived or [`REPLY_TIMEOUT`] passes, then
//! check the connection's fate: a case that expects a close must see the
//! server hang up within [`CLOSE_TIMEOUT`]; any other case must still answer
//! `mn\r\n` with exactly `MN\r\n`, which also catches stray extra bytes and
//! a server that is stuck waiting for more input.

use crate::conformance::normalize::{last_cas, normalize};
use crate::conformance::{Case, Expect, Piece, Rule, Step, Target, render_pieces};
use crate::escape::escape_abbrev;
use crate::wire::{Closed, Wire};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;
use thiserror::Error;
use tokio::time::{Instant, sleep};

/// How long a case's reply may take to arrive in full.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long after its reply a close-expecting case waits for the close.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Connect timeout for case and flush connections.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Quiet period that lets in-flight replies land before `$cas` is resolved.
const CAS_SETTLE: Duration = Duration::from_millis(50);

/// A failure to run a case at all, as opposed to a wrong reply.
#[derive(Debug, Error)]
pub enum RunError {
    /// Could not connect to the server.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// The server address.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The pre-case `flush_all` did not answer `OK\r\n`.
    #[error("flush_all before the case failed: {0}")]
    Flush(String),
    /// The case has no recorded expectation; run the recorder.
    #[error("case {0} has no recorded expectation (run the record_conformance example)")]
    Unrecorded(String),
    /// While recording: the connection stayed open but did not answer `mn`.
    #[error("case {case}: connection left open but `mn` got {got:?}; complete the request")]
    NotIdle {
        /// The case name.
        case: String,
        /// What the probe read back (escaped).
        got: String,
    },
}

/// A wrong reply, with everything needed to understand it from a log.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// The case name.
    pub case: String,
    /// The request bytes (`$cas` shown as `<cas>`).
    pub request: Vec<u8>,
    /// The expected reply, before normalization.
    pub expected: Vec<u8>,
    /// The bytes actually received, before normalization.
    pub actual: Vec<u8>,
    /// The normalization rules the comparison used.
    pub normalize: Vec<Rule>,
    /// Whether the case expected the server to close.
    pub expected_close: bool,
    /// How the connection actually ended.
    pub actual_close: Closed,
    /// One-line explanation of what went wrong.
    pub reason: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "MISMATCH {}: {}", self.case, self.reason)?;
        writeln!(f, "  request:  \"{}\"", escape_abbrev(&self.request))?;
        let closes = if self.expected_close { " + close" } else { "" };
        writeln!(f, "  expected: \"{}\"{closes}", escape_abbrev(&self.expected))?;
        writeln!(f, "  actual:   \"{}\" ({:?})", escape_abbrev(&self.actual), self.actual_close)?;
        if !self.normalize.is_empty() {
            let names: Vec<&str> = self.normalize.iter().map(|r| r.name()).collect();
            writeln!(f, "  normalized with {}:", names.join(" "))?;
            let exp = normalize(&self.normalize, &self.expected);
            let act = normalize(&self.normalize, &self.actual);
            writeln!(f, "    expected: \"{}\"", escape_abbrev(&exp))?;
            writeln!(f, "    actual:   \"{}\"", escape_abbrev(&act))?;
        }
        Ok(())
    }
}

/// The verdict on one case.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Reply and connection fate matched.
    Pass,
    /// Something differed.
    Mismatch(Box<Mismatch>),
}

/// The result of [`run_table`].
#[derive(Debug, Default)]
pub struct Report {
    /// Cases run.
    pub total: usize,
    /// Cases that passed.
    pub passed: usize,
    /// Cases whose reply differed.
    pub mismatches: Vec<Mismatch>,
    /// Cases that could not be run, with the reason.
    pub errors: Vec<(String, String)>,
}

impl Report {
    /// True when every case passed.
    pub fn is_clean(&self) -> bool {
        self.passed == self.total
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.mismatches {
            writeln!(f, "{m}")?;
        }
        for (case, err) in &self.errors {
            writeln!(f, "ERROR {case}: {err}")?;
        }
        writeln!(f, "conformance: {} passed, {} failed", self.passed, self.total - self.passed)
    }
}

/// Runs every case in order against `addr`, checking `target`'s expectations.
pub async fn run_table(addr: SocketAddr, cases: &[Case], target: Target) -> Report {
    let mut report = Report::default();
    for case in cases {
        report.total += 1;
        match run_case(addr, case, target).await {
            Ok(Outcome::Pass) => report.passed += 1,
            Ok(Outcome::Mismatch(m)) => report.mismatches.push(*m),
            Err(e) => report.errors.push((case.name.clone(), e.to_string())),
        }
    }
    report
}

/// Runs one case against `addr` and compares with `target`'s expectation.
pub async fn run_case(addr: SocketAddr, case: &Case, target: Target) -> Result<Outcome, RunError> {
    let expect = case.expectation(target).ok_or_else(|| RunError::Unrecorded(case.name.clone()))?;
    let mut wire = open_flushed(addr).await?;
    let write_error = send_steps(&mut wire, case).await;

    let want = normalize(&case.normalize, &expect.reply);
    let rules = &case.normalize;
    let matched = wire.read_until(Instant::now() + REPLY_TIMEOUT, |got| normalize(rules, got) == want).await;
    let mismatch = |wire: &Wire, reason: String| {
        let reason = match &write_error {
            Some(e) => format!("{reason} (a write failed: {e})"),
            None => reason,
        };
        Ok(Outcome::Mismatch(Box::new(Mismatch {
            case: case.name.clone(),
            request: case.request_preview(),
            expected: expect.reply.clone(),
            actual: wire.received().to_vec(),
            normalize: case.normalize.clone(),
            expected_close: expect.closes,
            actual_close: wire.closed().clone(),
            reason,
        })))
    };
    if !matched {
        return mismatch(&wire, "reply differs".into());
    }
    if expect.closes {
        if !wire.wait_closed(Instant::now() + CLOSE_TIMEOUT).await {
            return mismatch(&wire, format!("server did not close within {CLOSE_TIMEOUT:?}"));
        }
        if normalize(rules, wire.received()) != want {
            return mismatch(&wire, "extra bytes before close".into());
        }
        return Ok(Outcome::Pass);
    }
    match probe_idle(&mut wire).await {
        Ok(()) => Ok(Outcome::Pass),
        Err(reason) => mismatch(&wire, reason),
    }
}

/// Runs `case` and returns what the server answered, for the recorder:
/// reads until the server is quiet for `idle`, then decides close/open.
pub async fn record_case(addr: SocketAddr, case: &Case, idle: Duration) -> Result<Expect, RunError> {
    let mut wire = open_flushed(addr).await?;
    // A write error is fine here: the reply and the close tell the story.
    let _ = send_steps(&mut wire, case).await;
    wire.read_until_idle(idle, Instant::now() + Duration::from_secs(10)).await;
    let reply = wire.received().to_vec();
    if wire.closed().is_closed() {
        return Ok(Expect { reply, closes: true });
    }
    probe_idle(&mut wire).await.map_err(|_| RunError::NotIdle {
        case: case.name.clone(),
        got: escape_abbrev(&wire.received()[reply.len()..]),
    })?;
    Ok(Expect { reply, closes: false })
}

/// Connects after flushing the server on a separate connection, so every
/// case starts from an empty cache.
async fn open_flushed(addr: SocketAddr) -> Result<Wire, RunError> {
    let connect = |source| RunError::Connect { addr, source };
    let mut side = Wire::connect(addr, CONNECT_TIMEOUT).await.map_err(connect)?;
    side.send(b"flush_all\r\n").await.map_err(|e| RunError::Flush(e.to_string()))?;
    let ok = side.read_until(Instant::now() + REPLY_TIMEOUT, |got| got.len() >= 4).await;
    if !ok || side.received() != b"OK\r\n" {
        return Err(RunError::Flush(format!("got \"{}\" ({:?})", escape_abbrev(side.received()), side.closed())));
    }
    Wire::connect(addr, CONNECT_TIMEOUT).await.map_err(connect)
}

/// Sends `mn\r\n` and requires exactly `MN\r\n` back.
async fn probe_idle(wire: &mut Wire) -> Result<(), String> {
    wire.drain();
    if wire.closed().is_closed() {
        return Err("server closed the connection unexpectedly".into());
    }
    let base = wire.received().len();
    if let Err(e) = wire.send(b"mn\r\n").await {
        return Err(format!("writing the mn probe failed: {e}"));
    }
    wire.read_until(Instant::now() + REPLY_TIMEOUT, |got| got[base..].ends_with(b"MN\r\n")).await;
    let tail = &wire.received()[base..];
    if tail == b"MN\r\n" {
        Ok(())
    } else {
        Err(format!(
            "after the reply, `mn` got \"{}\" instead of \"MN\\r\\n\" ({:?})",
            escape_abbrev(tail),
            wire.closed()
        ))
    }
}

/// Writes the case's steps; returns the first write error, after which
/// nothing more is written (the server has usually hung up).
async fn send_steps(wire: &mut Wire, case: &Case) -> Option<String> {
    let pause = Duration::from_millis(case.pause_ms);
    let mut first = true;
    for step in &case.steps {
        let (pieces, bytewise) = match step {
            Step::SleepMs(ms) => {
                sleep(Duration::from_millis(*ms)).await;
                continue;
            }
            Step::Send(p) => (p, false),
            Step::SendBytewise(p) => (p, true),
        };
        let bytes = render_step(wire, pieces).await;
        let writes: Vec<&[u8]> = if bytewise { bytes.chunks(1).collect() } else { vec![&bytes[..]] };
        for w in writes {
            if !first {
                sleep(pause).await;
            }
            first = false;
            if let Err(e) = wire.send(w).await {
                return Some(e.to_string());
            }
        }
    }
    None
}

/// Renders a chunk, resolving `$cas` from the replies received so far.
async fn render_step(wire: &mut Wire, pieces: &[Piece]) -> Vec<u8> {
    let mut cas = Vec::new();
    if pieces.contains(&Piece::LastCas) {
        wire.read_until_idle(CAS_SETTLE, Instant::now() + REPLY_TIMEOUT).await;
        // No CAS seen: send an obviously bogus one so the case fails loudly
        // on its reply rather than hanging here.
        cas = last_cas(wire.received()).unwrap_or_else(|| b"no-cas-seen".to_vec());
    }
    let mut out = Vec::new();
    render_pieces(pieces, &cas, &mut out);
    out
}
