//! The conformance table: request streams and the exact bytes real memcached
//! 1.6.18 answers to them.
//!
//! The table lives in `crates/testkit/conformance/*.mct`, one file per
//! command family, in the line format of the [format module](self::format). The files are
//! compiled into the crate with `include_str!`, so tests need no path
//! gymnastics, and regenerated from a live memcached by the
//! `record_conformance` example (see the crate README).

pub mod format;
pub mod normalize;

pub use format::{ParseError, TableFile};
pub use normalize::Rule;

/// One piece of a request chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal bytes.
    Bytes(Vec<u8>),
    /// `bytes` repeated `count` times; keeps multi-megabyte values readable.
    Repeat {
        /// The repeated unit.
        bytes: Vec<u8>,
        /// How many times it is repeated.
        count: usize,
    },
    /// The most recent CAS unique the server sent on this connection (from a
    /// `VALUE k f n <cas>` line or a meta `c<cas>` token). CAS numbers differ
    /// between implementations, so a case that must echo one back cannot
    /// spell it out.
    LastCas,
}

/// One step of a request stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write these pieces, concatenated, in one `write` call.
    Send(Vec<Piece>),
    /// Write these bytes one byte per `write` call.
    SendBytewise(Vec<Piece>),
    /// Wait this many milliseconds before the next step.
    SleepMs(u64),
}

/// What the server answers and whether it hangs up afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expect {
    /// The reply bytes, before normalization.
    pub reply: Vec<u8>,
    /// True when the server closes the connection after `reply`.
    pub closes: bool,
}

/// Which server a run is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Real memcached: the recorded expectation, always.
    Memcached,
    /// memshard: the recorded expectation unless the case documents a
    /// deliberate [`Case::memshard`] deviation.
    Memshard,
    /// memshard proxy: [`Case::proxy`] where the proxy deliberately differs
    /// from memshard server (which speaks the binary protocol; the proxy
    /// refuses it), else what [`Target::Memshard`] expects.
    Proxy,
}

/// One conformance case: a fresh connection to a freshly flushed server, a
/// request stream, and the expected reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Unique name, `<family>.<what>`, e.g. `get.multi-partial-hit`.
    pub name: String,
    /// Comment lines (without `# `) shown above the case in its file.
    pub comments: Vec<String>,
    /// Pause between consecutive writes, in milliseconds.
    pub pause_ms: u64,
    /// What to write, in order.
    pub steps: Vec<Step>,
    /// Normalizations applied to expected and actual replies before
    /// comparing, for values that legitimately differ between servers.
    pub normalize: Vec<Rule>,
    /// memcached's recorded answer; `None` until the recorder has run.
    pub expect: Option<Expect>,
    /// memshard's answer where it deliberately differs from memcached.
    pub memshard: Option<Expect>,
    /// Why memshard differs; required when `memshard` is set.
    pub why: Option<String>,
    /// memshard proxy's answer where it differs from memshard server's.
    pub proxy: Option<Expect>,
    /// Why the proxy differs; required when `proxy` is set.
    pub proxy_why: Option<String>,
}

/// Default pause between writes: long enough that loopback delivers each
/// write as its own segment most of the time, short enough that byte-wise
/// cases stay fast.
pub const DEFAULT_PAUSE_MS: u64 = 5;

impl Case {
    /// A case with `name` and no steps, as a starting point for builders.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            comments: Vec::new(),
            pause_ms: DEFAULT_PAUSE_MS,
            steps: Vec::new(),
            normalize: Vec::new(),
            expect: None,
            memshard: None,
            why: None,
            proxy: None,
            proxy_why: None,
        }
    }

    /// The family is the part of the name before the first `.`.
    pub fn family(&self) -> &str {
        self.name.split('.').next().unwrap_or(&self.name)
    }

    /// The expectation to check `target` against, if recorded.
    pub fn expectation(&self, target: Target) -> Option<&Expect> {
        match target {
            Target::Memshard => self.memshard.as_ref().or(self.expect.as_ref()),
            Target::Proxy => self.proxy.as_ref().or(self.memshard.as_ref()).or(self.expect.as_ref()),
            Target::Memcached => self.expect.as_ref(),
        }
    }

    /// The request as one byte string, with `$cas` shown as `<cas>`; for
    /// reports only (the real request depends on the server's replies).
    pub fn request_preview(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for step in &self.steps {
            if let Step::Send(pieces) | Step::SendBytewise(pieces) = step {
                render_pieces(pieces, b"<cas>", &mut out);
            }
        }
        out
    }
}

/// Appends `pieces` to `out`, substituting `cas` for [`Piece::LastCas`].
pub fn render_pieces(pieces: &[Piece], cas: &[u8], out: &mut Vec<u8>) {
    for piece in pieces {
        match piece {
            Piece::Bytes(b) => out.extend_from_slice(b),
            Piece::Repeat { bytes, count } => {
                for _ in 0..*count {
                    out.extend_from_slice(bytes);
                }
            }
            Piece::LastCas => out.extend_from_slice(cas),
        }
    }
}

/// The table files compiled into the crate: `(file name, contents)`.
pub const TABLE_FILES: &[(&str, &str)] = &[
    ("retrieval.mct", include_str!("../../conformance/retrieval.mct")),
    ("storage.mct", include_str!("../../conformance/storage.mct")),
    ("cas.mct", include_str!("../../conformance/cas.mct")),
    ("delete.mct", include_str!("../../conformance/delete.mct")),
    ("arith.mct", include_str!("../../conformance/arith.mct")),
    ("touch.mct", include_str!("../../conformance/touch.mct")),
    ("admin.mct", include_str!("../../conformance/admin.mct")),
    ("operator.mct", include_str!("../../conformance/operator.mct")),
    ("meta_get.mct", include_str!("../../conformance/meta_get.mct")),
    ("meta_set.mct", include_str!("../../conformance/meta_set.mct")),
    ("meta_delete.mct", include_str!("../../conformance/meta_delete.mct")),
    ("meta_arith.mct", include_str!("../../conformance/meta_arith.mct")),
    ("meta_misc.mct", include_str!("../../conformance/meta_misc.mct")),
    ("framing.mct", include_str!("../../conformance/framing.mct")),
    ("hostile.mct", include_str!("../../conformance/hostile.mct")),
];

/// Parses every compiled-in table file, in file order.
pub fn table() -> Result<Vec<Case>, ParseError> {
    let mut cases = Vec::new();
    for (name, text) in TABLE_FILES {
        cases.extend(TableFile::parse(name, text)?.cases);
    }
    Ok(cases)
}

/// The names that occur more than once in `cases`.
pub fn duplicate_names(cases: &[Case]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut dups: Vec<String> =
        cases.iter().filter(|c| !seen.insert(c.name.as_str())).map(|c| c.name.clone()).collect();
    dups.sort();
    dups.dedup();
    dups
}
