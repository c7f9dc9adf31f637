//! Logging setup shared by every subcommand.

use tracing_subscriber::EnvFilter;

/// Logs to stderr. `verbosity` 0 = info, 1 = debug, 2+ = trace; `RUST_LOG`
/// overrides.
pub(crate) fn init(verbosity: u8) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(verbosity))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// Like [`init`], writing to `file` (appending) when given.
pub(crate) fn init_to(verbosity: u8, file: Option<&std::path::Path>) -> Result<(), String> {
    let Some(path) = file else {
        init(verbosity);
        return Ok(());
    };
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(verbosity))
        .with_writer(std::sync::Mutex::new(f))
        .with_ansi(false)
        .with_target(false)
        .try_init();
    Ok(())
}

/// 0 = info, 1 = debug, 2+ = trace, unless `RUST_LOG` says otherwise.
fn filter(verbosity: u8) -> EnvFilter {
    let default = match verbosity {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}
