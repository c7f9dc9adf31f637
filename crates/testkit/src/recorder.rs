//! Regenerates the expected replies of table files from a live server.
//!
//! Expected replies are never typed by hand: the recorder runs each case
//! against real memcached and writes what it answered back into the file,
//! keeping requests, comments, normalizations and deviations untouched.
//! Replies of cases with `normalize` rules are stored already normalized
//! (`c<n>`, `<cas>`, `VERSION <version>`, one `STAT <name> <value>` line).

use crate::conformance::normalize::normalize;
use crate::conformance::{Case, Expect, TableFile};
use crate::runner::{RunError, record_case};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Quiet period after the last write that marks the end of a reply. memcached
/// on loopback answers in microseconds; a quarter second is ample and keeps
/// a full recording around a minute.
pub const RECORD_IDLE: Duration = Duration::from_millis(250);

/// The directory holding the `.mct` files in the source tree.
pub fn table_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

/// What recording one file changed.
#[derive(Debug, Default)]
pub struct FileSummary {
    /// Cases recorded.
    pub recorded: usize,
    /// Names of cases whose expectation changed (or was new).
    pub changed: Vec<String>,
    /// Cases that could not be recorded, with the reason.
    pub failed: Vec<(String, String)>,
}

/// Records every case in the file at `path` whose name contains one of
/// `filters` (all cases when `filters` is empty) against `addr`, and rewrites
/// the file when anything changed.
pub async fn record_file(
    addr: SocketAddr,
    path: &Path,
    filters: &[String],
) -> Result<FileSummary, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut file = TableFile::parse(&name, &text)?;
    let mut summary = FileSummary::default();
    for case in &mut file.cases {
        if !selected(case, filters) {
            continue;
        }
        match record_case(addr, case, RECORD_IDLE).await {
            Ok(raw) => {
                summary.recorded += 1;
                // Stored normalized: raw CAS numbers, clocks and stats would
                // make every re-recording a noisy diff, and the comparison
                // normalizes anyway.
                let expect = Expect { reply: normalize(&case.normalize, &raw.reply), closes: raw.closes };
                if case.expect.as_ref() != Some(&expect) {
                    summary.changed.push(case.name.clone());
                    case.expect = Some(expect);
                }
            }
            Err(e @ RunError::NotIdle { .. }) => {
                summary.failed.push((case.name.clone(), e.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let rendered = file.render();
    if rendered != text {
        std::fs::write(path, rendered)?;
    }
    Ok(summary)
}

fn selected(case: &Case, filters: &[String]) -> bool {
    filters.is_empty() || filters.iter().any(|f| case.name.contains(f.as_str()))
}
